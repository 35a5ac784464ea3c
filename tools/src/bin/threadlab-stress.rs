//! `make stress`: every demo over many seeds, and url-check against misbehaving servers on
//! 127.0.0.1, each run bounded; prints runs, hangs, panics, wrong exit codes, the worst wall
//! time against its bound, and the peak memory. Not a test (it takes minutes); run it
//! before a release and after touching the runtime.
//!
//! `threadlab-stress [SEEDS]` (default 50).
#![allow(clippy::disallowed_methods)] // std::thread::sleep is denied in src/demos only

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use threadlab::serve::Server;
use threadlab_tools::hostile::{Behaviour, Hostile};

/// One kind of run and what it must do.
struct Target {
    label: String,
    args: Vec<String>,
    /// Exit codes that are right for it.
    exits: Vec<i32>,
    /// Longest it may take.
    bound: Duration,
}

/// What one target's runs came to.
#[derive(Default)]
struct Tally {
    runs: usize,
    hangs: usize,
    panics: usize,
    wrong_exit: usize,
    worst: Duration,
    peak_kb: i64,
    examples: Vec<String>,
}

/// Runs `exe args` bounded by `bound`: (exit code or 128+signal, wall, peak RSS in KB,
/// stderr, hung). The peak is measured by `/usr/bin/time` when it is there (a small parent,
/// so the child's figure is its own), else it is 0.
fn run_bounded(
    exe: &Path,
    args: &[String],
    bound: Duration,
    scratch: &Path,
) -> (i32, Duration, i64, String, bool) {
    use std::os::unix::process::CommandExt;
    let err_path = PathBuf::from(format!("{}.err", scratch.display()));
    let rss_path = PathBuf::from(format!("{}.rss", scratch.display()));
    let err = std::fs::File::create(&err_path).expect("scratch file");
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.exists() {
        let mut c = std::process::Command::new(time);
        c.args(["-f", "%M", "-o"]).arg(&rss_path).arg(exe);
        c
    } else {
        std::process::Command::new(exe)
    };
    let started = Instant::now();
    let child: std::process::Child = cmd
        .args(args)
        .process_group(0)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err)
        .spawn()
        .expect("spawn threadlab");
    let pid = child.id() as libc::pid_t;
    // Reaped below with wait4 (for its exit status and resource use), not by `Child`.
    std::mem::forget(child);
    let mut hung = false;
    let (code, peak) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child, with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            break (code, usage.ru_maxrss);
        }
        if started.elapsed() > bound && !hung {
            hung = true;
            // SAFETY: kill on our own child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let peak = if time.exists() {
        std::fs::read_to_string(&rss_path)
            .ok()
            .and_then(|t| t.lines().last()?.trim().parse().ok())
            .unwrap_or(0)
    } else {
        peak
    };
    // GNU time reports a child killed by a signal as "Command terminated by signal N".
    let code = match stderr.lines().rev().find_map(|l| {
        l.strip_prefix("Command terminated by signal ")?
            .trim()
            .parse::<i32>()
            .ok()
    }) {
        Some(sig) => 128 + sig,
        None => code,
    };
    let _ = std::fs::remove_file(&err_path);
    let _ = std::fs::remove_file(&rss_path);
    (code, wall, peak, stderr, hung)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Besides every demo of the registry at its quick flags: variants and edge values, at the
/// tests' pace, one run per seed.
const VARIANTS: &[(&str, &[&str])] = &[
    (
        "race-condition --trials 3",
        &["--iterations", "20000", "--trials", "3"],
    ),
    ("semaphore --bounded", &["--bounded"]),
    ("event --tick 5", &["--tick", "5"]),
    ("timer --interval 5", &["--interval", "5", "--work", "1.5"]),
    ("producer-consumer close", &["--shutdown", "close"]),
    ("deadlock --transfers 40", &["--transfers", "40"]),
    // The pictures under stress: every recording on, the files written (each run its
    // own files: `@SCRATCH` becomes the worker's scratch path).
    (
        "deadlock + pictures",
        &[
            "--transfers",
            "40",
            "--timeline",
            "--trace",
            "@SCRATCH.trace.json",
            "--svg",
            "@SCRATCH.svg",
        ],
    ),
    (
        "semaphore + pictures",
        &[
            "--timeline",
            "--trace",
            "@SCRATCH.trace.json",
            "--svg",
            "@SCRATCH.svg",
        ],
    ),
    ("daemon both", &["--mode", "both"]),
    // Edge values of the flags: each must end, and show its lesson or say why it cannot.
    ("barrier --timeout 0", &["--timeout", "0"]),
    ("deadlock --hold 0", &["--hold", "0"]),
    ("lock --gap 0", &["--gap", "0"]),
    (
        "lock --tellers 2 --transactions 1",
        &["--tellers", "2", "--transactions", "1"],
    ),
    ("philosophers --eat 0", &["--eat", "0"]),
    ("thread-local --query 0", &["--query", "0"]),
    ("worker-pool --task 0", &["--task", "0"]),
    ("event --tick 0.01", &["--tick", "0.01"]),
    ("condition --bug if", &["--bug", "if"]),
    ("timer --work 0.25", &["--work", "0.25"]),
];

/// One target per demo of the registry (cpu-vs-io left out: its checks measure CPU
/// speedups, which two runs at a time on two cores would distort, and that is the stress,
/// not a bug) and per [`VARIANTS`], `seeds` runs each.
fn demo_targets(seeds: u64) -> Vec<(Target, u64)> {
    let mut targets: Vec<(Target, u64)> = Vec::new();
    let registry = threadlab::demos::registry();
    let quick = registry
        .iter()
        .filter(|e| e.name != "cpu-vs-io")
        .map(|e| (e.name.as_str(), e.quick));
    for (label, extra) in quick.chain(VARIANTS.iter().copied()) {
        let name = label.split_whitespace().next().unwrap_or(label);
        let mut args = strings(&[name, "--pace", "0.02", "--json", "-q"]);
        args.extend(strings(extra));
        targets.push((
            Target {
                label: label.to_string(),
                args,
                exits: vec![0],
                bound: Duration::from_secs(30),
            },
            seeds,
        ));
    }

    targets
}

/// The hostile targets, and what must live until they ran: the servers, the chains file.
type Hostiles = (Vec<(Target, u64)>, Vec<Hostile>, Server, PathBuf);

/// url-check against servers that misbehave, and redirect chains on a good one.
fn hostile_targets(scratch: &Path, runs_each: u64) -> anyhow::Result<Hostiles> {
    let mut targets = Vec::new();
    // url-check against servers that misbehave; --timeout 2 --retries 1: bound 2 × 2 s,
    // the back-off, and start-up.
    let server = Server::start("127.0.0.1:0".parse()?, false)?;
    let hostile = [
        ("never responds", Behaviour::Silent, vec![2]),
        (
            "drips headers",
            Behaviour::DripHeaders {
                every: Duration::from_millis(100),
            },
            vec![2],
        ),
        (
            "drips a body",
            Behaviour::DripBody {
                every: Duration::from_millis(300),
            },
            vec![0],
        ),
        ("resets", Behaviour::Reset, vec![2]),
        ("garbage", Behaviour::Garbage, vec![2]),
        ("bad status line", Behaviour::BadStatusLine, vec![2]),
        ("endless chunked body", Behaviour::EndlessChunked, vec![0]),
        ("1 MB of headers", Behaviour::HugeHeaders, vec![2]),
        (
            "redirect to javascript:",
            Behaviour::RedirectTo("javascript:alert(1)".into()),
            vec![2],
        ),
    ];
    let mut guards = Vec::new();
    for (label, behaviour, exits) in hostile {
        let h = Hostile::start(behaviour)?;
        let list = scratch.with_extension(format!("{}.txt", label.replace(' ', "-")));
        std::fs::write(&list, format!("{}\n{}\n", h.url("/a"), h.url("/b")))?;
        targets.push((
            Target {
                label: format!("url-check: {label}"),
                args: strings(&[
                    "url-check",
                    list.to_str().unwrap_or_default(),
                    "--timeout",
                    "2",
                    "--retries",
                    "1",
                    "--json",
                    "-q",
                ]),
                exits,
                bound: Duration::from_secs(8),
            },
            runs_each,
        ));
        guards.push(h);
    }
    let base = server.base_url();
    let chains = scratch.with_extension("redirects.txt");
    std::fs::write(
        &chains,
        format!("{base}/redirect/5\n{base}/redirect/30\n{base}/redirect-loop\n"),
    )?;
    targets.push((
        Target {
            label: "url-check: redirect chains".into(),
            args: strings(&[
                "url-check",
                chains.to_str().unwrap_or_default(),
                "--json",
                "-q",
            ]),
            exits: vec![2],
            bound: Duration::from_secs(8),
        },
        runs_each,
    ));

    Ok((targets, guards, server, chains))
}

/// Runs every target's runs, two at a time; returns each target's tally.
fn run_all(
    exe: &Path,
    scratch: &Path,
    targets: &[(Target, u64)],
) -> Vec<(String, Tally, Duration)> {
    let work = std::sync::Mutex::new(
        targets
            .iter()
            .enumerate()
            .flat_map(|(i, (_, n))| (0..*n).map(move |k| (i, k)))
            .collect::<Vec<_>>(),
    );
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        for w in 0..2 {
            let (tx, work, targets, exe, scratch) = (tx.clone(), &work, &targets, &exe, &scratch);
            s.spawn(move || {
                let scratch =
                    PathBuf::from(format!("{}.{}.w{w}", scratch.display(), std::process::id()));
                loop {
                    let Some((i, k)) = work.lock().unwrap().pop() else {
                        break;
                    };
                    let t = &targets[i].0;
                    let mut args: Vec<String> = t
                        .args
                        .iter()
                        .map(|a| match a.strip_prefix("@SCRATCH") {
                            Some(rest) => format!("{}{rest}", scratch.display()),
                            None => a.clone(),
                        })
                        .collect();
                    args.extend(strings(&["--seed", &(1000 + k).to_string()]));
                    let out = run_bounded(exe, &args, t.bound, &scratch);
                    let _ = tx.send((i, k, out));
                }
            });
        }
        drop(tx);
        let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
        for (i, seed, (code, wall, peak, stderr, hung)) in rx {
            let t = &mut tallies[i];
            t.runs += 1;
            t.worst = t.worst.max(wall);
            t.peak_kb = t.peak_kb.max(peak);
            let panicked = code == 101 || code == 134 || stderr.contains("panicked");
            t.hangs += usize::from(hung);
            t.panics += usize::from(panicked);
            let wrong = !hung && !targets[i].0.exits.contains(&code);
            t.wrong_exit += usize::from(wrong);
            if (hung || panicked || wrong) && t.examples.len() < 2 {
                let first = stderr.lines().last().unwrap_or("").to_string();
                t.examples
                    .push(format!("seed {}: exit {code}: {first}", 1000 + seed));
            }
        }
        targets
            .iter()
            .zip(tallies)
            .map(|((t, _), tally)| (t.label.clone(), tally, t.bound))
            .collect()
    })
}

/// The table, then the first examples of each bad run; returns how many runs were bad.
fn print_rows(rows: &[(String, Tally, Duration)]) -> usize {
    println!(
        "\n {:<34} {:>5} {:>6} {:>7} {:>10} {:>20} {:>9}",
        "target", "runs", "hangs", "panics", "wrong exit", "worst wall / bound", "peak RSS"
    );
    let mut bad = 0;
    for (label, t, bound) in rows {
        println!(
            " {:<34} {:>5} {:>6} {:>7} {:>10} {:>20} {:>6.1} MB",
            label,
            t.runs,
            t.hangs,
            t.panics,
            t.wrong_exit,
            format!(
                "{:.2} s / {:.0} s",
                t.worst.as_secs_f64(),
                bound.as_secs_f64()
            ),
            t.peak_kb as f64 / 1024.0
        );
        bad += t.hangs + t.panics + t.wrong_exit;
    }
    for (label, t, _) in rows {
        for e in &t.examples {
            println!("  {label}: {e}");
        }
    }
    bad
}

fn main() -> anyhow::Result<()> {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let exe = std::env::current_exe()?.with_file_name("threadlab");
    anyhow::ensure!(
        exe.exists(),
        "build the threadlab binary first (cargo build --release)"
    );
    let scratch: PathBuf = std::env::temp_dir().join("threadlab-stress");
    let runs_each = seeds.div_ceil(5).max(2);
    let mut targets = demo_targets(seeds);
    let (hostile, guards, server, chains) = hostile_targets(&scratch, runs_each)?;
    targets.extend(hostile);
    println!(
        "threadlab stress — {seeds} seeds per demo at --pace 0.02, {runs_each} runs per hostile server; 2 runs at a time"
    );
    let rows = run_all(&exe, &scratch, &targets);
    let bad = print_rows(&rows);
    let total: usize = rows.iter().map(|r| r.1.runs).sum();
    println!("\n{total} runs: {bad} bad (hangs + panics + wrong exit codes)");
    drop((guards, server));
    let _ = std::fs::remove_file(chains);
    std::process::exit(i32::from(bad > 0));
}
