#![doc = include_str!("pages/threads.md")]

use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Duration;

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::{Event, lock};

/// Flags of `threadlab threads`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Seconds Worker-1 works once let go (scaled by --pace).
    #[arg(long, default_value_t = 1.0, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub work: f64,
    /// Threads that share the sum in part 3, for each way of getting results back (1..=64).
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub workers: usize,
    /// Sum the squares of 1..=NUMBERS in part 3 (1..=10000000).
    #[arg(long, default_value_t = 1_000_000, value_name = "NUMBERS",
          value_parser = crate::cli::whole::<u64>(1, 10_000_000))]
    pub numbers: u64,
    /// Internal: the part-4 scenario run in a child process (forget or join the thread).
    #[arg(long, hide = true, value_enum, value_name = "MODE")]
    #[serde(skip)]
    pub child: Option<Ending>,
}

/// How the part-4 child's main thread ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ending {
    /// Return from main without joining the Writer.
    Forget,
    /// Join the Writer, then return.
    Join,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    if let Some(ending) = args.child {
        child_scenario(ending, lab);
    }
    let mut report = Report::new("threads");
    report.params_from(args);
    life(args, lab, &mut report)?;
    if !lab.interrupted() {
        names_and_counts(lab, &mut report)?;
    }
    if !lab.interrupted() {
        results_back(args, lab, &mut report)?;
    }
    if !lab.interrupted() {
        what_join_is_for(lab, &mut report)?;
    }
    Ok(report)
}

/// The threads of this process as the OS lists them (`/proc/self/task/*/comm` on Linux):
/// native id and name. `None` where the OS has no such list.
fn os_threads() -> Option<Vec<(i64, String)>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        // A thread may end between the listing and this read: then it is not listed.
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            all.push((tid, comm.trim_end_matches('\n').to_string()));
        }
    }
    // The main thread first (its id is the process's), then by name: the OS's numbers wrap
    // around (at 32 768 by default), so their order is not the order of creation.
    let main = i64::from(std::process::id());
    all.sort_by(|a, b| (a.0 != main, &a.1, a.0).cmp(&(b.0 != main, &b.1, b.0)));
    Some(all)
}

/// This thread's native id, as the OS numbers it (Python's `threading.get_native_id()`).
fn native_id() -> i64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        i64::from(unsafe { libc::gettid() })
    }
    #[cfg(not(target_os = "linux"))]
    {
        -1
    }
}

/// How long the OS may take to drop a joined thread from its list (usually microseconds).
const SETTLE: Duration = Duration::from_secs(1);

/// Whether the OS lists thread `tid`, waiting up to a second for it to be `listed` (a
/// thread's entry lingers a moment after `join` returns; one being created appears at once).
fn os_lists_settled(tid: i64, listed: bool) -> Option<bool> {
    settled(|| {
        let now = os_threads()?.iter().any(|(t, _)| *t == tid);
        Some((now, now == listed))
    })
}

/// The OS's count of this process's threads, waiting up to a second for it to reach `want`.
fn os_count_settled(want: usize) -> Option<usize> {
    settled(|| {
        let n = os_threads()?.len();
        Some((n, n == want))
    })
}

/// Looks at the OS (`look` gives what it saw and whether that is what was expected) every
/// millisecond until it is, or [`SETTLE`] has passed. The OS's own time, not the lab's: how
/// long the kernel takes to drop a thread is no step of the demo, so a scheduled run's
/// virtual clock (and its replay) does not depend on it.
#[allow(clippy::disallowed_methods)]
fn settled<T>(mut look: impl FnMut() -> Option<(T, bool)>) -> Option<T> {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let (seen, done) = look()?;
        if done || std::time::Instant::now() >= deadline {
            return Some(seen);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Part 1: one thread from configuration to join, watched through the OS's own list.
fn life(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!("Part 1: the life of one thread");
    let me = std::thread::current();
    info!(
        "current thread: MainThread (std calls it {:?}), ThreadId {:?}, native id {}",
        me.name().unwrap_or("?"),
        me.id(),
        native_id()
    );
    info!(
        "Builder::new().name(\"Worker-1\"): configured, not started: no ThreadId and no OS thread \
         yet (Python: Thread(…).ident is None)"
    );
    if let Some(seen) = observe_life(args, lab)? {
        judge_life(&seen, report);
    }
    Ok(())
}

/// What Part 1 saw of Worker-1, from the handle and from the OS's own list of threads.
struct LifeSeen {
    /// The ThreadId the handle holds is the one the thread reported (std's guarantee).
    same_id: bool,
    /// The name the OS lists it under while it runs, if listed.
    comm: Option<String>,
    /// `is_finished()` was false after the spawn.
    running: bool,
    /// The timed join: its timeout, whether the thread was done in it, how long it took,
    /// and whether the OS still listed the thread.
    short: Duration,
    early: bool,
    waited: Duration,
    listed_during: Option<bool>,
    /// The real join: the thread said it was done, its value, and the OS's list after.
    done: bool,
    value: u64,
    listed_after: Option<bool>,
}

fn observe_life(args: &Args, lab: &Lab) -> anyhow::Result<Option<LifeSeen>> {
    let gate = Event::new().with_probe(lab.probe("go"));
    let (ids_tx, ids_rx) = crossbeam_channel::bounded::<(ThreadId, i64)>(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let work = lab.scaled(Duration::from_secs_f64(args.work));
    let short = lab
        .scaled(Duration::from_millis(300))
        .max(Duration::from_millis(20));
    let seen = lab.scope(|s| -> anyhow::Result<_> {
        let gate = &gate;
        let worker = s.spawn("Worker-1", move || {
            let _ = ids_tx.send((std::thread::current().id(), native_id()));
            info!("started; waiting to be let go");
            gate.wait_timeout(Duration::from_secs(30));
            info!("working for {}", units::duration(work));
            lab::sleep(work);
            let _ = done_tx.send(());
            42u64
        })?;
        let Some((reported_id, tid)) = lab::signals::recv_timeout(&ids_rx, Duration::from_secs(10))
        else {
            gate.set();
            worker.join()?;
            anyhow::ensure!(lab.interrupted(), "Worker-1 never reported its ids");
            return Ok(None);
        };
        let held_id = worker.thread().id();
        let comm = os_threads()
            .and_then(|all| all.into_iter().find(|(t, _)| *t == tid))
            .map(|(_, c)| c);
        let running = !worker.is_finished();
        info!(
            "after spawn: handle.thread().id() = {held_id:?}; native id {tid}; is_finished() = {}; \
             the OS lists it as {:?}",
            !running,
            comm.as_deref().unwrap_or("(not listed)")
        );
        // join(timeout): std has none. The idiom here: the thread says when it is done, on a
        // channel, and recv_timeout is the timed join; the real join follows once it has.
        let t = crate::lab::now();
        let early = lab::recv_timeout("done", &done_rx, short).is_ok();
        let waited = crate::lab::now().saturating_duration_since(t);
        let listed_during = os_lists_settled(tid, true);
        info!(
            "join with a timeout of {}: {} after {}; still running: {}",
            units::duration(short),
            if early { "done" } else { "timed out" },
            units::duration(waited),
            listed_during.map_or("unknown".to_string(), |l| l.to_string())
        );
        info!("let go");
        gate.set();
        let done =
            lab::signals::recv_timeout(&done_rx, work * 2 + Duration::from_secs(10)).is_some();
        let value = worker.join()?;
        let listed_after = os_lists_settled(tid, false);
        info!(
            "join(): returned {value}; {}",
            match listed_after {
                Some(true) => "the OS still lists it",
                Some(false) => "the OS no longer lists it",
                None => "(no OS thread list here)",
            }
        );
        Ok(Some(LifeSeen {
            same_id: reported_id == held_id,
            comm,
            running,
            short,
            early,
            waited,
            listed_during,
            done,
            value,
            listed_after,
        }))
    })?;
    Ok(seen)
}

fn judge_life(seen: &LifeSeen, report: &mut Report) {
    let LifeSeen {
        same_id,
        ref comm,
        running,
        short,
        early,
        waited,
        listed_during,
        done,
        value,
        listed_after,
    } = *seen;
    // std guarantees the handle's ThreadId is the thread's own, so this is shown, not
    // checked: the evidence that the thread exists is the OS's own list (below).
    report.metric("thread_id_matches_handle", u64::from(same_id));
    let listed = |l: Option<bool>| match l {
        Some(true) => "listed by the OS",
        Some(false) => "not listed by the OS",
        None => "no OS thread list here",
    };
    report.check(
        "runs-is-finished-os-thread-list",
        "while it runs: is_finished(), and the OS's thread list",
        "false; listed as 'Worker-1'",
        format!(
            "{}; {}",
            !running,
            comm.as_ref()
                .map_or("not listed".to_string(), |c| format!("listed as '{c}'"))
        ),
        running && (comm.as_deref() == Some("Worker-1") || os_threads().is_none()),
    );
    report.check(
        "join-timeout-works",
        format!(
            "a join with a {} timeout while it works",
            units::duration(short)
        ),
        format!(
            "timed out after >= {}; still listed by the OS",
            units::duration(short)
        ),
        format!(
            "{} after {}; {}",
            if early { "done" } else { "timed out" },
            units::duration(waited),
            listed(listed_during)
        ),
        !early && waited >= short && listed_during != Some(false),
    );
    report.check(
        "join-value-thread-returned-os",
        "join(): the value the thread returned, and the OS's thread list",
        "42; not listed by the OS",
        format!("{value}; {}", listed(listed_after)),
        done && value == 42 && listed_after != Some(true),
    );
}

/// Part 2: names as the OS sees them (15 bytes on Linux), and the live count at each step.
fn names_and_counts(lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let Some(baseline) = os_threads() else {
        report.note("This OS has no /proc/self/task: the thread names and counts are not shown.");
        return Ok(());
    };
    let base = baseline.len();
    info!(
        "Part 2: three named threads; the OS lists {base} threads of this process before they start"
    );
    let names = ["Downloader-with-a-long-name", "Parser", "Uploader-3"];
    let mut table = Table::new(["moment", "started − joined", "the OS counts", ""]);
    let mut mismatches = 0;
    let mut moment = |table: &mut Table, what: &str, live: usize| {
        let os = os_count_settled(base + live).unwrap_or(0);
        let ok = os == base + live;
        mismatches += usize::from(!ok);
        table.row([
            what.to_string(),
            format!("{base} + {live}"),
            os.to_string(),
            if ok { "✔" } else { "✘" }.to_string(),
        ]);
    };
    moment(&mut table, "before", 0);
    let missing = lab.scope(|s| -> anyhow::Result<_> {
        let mut threads = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded::<()>(1);
            let (running_tx, running_rx) = crossbeam_channel::bounded::<()>(1);
            info!("start {name}");
            let handle = s.spawn(*name, move || {
                // Running: the OS has its name (std names a thread before its closure runs).
                let _ = running_tx.send(());
                // Each waits for its own go, so the count can be read after each join.
                let _ = lab::recv_timeout("go", &rx, Duration::from_secs(30));
            })?;
            // Not a fixed sleep: on a busy machine a new thread may not have run yet.
            let _ = lab::recv_timeout("running", &running_rx, Duration::from_secs(30));
            threads.push((tx, handle));
            moment(&mut table, &format!("{name} started"), i + 1);
            lab.sleep_secs(0.3);
        }
        let listed = os_threads().unwrap_or_default();
        let shown: Vec<String> = listed
            .iter()
            .map(|(_, c)| match c.as_str() {
                "threadlab" => format!("{c} (main)"),
                // The lab's own helpers, named as what they do.
                "Signals" => format!("{c} (the lab's: listens for Ctrl-C)"),
                "Watchdog" => format!("{c} (the lab's: ends a hung run)"),
                _ => c.clone(),
            })
            .collect();
        info!("the OS lists (threading.enumerate()): {}", shown.join(", "));
        let mut missing = Vec::new();
        for name in names {
            // Linux keeps 15 bytes of a thread's name (TASK_COMM_LEN 16, with the NUL).
            let kept = &name[..name.len().min(15)];
            if !listed.iter().any(|(_, c)| c == kept) {
                missing.push(kept);
            }
            if kept != name {
                info!("'{name}' is '{kept}' to the OS: Linux keeps 15 bytes of a thread's name");
            }
        }
        let live = threads.len();
        for (k, (tx, handle)) in threads.into_iter().enumerate() {
            let _ = tx.send(());
            handle.join()?;
            moment(&mut table, &format!("{} joined", names[k]), live - k - 1);
            info!("{} joined", names[k]);
            lab.sleep_secs(0.3);
        }
        Ok(missing)
    })?;
    report.tables.push(table);
    report.check(
        "names-given-found-os-list",
        "names given, found in the OS's own list (first 15 bytes on Linux)",
        "3 of 3",
        format!(
            "{} of 3{}",
            3 - missing.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(", missing {missing:?}")
            }
        ),
        missing.is_empty(),
    );
    report.check(
        "moments-where-os-thread-count",
        "moments where the OS's thread count matched started − joined",
        "7 of 7",
        format!("{} of 7", 7 - mismatches),
        mismatches == 0,
    );
    Ok(())
}

/// The subclass's counterpart: a struct that is a thread's whole job, its result kept in
/// itself (Python: `class Squarer(Thread)` with `run()` setting `self.result`).
trait Job: Send {
    /// The thread's name.
    fn name(&self) -> String;
    /// The thread's body.
    fn run(&mut self);
}

/// Sums the squares of a range; the result stays in the struct.
struct Squarer {
    index: usize,
    range: std::ops::RangeInclusive<u64>,
    result: u64,
}

impl Job for Squarer {
    fn name(&self) -> String {
        format!("Subclass-{}", self.index)
    }
    fn run(&mut self) {
        self.result = sum_of_squares(self.range.clone());
    }
}

/// Starts `job` on its own named thread; the join gives the job back, result and all.
fn start<'scope, J: Job + 'scope>(
    s: &lab::LabScope<'scope, '_>,
    mut job: J,
) -> anyhow::Result<lab::Handle<'scope, J>> {
    s.spawn(job.name(), move || {
        job.run();
        job
    })
}

fn sum_of_squares(range: std::ops::RangeInclusive<u64>) -> u64 {
    range.map(|n| n.wrapping_mul(n)).fold(0, u64::wrapping_add)
}

/// Part 3: the same sum split over N threads, its parts brought back four ways.
fn results_back(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let n = args.numbers;
    let w = args.workers.min(n as usize).max(1);
    info!("Part 3: the sum of squares of 1..={n} on {w} threads, the parts brought back four ways");
    // Worked out by formula, not by threads: n(n+1)(2n+1)/6.
    let expected = {
        let n = u128::from(n);
        (n * (n + 1) * (2 * n + 1) / 6) as u64
    };
    let chunk = |i: usize| {
        let lo = n * i as u64 / w as u64 + 1;
        let hi = n * (i as u64 + 1) / w as u64;
        lo..=hi
    };
    let shared = Mutex::new(Vec::new());
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    let totals = lab.scope(|s| -> anyhow::Result<[u64; 4]> {
        // 1. The value a closure returns, through join.
        let returned: Vec<_> = (0..w)
            .map(|i| {
                s.spawn(format!("Returner-{}", i + 1), move || {
                    sum_of_squares(chunk(i))
                })
            })
            .collect::<anyhow::Result<_>>()?;
        // 2. A struct implementing Job: the result is a field, read after join.
        let jobs: Vec<_> = (0..w)
            .map(|i| {
                start(
                    s,
                    Squarer {
                        index: i + 1,
                        range: chunk(i),
                        result: 0,
                    },
                )
            })
            .collect::<anyhow::Result<_>>()?;
        // 3. A shared Mutex<Vec<_>> each thread pushes to.
        let pushers: Vec<_> = (0..w)
            .map(|i| {
                let shared = &shared;
                s.spawn(format!("Pusher-{}", i + 1), move || {
                    lock(shared).push(sum_of_squares(chunk(i)));
                })
            })
            .collect::<anyhow::Result<_>>()?;
        // 4. A channel (the tutorials' "results via a queue").
        let senders: Vec<_> = (0..w)
            .map(|i| {
                let tx = tx.clone();
                s.spawn(format!("Sender-{}", i + 1), move || {
                    let _ = tx.send(sum_of_squares(chunk(i)));
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let mut by_join = 0u64;
        for h in returned {
            by_join = by_join.wrapping_add(h.join()?);
        }
        let mut by_field = 0u64;
        for h in jobs {
            by_field = by_field.wrapping_add(h.join()?.result);
        }
        for h in pushers.into_iter().chain(senders) {
            h.join()?;
        }
        let by_mutex = lock(&shared).iter().fold(0u64, |a, b| a.wrapping_add(*b));
        Ok([by_join, by_field, by_mutex, 0])
    })?;
    drop(tx);
    let (parts, by_channel) = rx
        .try_iter()
        .fold((0, 0u64), |(k, t), v| (k + 1, t.wrapping_add(v)));
    let parts_in_mutex = lock(&shared).len();
    let totals = [totals[0], totals[1], totals[2], by_channel];
    judge_results(w, expected, totals, [w, w, parts_in_mutex, parts], report);
    Ok(())
}

/// The four ways back: each must bring one part per thread, adding up to the formula's sum.
fn judge_results(
    w: usize,
    expected: u64,
    totals: [u64; 4],
    counts: [usize; 4],
    report: &mut Report,
) {
    let mut table = Table::new(["way back", "parts", "total", ""]);
    let ways = [
        "join() returns the closure's value",
        "a Job struct's field, after join()",
        "a shared Mutex<Vec<u64>>",
        "a channel (a queue)",
    ];
    let mut wrong = Vec::new();
    for ((way, total), count) in ways.iter().zip(totals).zip(counts) {
        let ok = total == expected && count == w;
        if !ok {
            wrong.push(*way);
        }
        table.row([
            way.to_string(),
            count.to_string(),
            units::count(total),
            if ok { "✔" } else { "✘" }.to_string(),
        ]);
    }
    info!("n(n+1)(2n+1)/6 = {}", units::count(expected));
    report.tables.push(table);
    report.metric("sum_of_squares", expected);
    report.check(
        "ways-back-whose-parts-add",
        "ways back whose parts add up to n(n+1)(2n+1)/6, with one part per thread",
        format!("4 of 4 ({})", units::count(expected)),
        if wrong.is_empty() {
            "4 of 4".to_string()
        } else {
            format!("{} of 4; wrong: {}", 4 - wrong.len(), wrong.join(", "))
        },
        wrong.is_empty(),
    );
}

/// How long the child's Writer works: long enough that a main thread returning at once
/// beats it by a wide margin, however busy the machine.
fn writer_work(lab: &Lab) -> Duration {
    lab.scaled(Duration::from_millis(500))
        .max(Duration::from_millis(200))
}

/// The part-4 child: a Writer thread with work to finish; main returns with or without
/// joining it. Returning from main ends the process.
fn child_scenario(ending: Ending, lab: &Lab) -> ! {
    // If the parent dies (killed, or its output pipe closed), so does this child.
    lab::signals::die_with_parent();
    let work = writer_work(lab);
    let spawned = lab.spawn_detached("Writer", move || {
        lab::sleep(work);
        info!("result written");
    });
    let writer = match spawned {
        Ok(h) => h,
        Err(e) => {
            warn!("{e:#}");
            std::process::exit(1);
        }
    };
    match ending {
        Ending::Forget => info!("main returns without join()"),
        Ending::Join => {
            info!("main calls join()");
            let _ = lab::blocking("join", || writer.join());
            info!("join() returned; main returns");
        }
    }
    std::process::exit(0);
}

/// Part 4: what join is for. The same program twice, in a child process: main returns
/// without joining its Writer, then joins it first. The OS reports each exit.
fn what_join_is_for(lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let work = writer_work(lab);
    info!(
        "Part 4: a Writer needs {} to write its result; main returns with and without join()",
        units::duration(work)
    );
    let mut outcomes = Vec::new();
    for (ending, mode) in [(Ending::Forget, "forget"), (Ending::Join, "join")] {
        if lab.interrupted() {
            break;
        }
        let mut written = 0;
        let began = crate::lab::now();
        let exited = lab::child::run_relayed(
            lab,
            &["threads", "--child", mode],
            work * 4 + Duration::from_secs(20),
            "a thread kept it alive",
            |line, _| written += usize::from(line.contains("result written")),
        )?;
        anyhow::ensure!(
            exited.status.success() || lab.interrupted(),
            "the child process failed: {}",
            exited.status
        );
        // Under the lab's schedule this run's clock is virtual; the child's life is the OS's.
        let lived = (!lab::sched::active()).then(|| exited.at.saturating_duration_since(began));
        let after = lived.map_or(String::from(" (in the OS's real time)"), |d| {
            format!(" after {}", units::duration(d))
        });
        info!("{mode}: the process exited{after}; results written: {written}");
        outcomes.push((ending, written, lived));
    }
    let mut table = Table::new(["main", "results written", "process lived"]);
    for (ending, written, lived) in &outcomes {
        table.row([
            match ending {
                Ending::Forget => "returns without join()",
                Ending::Join => "joins the Writer, then returns",
            }
            .to_string(),
            written.to_string(),
            lived.map_or(String::from("-"), units::duration),
        ]);
    }
    report.tables.push(table);
    if lab::sched::active() {
        report.cannot_show(
            "how long each child process lived",
            "under --schedule the child's life is timed by the OS in real time, which no \
             schedule replays",
        );
    }
    let written = |e: Ending| outcomes.iter().find(|o| o.0 == e).map_or(0, |o| o.1);
    report.check(
        "results-written-before-process-ended",
        "results written before the process ended: main without join(), then with it",
        "0, then 1 (without join the process ends first)",
        format!(
            "{}, then {}",
            written(Ending::Forget),
            written(Ending::Join)
        ),
        written(Ending::Forget) == 0 && written(Ending::Join) == 1,
    );
    report.note(
        "Returning from main ends the process and every thread in it, mid-work or not: join() \
         is how main waits. Python waits for non-daemon threads at exit on its own; Rust does \
         not (see `threadlab daemon`).",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_ways_back_agree_with_the_formula() {
        let lab = Lab::quiet(0.02, 1);
        let args = Args {
            work: 1.0,
            workers: 3,
            numbers: 1000,
            child: None,
        };
        let mut report = Report::new("threads");
        results_back(&args, &lab, &mut report).unwrap();
        assert!(report.ok, "{:?}", report.checks);
        assert_eq!(report.metric_u64("sum_of_squares"), Some(333_833_500));
    }

    #[test]
    fn the_os_sees_a_thread_while_it_runs_and_not_after_join() {
        let lab = Lab::quiet(0.02, 1);
        let args = Args {
            work: 1.0,
            workers: 4,
            numbers: 100,
            child: None,
        };
        let mut report = Report::new("threads");
        // Only part 1 here: the test harness's own threads come and go, so the process-wide
        // count of part 2 is tested through the binary (tests/threads.rs).
        life(&args, &lab, &mut report).unwrap();
        assert!(report.ok, "{:?}", report.checks);
    }
}
