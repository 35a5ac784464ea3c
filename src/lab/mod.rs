//! The runtime every demo shares: clock, pace, seed, named threads, the wait protocol,
//! recording, the wait-for graph, signals, output.
//!
//! One [`Lab`] is built from the global flags and handed to every demo. It owns what every
//! demo would otherwise copy, so a demo file holds only its lesson.

pub mod child;
pub mod evidence;
pub mod output;
pub mod pause;
pub mod probe;
pub mod python;
pub mod record;
pub mod sched;
pub mod signals;
pub mod units;
pub mod waitgraph;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::thread::{self, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The report a demo returns (defined in [`crate::report`]).
pub use crate::report::{Check, Report, Table};
pub use output::{Output, thread_name};
pub use probe::{Bound, For, Hold, Outcome, Probe, Wait};
pub use record::{Recorder, State};
pub use sched::now;

/// The settings a lab is built from (the global flags, parsed).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Multiplies every simulated duration. 1.0 = the tutorials' timings.
    pub pace: f64,
    /// Seed for every random duration; `None` picks one (and the report shows it).
    pub seed: Option<u64>,
    /// Record instrumented primitives' waits and holds.
    pub record: bool,
    /// Pictures were asked for (`--timeline`, `--trace`, `--svg`): record in detail, the
    /// narrative and hot loops' primitives included.
    pub pictures: bool,
    /// Only this part of a demo in parts (`--part`).
    pub part: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pace: 1.0,
            seed: None,
            record: true,
            pictures: false,
            part: None,
        }
    }
}

/// The shared runtime handed to every demo.
pub struct Lab {
    start: Instant,
    pace: f64,
    seed: u64,
    record: bool,
    part: Option<u32>,
    output: Output,
    recorder: Arc<Recorder>,
    wait_graph: Arc<waitgraph::WaitGraph>,
}

impl Lab {
    /// A lab starting its clock now.
    pub fn new(settings: Settings, output: Output) -> Self {
        let start = crate::lab::now();
        let wait_graph = Arc::new(waitgraph::WaitGraph::new(start));
        // The thread that builds the lab runs the demo: one of its threads.
        wait_graph.thread_started();
        let recorder = Arc::new(Recorder::new(start).watched_by(Arc::clone(&wait_graph)));
        recorder.adopt_current_thread();
        recorder.set_detail(settings.pictures);
        Self {
            start,
            pace: settings.pace,
            seed: settings
                .seed
                .unwrap_or_else(|| u64::from(rand::random::<u32>())),
            record: settings.record,
            part: settings.part,
            output,
            recorder,
            wait_graph,
        }
    }

    /// A silent lab at `pace` with a fixed `seed`: what unit tests run demos in.
    pub fn quiet(pace: f64, seed: u64) -> Self {
        Self::new(
            Settings {
                pace,
                seed: Some(seed),
                record: true,
                pictures: false,
                part: None,
            },
            Output::silent(),
        )
    }

    /// Whether every part of a demo in parts runs (`--part` chose none).
    pub fn runs_every_part(&self) -> bool {
        self.part.is_none()
    }

    /// Whether part `n` runs: every part does unless `--part` chose one.
    pub fn runs_part(&self, n: u32) -> bool {
        self.part.is_none_or(|p| p == n)
    }

    /// The pace factor.
    pub fn pace(&self) -> f64 {
        self.pace
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// When the demo started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Time since the demo started.
    pub fn elapsed(&self) -> Duration {
        crate::lab::now().saturating_duration_since(self.start)
    }

    /// The output settings.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// The wait-for graph every lock made with [`Lab::probe`] reports to, and its deadlock
    /// detector.
    pub fn wait_graph(&self) -> &Arc<waitgraph::WaitGraph> {
        &self.wait_graph
    }

    /// The recorder of thread lives and primitive spans.
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// A simulated duration scaled by the pace. Never use it for real I/O.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.pace)
    }

    /// Whether a SIGINT or SIGTERM asked the run to stop. Demos check it between steps.
    pub fn interrupted(&self) -> bool {
        signals::interrupted()
    }

    /// A simulated duration as the class will see it happen: the real (paced) time, followed
    /// by the tutorials' nominal value in brackets when the pace is not 1:
    /// `400.0 ms [2 s at pace 1]`.
    pub fn simulated(&self, secs: f64) -> String {
        let real = units::duration(self.scaled(Duration::from_secs_f64(secs.max(0.0))));
        if self.pace == 1.0 {
            real
        } else {
            let nominal = format!("{secs:.3}");
            let nominal = nominal.trim_end_matches('0').trim_end_matches('.');
            format!("{real} [{nominal} s at pace 1]")
        }
    }

    /// Sleeps `secs` simulated seconds of the tutorials, scaled by the pace (see [`sleep`]).
    pub fn sleep_secs(&self, secs: f64) -> bool {
        sleep(self.scaled(Duration::from_secs_f64(secs.max(0.0))))
    }

    /// A random generator for one named stream (`"Consumer-2"`). Each stream is derived from
    /// the seed and its name only, so its draws replay exactly whatever the scheduling was.
    pub fn rng(&self, stream: &str) -> StdRng {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        stream.hash(&mut h);
        StdRng::seed_from_u64(self.seed ^ h.finish())
    }

    /// A probe for a primitive a hot loop uses: recording only when pictures were asked
    /// for (`--timeline`, `--trace`, `--svg`), otherwise one branch per operation.
    pub fn hot_probe(&self, name: &str) -> Probe {
        let recording = self.record && self.recorder.detail();
        Probe::on(name, recording.then(|| Arc::clone(&self.recorder)), None)
    }

    /// A probe for a primitive named `name`, recording into this lab when recording is on.
    pub fn probe(&self, name: &str) -> Probe {
        let recorder = self.record.then(|| Arc::clone(&self.recorder));
        Probe::on(name, recorder, Some(Arc::clone(&self.wait_graph)))
    }

    /// A progress bar, hidden when output is not a terminal or `--json`/`--quiet` is set.
    pub fn progress(&self, len: u64, label: &str) -> ProgressBar {
        self.output.progress(len, label)
    }

    /// Spawns a named thread inside `scope`; the recorder notes when it starts and finishes.
    pub(crate) fn spawn<'scope, 'env, T, F>(
        &self,
        scope: &'scope Scope<'scope, 'env>,
        name: impl Into<String>,
        f: F,
    ) -> anyhow::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let name = name.into();
        let recorder = Arc::clone(&self.recorder);
        let slot = recorder.reserve(&name);
        let (turn, spawned) = scheduled_spawn(&name);
        let handle = thread::Builder::new()
            .name(name.clone())
            .spawn_scoped(scope, move || {
                // In a scheduled run the thread first waits to be chosen (its start is a
                // scheduling point) and leaves the run when it ends, after the recorder.
                let _turn = spawned.map(sched::Spawned::enter);
                let _life = recorder.thread_started_at(slot);
                f()
            })
            .with_context(|| format!("could not spawn thread {name}"))?;
        bind(turn, handle.thread());
        Ok(handle)
    }

    /// A scope for named threads (as `std::thread::scope`): every thread spawned through
    /// `s.spawn(name, f)` is recorded, and joined by the end of the scope; its handle's
    /// `join()` turns a panic into an error that names the thread.
    pub fn scope<'env, T>(
        &'env self,
        f: impl for<'scope> FnOnce(&LabScope<'scope, 'env>) -> T,
    ) -> T {
        thread::scope(|scope| {
            let s = LabScope {
                lab: self,
                scope,
                spawned: std::sync::Mutex::new(Vec::new()),
            };
            let result = f(&s);
            // std joins what is left at the scope's end, for real: in a scheduled run the
            // scheduler's join comes first, so that wait is the scheduler's.
            let left = std::mem::take(&mut *crate::sync::lock(&s.spawned));
            if let Err(e) = scheduled_join(&left) {
                tracing::warn!("{e:#}");
            }
            result
        })
    }

    /// Runs `n` named threads, `{role}-1` … `{role}-n`, each `work(i)` with its number `i`
    /// from 1, and returns their results in that order. `started` runs on the calling thread
    /// once all are spawned (to open a start gate). A thread that panicked is an error that
    /// names it.
    pub fn workers<T: Send>(
        &self,
        role: &str,
        n: usize,
        work: impl Fn(usize) -> T + Sync,
        started: impl FnOnce(),
    ) -> anyhow::Result<Vec<T>> {
        let work = &work;
        thread::scope(|s| {
            let handles: Vec<_> = (1..=n)
                .map(|i| self.spawn(s, format!("{role}-{i}"), move || work(i)))
                .collect::<anyhow::Result<_>>()?;
            started();
            // In a scheduled run, one wait for them all: a worker's end is no choice for
            // the caller, which only collects (shown as a join of the first).
            let ids: Vec<_> = handles.iter().map(|h| h.thread().id()).collect();
            if let Some(first) = ids.first().filter(|_| sched::active()) {
                let wait = Wait::new(For::Join(*first), Bound::Forever);
                Probe::off("join").block(wait, || scheduled_join(&ids))?;
            }
            handles.into_iter().map(join).collect()
        })
    }

    /// Spawns a named thread that is not scoped: it may outlive the caller's frame (as a
    /// daemon does). Use only where that is the lesson.
    pub fn spawn_detached<T, F>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> anyhow::Result<thread::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_recorded(&self.recorder, name.into(), f)
    }

    /// Every signal wait of the run (queue, event, condition, barrier, timer) ended by the
    /// signal it waited for, not found over by a poll: a missing notify only makes a wait
    /// slower, so this is where it shows. Added to every report whose threads waited for a
    /// signal; the wait protocol (`Probe::wait`) tells the two apart by whether
    /// the condvar returned by a notify or by running out its slice.
    fn judge_wakes(&self, report: &mut Report) {
        let wakes = self.wait_graph.wakes();
        let total = wakes.by_signal + wakes.by_poll.len();
        if total == 0 {
            return;
        }
        report.metric("waits.woken_by_signal", wakes.by_signal as u64);
        report.metric("waits.found_by_poll", wakes.by_poll.len() as u64);
        let observed = match wakes.by_poll.first() {
            None => format!("{total} of {total} by their signal"),
            Some(first) => format!(
                "{} of {total} found only by a poll (first: {first})",
                wakes.by_poll.len()
            ),
        };
        report.check(
            "signal-waits-signal-ended",
            "signal waits their signal ended (a lost wake-up is found only by a poll)",
            format!("all {total}: none found by a poll"),
            observed,
            wakes.by_poll.is_empty(),
        );
    }

    /// Per primitive: waits and holds from the recorded spans, the most at once from the
    /// probes' gauges, and a starving thread if one waited far longer than the others.
    fn primitive_accounting(&self) -> Vec<crate::report::PrimitiveReport> {
        let spans = self.recorder.spans();
        let mut names: Vec<Arc<str>> = Vec::new();
        // Primitives only: not the simulated sleeps, nor the joins (`--timeline` records those
        // for the main thread's lane).
        for s in spans
            .iter()
            .filter(|s| s.state != State::Sleeping && &*s.primitive != "join")
        {
            if !names.contains(&s.primitive) {
                names.push(Arc::clone(&s.primitive));
            }
        }
        names
            .into_iter()
            .map(|name| {
                let of = |state: State| -> Vec<(&str, Duration)> {
                    spans
                        .iter()
                        .filter(|s| s.primitive == name && s.state == state)
                        .map(|s| (&*s.thread, s.end.saturating_sub(s.start)))
                        .collect()
                };
                let waits = of(State::Waiting);
                let holds = of(State::Holding);
                let longest = waits.iter().max_by_key(|(_, d)| *d).copied();
                // Each waiter's longest wait, for the starvation figure.
                let mut per_thread: Vec<(&str, Duration)> = Vec::new();
                for (t, d) in &waits {
                    match per_thread.iter_mut().find(|(n, _)| n == t) {
                        Some(e) => e.1 = e.1.max(*d),
                        None => per_thread.push((t, *d)),
                    }
                }
                per_thread.sort_by_key(|(_, d)| *d);
                let starving = (per_thread.len() >= 3)
                    .then(|| {
                        let median = per_thread[per_thread.len() / 2].1;
                        let (who, worst) = per_thread[per_thread.len() - 1];
                        (!median.is_zero() && worst >= median * 5).then(|| who.to_string())
                    })
                    .flatten();
                let (most_waiting, most_holding) = self.recorder.most_at_once(&name);
                crate::report::PrimitiveReport {
                    name: name.to_string(),
                    waits: waits.len(),
                    total_wait_ms: units::ms(waits.iter().map(|(_, d)| *d).sum()),
                    longest_wait_ms: longest.map_or(0.0, |(_, d)| units::ms(d)),
                    longest_waiter: longest.map(|(t, _)| t.to_string()),
                    holds: holds.len(),
                    total_hold_ms: units::ms(holds.iter().map(|(_, d)| *d).sum()),
                    most_waiting,
                    most_holding,
                    starving,
                }
            })
            .collect()
    }

    /// Fills in what the lab owns: wall time, pace and seed, and every thread's timings and
    /// waiting/holding accounting.
    pub fn finish(&self, report: &mut Report) {
        report.wall_ms = units::ms(self.elapsed());
        report.deadlocks = self.wait_graph.cycles();
        self.judge_wakes(report);
        if self.recorder.detail() {
            report.timeline = Some(Arc::new(crate::pictures::timeline::Timeline::build(
                &report.demo,
                &self.recorder,
                &report.deadlocks,
                self.elapsed(),
            )));
        }
        report.primitives = self.primitive_accounting();
        report.params.insert("pace".into(), self.pace.into());
        report.params.insert("seed".into(), self.seed.into());
        let wall = self.elapsed();
        let spans = self.recorder.spans();
        report.threads = self
            .recorder
            .threads()
            .into_iter()
            .enumerate()
            .map(|(slot, t)| {
                // This life's spans, by its slot: two threads may share a name, even at once
                // (two pools' workers of the same name, one run after another).
                let mine: Vec<&record::Span> =
                    spans.iter().filter(|s| s.slot == Some(slot)).collect();
                let total = |state: State| -> Duration {
                    mine.iter()
                        .filter(|s| s.state == state)
                        .map(|s| s.end.saturating_sub(s.start))
                        .sum()
                };
                let per = |state: State| -> serde_json::Map<String, serde_json::Value> {
                    let mut m = serde_json::Map::new();
                    for s in mine.iter().filter(|s| s.state == state) {
                        let ms = units::ms(s.end.saturating_sub(s.start));
                        let e = m.entry(s.primitive.to_string()).or_insert(0.0.into());
                        *e = (e.as_f64().unwrap_or(0.0) + ms).into();
                    }
                    m
                };
                let (waiting, sleeping) = (total(State::Waiting), total(State::Sleeping));
                let alive = t.finished.unwrap_or(wall).saturating_sub(t.started);
                crate::report::ThreadReport {
                    waiting_ms: units::ms(waiting),
                    holding_ms: units::ms(total(State::Holding)),
                    sleeping_ms: units::ms(sleeping),
                    running_ms: units::ms(alive.saturating_sub(waiting + sleeping)),
                    waiting_on: per(State::Waiting),
                    holding_on: per(State::Holding),
                    started_ms: units::ms(t.started),
                    finished_ms: t.finished.map(units::ms),
                    name: t.name,
                }
            })
            .collect();
    }
}

/// A short pause between two looks at a condition a demo sequences on (not simulated work:
/// not scaled by --pace, not recorded). It always sleeps, even once the run is interrupted,
/// so a polling loop never spins; keep `d` to a few milliseconds.
pub fn pause(d: Duration) {
    // In a scheduled run, a pause is virtual time, and another thread's turn.
    if let Some(turn) = sched::current() {
        let _ = turn.block_on(waitgraph::next_resource_id(), Some(d.as_micros() as u64));
        return;
    }
    std::thread::sleep(d);
}

/// Spawns a named, detached thread whose life `recorder` keeps (what
/// [`Lab::spawn_detached`] does, for a thread that spawns others without the lab at hand).
pub fn spawn_recorded<T, F>(
    recorder: &Arc<Recorder>,
    name: String,
    f: F,
) -> anyhow::Result<thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let recorder = Arc::clone(recorder);
    let slot = recorder.reserve(&name);
    let (turn, spawned) = scheduled_spawn(&name);
    let handle = thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let _turn = spawned.map(sched::Spawned::enter);
            let _life = recorder.thread_started_at(slot);
            f()
        })
        .with_context(|| format!("could not spawn thread {name}"))?;
    bind(turn, handle.thread());
    Ok(handle)
}

/// In a scheduled run, registers a thread about to be spawned (it runs when chosen): the
/// spawned thread enters the run first thing (`Spawned::enter`), and the spawner [`bind`]s
/// it once spawned.
pub(crate) fn scheduled_spawn(name: &str) -> (Option<sched::Turn>, Option<sched::Spawned>) {
    match sched::current() {
        Some(turn) => {
            let spawned = turn.spawn(name);
            (Some(turn), Some(spawned))
        }
        None => (None, None),
    }
}

/// Tells the scheduler, if any, which OS thread the last registered one is.
pub(crate) fn bind(turn: Option<sched::Turn>, thread: &thread::Thread) {
    if let Some(turn) = turn {
        turn.bind_last(thread.id());
    }
}

/// In a scheduled run, waits (as the scheduler's wait) until the threads `ids` have ended,
/// so that std's join that follows does not block; an error when the run's deadlock made
/// this wait its victim. Nothing otherwise.
pub(crate) fn scheduled_join(ids: &[thread::ThreadId]) -> anyhow::Result<()> {
    match sched::current() {
        Some(turn) if !ids.is_empty() => turn.join(ids).map_err(|sched::Abort| {
            anyhow::anyhow!(
                "--schedule: {} waited to join threads that never ended: every thread was \
                 waiting (a deadlock)",
                thread_name()
            )
        }),
        _ => Ok(()),
    }
}

/// Runs a demo with `args` in a silent lab at `pace` once per seed, asserting every check
/// holds each time; returns the reports for further assertions. For unit tests.
#[cfg(test)]
pub fn holding_over_seeds<A>(
    run: impl Fn(&A, &Lab) -> anyhow::Result<Report>,
    args: &A,
    pace: f64,
    seeds: std::ops::Range<u64>,
) -> Vec<Report> {
    seeds
        .map(|seed| {
            let report = run(args, &Lab::quiet(pace, seed)).expect("the demo ran");
            assert!(report.ok, "seed {seed}: {:?}", report.checks);
            report
        })
        .collect()
}

/// Named, recorded threads spawned inside [`Lab::scope`].
pub struct LabScope<'scope, 'env: 'scope> {
    lab: &'env Lab,
    scope: &'scope thread::Scope<'scope, 'env>,
    /// The threads spawned here (a scheduled run joins them as the scope ends).
    spawned: std::sync::Mutex<Vec<thread::ThreadId>>,
}

impl<'scope, 'env> LabScope<'scope, 'env> {
    /// Spawns a thread named `name` running `f`.
    pub fn spawn<T: Send + 'scope>(
        &self,
        name: impl Into<String>,
        f: impl FnOnce() -> T + Send + 'scope,
    ) -> anyhow::Result<Handle<'scope, T>> {
        let handle = self.lab.spawn(self.scope, name, f)?;
        crate::sync::lock(&self.spawned).push(handle.thread().id());
        Ok(Handle(handle))
    }
}

/// A thread spawned in a [`LabScope`].
pub struct Handle<'scope, T>(ScopedJoinHandle<'scope, T>);

impl<T> Handle<'_, T> {
    /// Waits for the thread (through the wait protocol) and returns its value, or an error
    /// naming it if it panicked.
    pub fn join(self) -> anyhow::Result<T> {
        join(self.0)
    }

    /// Whether the thread has finished (in a scheduled run, as the scheduler knows it:
    /// at a scheduling point, the same on every replay).
    pub fn is_finished(&self) -> bool {
        sched::ended(self.0.thread().id()).unwrap_or_else(|| self.0.is_finished())
    }

    /// The thread (its name and id).
    pub fn thread(&self) -> &thread::Thread {
        self.0.thread()
    }
}

/// The one sleep: `d`, a simulated duration already scaled by the pace (`lab.scaled`), as a
/// wait on time through the wait protocol (recorded as sleeping; later, a virtual clock's).
/// Returns at once when the run is interrupted (SIGINT/SIGTERM), so every demo stops
/// promptly; returns false then.
pub fn sleep(d: Duration) -> bool {
    signals::sleep(d)
}

/// Blocks on `op`, a wait on something outside the lab's primitives named `what` (the
/// network, a channel, a future), through the wait protocol: the pictures show the thread
/// waiting, not running.
pub fn blocking<R>(what: &str, op: impl FnOnce() -> R) -> R {
    // Such a wait has no edge in the wait-for graph and is recorded only for pictures: with
    // none asked for anywhere, the protocol is the call itself (a pool's job loop stays
    // cheap). A scheduler, when there is one, takes this path too.
    if !record::detail_anywhere() {
        return op();
    }
    Probe::off(what).block(Wait::new(For::Outside, Bound::Forever), op)
}

/// Receives a thread's message from `rx`, waiting at most `d`, through the wait protocol
/// (a wait on something outside the lab's primitives, named `what`).
pub fn recv_timeout<T>(
    what: &str,
    rx: &crossbeam_channel::Receiver<T>,
    d: Duration,
) -> Result<T, crossbeam_channel::RecvTimeoutError> {
    match sched::current() {
        Some(turn) => scheduled_recv(&turn, rx, Some(d)),
        None => blocking(what, || rx.recv_timeout(d)),
    }
}

/// Receives a thread's message from `rx`, waiting as long as it takes (until every sender
/// is gone), through the wait protocol (see [`recv_timeout`]).
pub fn recv<T>(what: &str, rx: &crossbeam_channel::Receiver<T>) -> Option<T> {
    match sched::current() {
        Some(turn) => scheduled_recv(&turn, rx, None).ok(),
        None => blocking(what, || rx.recv().ok()),
    }
}

/// How often a receiver of a scheduled run looks at its channel, in virtual time.
pub(crate) const POLL_TICK_US: u64 = 1_000;

/// A receiver of a scheduled run found nothing: it lets the others run, and its clock
/// moves at most `tick` µs (only when nobody else can run).
pub(crate) fn scheduled_poll(turn: &sched::Turn, tick: u64) {
    // A wait with a deadline is never a deadlock's victim: time moves instead.
    let _ = turn.block_on(waitgraph::next_resource_id(), Some(tick));
}

/// A channel receive in a scheduled run: a channel does not tell the scheduler when it is
/// sent to, so the receiver looks, and when nothing is there lets the others run; its
/// clock moves [`POLL_TICK_US`] at a time only when no other thread can run. Deterministic,
/// and bounded by `within` (virtual).
pub(crate) fn scheduled_recv<T>(
    turn: &sched::Turn,
    rx: &crossbeam_channel::Receiver<T>,
    within: Option<Duration>,
) -> Result<T, crossbeam_channel::RecvTimeoutError> {
    use crossbeam_channel::{RecvTimeoutError, TryRecvError};
    let deadline = within.map(|d| turn.now().saturating_add(d.as_micros() as u64));
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        let now = turn.now();
        let tick = match deadline {
            Some(d) if now >= d => return Err(RecvTimeoutError::Timeout),
            Some(d) => (d - now).min(POLL_TICK_US),
            None => POLL_TICK_US,
        };
        scheduled_poll(turn, tick);
    }
}

/// Joins a scoped thread, turning a panic into an error that names the thread.
pub fn join<T>(handle: ScopedJoinHandle<'_, T>) -> anyhow::Result<T> {
    let name = handle.thread().name().unwrap_or("thread").to_string();
    // Seen by the deadlock detector: waiting to join a stuck thread is stuck.
    let target = handle.thread().id();
    let wait = Wait::new(For::Join(target), Bound::Forever);
    let joined =
        Probe::off("join").block(wait, || scheduled_join(&[target]).map(|()| handle.join()))?;
    joined.map_err(|payload| {
        anyhow::Error::new(Panicked {
            thread: name,
            message: panic_message(payload.as_ref()),
        })
    })
}

/// A thread panicked where no panic was expected: a bug, which the binary reports with
/// exit code 101 (Rust's own code for a panic).
#[derive(Debug, thiserror::Error)]
#[error("{thread} panicked: {message}")]
pub struct Panicked {
    /// The thread's name.
    pub thread: String,
    /// The panic's message.
    pub message: String,
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

thread_local! {
    static PANICS_EXPECTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on this thread with its panics marked as expected: code that catches them on
/// purpose (a pool task, a lesson on failing threads) says so, and the panic hook then
/// narrates the panic instead of reporting an internal error.
pub fn expecting_panics<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PANICS_EXPECTED.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PANICS_EXPECTED.with(|p| p.replace(true)));
    f()
}

/// Whether the current thread's panics are caught on purpose (see [`expecting_panics`]).
pub fn panics_expected() -> bool {
    PANICS_EXPECTED.with(std::cell::Cell::get)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wait_ended_by_a_notify_is_woken_and_one_found_over_by_a_poll_is_counted() {
        let _bound = crate::sync::bounded_test(20);
        let lab = Lab::quiet(1.0, 1);
        let probe = lab.probe("flag");
        let (flag, cv) = (std::sync::Mutex::new(false), std::sync::Condvar::new());
        // (notify, signal recorded): a notify wakes; without one the wait is found by a poll,
        // whether or not the signaller recorded its signal (long before the slice ran out).
        for (notify, signal) in [(true, true), (false, false), (false, true)] {
            *flag.lock().unwrap() = false;
            let outcome = std::thread::scope(|s| {
                s.spawn(|| {
                    std::thread::sleep(Duration::from_millis(2));
                    *flag.lock().unwrap() = true;
                    if signal {
                        probe.signal("set");
                    }
                    if notify {
                        cv.notify_all();
                    }
                });
                let g = flag.lock().unwrap();
                let set = For::Signal {
                    by: &["set"],
                    bare: false,
                };
                probe
                    .wait(&flag, g, &cv, Wait::new(set, Bound::Forever), |f| !*f)
                    .1
            });
            let expected = if notify {
                Outcome::Got
            } else {
                Outcome::Polled
            };
            assert_eq!(outcome, expected);
        }
        let wakes = lab.wait_graph().wakes();
        assert_eq!((wakes.by_signal, wakes.by_poll.len()), (1, 2));
        let mut report = Report::new("t");
        lab.finish(&mut report);
        assert!(!report.ok, "a lost wake-up fails the lab's check");
    }

    use super::*;
    use rand::Rng;

    #[test]
    fn the_same_seed_and_stream_replay_the_same_draws() {
        let a = Lab::quiet(1.0, 7);
        let b = Lab::quiet(1.0, 7);
        let mut ra = a.rng("Worker-1");
        let mut rb = b.rng("Worker-1");
        let da: Vec<u32> = (0..5).map(|_| ra.random()).collect();
        let db: Vec<u32> = (0..5).map(|_| rb.random()).collect();
        assert_eq!(da, db);
        let mut rc = a.rng("Worker-2");
        assert_ne!(da[0], rc.random::<u32>());
    }

    #[test]
    fn pace_scales_simulated_durations_and_their_text() {
        let lab = Lab::quiet(0.5, 1);
        assert_eq!(lab.scaled(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(lab.simulated(2.0), "1.00 s [2 s at pace 1]");
        assert_eq!(Lab::quiet(1.0, 1).simulated(0.5), "500.0 ms");
    }

    #[test]
    fn spawned_threads_carry_their_names_and_are_recorded() {
        let lab = Lab::quiet(1.0, 1);
        let name = thread::scope(|s| {
            let h = lab.spawn(s, "Worker-A", thread_name).unwrap();
            join(h).unwrap()
        });
        assert_eq!(name, "Worker-A");
        let mut report = Report::new("t");
        lab.finish(&mut report);
        assert_eq!(report.threads.len(), 1);
        assert_eq!(report.threads[0].name, "Worker-A");
        assert!(report.threads[0].finished_ms.is_some());
        assert_eq!(report.params["seed"], 1);
    }

    #[test]
    fn a_panicking_thread_becomes_an_error_naming_it() {
        let lab = Lab::quiet(1.0, 1);
        let err = thread::scope(|s| {
            let h = lab.spawn(s, "Doomed", || panic!("on purpose")).unwrap();
            join(h).unwrap_err()
        });
        assert_eq!(err.to_string(), "Doomed panicked: on purpose");
    }
}
