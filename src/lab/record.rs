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
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::probe::Gauges;
use super::waitgraph::WaitGraph;

/// What a thread was doing with a primitive during a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Blocked, wanting the primitive (a lock, a permit, an item, a signal).
    Waiting,
    /// Holding the primitive (a lock or a permit).
    Holding,
    /// Sleeping: simulated work (`lab::sleep`); the span's primitive is `sleep`.
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
    /// For a wait for a signal: what answers it, so the pictures tell a full queue from an
    /// empty one (one byte: it fits the span's padding, the size race's hot loop records).
    pub waits_for: WaitsFor,
}

/// What a wait for a signal waits for, from the signals that answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitsFor {
    /// Not a wait for a signal, or one of another kind.
    #[default]
    Other,
    /// Room: a `put` on a full queue, answered by a `get` (or a close).
    Room,
    /// An item: a `get` on an empty queue, answered by a `put` (or a close).
    Item,
    /// Every task done: a queue's `join()`, answered by `task_done`.
    TasksDone,
}

impl WaitsFor {
    /// The kind of wait the answering signals (`get close`, `put close`, `task_done`) make.
    pub fn answered_by(by: &[&str]) -> Self {
        match by.first().copied() {
            Some("get") => WaitsFor::Room,
            Some("put") => WaitsFor::Item,
            Some("task_done") => WaitsFor::TasksDone,
            _ => WaitsFor::Other,
        }
    }
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
    /// One step of a lesson's own, on its thread's lane (race's reads and writes): text
    /// `read N` or `wrote N`.
    Step,
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
    pub(super) start: Instant,
    threads: Mutex<Vec<ThreadLife>>,
    spans: Mutex<Vec<Span>>,
    moments: Mutex<Vec<Moment>>,
    samples: Mutex<Vec<Sample>>,
    /// Pictures were asked for: narrative lines and hot primitives are recorded too.
    detail: AtomicBool,
    /// Moments not kept, past [`MOST_MOMENTS`].
    moments_dropped: AtomicUsize,
    /// Every recording probe's live gauges, by primitive name.
    pub(super) gauges: Mutex<Vec<(Arc<str>, Arc<Gauges>)>>,
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
            at: crate::lab::now().saturating_duration_since(self.start),
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
        let at = crate::lab::now().saturating_duration_since(self.start);
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
        super::output::thread_spawned(name);
        let mut threads = lock(&self.threads);
        threads.push(ThreadLife {
            name: name.to_string(),
            started: crate::lab::now().saturating_duration_since(self.start),
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
        lock(&self.threads)[slot].started = crate::lab::now().saturating_duration_since(self.start);
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

    pub(super) fn push(&self, span: Span) {
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
pub(super) fn detailed() -> Option<Arc<Recorder>> {
    if !DETAIL_ANYWHERE.load(Ordering::Relaxed) {
        return None;
    }
    CURRENT.with(|c| c.borrow().clone()).filter(|r| r.detail())
}

/// Whether any lab in the process asked for pictures (one relaxed load).
pub(crate) fn detail_anywhere() -> bool {
    DETAIL_ANYWHERE.load(Ordering::Relaxed)
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

/// A step of the lesson on the current thread (race's `read 3`, `wrote 4`), drawn as a
/// tick on its lane.
pub fn step(text: impl FnOnce() -> String) {
    if let Some(r) = detailed() {
        r.moment(MomentKind::Step, None, text());
    }
}

/// A quantity's new value (`requests in flight`), as a counter track in the pictures.
pub fn count(track: &str, value: f64) {
    if let Some(r) = detailed() {
        r.sample(track.into(), value);
    }
}

/// The wait-for graph of the lab the current thread belongs to, if any.
pub(super) fn current_graph() -> Option<Arc<WaitGraph>> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|r| r.graph.clone()))
}

/// The current thread's place in its recorder's list of threads, if it has one.
pub(super) fn current_slot() -> Option<usize> {
    SLOT.with(std::cell::Cell::get)
}

/// The current thread's narrative name, shared (no allocation after the first call).
pub(super) fn current_name() -> Arc<str> {
    NAME.with(|n| Arc::clone(n.get_or_init(|| super::output::thread_name().into())))
}

/// A wait outside the instrumented primitives, or a simulated sleep, in progress on the
/// current thread; recorded as a span when dropped, if the thread belongs to a lab. Made by
/// the wait protocol only ([`Probe::block`](super::Probe::block)).
pub(super) struct ThreadSpan(Option<(Arc<Recorder>, Instant, State, Arc<str>)>);

impl ThreadSpan {
    /// A simulated sleep starts now: recorded whenever the thread belongs to a lab.
    pub(super) fn sleep(what: &Arc<str>) -> Self {
        Self(
            CURRENT
                .with(|c| c.borrow().clone())
                .map(|r| (r, crate::lab::now(), State::Sleeping, Arc::clone(what))),
        )
    }

    /// A wait on something that is not an instrumented primitive (a thread's end, the
    /// network, a future) starts now; recorded when pictures were asked for, so the lane
    /// shows the thread blocked rather than running. One relaxed load when they were not.
    pub(super) fn waiting_for(what: &Arc<str>) -> Self {
        Self(detailed().map(|r| (r, crate::lab::now(), State::Waiting, Arc::clone(what))))
    }
}

impl Drop for ThreadSpan {
    fn drop(&mut self) {
        if let Some((rec, began, state, primitive)) = self.0.take() {
            rec.push(Span {
                thread: current_name(),
                slot: current_slot(),
                primitive,
                state,
                start: rec.offset(began),
                end: crate::lab::now().saturating_duration_since(rec.start),
                waits_for: WaitsFor::Other,
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
        let now = crate::lab::now().saturating_duration_since(self.recorder.start);
        lock(&self.recorder.threads)[self.index].finished = Some(now);
        if let Some(g) = &self.recorder.graph {
            g.thread_finished();
        }
    }
}

/// Locks a recorder mutex, recovering the data if a panicking thread poisoned it: a record
/// of what happened stays readable even when a demo thread failed.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Race's hot loop records millions of spans: what a wait waits for costs no size.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_span_stays_88_bytes() {
        assert_eq!(std::mem::size_of::<Span>(), 88);
    }

    #[test]
    fn a_thread_is_marked_finished_even_when_it_panics() {
        let rec = Arc::new(Recorder::new(crate::lab::now()));
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
