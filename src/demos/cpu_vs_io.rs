#![doc = include_str!("pages/cpu_vs_io.md")]

use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};

/// The tutorials' snippets in Python, run by `--python` (also in the repo, to read and run).
const PYTHON_SCRIPT: &str = include_str!("../../demos/python/cpu_vs_io.py");

/// The most CPU-bound work a run may ask for, over all its rounds, in seconds (at pace 1).
const MOST_CPU_SECS: f64 = 60.0;

/// Flags of `threadlab cpu-vs-io`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Thread counts to time, e.g. 1,2,4,8 (each 1..=64). The work is split in as many
    /// tasks as the largest count.
    #[arg(long, default_value = "1,2,4,8", value_name = "LIST", value_parser = parse_threads)]
    pub threads: ::std::vec::Vec<usize>,
    /// Seconds of CPU work in all, on one thread (scaled by --pace).
    #[arg(long, default_value_t = 0.3, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub cpu: f64,
    /// Times each CPU-bound run, round after round over every thread count (1..=10); the
    /// table keeps each count's best, so a moment when the machine was busy with something
    /// else spoils one timing, not the lesson.
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rounds: u32,
    /// Seconds one I/O task waits (scaled by --pace).
    #[arg(long, default_value_t = 0.1, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub io: f64,
    /// Also run the tutorials' own Python snippets with the same thread counts (needs
    /// python3 on PATH) and show their speedups beside Rust's.
    #[arg(long)]
    pub python: bool,
}

fn parse_threads(s: &str) -> Result<Vec<usize>, String> {
    crate::cli::parse_counts_within(s, 64)
}

/// One row: thread count, CPU-bound and I/O-bound wall times.
#[derive(Debug, Clone, Copy)]
struct Row {
    threads: usize,
    cpu: Duration,
    io: Duration,
    /// The cores this process's threads used during the best CPU-bound run (its CPU time
    /// by getrusage over the wall time), when the kernel says.
    cpu_cores: Option<f64>,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    // Bounded time: the CPU-bound work asked for, over every round, stays within a minute
    // (the one-round bound of --cpu alone).
    let asked = args.cpu * f64::from(args.rounds);
    anyhow::ensure!(
        asked <= MOST_CPU_SECS,
        "--cpu {} × --rounds {} is {asked} s of CPU-bound work; at most {MOST_CPU_SECS} s",
        args.cpu,
        args.rounds
    );
    let mut report = Report::new("cpu-vs-io");
    report.params_from(args);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = args.threads.clone();
    counts.sort_unstable();
    counts.dedup();
    let tasks = counts.iter().copied().max().unwrap_or(1);
    let per_task = calibrate(lab.scaled(Duration::from_secs_f64(args.cpu)) / tasks as u32);
    let io = lab.scaled(Duration::from_secs_f64(args.io));
    info!(
        "CPU-bound: {tasks} tasks of {} xorshift rounds each",
        units::count(per_task)
    );
    info!(
        "I/O-bound: {tasks} tasks of a {} wait each",
        units::duration(io)
    );
    info!(
        "each way on {} threads; this machine has {cores} cores",
        counts
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (rows, cpu_times, others) = time_rounds(args, lab, &counts, tasks, per_task, io)?;
    if let Some(note) = spread_note(&counts, &cpu_times) {
        report.note(note);
    }
    if let Some(busy) = others.cores() {
        report.metric("cpu.other_programs_cores", round2(busy));
        if busy > 0.3 {
            report.note(format!(
                "While the CPU-bound runs were timed, other programs kept {busy:.2} of this \
                 machine's {cores} cores busy (the kernel's own accounting: /proc/stat against \
                 this process's getrusage). Cores another program takes are not there to \
                 speed anything up: the CPU-bound figures fall short of an idle machine's."
            ));
        }
    }
    // Other programs' use is measured around Python's runs too (its CPU time counted as
    // ours: python3 is this process's child).
    let mut python_others = Others::default();
    let python = if args.python && !lab.interrupted() {
        let (before, began) = (CpuUse::now(), Instant::now());
        let py = run_python(args, lab, &counts, tasks);
        python_others.add(before, CpuUse::now(), began.elapsed());
        py
    } else {
        None
    };
    if rows.is_empty() {
        return Ok(report);
    }
    let speed = |base: Duration, d: Duration| base.as_secs_f64() / d.as_secs_f64().max(1e-9);
    let table = speed_table(args, &rows, python.as_ref(), cores, &mut report);
    report.tables.push(table);
    // What starting the threads costs by itself (the same threads, no work): a speedup is
    // only a lesson where the work outweighs it.
    let most = rows.last().map_or(1, |r| r.threads);
    let start_cost = timed(lab, "Empty", most, tasks, &|| {})?;
    report.metric("start_cost_ms", units::ms(start_cost));
    let busy = others.cores();
    checks(&rows, (cores, busy), start_cost, &mut report, speed);
    if let Some(py) = &python {
        let doubt = busy_doubt(python_others.cores(), cores);
        python_check(py, &rows, &mut report, doubt);
    } else if args.python {
        report.note("--python: python3 was not found on PATH (or failed), so Rust is shown alone.");
    } else {
        report.note(
            "Add --python to time the tutorials' own snippets (demos/python/cpu_vs_io.py) beside \
             these: CPU-bound Python does not speed up with threads while the GIL is on.",
        );
    }
    Ok(report)
}

/// Every thread count timed: CPU-bound once a round (each count's best kept), I/O-bound in
/// the first round; what other programs used of the cores while the CPU-bound runs ran.
fn time_rounds(
    args: &Args,
    lab: &Lab,
    counts: &[usize],
    tasks: usize,
    per_task: u64,
    io: Duration,
) -> anyhow::Result<(Vec<Row>, Vec<Vec<Duration>>, Others)> {
    // Round r starts at the r-th count, so no count is always timed first (or always right
    // after the calibration); I/O-bound waits take no core and are timed in the first round.
    let mut rows: Vec<Row> = Vec::new();
    let mut cpu_times: Vec<Vec<Duration>> = vec![Vec::new(); counts.len()];
    let mut cpu_cores: Vec<Vec<Option<f64>>> = vec![Vec::new(); counts.len()];
    let mut others = Others::default();
    'rounds: for round in 0..args.rounds as usize {
        for k in 0..counts.len() {
            if lab.interrupted() {
                break 'rounds;
            }
            let at = (k + round) % counts.len();
            let threads = counts[at];
            let before = CpuUse::now();
            let cpu = timed(lab, "Cpu", threads, tasks, &|| {
                spin(per_task);
            })?;
            cpu_cores[at].push(others.add(before, CpuUse::now(), cpu));
            cpu_times[at].push(cpu);
            let plural = if threads == 1 { "" } else { "s" };
            if round == 0 {
                let io_took = timed(lab, "Io", threads, tasks, &|| {
                    lab::sleep(io);
                })?;
                info!(
                    "{threads} thread{plural}: CPU-bound {}, I/O-bound {}",
                    units::duration(cpu),
                    units::duration(io_took)
                );
                rows.push(Row {
                    threads,
                    cpu,
                    io: io_took,
                    cpu_cores: None,
                });
            } else {
                info!(
                    "{threads} thread{plural}: CPU-bound {} (round {} of {})",
                    units::duration(cpu),
                    round + 1,
                    args.rounds
                );
            }
        }
    }
    // Each count's best CPU-bound time; the rows in the order of the counts.
    for row in &mut rows {
        let at = counts.iter().position(|&c| c == row.threads).unwrap_or(0);
        if let Some((best, _)) = cpu_times[at].iter().enumerate().min_by_key(|(_, d)| **d) {
            row.cpu = cpu_times[at][best];
            row.cpu_cores = cpu_cores[at][best];
        }
    }
    rows.sort_by_key(|r| r.threads);
    Ok((rows, cpu_times, others))
}

/// The speedups, each against one thread, with the ideal beside each (and Python's, when
/// it ran); each speedup also as a metric.
fn speed_table(
    args: &Args,
    rows: &[Row],
    python: Option<&Python>,
    cores: usize,
    report: &mut Report,
) -> Table {
    let base = rows[0];
    let speed = |base: Duration, d: Duration| base.as_secs_f64() / d.as_secs_f64().max(1e-9);
    let best = format!("CPU-bound, best of {}", args.rounds);
    let cpu_header = if args.rounds > 1 {
        best.as_str()
    } else {
        "CPU-bound"
    };
    let mut headers = vec!["threads", cpu_header, "ideal", "I/O-bound", "ideal"];
    if python.is_some() {
        headers.extend(["Python CPU", "Python I/O"]);
    }
    let mut table = Table::new(headers);
    for r in rows {
        let (cs, is) = (speed(base.cpu, r.cpu), speed(base.io, r.io));
        report.metric(format!("cpu.{}.speedup", r.threads), round2(cs));
        report.metric(format!("io.{}.speedup", r.threads), round2(is));
        let ideal_cpu = (r.threads.min(cores) as f64) / (base.threads.min(cores) as f64);
        let ideal_io = r.threads as f64 / base.threads as f64;
        let mut cells = vec![
            r.threads.to_string(),
            format!("{} ({})", units::speedup(cs), units::duration(r.cpu)),
            units::speedup(ideal_cpu),
            format!("{} ({})", units::speedup(is), units::duration(r.io)),
            units::speedup(ideal_io),
        ];
        if let Some(py) = python {
            for kind in ["cpu", "io"] {
                cells.push(
                    match (py.best(kind, base.threads), py.best(kind, r.threads)) {
                        (Some(b), Some(s)) => {
                            let x = b / s.max(1e-9);
                            report
                                .metric(format!("python.{kind}.{}.speedup", r.threads), round2(x));
                            units::speedup(x)
                        }
                        _ => "—".into(),
                    },
                );
            }
        }
        table.row(cells);
    }
    table
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The checks on Rust's own figures: generous ratios, as the machine may be busy.
fn checks(
    rows: &[Row],
    (cores, busy): (usize, Option<f64>),
    start_cost: Duration,
    report: &mut Report,
    speed: impl Fn(Duration, Duration) -> f64,
) {
    let base = rows[0];
    let most = *rows.last().unwrap_or(&base);
    // The ideal N-thread run lasts base/N, the real one that plus the threads' start. Half
    // the ideal I/O speedup needs start <= base/N; a 1.3x CPU speedup on 2 threads needs
    // start <= 0.27 × base. Past those the flags, not the lesson, decide the outcome.
    let too_short = |base: Duration, n: usize| {
        let limit = if n == 2 {
            base.mul_f64(0.27)
        } else {
            base / n as u32
        };
        start_cost > limit
    };
    let short = |what: &str, base: Duration, n: usize| {
        format!(
            "starting {} threads takes {} here, against {} of {what} work each in the ideal \
             case; give more work (--cpu, --io) or fewer threads",
            most.threads,
            units::duration(start_cost),
            units::duration(base / n as u32)
        )
    };
    if most.threads > base.threads && too_short(base.io, most.threads) {
        report.cannot_show(
            format!("the I/O-bound speedup with {} threads", most.threads),
            short("I/O-bound", base.io, most.threads),
        );
    } else if most.threads > base.threads {
        let io = speed(base.io, most.io);
        let ideal = most.threads as f64 / base.threads as f64;
        report.check(
            "io-bound-speedup-threads",
            format!("I/O-bound: speedup with {} threads", most.threads),
            format!(
                ">= {} (half the ideal {}: waits overlap, whatever the cores)",
                units::speedup(ideal / 2.0),
                units::speedup(ideal)
            ),
            units::speedup(io),
            io >= ideal / 2.0,
        );
        let cpu = speed(base.cpu, most.cpu);
        let cap = (most.threads.min(cores) as f64 / base.threads.min(cores) as f64) * 1.25;
        report.judged(
            busy_doubt(busy, cores),
            "cpu-bound-speedup-threads-cores",
            format!(
                "CPU-bound: speedup with {} threads on {cores} cores",
                most.threads
            ),
            format!(
                "<= {} (no more than the cores allow, with 25 % slack)",
                units::speedup(cap)
            ),
            units::speedup(cpu),
            cpu <= cap,
        );
    }
    if cores >= 2
        && let Some(two) = rows.iter().find(|r| r.threads == 2 * base.threads)
        && too_short(base.cpu, two.threads)
    {
        report.cannot_show(
            format!("the CPU-bound speedup with {} threads", two.threads),
            short("CPU-bound", base.cpu, two.threads),
        );
    } else if cores >= 2
        && let Some(two) = rows.iter().find(|r| r.threads == 2 * base.threads)
    {
        let cpu = speed(base.cpu, two.cpu);
        let doubt = busy_doubt(busy, cores).or_else(|| shared_cores(two));
        report.judged(
            doubt,
            "cpu-bound-speedup-threads",
            format!(
                "CPU-bound: speedup with {} threads (Rust has no GIL)",
                two.threads
            ),
            ">= 1.30x (ideal 2.00x: two cores compute at once)",
            units::speedup(cpu),
            cpu >= 1.3,
        );
    }
}

/// Other programs kept more than 0.3 of a core busy while the CPU-bound runs were timed
/// (the kernel's count): the cores a speedup needs were not all there.
fn busy_doubt(busy: Option<f64>, cores: usize) -> Option<String> {
    busy.filter(|&b| b > 0.3).map(|b| {
        format!(
            "other programs kept {b:.2} of this machine's {cores} cores busy while it was timed \
             (the kernel's count); on a quiet machine this check is strict"
        )
    })
}

/// The threads computed at once (their CPU time over the wall time reached 80 % of their
/// count, by getrusage) and still did not speed up: the cores themselves went slower
/// together (two hyper-threads of one physical core, or a shared clock), which no thread
/// count can fix. A serialised run (a GIL, a lock) uses one core and stays a ✘.
fn shared_cores(row: &Row) -> Option<String> {
    let used = row.cpu_cores?;
    (used >= 0.8 * row.threads as f64).then(|| {
        format!(
            "the {} threads did compute at once ({used:.2} cores of CPU time over the wall \
             time, by getrusage), yet each went slower: these cores share hardware (hyper-threads \
             of one core) or slow down together",
            row.threads
        )
    })
}

/// What the Python run said.
struct Python {
    version: String,
    gil: bool,
    /// (kind, threads, seconds), every timing (CPU-bound ones once per round)
    rows: Vec<(String, usize, f64)>,
}

impl Python {
    /// The shortest time Python took for `kind` work on `threads` threads.
    fn best(&self, kind: &str, threads: usize) -> Option<f64> {
        self.rows
            .iter()
            .filter(|(k, t, _)| k == kind && *t == threads)
            .map(|r| r.2)
            .min_by(f64::total_cmp)
    }
}

/// When the rounds of one count differ by more than a quarter, the machine was busy with
/// something else for part of the run: say so, and that the table keeps the best.
fn spread_note(counts: &[usize], times: &[Vec<Duration>]) -> Option<String> {
    let (threads, ratio) = counts
        .iter()
        .zip(times)
        .filter_map(|(&c, t)| {
            let (lo, hi) = (t.iter().min()?, t.iter().max()?);
            Some((c, hi.as_secs_f64() / lo.as_secs_f64().max(1e-9)))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (ratio > 1.25).then(|| {
        format!(
            "The CPU-bound rounds differed by up to {} (on {threads} thread{}): something else \
             on this machine took cores for part of the run. The table keeps each count's \
             best round.",
            units::speedup(ratio),
            if threads == 1 { "" } else { "s" }
        )
    })
}

/// Runs the Python snippets with the same counts and work; `None` (with a warning) when
/// python3 is missing or fails. Bounded: a run that takes too long is killed.
fn run_python(args: &Args, lab: &Lab, counts: &[usize], tasks: usize) -> Option<Python> {
    let list = counts
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    // Each Python CPU-bound timing lasts at least PYTHON_CPU_FLOOR: at a small pace a few
    // tens of ms measure the machine's noise (a 20 ms hiccup is a 1.3x "speedup"), not the GIL.
    let cpu = lab
        .scaled(Duration::from_secs_f64(args.cpu))
        .as_secs_f64()
        .max(PYTHON_CPU_FLOOR);
    let io = lab.scaled(Duration::from_secs_f64(args.io)).as_secs_f64();
    info!("--python: the tutorials' snippets on python3 with {list} threads");
    // Python's CPU-bound runs take about `cpu` each whatever the threads (`rounds` times);
    // the I/O ones at most the tasks' waits in a row. Twice that, plus start-up, bounds the
    // whole run.
    let per_count = cpu * f64::from(args.rounds) + io * tasks as f64;
    let bound =
        Duration::from_secs_f64(2.0 * per_count * counts.len() as f64) + Duration::from_secs(20);
    let mut py = Python {
        version: "?".into(),
        gil: true,
        rows: Vec::new(),
    };
    let script_args = [
        list,
        cpu.to_string(),
        tasks.to_string(),
        io.to_string(),
        args.rounds.to_string(),
    ];
    lab::python::run_json_lines(PYTHON_SCRIPT, &script_args, bound, |v| {
        if let Some(version) = v["python"].as_str() {
            py.version = version.to_string();
            py.gil = v["gil"].as_bool().unwrap_or(true);
            info!(
                "Python {} (GIL {})",
                py.version,
                if py.gil { "on" } else { "off" }
            );
        } else if let (Some(kind), Some(t), Some(s)) = (
            v["kind"].as_str(),
            v["threads"].as_u64(),
            v["secs"].as_f64(),
        ) {
            let t = t as usize;
            let round = 1 + py.rows.iter().filter(|r| r.0 == kind && r.1 == t).count();
            info!(
                "Python {kind}-bound, {t} thread{}: {}{}",
                if t == 1 { "" } else { "s" },
                units::duration(Duration::from_secs_f64(s)),
                if round > 1 {
                    format!(" (round {round} of {})", args.rounds)
                } else {
                    String::new()
                }
            );
            py.rows.push((kind.to_string(), t, s));
        }
    })?;
    let expected = (args.rounds as usize + 1) * counts.len();
    if py.rows.len() < expected {
        warn!(
            "--python: python3 printed {} of {expected} timings",
            py.rows.len()
        );
        return None;
    }
    Some(py)
}

/// The shortest CPU-bound timing of Python's, in seconds, whatever the pace.
const PYTHON_CPU_FLOOR: f64 = 0.25;

/// The GIL, measured: Python's CPU-bound speedup next to Rust's.
fn python_check(py: &Python, rows: &[Row], report: &mut Report, doubt: Option<String>) {
    let base = rows[0].threads;
    let Some(two) = rows.iter().find(|r| r.threads == 2 * base) else {
        return;
    };
    let (Some(b), Some(s)) = (py.best("cpu", base), py.best("cpu", two.threads)) else {
        return;
    };
    let x = b / s.max(1e-9);
    report.extra.insert(
        "python".into(),
        serde_json::json!({"version": py.version, "gil": py.gil}),
    );
    if py.gil {
        // A busy machine slows the one-thread run more than the others: a "speedup".
        report.judged(
            doubt,
            "python-cpu-bound-speedup-threads",
            format!(
                "Python {} (GIL on): CPU-bound speedup with {} threads",
                py.version, two.threads
            ),
            "< 1.30x (one thread runs Python bytecode at a time)",
            units::speedup(x),
            x < 1.3,
        );
    } else {
        report.note(format!(
            "Python {} runs without a GIL (free-threaded): its CPU-bound speedup with {} threads was {}.",
            py.version,
            two.threads,
            units::speedup(x)
        ));
    }
}

/// CPU time used so far, in seconds: by everything on the machine (the kernel's count in
/// /proc/stat, steal included: time a hypervisor gave to other machines) and by this
/// process (getrusage). Linux only.
#[derive(Debug, Clone, Copy)]
struct CpuUse {
    all: f64,
    ours: f64,
}

impl CpuUse {
    fn now() -> Option<CpuUse> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<f64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let busy: f64 = [0, 1, 2, 5, 6, 7]
            .iter()
            .filter_map(|&i| fields.get(i))
            .sum();
        // SAFETY: sysconf and getrusage only write into what they are given.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // This process and its finished children (the python3 of --python).
        let used = |who: libc::c_int| {
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            (unsafe { libc::getrusage(who, &mut usage) } == 0)
                .then(|| secs(usage.ru_utime) + secs(usage.ru_stime))
        };
        if hz <= 0 {
            return None;
        }
        Some(CpuUse {
            all: busy / hz as f64,
            ours: used(libc::RUSAGE_SELF)? + used(libc::RUSAGE_CHILDREN)?,
        })
    }
}

/// The CPU time other programs used while the CPU-bound runs were timed.
#[derive(Debug, Default)]
struct Others {
    used: f64,
    wall: f64,
}

impl Others {
    /// Adds one timed run's share; returns the cores this process used during it.
    fn add(&mut self, before: Option<CpuUse>, after: Option<CpuUse>, wall: Duration) -> Option<f64> {
        let (Some(b), Some(a)) = (before, after) else {
            return None;
        };
        self.used += ((a.all - b.all) - (a.ours - b.ours)).max(0.0);
        self.wall += wall.as_secs_f64();
        Some((a.ours - b.ours) / wall.as_secs_f64().max(1e-9))
    }

    /// How many cores other programs kept busy on average.
    fn cores(&self) -> Option<f64> {
        (self.wall > 0.0).then(|| self.used / self.wall)
    }
}

/// Runs `tasks` calls of `work` spread over `threads` named threads; returns the wall time.
fn timed(
    lab: &Lab,
    role: &str,
    threads: usize,
    tasks: usize,
    work: &(dyn Fn() + Sync),
) -> anyhow::Result<Duration> {
    let began = Instant::now();
    lab.scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let share = tasks / threads + usize::from(i < tasks % threads);
                s.spawn(format!("{role}-{}", i + 1), move || {
                    for _ in 0..share {
                        work();
                    }
                })
            })
            .collect::<anyhow::Result<_>>()?;
        for h in handles {
            h.join()?;
        }
        Ok(())
    })?;
    Ok(began.elapsed())
}

/// CPU-bound work the optimiser cannot skip: `n` rounds of xorshift (fewer if the run is
/// interrupted).
fn spin(n: u64) -> u64 {
    let mut x = std::hint::black_box(0x9E37_79B9_7F4A_7C15u64);
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // A signal stops the work within a millisecond or so.
        if i % (1 << 20) == 0 && lab::signals::interrupted() {
            break;
        }
    }
    std::hint::black_box(x)
}

/// How many rounds of `spin` take about `target` on this machine, one thread.
fn calibrate(target: Duration) -> u64 {
    let probe = 2_000_000;
    let t = Instant::now();
    spin(probe);
    let took = t.elapsed().as_secs_f64().max(1e-6);
    ((probe as f64) * target.as_secs_f64() / took).max(1000.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_threads(cpu_ms: u64, cores_used: f64) -> [Row; 2] {
        let row = |threads, cpu, cpu_cores| Row {
            threads,
            cpu: Duration::from_millis(cpu),
            io: Duration::from_millis(100 / threads as u64),
            cpu_cores: Some(cpu_cores),
        };
        [row(1, 100, 1.0), row(2, cpu_ms, cores_used)]
    }

    fn judge(rows: &[Row], busy: f64) -> Report {
        let mut report = Report::new("cpu-vs-io");
        let speed = |b: Duration, d: Duration| b.as_secs_f64() / d.as_secs_f64();
        checks(rows, (2, Some(busy)), Duration::ZERO, &mut report, speed);
        report
    }

    #[test]
    fn a_slow_two_thread_run_is_inconclusive_only_with_a_measured_reason() {
        // A busy machine: the 1.14x speedup is doubted, not failed; exit 0.
        let busy = judge(&two_threads(88, 1.1), 0.9);
        let c = busy.check_id("cpu-bound-speedup-threads").unwrap();
        assert!(!c.ok && c.inconclusive.as_deref().unwrap().contains("other programs kept"));
        assert!(busy.ok);
        // Quiet, and both threads computed at once: the cores went slower together.
        let shared = judge(&two_threads(88, 1.9), 0.0);
        let c = shared.check_id("cpu-bound-speedup-threads").unwrap();
        assert!(c.inconclusive.as_deref().unwrap().contains("did compute at once"));
        assert!(shared.ok);
        // Quiet, and one core used between them (serialised, as by a GIL): a real ✘.
        let serial = judge(&two_threads(95, 1.0), 0.0);
        let c = serial.check_id("cpu-bound-speedup-threads").unwrap();
        assert!(!c.ok && c.inconclusive.is_none());
        assert!(!serial.ok);
        // A speedup that holds is a ✔ whatever the load.
        let fine = judge(&two_threads(52, 1.9), 0.9);
        assert!(fine.ok && fine.checks.iter().all(|c| c.ok && c.inconclusive.is_none()));
    }

    #[test]
    fn io_bound_work_speeds_up_with_threads_and_every_row_is_timed() {
        let lab = Lab::quiet(0.2, 1);
        let args = Args {
            threads: vec![1, 2, 4],
            cpu: 0.4,
            io: 0.1,
            rounds: 2,
            python: false,
        };
        let report = run(&args, &lab).unwrap();
        assert!(report.metric_f64("io.4.speedup").unwrap() > 2.0);
        assert!(report.metric_f64("cpu.4.speedup").is_some());
    }
}
