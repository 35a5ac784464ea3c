#![doc = include_str!("pages/race_condition.md")]

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::info;

use crate::lab::{self, Lab, Report, Table, units};

/// Flags of `threadlab race-condition`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Increments per thread.
    #[arg(long, default_value_t = 100_000, value_name = "N",
          value_parser = crate::cli::whole::<u64>(1, 1_000_000_000))]
    pub iterations: u64,
    /// Threads incrementing the shared counter (1..=64).
    #[arg(long, default_value_t = 2, value_name = "T",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub threads: usize,
    /// Strategies to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Strategy::ALL)]
    pub strategy: Vec<Strategy>,
    /// What happens between a thread's read and its write: none, yield, spin:N (N spin-loop
    /// hints), sleep:MICROS. Real time: --pace has no effect on race, which has no simulated
    /// work.
    #[arg(long, default_value = "yield", value_parser = Window::parse)]
    pub window: Window,
    /// Stop each thread's loop after this many seconds of real time, even if its iterations
    /// are not done (checked every 64 increments); the expected count is then what the
    /// threads actually did. Bounds a run on a loaded machine.
    #[arg(long, value_name = "SECS", value_parser = parse_budget)]
    pub budget: Option<f64>,
    /// Runs per strategy; with K > 1 the summary shows the distribution of lost updates.
    #[arg(long, default_value_t = 1, value_name = "K",
          value_parser = crate::cli::whole::<usize>(1, 100_000))]
    pub trials: usize,
    /// Also run the tutorials' own Python counter (python3 on PATH) with the same threads
    /// and iterations, 5 times, and show why it usually loses nothing.
    #[arg(long)]
    pub python: bool,
}

fn parse_budget(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        Ok(_) => Err(format!(
            "must be more than 0 and at most 3600 seconds (got {s})"
        )),
        Err(_) => Err(format!("'{s}' is not a number of seconds")),
    }
}

/// How the threads share the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Read, then write: two separate steps (broken).
    Unsynchronized,
    /// Read and write under a `Mutex` (fixed).
    Mutex,
    /// One `fetch_add`: an indivisible read-modify-write (fixed).
    Atomic,
    /// Each thread counts privately and adds its total once (fixed).
    LocalSum,
}

impl Strategy {
    const ALL: [Strategy; 4] = [
        Strategy::Unsynchronized,
        Strategy::Mutex,
        Strategy::Atomic,
        Strategy::LocalSum,
    ];

    fn name(self) -> &'static str {
        match self {
            Strategy::Unsynchronized => "unsynchronized",
            Strategy::Mutex => "mutex",
            Strategy::Atomic => "atomic",
            Strategy::LocalSum => "local-sum",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The gap between a thread's read of the counter and its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Nothing: the read and the write are adjacent instructions.
    None,
    /// `thread::yield_now()`: invite the scheduler to run another thread in between.
    Yield,
    /// That many `spin_loop` hints: a busy gap of tunable width.
    Spin(u32),
    /// Sleep that many microseconds (not scaled by `--pace`: it is the race's mechanism,
    /// not simulated work).
    Sleep(u32),
}

impl Window {
    /// Parses `none`, `yield`, `spin:N` or `sleep:MICROS`.
    pub fn parse(s: &str) -> Result<Window, String> {
        let number = |n: &str| {
            n.parse::<u32>()
                .map_err(|_| format!("'{n}' is not a whole number (in '{s}')"))
        };
        match s.split_once(':') {
            None if s == "none" => Ok(Window::None),
            None if s == "yield" => Ok(Window::Yield),
            Some(("spin", n)) => number(n).map(Window::Spin),
            Some(("sleep", n)) => number(n).map(Window::Sleep),
            _ => Err(format!(
                "'{s}' is not a window: use none, yield, spin:N or sleep:MICROS"
            )),
        }
    }

    /// Waits out the window.
    #[inline]
    fn pause(self) {
        match self {
            Window::None => {}
            Window::Yield => std::thread::yield_now(),
            Window::Spin(n) => (0..n).for_each(|_| std::hint::spin_loop()),
            Window::Sleep(us) => {
                crate::lab::sleep(Duration::from_micros(u64::from(us)));
            }
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::None => f.write_str("none"),
            Window::Yield => f.write_str("yield"),
            Window::Spin(n) => write!(f, "spin:{n}"),
            Window::Sleep(n) => write!(f, "sleep:{n}"),
        }
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("race-condition");
    report.params_from(args);
    let window = match crate::lab::sched::active() {
        true => String::from("scheduled by the lab"),
        false => format!("window {}", args.window),
    };
    info!(
        "race-condition: {} threads × {} increments each, {window}",
        args.threads,
        units::count(args.iterations),
    );
    info!(
        "strategies: {}",
        args.strategy
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    if Story::new(args).every_step && args.strategy.contains(&Strategy::Unsynchronized) {
        info!("slow motion: every read and every write is shown as it happens");
    }
    let mut table = Table::new(["strategy", "final", "expected", "lost", "trials"]);
    for &strategy in &args.strategy {
        if lab.interrupted() {
            break;
        }
        let results = observe_strategy(strategy, args, lab)?;
        judge_strategy(strategy, args, &results, &mut table, &mut report);
    }
    report.tables.insert(0, table);
    say_outcome(args, &mut report);
    if args.python && !lab.interrupted() {
        python_counter(args, &mut report);
    }
    if args.trials > FIXED_TRIALS && args.strategy.len() > 1 {
        report.note(format!(
            "The fixed strategies ran {FIXED_TRIALS} of the {} trials: a lock or an atomic makes \
             them exact by construction, so more trials would add time, not evidence.",
            args.trials
        ));
    }
    if args.strategy.len() > 1 {
        report.note(
            "The times are not a race between the fixes: the unsynchronized counter's include \
             its --window (the pause between read and write that invites the loss), which the \
             atomic and local-sum counters have no place for.",
        );
    }
    Ok(report)
}

/// The run's outcome (an exploration's census key): each strategy's final value against
/// the increments made; a lost update is the lesson's bug.
fn say_outcome(args: &Args, report: &mut Report) {
    let mut parts = Vec::new();
    let mut bug = false;
    for strategy in &args.strategy {
        let get = |what: &str| report.metrics.get(&format!("{strategy}.{what}")).and_then(|v| v.as_u64());
        let (Some(fin), Some(expected)) = (get("final"), get("expected")) else {
            continue;
        };
        let lost = expected.saturating_sub(fin);
        bug |= lost > 0;
        let lost = if lost > 0 { format!(" ({lost} lost)") } else { String::new() };
        parts.push(if args.strategy.len() == 1 {
            format!("final {fin}{lost}")
        } else {
            format!("{strategy} {fin}{lost}")
        });
    }
    report.outcome(parts.join(", "), bug);
}

/// Trials the fixed strategies run at most.
const FIXED_TRIALS: usize = 10;

/// Runs one strategy's trials (the fixed strategies cannot lose: a few trials show it; the
/// many trials are for the unsynchronized counter's distribution).
fn observe_strategy(strategy: Strategy, args: &Args, lab: &Lab) -> anyhow::Result<Vec<Trial>> {
    let trials = if strategy == Strategy::Unsynchronized {
        args.trials
    } else {
        args.trials.min(FIXED_TRIALS)
    };
    info!("{strategy}: starting {trials} trial(s)");
    let progress = lab.progress(trials as u64, strategy.name());
    let results = run_trials(strategy, args, trials, lab, &progress)?;
    progress.finish_and_clear();
    Ok(results)
}

/// One strategy's row, metrics and checks, from its trials (the median trial is shown).
fn judge_strategy(
    strategy: Strategy,
    args: &Args,
    results: &[Trial],
    table: &mut Table,
    report: &mut Report,
) {
    let lost: Vec<u64> = results
        .iter()
        .map(|t| t.expected.saturating_sub(t.final_value))
        .collect();
    let median = median_trial(results);
    let expected = median.expected;
    let ns = median.elapsed.as_nanos() as f64 / expected.max(1) as f64;
    info!(
        "{strategy}: final {} of {} ({} lost)",
        units::count(median.final_value),
        units::count(expected),
        units::count(expected - median.final_value),
    );
    table.row([
        strategy.name().to_string(),
        units::count(median.final_value),
        units::count(expected),
        units::count(expected - median.final_value),
        results.len().to_string(),
    ]);
    let key = strategy.name();
    report.metric(format!("{key}.final"), median.final_value);
    report.metric(format!("{key}.expected"), expected);
    report.metric(format!("{key}.lost"), expected - median.final_value);
    report.metric(format!("{key}.trials"), results.len() as u64);
    report.metric(format!("{key}.ms"), units::ms(median.elapsed));
    report.metric(format!("{key}.ns_per_incr"), (ns * 10.0).round() / 10.0);
    let overlapped = results.iter().filter(|t| t.overlap > 0.0).count();
    report.metric(format!("{key}.overlapped_trials"), overlapped as u64);
    if strategy == Strategy::Unsynchronized {
        judge_unsynchronized(report, args, results, &lost);
        return;
    }
    let exact = results
        .iter()
        .filter(|t| t.final_value == t.expected)
        .count();
    if results.len() == 1 {
        report.check(
            format!("{key}.counter-final-value"),
            format!("{key} counter: final value"),
            format!("= {expected} (the increments the threads made)"),
            median.final_value,
            median.final_value == expected,
        );
    } else {
        report.check(
            format!("{key}.counter-trials-ended-exactly-increments"),
            format!("{key} counter: trials that ended exactly at the increments made"),
            format!("{0} of {0}", results.len()),
            format!("{exact} of {}", results.len()),
            exact == results.len(),
        );
    }
}

/// Checks and explains the broken strategy's outcome, honestly when it lost nothing.
fn judge_unsynchronized(report: &mut Report, args: &Args, trials: &[Trial], lost: &[u64]) {
    let median = median_trial(trials);
    let expected = median.expected;
    report.metric(
        "unsynchronized.overlap_pct",
        (median.overlap * 1000.0).round() / 10.0,
    );
    if args.threads < 2 {
        report.note("With one thread nothing can be lost: try --threads 2.");
        return;
    }
    let losing = lost.iter().filter(|&&l| l > 0).count();
    report.metric("unsynchronized.losing_trials", losing as u64);
    // A second count of the same loss, taken by the writers as it happened.
    let agree = trials
        .iter()
        .zip(lost)
        .filter(|(t, l)| t.counted_lost == **l as i64)
        .count();
    report.metric("unsynchronized.counted_lost", median.counted_lost);
    if trials.len() == 1 {
        report.check(
            "unsynchronized-increments-writers-saw-themselves",
            "unsynchronized: increments lost, as the writers counted them (each found more than it read when it wrote)",
            format!("{} (expected − final)", units::count(lost[0])),
            units::count(trials[0].counted_lost.max(0) as u64),
            agree == 1,
        );
    } else {
        report.check(
            "unsynchronized-trials-where-writers-count",
            "unsynchronized: trials where the writers' own count of overwrites = expected − final",
            format!("{0} of {0}", trials.len()),
            format!("{agree} of {}", trials.len()),
            agree == trials.len(),
        );
    }
    if args.trials == 1 {
        report.check(
            "unsynchronized-counter-updates-lost",
            "unsynchronized counter: updates lost (expected − final)",
            "> 0",
            format!(
                "{} lost ({})",
                units::count(lost[0]),
                units::percent(lost[0] as f64, expected as f64)
            ),
            lost[0] > 0,
        );
    } else {
        report.check(
            "unsynchronized-counter-trials-lost-updates",
            "unsynchronized counter: trials that lost updates",
            "at least 1",
            format!("{losing} of {}", trials.len()),
            losing > 0,
        );
        add_distribution(report, lost);
    }
    explain_unsynchronized(report, args, trials, lost);
}

/// The notes on the broken strategy's outcome: how the threads met, why about half, why
/// more than a thread's work, and what to try when a trial lost nothing.
fn explain_unsynchronized(report: &mut Report, args: &Args, trials: &[Trial], lost: &[u64]) {
    let median = median_trial(trials);
    let expected = median.expected;
    let losing = lost.iter().filter(|&&l| l > 0).count();
    if crate::lab::sched::current().is_some() {
        report.note(
            "Under the lab's schedule the threads ran one at a time, the lab choosing who runs \
             at each read and each write: what was lost is what those choices made, and the \
             token below replays them. --explore counts every schedule's outcome.",
        );
    } else if median.overlap > 0.0 {
        report.note(format!(
            "The unsynchronized threads overlapped for {:.0} % of the run.",
            median.overlap * 100.0
        ));
    } else {
        report.note(
            "The unsynchronized threads did not overlap: one finished before the other began.",
        );
    }
    let most = lost.iter().copied().max().unwrap_or(0);
    let yielded = args.window == Window::Yield && !crate::lab::sched::active();
    if yielded && args.threads == 2 && median_lost_share(lost, expected) > 0.4 {
        report.note(
            "Why about half: with `yield` each thread reads, then steps aside; the other thread \
             reads the same value and steps aside too. They alternate, so nearly every pair of \
             increments collides and one of each pair is lost.",
        );
    }
    if most > args.iterations {
        report.note(format!(
            "A trial lost {} increments, more than one thread's whole work ({}): a thread that \
             read long ago writes its stale value back, wiping out everything counted meanwhile.",
            units::count(most),
            units::count(args.iterations)
        ));
    }
    if losing < trials.len() && crate::lab::sched::current().is_some() {
        report.note(
            "This schedule lost nothing: it let each thread write before the other read. \
             --search 100 finds one that loses; --explore shows how many do.",
        );
    } else if losing < trials.len() {
        report.note(format!(
            "{} trial(s) lost nothing this time: the race is real but timing-dependent. Try a wider \
             window, e.g. --window spin:2000 or --window sleep:1, or more --iterations.",
            trials.len() - losing
        ));
    }
}

/// The median trial's lost share of the expected count.
fn median_lost_share(lost: &[u64], expected: u64) -> f64 {
    let mut sorted = lost.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2] as f64 / expected.max(1) as f64
}

/// The lost-update distribution over trials: min, median, max and a small histogram.
fn add_distribution(report: &mut Report, lost: &[u64]) {
    let mut sorted = lost.to_vec();
    sorted.sort_unstable();
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let median = sorted[sorted.len() / 2];
    let bins = 8.min(sorted.len()) as u64;
    let width = ((max - min) / bins).max(1) + u64::from((max - min) % bins != 0);
    let mut counts = vec![0u64; bins as usize];
    for &l in &sorted {
        counts[(((l - min) / width) as usize).min(bins as usize - 1)] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(1) as f64;
    let mut table = Table::new(["lost updates", "trials", ""]).titled(format!(
        "unsynchronized: lost updates over {} trials — min {}, median {}, max {}",
        lost.len(),
        units::count(min),
        units::count(median),
        units::count(max)
    ));
    let mut histogram = Vec::new();
    for (i, &c) in counts.iter().enumerate() {
        let from = min + i as u64 * width;
        let to = if i + 1 == counts.len() {
            max
        } else {
            from + width - 1
        };
        table.row([
            format!("{} – {}", units::count(from), units::count(to)),
            c.to_string(),
            units::bar(c as f64, most, 30),
        ]);
        histogram.push(serde_json::json!({"from": from, "to": to, "count": c}));
    }
    report.tables.push(table);
    report.metric("unsynchronized.lost_min", min);
    report.metric("unsynchronized.lost_median", median);
    report.metric("unsynchronized.lost_max", max);
    report.extra.insert(
        "distribution".into(),
        serde_json::json!({"lost": lost, "min": min, "median": median, "max": max, "histogram": histogram}),
    );
}

/// One run of one strategy.
#[derive(Debug, Clone, Copy)]
struct Trial {
    final_value: u64,
    /// Increments the threads made (all their iterations, unless `--budget` cut them short),
    /// counted by the threads themselves.
    expected: u64,
    /// From the first thread starting its loop to the last one finishing.
    elapsed: Duration,
    /// The share of `elapsed` during which every thread was running its loop.
    overlap: f64,
    /// Lost increments as the writers counted them, each time a write replaced a value it
    /// had not read (see [`unsynchronized`]).
    counted_lost: i64,
}

fn median_trial(trials: &[Trial]) -> Trial {
    let mut sorted = trials.to_vec();
    sorted.sort_by_key(|t| t.final_value);
    sorted[sorted.len() / 2]
}

use crate::sync::mutex::Lockable;

/// The shared state every strategy's threads work on.
struct Shared {
    atomic: AtomicU64,
    /// Recorded only when pictures are asked for: this is the hot loop.
    mutex: crate::sync::Mutex<u64>,
}

impl Shared {
    /// Both counters at 0.
    fn new(lab: &Lab) -> Self {
        Shared {
            atomic: AtomicU64::new(0),
            mutex: crate::sync::Mutex::new(0, lab.hot_probe("counter")),
        }
    }
}

/// Runs `args.trials` trials of `strategy` on one set of threads. Each trial starts every
/// thread together behind a barrier, so they really overlap, and ends at a second barrier.
fn run_trials(
    strategy: Strategy,
    args: &Args,
    trials: usize,
    lab: &Lab,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<Trial>> {
    if crate::lab::sched::current().is_some() {
        return scheduled_trials(strategy, args, trials, lab, progress);
    }
    let shared = Shared::new(lab);
    // The trials' start and end line (bounded by the watchdog, not by this timeout).
    let gate = crate::sync::Barrier::new("trial", args.threads + 1, Duration::from_secs(3600));
    let narrate = AtomicBool::new(true);
    let story = Story::new(args);
    // Set by the main thread before a trial's start when a signal asked the run to stop.
    let stop = AtomicBool::new(false);
    lab.scope(|s| {
        let mut workers = Vec::new();
        for t in 1..=args.threads {
            let (shared, gate, narrate, stop, story) = (&shared, &gate, &narrate, &stop, &story);
            workers.push(s.spawn(format!("Counter-{t}"), move || {
                let mut spans = Vec::with_capacity(trials);
                for _ in 0..trials {
                    let _ = gate.wait();
                    if stop.load(SeqCst) {
                        break;
                    }
                    let begin = crate::lab::now();
                    let story = narrate.load(Relaxed).then_some(story);
                    let work = Work {
                        iterations: args.iterations,
                        until: args
                            .budget
                            .and_then(|b| begin.checked_add(Duration::from_secs_f64(b))),
                    };
                    let (done, counted) = increment(strategy, shared, work, args.window, story);
                    spans.push((begin, crate::lab::now(), counted, done));
                    let _ = gate.wait();
                }
                spans
            })?);
        }
        let mut finals = Vec::with_capacity(trials);
        for trial in 0..trials {
            if trial > 0 && lab.interrupted() {
                stop.store(true, SeqCst);
                let _ = gate.wait(); // the workers see the stop and leave
                break;
            }
            shared.atomic.store(0, Relaxed);
            *shared.mutex.lock() = 0;
            let _ = gate.wait(); // go
            let _ = gate.wait(); // all done
            if trial == 0 {
                narrate.store(false, Relaxed);
            }
            finals.push(match strategy {
                Strategy::Mutex => *shared.mutex.lock(),
                _ => shared.atomic.load(Relaxed),
            });
            progress.inc(1);
        }
        let spans: Vec<Vec<(Instant, Instant, i64, u64)>> = workers
            .into_iter()
            .map(lab::Handle::join)
            .collect::<anyhow::Result<_>>()?;
        Ok((0..finals.len())
            .map(|i| {
                let starts = spans.iter().map(|s| s[i].0);
                let ends = spans.iter().map(|s| s[i].1);
                let (first, last_start) = (starts.clone().min().unwrap(), starts.max().unwrap());
                let (first_end, last) = (ends.clone().min().unwrap(), ends.max().unwrap());
                let elapsed = last - first;
                let together = first_end.saturating_duration_since(last_start);
                Trial {
                    final_value: finals[i],
                    elapsed,
                    overlap: together.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
                    counted_lost: spans.iter().map(|s| s[i].2).sum(),
                    expected: spans.iter().map(|s| s[i].3).sum(),
                }
            })
            .collect())
    })
}

/// The trials under the lab's scheduler (`--schedule`, `--explore`, `--step`): the threads
/// run one at a time, and the lab chooses who runs at each thread's start, before each read
/// and each write (the points where the lesson lives), and at the mutex: what a trial comes
/// to depends on those choices alone, so a replay token repeats it. No window: the lab, not
/// a yield or a sleep, opens the gap between a read and its write.
fn scheduled_trials(
    strategy: Strategy,
    args: &Args,
    trials: usize,
    lab: &Lab,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<Trial>> {
    let story = Story::new(args);
    let mut out = Vec::with_capacity(trials);
    for trial in 0..trials {
        if trial > 0 && lab.interrupted() {
            break;
        }
        let shared = Shared::new(lab);
        let story = (trial == 0).then_some(&story);
        let began = crate::lab::now();
        let work = Work {
            iterations: args.iterations,
            until: None,
        };
        let counts = lab.workers(
            "Counter",
            args.threads,
            |_| scheduled_increments(strategy, &shared, work, story),
            || {},
        )?;
        let final_value = match strategy {
            Strategy::Mutex => *shared.mutex.lock(),
            _ => shared.atomic.load(Relaxed),
        };
        out.push(Trial {
            final_value,
            expected: counts.iter().map(|c| c.0).sum(),
            elapsed: crate::lab::now().saturating_duration_since(began),
            overlap: 1.0,
            counted_lost: counts.iter().map(|c| c.1).sum(),
        });
        progress.inc(1);
    }
    Ok(out)
}

/// One thread's increments in a scheduled run, each step a declared scheduling point (the
/// thread's start is the point before its first read): the increments made, and those its
/// writes overwrote.
fn scheduled_increments(
    strategy: Strategy,
    shared: &Shared,
    work: Work,
    story: Option<&Story>,
) -> (u64, i64) {
    use crate::lab::sched::point_doing;
    let (counter, mut overwritten, mut first) = (&shared.atomic, 0i64, true);
    let done = work.run(|| match strategy {
        Strategy::Unsynchronized => {
            if !std::mem::take(&mut first) {
                point_doing(|| format!("read {}", counter.load(Relaxed)));
            }
            let value = counter.load(Relaxed);
            if story.is_some_and(|s| s.every_step) {
                info!("read {value}");
            }
            point_doing(|| format!("write {} (read {value})", value + 1));
            let found = counter.swap(value + 1, Relaxed);
            if let Some(s) = story {
                s.wrote(value, found);
            }
            overwritten += found as i64 - value as i64;
        }
        Strategy::Mutex => {
            let mut count = shared.mutex.lock();
            let value = *count;
            point_doing(|| format!("write {} (read {value}, holding 'counter')", value + 1));
            *count = value + 1;
        }
        Strategy::Atomic => {
            if !std::mem::take(&mut first) {
                point_doing(|| String::from("add 1 (one atomic step)"));
            }
            counter.fetch_add(1, Relaxed);
        }
        Strategy::LocalSum => {}
    });
    if strategy == Strategy::LocalSum {
        point_doing(|| format!("add its {done} (one atomic step)"));
        counter.fetch_add(done, Relaxed);
    }
    (done, overwritten)
}

/// How many increments one thread makes: `iterations`, or fewer if the trial's time budget
/// runs out or a signal asks the run to stop first (both looked at every 64 increments, so
/// the hot loop stays a loop).
#[derive(Debug, Clone, Copy)]
struct Work {
    iterations: u64,
    until: Option<Instant>,
}

impl Work {
    /// Runs `step` until the work is done; returns how many steps ran.
    #[inline]
    fn run(self, mut step: impl FnMut()) -> u64 {
        let mut done = 0;
        while done < self.iterations {
            let n = (self.iterations - done).min(64);
            for _ in 0..n {
                step();
            }
            done += n;
            if self.until.is_some_and(|u| crate::lab::now() >= u) || crate::lab::signals::interrupted()
            {
                break;
            }
        }
        done
    }
}

/// One thread's share of the work under `strategy`. Returns the increments it made and
/// those its writes overwrote (only the unsynchronized counter can overwrite any).
fn increment(
    strategy: Strategy,
    shared: &Shared,
    work: Work,
    window: Window,
    story: Option<&Story>,
) -> (u64, i64) {
    match strategy {
        Strategy::Unsynchronized => unsynchronized(&shared.atomic, work, window, story),
        // Recorded only with pictures; otherwise std's mutex itself, chosen once, here.
        Strategy::Mutex => match shared.mutex.unrecorded() {
            Some(plain) => (synchronized(plain, work, window), 0),
            None => (synchronized(&shared.mutex, work, window), 0),
        },
        Strategy::Atomic => (atomic(&shared.atomic, work), 0),
        Strategy::LocalSum => (local_sum(&shared.atomic, work), 0),
    }
}

/// What the narrative shows of the unsynchronized run: the first few lost updates as they
/// happen, or, for a tiny run (the slow-motion story), every read and every write.
struct Story {
    every_step: bool,
    losses_shown: AtomicU64,
    /// In the slow-motion story each read and each write is logged together with the step
    /// itself, under this lock, so the lines come in the order the steps happened. The gap
    /// between a read and its write stays open: that is where the race is.
    step: Mutex<()>,
    /// Writes drawn as ticks so far (outside the slow-motion story).
    ticks: AtomicU64,
}

/// The most writes drawn as ticks before the first lost updates, outside the story.
const MOST_TICKS: u64 = 2_000;

/// How many lost updates the narrative shows (every one in the slow-motion story).
const LOSSES_SHOWN: u64 = 3;
/// Runs with at most this many increments in all are told step by step.
const SLOW_MOTION_STEPS: u64 = 200;

impl Story {
    fn new(args: &Args) -> Self {
        Story {
            every_step: args.iterations * args.threads as u64 <= SLOW_MOTION_STEPS,
            losses_shown: AtomicU64::new(0),
            step: Mutex::new(()),
            ticks: AtomicU64::new(0),
        }
    }

    /// Runs `f` (one step and its line) so that no other step's line can come between.
    fn step<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.every_step {
            let _g = self.step.lock().unwrap_or_else(|e| e.into_inner());
            f()
        } else {
            f()
        }
    }

    /// Tells of a write that found `found` where this thread had read `read`.
    fn wrote(&self, read: u64, found: u64) {
        let wrote = read + 1;
        // The pictures' counter track: each write, including those that set it back.
        crate::lab::record::count("counter", wrote as f64);
        // Each write a tick on the lane while the story tells it (every step, or around the
        // first lost updates).
        if self.every_step
            || (self.losses_shown.load(Relaxed) < LOSSES_SHOWN
                && self.ticks.fetch_add(1, Relaxed) < MOST_TICKS)
        {
            crate::lab::record::step(|| format!("wrote {wrote}"));
        }
        if found > read {
            let n = found - read;
            crate::lab::record::mark(|| {
                format!("lost update: read {read}, found {found} when it wrote {wrote}: {n} lost")
            });
            if self.every_step || self.losses_shown.fetch_add(1, Relaxed) < LOSSES_SHOWN {
                if n == 1 {
                    info!(
                        "read {read}, wrote {wrote}, but {found} was there (both read {read}): 1 increment lost"
                    );
                } else {
                    info!("read {read}, wrote {wrote}, but {found} was there: {n} increments lost");
                }
                crate::lab::pause::moment("lost", "the first lost update");
            }
        } else if self.every_step {
            info!("wrote {wrote}");
        }
    }
}

/// The broken counter: a read, a gap, a write. Another thread's increments that land in the
/// gap are overwritten. The write is a `swap`, so the writer sees what it replaced: a value
/// above the one it read means increments it never saw are gone. Summed over all writes,
/// those overwritten increments are exactly `expected − final` (each write moves the counter
/// from what it found to what it read + 1), a count taken as the losses happen.
fn unsynchronized(
    counter: &AtomicU64,
    work: Work,
    window: Window,
    story: Option<&Story>,
) -> (u64, i64) {
    let mut overwritten = 0i64;
    // `--pause`: every counter stops with the one that met the first lost update, so the race
    // goes on as a race afterwards (one thread running alone meanwhile would lose nothing).
    let pausing = story.is_some() && crate::lab::pause::on();
    let done = work.run(|| {
        if pausing {
            crate::lab::pause::hold_point();
        }
        let value = match story {
            Some(s) if s.every_step => s.step(|| {
                let v = counter.load(Relaxed);
                info!("read {v}");
                crate::lab::record::step(|| format!("read {v}"));
                v
            }),
            _ => counter.load(Relaxed), // read
        };
        window.pause();
        // write: may overwrite another thread's increment
        let found = match story {
            Some(s) => s.step(|| {
                let found = counter.swap(value + 1, Relaxed);
                s.wrote(value, found);
                found
            }),
            None => counter.swap(value + 1, Relaxed),
        };
        overwritten += found as i64 - value as i64;
    });
    (done, overwritten)
}

/// The same read, gap and write, under a mutex.
fn synchronized(counter: &impl Lockable<u64>, work: Work, window: Window) -> u64 {
    work.run(|| {
        // the fix: no other thread can read or write between our read and our write.
        counter.locked(|count| {
            let value = *count; // read
            window.pause();
            *count = value + 1; // write
        })
    })
}

/// One indivisible read-modify-write per increment: there is no gap for a window.
fn atomic(counter: &AtomicU64, work: Work) -> u64 {
    work.run(|| {
        // the fix: the read and the write are a single atomic step.
        counter.fetch_add(1, Relaxed);
    })
}

/// Count privately; share once. Nothing shared is read mid-count, so there is no window.
fn local_sum(counter: &AtomicU64, work: Work) -> u64 {
    let mut local = 0u64;
    let done = work.run(|| local = std::hint::black_box(local + 1));
    // the fix: the only shared write is one atomic add at the end.
    counter.fetch_add(local, Relaxed);
    done
}

/// The tutorials' Python counter, run beside threadlab's (`--python`).
const PYTHON_COUNTER: &str = include_str!("../../demos/python/race_counter.py");

/// Runs the tutorials' unsynchronized counter on python3, as they run it and with a switch
/// point between the read and the write, and shows both beside threadlab's.
fn python_counter(args: &Args, report: &mut Report) {
    let runs = 5;
    info!(
        "--python: the tutorials' counter on python3: {} threads × {} increments, {runs} runs",
        args.threads,
        units::count(args.iterations)
    );
    let expected = args.iterations * args.threads as u64;
    let mut version = String::from("?");
    let mut interval = 0.0;
    let mut table = Table::new([
        "Python counter",
        "switches every",
        "final (min–max)",
        "lost (most)",
    ])
    .titled(format!(
        "python3, {runs} runs each; expected {}",
        units::count(expected)
    ));
    let mut rows = Vec::new();
    // Pure-Python loops run about 10 M increments a second; allow ten times that, plus start-up.
    let bound = Duration::from_secs_f64((expected as f64 * 2.0 * runs as f64) / 1e6)
        + Duration::from_secs(20);
    let script_args = [
        args.iterations.to_string(),
        args.threads.to_string(),
        runs.to_string(),
    ];
    let done = crate::lab::python::run_json_lines(PYTHON_COUNTER, &script_args, bound, |v| {
        if let Some(p) = v["python"].as_str() {
            version = p.to_string();
            interval = v["switch_interval"].as_f64().unwrap_or(0.0);
        } else if let (Some(variant), Some(counts)) =
            (v["variant"].as_str(), v["counts"].as_array())
        {
            let counts: Vec<u64> = counts.iter().filter_map(|c| c.as_u64()).collect();
            let lost = counts
                .iter()
                .map(|c| expected.saturating_sub(*c))
                .max()
                .unwrap_or(0);
            info!("Python {variant}: {counts:?}");
            rows.push((
                variant.to_string(),
                v["switch_interval"].as_f64().unwrap_or(0.0),
                counts,
                lost,
            ));
        }
    });
    if done.is_none() || rows.is_empty() {
        report.note("--python: python3 was not found on PATH (or failed): threadlab's counter is shown alone.");
        return;
    }
    for (variant, every, counts, lost) in &rows {
        let key = if variant.starts_with("counter") {
            "tutorial"
        } else {
            "split"
        };
        report.metric(format!("python.{key}.lost"), *lost);
        table.row([
            variant.clone(),
            units::duration(Duration::from_secs_f64(*every)),
            format!(
                "{}–{}",
                units::count(counts.iter().copied().min().unwrap_or(0)),
                units::count(counts.iter().copied().max().unwrap_or(0))
            ),
            units::count(*lost),
        ]);
    }
    report.tables.push(table);
    report
        .extra
        .insert("python".into(), serde_json::json!({"version": version}));
    report.note(format!(
        "Why the tutorials' Python counter rarely loses anything: CPython {version} lets one \
         thread run at a time (the GIL) and switches threads only every {} \
         (sys.getswitchinterval()), and then only at certain points in the bytecode (a \
         backward jump, a call). `counter += 1` has no such point between its read and its \
         write, so the switch always falls between whole increments. Put a call between the \
         read and the write and shorten the interval, and the updates are lost as in Rust. \
         The race is there all along; the GIL only makes it rare.",
        units::duration(Duration::from_secs_f64(interval))
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(strategy: Vec<Strategy>, window: Window, trials: usize) -> Args {
        Args {
            iterations: 20_000,
            threads: 2,
            strategy,
            window,
            trials,
            budget: Some(10.0),
            python: false,
        }
    }

    #[test]
    fn mutex_atomic_and_local_sum_counters_reach_the_total() {
        let lab = Lab::quiet(1.0, 1);
        for window in [Window::Yield, Window::None] {
            let a = args(
                vec![Strategy::Mutex, Strategy::Atomic, Strategy::LocalSum],
                window,
                3,
            );
            let report = run(&a, &lab).unwrap();
            for key in ["mutex", "atomic", "local-sum"] {
                // Every increment the threads made (all 40 000, unless the time budget cut
                // a loaded machine's run short) is in the final count.
                let made = report.metric_u64(&format!("{key}.expected")).unwrap();
                assert_eq!(
                    report.metric_u64(&format!("{key}.final")),
                    Some(made),
                    "{key}"
                );
                assert!(made <= 40_000 && made > 0);
            }
            assert!(report.ok);
        }
    }

    #[test]
    fn the_unsynchronized_counter_never_exceeds_the_total_and_loses_with_a_wide_window() {
        let lab = Lab::quiet(1.0, 1);
        let a = args(vec![Strategy::Unsynchronized], Window::Spin(500), 3);
        let report = run(&a, &lab).unwrap();
        let lost_max = report.metric_u64("unsynchronized.lost_max").unwrap();
        assert!(
            lost_max > 0,
            "a 500-spin window on two threads should lose updates"
        );
        assert!(lost_max <= 40_000);
        assert!(report.extra.contains_key("distribution"));
    }

    #[test]
    fn one_thread_loses_nothing_and_the_report_says_why() {
        let lab = Lab::quiet(1.0, 1);
        let mut a = args(vec![Strategy::Unsynchronized], Window::Yield, 1);
        a.threads = 1;
        let report = run(&a, &lab).unwrap();
        assert_eq!(report.metric_u64("unsynchronized.lost"), Some(0));
        assert!(report.notes.iter().any(|n| n.contains("one thread")));
    }

    #[test]
    fn windows_parse_and_print_back() {
        for s in ["none", "yield", "spin:200", "sleep:5"] {
            assert_eq!(Window::parse(s).unwrap().to_string(), s);
        }
        assert!(Window::parse("spin:x").unwrap_err().contains("'x'"));
        assert!(Window::parse("wait").is_err());
    }
}
