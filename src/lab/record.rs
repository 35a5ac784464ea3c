//! The recorder: what every thread and every instrumented primitive did, and when.
//!
//! Threads spawned through [`Lab::spawn`](super::Lab::spawn) record when they started and
//! finished. Primitives built with a [`Probe`] (a semaphore named `"permits"`, a lock
//! named `"counter"`) record every wait and every hold as a [`Span`]: which thread, which
//! primitive, waiting or holding, from when to when. That one record feeds the per-thread
//! accounting in the report and, later, timelines, traces and a wait-for graph.
//!
//! A probe that is off ([`Probe::off`]) costs one branch per operation, so a hot loop can
//! carry one without paying for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::waitgraph::{Cycle, SIGNAL_SLICE, WaitGraph, Waiting, next_resource_id};

/// What a thread was doing with a primitive during a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Blocked, wanting the primitive (a lock, a permit, an item, a signal).
    Waiting,
    /// Holding the primitive (a lock or a permit).
    Holding,
    /// Sleeping: simulated work (`Lab::sleep`); the span's primitive is `sleep`.
    Sleeping,
}

/// One interval of one thread's life with one primitive.
#[derive(Debug, Clone)]
pub struct Span {
    /// The thread's name, as shown in the narrative.
    pub thread: Arc<str>,
    /// Which of the recorder's threads (its index in spawn order); `None` for the lab's
    /// main thread and threads the lab did not spawn. Two threads may share a name.
    pub slot: Option<usize>,
    /// The primitive's name, as the demo gave it.
    pub primitive: Arc<str>,
    /// Waiting for it, or holding it.
    pub state: State,
    /// Offset from the demo's start.
    pub start: Duration,
    /// Offset from the demo's start.
    pub end: Duration,
}

/// When a thread started and finished, as offsets from the demo's start.
#[derive(Debug, Clone)]
pub struct ThreadLife {
    /// The name given at spawn.
    pub name: String,
    /// When its closure began.
    pub started: Duration,
    /// When its closure returned or unwound; `None` while it runs (or if it never ends, as a
    /// daemon thread cut off at exit).
    pub finished: Option<Duration>,
}

/// What kind of moment a [`Moment`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MomentKind {
    /// A moment a demo points at (a lost update, a barrier phase, a timer firing).
    Mark,
    /// A narrative line (recorded only when pictures are asked for).
    Narrative,
    /// A primitive signalled: a `put`, a `set`, a notify (a cause a waiter may wake from).
    Signal,
    /// A wait that ended unanswered (timed out, or refused by the deadlock detector): no
    /// signal or release caused its end, so the pictures draw no arrow to it.
    GaveUp,
    /// A wait for a signal that was answered; the text lists the kinds of signal that answer
    /// it (`put close` for a `get`), so the pictures' arrow comes from one of those.
    Answered,
}

/// An instant in one thread's life worth showing.
#[derive(Debug, Clone)]
pub struct Moment {
    /// The thread it happened on.
    pub thread: Arc<str>,
    /// Offset from the demo's start.
    pub at: Duration,
    /// Mark, narrative line or signal.
    pub kind: MomentKind,
    /// The primitive signalled, for a signal.
    pub primitive: Option<Arc<str>>,
    /// What to show.
    pub text: String,
}

/// One value of a quantity that changes (permits available, queue depth, a counter).
#[derive(Debug, Clone)]
pub struct Sample {
    /// The track's name: `permits: available`.
    pub track: Arc<str>,
    /// Offset from the demo's start.
    pub at: Duration,
    /// The value from then on.
    pub value: f64,
}

/// The most moments (marks, narrative lines, signals) a run keeps: 200 000, some 30 MB.
pub const MOST_MOMENTS: usize = 200_000;

/// Everything recorded during one demo run. Shared by the lab and every probe.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    threads: Mutex<Vec<ThreadLife>>,
    spans: Mutex<Vec<Span>>,
    moments: Mutex<Vec<Moment>>,
    samples: Mutex<Vec<Sample>>,
    /// Pictures were asked for: narrative lines and hot primitives are recorded too.
    detail: AtomicBool,
    /// Moments not kept, past [`MOST_MOMENTS`].
    moments_dropped: AtomicUsize,
    /// Every recording probe's live gauges, by primitive name.
    gauges: Mutex<Vec<(Arc<str>, Arc<Gauges>)>>,
    /// The wait-for graph told which threads are the lab's and which have finished.
    graph: Option<Arc<WaitGraph>>,
}

impl Recorder {
    /// A recorder whose offsets count from `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            threads: Mutex::new(Vec::new()),
            spans: Mutex::new(Vec::new()),
            moments: Mutex::new(Vec::new()),
            samples: Mutex::new(Vec::new()),
            detail: AtomicBool::new(false),
            moments_dropped: AtomicUsize::new(0),
            gauges: Mutex::new(Vec::new()),
            graph: None,
        }
    }

    /// Records in detail (for pictures): narrative lines and the primitives a hot loop uses.
    pub fn set_detail(&self, on: bool) {
        self.detail.store(on, Ordering::Relaxed);
        if on {
            DETAIL_ANYWHERE.store(true, Ordering::Relaxed);
        }
    }

    /// Whether pictures were asked for.
    pub fn detail(&self) -> bool {
        self.detail.load(Ordering::Relaxed)
    }

    /// Makes this recorder the current thread's: its simulated sleeps are recorded here.
    /// The lab's main thread calls it; threads spawned through the lab get it at start.
    pub fn adopt_current_thread(self: &Arc<Self>) {
        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(self)));
    }

    /// A moment on the current thread, now.
    pub fn moment(&self, kind: MomentKind, primitive: Option<Arc<str>>, text: String) {
        let m = Moment {
            thread: current_name(),
            at: self.start.elapsed(),
            kind,
            primitive,
            text,
        };
        let mut moments = lock(&self.moments);
        // A bound on memory: a hot loop's marks (race's lost updates) past this are counted,
        // not kept; the narrative and the signals keep their own share.
        if moments.len() < MOST_MOMENTS {
            moments.push(m);
        } else {
            self.moments_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Moments not kept (past [`MOST_MOMENTS`]).
    pub fn moments_dropped(&self) -> usize {
        self.moments_dropped.load(Ordering::Relaxed)
    }

    /// Every moment so far, in the order they were recorded.
    pub fn moments(&self) -> Vec<Moment> {
        lock(&self.moments).clone()
    }

    /// A quantity's new value, now.
    pub fn sample(&self, track: Arc<str>, value: f64) {
        let at = self.start.elapsed();
        lock(&self.samples).push(Sample { track, at, value });
    }

    /// Every sample so far.
    pub fn samples(&self) -> Vec<Sample> {
        lock(&self.samples).clone()
    }

    /// Also tells `graph` when the threads it records start and finish.
    pub fn watched_by(mut self, graph: Arc<WaitGraph>) -> Self {
        self.graph = Some(graph);
        self
    }

    /// The most threads ever waiting for, and holding, a primitive named `name` at once
    /// (over every primitive of that name).
    pub fn most_at_once(&self, name: &str) -> (usize, usize) {
        lock(&self.gauges)
            .iter()
            .filter(|(n, _)| &**n == name)
            .fold((0, 0), |(w, h), (_, g)| {
                (w.max(g.most_waiting()), h.max(g.most_holding()))
            })
    }

    /// The offset of `t` from the demo's start.
    pub fn offset(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// Marks the current thread as started under `name`; the returned guard marks it finished
    /// when dropped, including when the thread unwinds from a panic.
    pub fn thread_started(self: &Arc<Self>, name: &str) -> ThreadGuard {
        let slot = self.reserve(name);
        self.thread_started_at(slot)
    }

    /// Keeps a place for a thread about to be spawned under `name`, so that threads are
    /// listed in spawn order whichever starts running first. Hand the slot to
    /// [`Recorder::thread_started_at`] from the new thread.
    pub fn reserve(&self, name: &str) -> usize {
        super::output::widen_thread_column(name);
        let mut threads = lock(&self.threads);
        threads.push(ThreadLife {
            name: name.to_string(),
            started: self.start.elapsed(),
            finished: None,
        });
        threads.len() - 1
    }

    /// Marks the current thread, reserved as `slot`, as started now.
    pub fn thread_started_at(self: &Arc<Self>, slot: usize) -> ThreadGuard {
        if let Some(g) = &self.graph {
            g.thread_started();
        }
        self.adopt_current_thread();
        SLOT.with(|s| s.set(Some(slot)));
        lock(&self.threads)[slot].started = self.start.elapsed();
        ThreadGuard {
            recorder: Arc::clone(self),
            index: slot,
        }
    }

    /// Every thread's life so far, in spawn order.
    pub fn threads(&self) -> Vec<ThreadLife> {
        lock(&self.threads).clone()
    }

    /// Every primitive span so far, in the order they ended.
    pub fn spans(&self) -> Vec<Span> {
        lock(&self.spans).clone()
    }

    fn push(&self, span: Span) {
        lock(&self.spans).push(span);
    }
}

thread_local! {
    /// The recorder of the lab this thread belongs to, for its simulated sleeps.
    static CURRENT: std::cell::RefCell<Option<Arc<Recorder>>> =
        const { std::cell::RefCell::new(None) };
    /// This thread's place in its recorder's list of threads.
    static SLOT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    /// This thread's narrative name, made once.
    static NAME: std::cell::OnceCell<Arc<str>> = const { std::cell::OnceCell::new() };
}

/// The current thread's lab recorder, if pictures were asked for.
///
/// One relaxed load when no lab in the process asked for pictures: the free functions
/// below sit in hot paths (race's lost updates, a pool's job loop).
fn detailed() -> Option<Arc<Recorder>> {
    if !DETAIL_ANYWHERE.load(Ordering::Relaxed) {
        return None;
    }
    CURRENT.with(|c| c.borrow().clone()).filter(|r| r.detail())
}

/// Set once any lab asks for pictures.
static DETAIL_ANYWHERE: AtomicBool = AtomicBool::new(false);

/// Marks a moment worth pointing at, on the current thread, now: for code that has no `Lab`
/// at hand (a primitive, a demo's helper). `text` is only made when pictures were asked for.
pub fn mark(text: impl FnOnce() -> String) {
    if let Some(r) = detailed() {
        r.moment(MomentKind::Mark, None, text());
    }
}

/// A quantity's new value (`requests in flight`), as a counter track in the pictures.
pub fn count(track: &str, value: f64) {
    if let Some(r) = detailed() {
        r.sample(track.into(), value);
    }
}

/// The current thread's place in its recorder's list of threads, if it has one.
fn current_slot() -> Option<usize> {
    SLOT.with(std::cell::Cell::get)
}

/// The current thread's narrative name, shared (no allocation after the first call).
fn current_name() -> Arc<str> {
    NAME.with(|n| Arc::clone(n.get_or_init(|| super::output::thread_name().into())))
}

/// A sleep or a join in progress on the current thread; recorded as a span when dropped,
/// if the thread belongs to a lab.
pub struct ThreadSpan(Option<(Arc<Recorder>, Instant, State, &'static str)>);

impl ThreadSpan {
    /// A simulated sleep (`Lab::sleep`) starts now.
    pub fn sleep() -> Self {
        Self(
            CURRENT
                .with(|c| c.borrow().clone())
                .map(|r| (r, Instant::now(), State::Sleeping, "sleep")),
        )
    }

    /// A `join` starts now: a wait on the primitive `join`, recorded when pictures were
    /// asked for (the main thread's lane then shows its waits for its threads).
    pub fn join() -> Self {
        Self::waiting_for("join")
    }

    /// A wait on something that is not an instrumented primitive (`network`, a pool's
    /// `jobs`) starts now; recorded when pictures were asked for, so the lane shows the
    /// thread blocked rather than running. One relaxed load when they were not.
    pub fn waiting_for(what: &'static str) -> Self {
        Self(detailed().map(|r| (r, Instant::now(), State::Waiting, what)))
    }
}

impl Drop for ThreadSpan {
    fn drop(&mut self) {
        if let Some((rec, began, state, primitive)) = self.0.take() {
            rec.push(Span {
                thread: current_name(),
                slot: current_slot(),
                primitive: primitive.into(),
                state,
                start: rec.offset(began),
                end: rec.start.elapsed(),
            });
        }
    }
}

/// Marks a recorded thread finished when dropped.
pub struct ThreadGuard {
    recorder: Arc<Recorder>,
    index: usize,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let now = self.recorder.start.elapsed();
        lock(&self.recorder.threads)[self.index].finished = Some(now);
        if let Some(g) = &self.recorder.graph {
            g.thread_finished();
        }
    }
}

/// Live counts one probe keeps: how many wait or hold right now, and the most ever at once.
#[derive(Debug, Default)]
pub struct Gauges {
    waiting: AtomicUsize,
    most_waiting: AtomicUsize,
    holding: AtomicUsize,
    most_holding: AtomicUsize,
}

impl Gauges {
    /// The most threads ever waiting at once.
    pub fn most_waiting(&self) -> usize {
        self.most_waiting.load(Ordering::Relaxed)
    }
    /// The most threads ever holding at once.
    pub fn most_holding(&self) -> usize {
        self.most_holding.load(Ordering::Relaxed)
    }
}

/// The instrumentation a primitive carries: its name and, when on, the recorder it reports to.
#[derive(Debug, Clone)]
pub struct Probe {
    name: Arc<str>,
    sink: Option<(Arc<Recorder>, Arc<Gauges>)>,
    /// The wait-for graph a lock reports holds and waits to, and this primitive's id in it.
    graph: Option<(Arc<WaitGraph>, u64)>,
}

/// How long before a slice ran out a signal may have come and still be the one that woke
/// the waiter (its notify raced the timeout): longer than a signaller holds a primitive's
/// lock between its signal and its notify, far shorter than the detector's slice.
pub const RACE_GRACE: Duration = Duration::from_millis(8);

/// How long a signal wait may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Until signalled (or refused by the deadlock detector).
    Forever,
    /// Until signalled, but never longer than this: a safety bound, not the design, so the
    /// detector treats the wait as unbounded.
    Patience(Duration),
    /// At most this long, by design: the thread runs again whatever happens, so the wait
    /// never counts as stuck.
    Timeout(Duration),
}

/// How a signal wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Woken by a notify (the condition may be true now; a bare wait re-checks it).
    Woken,
    /// The condition was found true only when a slice or the deadline ran out: nobody woke
    /// the waiter (a lost wake-up). The wait succeeds; the lab counts it against its checks.
    Polled,
    /// Its bound ran out.
    TimedOut,
    /// Refused: nobody is left to signal (the stall found).
    Stalled(Box<Cycle>),
}

/// A wait or hold in progress; hand it back to the probe to close the span.
#[derive(Debug)]
#[must_use = "a mark is closed with Probe::waited or Probe::released"]
pub struct Mark(Option<Instant>);

impl Probe {
    /// A probe that records nothing: one branch per operation.
    pub fn off(name: &str) -> Self {
        Self {
            name: name.into(),
            sink: None,
            graph: None,
        }
    }

    /// A probe recording into `recorder` under `name`.
    pub fn on(name: &str, recorder: Arc<Recorder>) -> Self {
        let name: Arc<str> = name.into();
        let gauges = Arc::new(Gauges::default());
        lock(&recorder.gauges).push((Arc::clone(&name), Arc::clone(&gauges)));
        Self {
            name,
            sink: Some((recorder, gauges)),
            graph: None,
        }
    }

    /// Also reports holds and waits to `graph`, whose deadlock detector may refuse a wait
    /// that would close a cycle.
    pub fn with_graph(mut self, graph: Arc<WaitGraph>) -> Self {
        self.graph = Some((graph, next_resource_id()));
        self
    }

    /// The current thread now holds this primitive (for the wait-for graph).
    pub fn graph_holding(&self) {
        if let Some((g, id)) = &self.graph {
            g.holding(*id, &self.name);
        }
    }

    /// The current thread no longer holds this primitive.
    pub fn graph_released(&self) {
        if let Some((g, id)) = &self.graph {
            g.released(*id);
        }
    }

    /// The current thread, which asked at `asked`, is about to block on this primitive
    /// (`timed`: for at most a timeout of the design's). `Err` with the cycle when this wait
    /// would close one and the detector refuses it.
    pub fn graph_waiting(
        &self,
        asked: Instant,
        timed: bool,
    ) -> Result<Option<Waiting>, Box<Cycle>> {
        match &self.graph {
            Some((g, id)) => g.start_waiting(*id, &self.name, asked, timed).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`Probe::graph_waiting`] for a wait that cannot give up: a cycle it closes is
    /// recorded and told, not refused.
    pub fn graph_waiting_unrefusable(&self, asked: Instant) -> Option<Waiting> {
        self.graph
            .as_ref()
            .map(|(g, id)| g.start_waiting_unrefusable(*id, &self.name, asked))
    }

    /// The wait registered by `graph_waiting` is over.
    pub fn graph_waited(&self, waiting: Option<Waiting>) {
        if let (Some((g, _)), Some(w)) = (&self.graph, waiting) {
            g.stop_waiting(w);
        }
    }

    /// The one signal wait: blocks on `cv` (with `guard`'s mutex) while `blocked` holds,
    /// within `bound`, answered by the signals named in `answered_by`. With `bare`, any
    /// wake-up ends the wait (a bare `Condition.wait()`: the caller re-checks, or does not:
    /// the `if` bug); otherwise it waits until `blocked` is false. It records the span, the
    /// wait-for graph's view (a wait nobody is left to answer is refused: `Stalled`) and how
    /// the wait ended: [`Signal::Woken`] when a notify ended it, [`Signal::Polled`] when the
    /// condition was found true only after a slice or the deadline ran out (nobody woke this
    /// thread: a missing notify). Polled waits are counted by the lab for its checks.
    #[allow(clippy::too_many_arguments)]
    pub fn wait_for_signal<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        cv: &Condvar,
        bound: Bound,
        answered_by: &[&str],
        bare: bool,
        mut blocked: impl FnMut(&T) -> bool,
    ) -> (MutexGuard<'a, T>, Signal) {
        let mark = self.waiting();
        let began = Instant::now();
        let (limit, timed) = match bound {
            Bound::Forever => (None, false),
            Bound::Patience(d) => (Some(d), false),
            Bound::Timeout(d) => (Some(d), true),
        };
        let watched = self
            .graph
            .as_ref()
            .map(|(g, id)| (g, g.start_signal_wait(*id, &self.name, timed)));
        let mut seen = None;
        // When the last condvar wait ran out its slice (None: a notify ended it).
        let mut ran_out_at: Option<Instant> = None;
        let outcome = loop {
            if !blocked(&guard) {
                break match ran_out_at {
                    None => Signal::Woken,
                    Some(at) => self.judge_poll(at, answered_by),
                };
            }
            let left = limit.map(|l| l.saturating_sub(began.elapsed()));
            if left.is_some_and(|l| l.is_zero()) {
                break Signal::TimedOut;
            }
            let slice = match (&watched, left) {
                (Some(_), Some(l)) if !timed => l.min(SIGNAL_SLICE),
                (Some(_), None) => SIGNAL_SLICE,
                (_, Some(l)) => l,
                (None, None) => Duration::from_secs(3600),
            };
            let (g, r) = cv
                .wait_timeout(guard, slice)
                .unwrap_or_else(|e| e.into_inner());
            guard = g;
            ran_out_at = r.timed_out().then(Instant::now);
            if ran_out_at.is_none() && bare {
                break Signal::Woken;
            }
            if ran_out_at.is_some()
                && blocked(&guard)
                && let Some((g, _)) = &watched
                && !timed
                && let Some(stall) = g.check_stall(&mut seen)
            {
                break Signal::Stalled(stall);
            }
        };
        if let Some((g, w)) = watched {
            g.stop_waiting(w);
            if matches!(outcome, Signal::Woken | Signal::Polled) {
                g.woke(&self.name, outcome == Signal::Polled);
            }
        }
        match outcome {
            Signal::Woken => {
                self.wait_moment(&mark, MomentKind::Answered, || answered_by.join(" "));
                self.waited(mark);
            }
            Signal::Polled => self.waited(mark),
            Signal::TimedOut | Signal::Stalled(_) => self.gave_up(mark),
        }
        (guard, outcome)
    }

    /// A wait whose slice ran out at `at` found its condition true. A signal that answers
    /// it came just before (within [`RACE_GRACE`]) or after: its notify raced the timeout
    /// (the signaller changed the state under the lock while the slice ran out), and the
    /// wait counts as woken by it. No such signal: the condition came true and stayed so
    /// with nobody waking the waiter, a lost wake-up.
    fn judge_poll(&self, at: Instant, answered_by: &[&str]) -> Signal {
        let last = self
            .graph
            .as_ref()
            .and_then(|(g, id)| g.last_signal(*id, answered_by));
        match last {
            Some(t) if at.saturating_duration_since(t) <= RACE_GRACE => Signal::Woken,
            _ => Signal::Polled,
        }
    }

    /// The current thread signalled this primitive (`put`, `set`, a notify): told to the
    /// deadlock detector (a waiter may be awake now), and a cause a waiter may wake from for
    /// the pictures' arrows (recorded only when they were asked for).
    pub fn signal(&self, what: &str) {
        // The detector: a waiter on this primitive may be awake now (see `lab::waitgraph`).
        if let Some((g, id)) = &self.graph {
            g.signalled(*id);
            g.signal_time(*id, what);
        }
        if let Some((rec, _)) = &self.sink
            && rec.detail()
        {
            rec.moment(
                MomentKind::Signal,
                Some(Arc::clone(&self.name)),
                format!("{what} '{}'", self.name),
            );
        }
    }

    /// A quantity of this primitive changed (`available`, `depth`): a counter track named
    /// `name: what` in the pictures.
    pub fn count(&self, what: &str, value: usize) {
        if let Some((rec, _)) = &self.sink
            && rec.detail()
        {
            rec.sample(format!("{}: {what}", self.name).into(), value as f64);
        }
    }

    /// The primitive's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The live gauges, when recording.
    pub fn gauges(&self) -> Option<&Gauges> {
        self.sink.as_ref().map(|(_, g)| g.as_ref())
    }

    /// The current thread starts waiting. With `-v` the narrative shows it.
    pub fn waiting(&self) -> Mark {
        if self.sink.is_some() {
            tracing::debug!("waiting for '{}'", self.name);
        }
        self.begin(|g| (&g.waiting, &g.most_waiting))
    }

    /// The current thread stopped waiting: it got the primitive (or was woken).
    pub fn waited(&self, mark: Mark) {
        self.narrate_end("woke: done waiting for", &mark);
        self.end(mark, State::Waiting, |g| &g.waiting);
    }

    /// The current thread stopped waiting unanswered: its timeout ran out, or the deadlock
    /// detector refused the wait. Recorded (when pictures are on) so that no arrow is drawn
    /// from an unrelated signal to this wait's end.
    pub fn gave_up(&self, mark: Mark) {
        self.narrate_end("gave up waiting for", &mark);
        self.wait_moment(&mark, MomentKind::GaveUp, || {
            format!("gave up on '{}'", self.name)
        });
        self.end(mark, State::Waiting, |g| &g.waiting);
    }

    /// How a recorded wait ended, kept (when pictures are on) just before its span closes.
    fn wait_moment(&self, mark: &Mark, kind: MomentKind, text: impl FnOnce() -> String) {
        if let Some((rec, _)) = &self.sink
            && rec.detail()
            && mark.0.is_some()
        {
            rec.moment(kind, Some(Arc::clone(&self.name)), text());
        }
    }

    /// The current thread starts holding.
    pub fn holding(&self) -> Mark {
        if self.sink.is_some() {
            tracing::debug!("holding '{}'", self.name);
        }
        self.begin(|g| (&g.holding, &g.most_holding))
    }

    /// The current thread released what it held.
    pub fn released(&self, mark: Mark) {
        self.narrate_end("released", &mark);
        self.end(mark, State::Holding, |g| &g.holding);
    }

    /// The `-v` line that closes a span, with its length when recorded.
    fn narrate_end(&self, what: &str, mark: &Mark) {
        if self.sink.is_some() && tracing::enabled!(tracing::Level::DEBUG) {
            match mark.0 {
                Some(start) => tracing::debug!(
                    "{what} '{}' after {}",
                    self.name,
                    super::units::duration(start.elapsed())
                ),
                None => tracing::debug!("{what} '{}'", self.name),
            }
        }
    }

    fn begin(&self, gauge: impl Fn(&Gauges) -> (&AtomicUsize, &AtomicUsize)) -> Mark {
        let Some((_, gauges)) = &self.sink else {
            return Mark(None);
        };
        let (now, most) = gauge(gauges);
        let n = now.fetch_add(1, Ordering::Relaxed) + 1;
        most.fetch_max(n, Ordering::Relaxed);
        Mark(Some(Instant::now()))
    }

    fn end(&self, mark: Mark, state: State, gauge: impl Fn(&Gauges) -> &AtomicUsize) {
        let (Some((recorder, gauges)), Some(start)) = (&self.sink, mark.0) else {
            return;
        };
        gauge(gauges).fetch_sub(1, Ordering::Relaxed);
        recorder.push(Span {
            thread: current_name(),
            slot: current_slot(),
            primitive: Arc::clone(&self.name),
            state,
            start: recorder.offset(start),
            end: recorder.start.elapsed(),
        });
    }
}

/// Locks a recorder mutex, recovering the data if a panicking thread poisoned it: a record
/// of what happened stays readable even when a demo thread failed.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_that_is_off_records_nothing() {
        let probe = Probe::off("x");
        let m = probe.waiting();
        probe.waited(m);
        assert!(probe.gauges().is_none());
    }

    #[test]
    fn spans_and_gauges_follow_waits_and_holds() {
        let rec = Arc::new(Recorder::new(Instant::now()));
        let probe = Probe::on("permits", Arc::clone(&rec));
        let w = probe.waiting();
        probe.waited(w);
        let h1 = probe.holding();
        let h2 = probe.holding();
        probe.released(h1);
        probe.released(h2);
        let spans = rec.spans();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].state, State::Waiting);
        assert_eq!(&*spans[1].primitive, "permits");
        assert_eq!(probe.gauges().unwrap().most_holding(), 2);
        assert_eq!(probe.gauges().unwrap().most_waiting(), 1);
    }

    #[test]
    fn a_thread_is_marked_finished_even_when_it_panics() {
        let rec = Arc::new(Recorder::new(Instant::now()));
        let r = Arc::clone(&rec);
        let _ = std::thread::spawn(move || {
            let _g = r.thread_started("Doomed");
            panic!("boom");
        })
        .join();
        let t = &rec.threads()[0];
        assert_eq!(t.name, "Doomed");
        assert!(t.finished.is_some());
    }
}
