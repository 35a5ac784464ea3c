//! The one wait protocol, and the hold guard.
//!
//! Every place a lab thread can block goes through a [`Probe`]: [`Probe::wait`] for a wait
//! on a condition variable (a lock, a permit, an item, a signal, a barrier's round), and
//! [`Probe::block`] for a blocking call the lab cannot slice (a std mutex, a thread's end,
//! the network, a future, a simulated sleep). Each is described by a [`Wait`]: *what* it
//! waits for ([`For`]) and *how long* it may ([`Bound`]). The protocol does, in one place
//! and in one order, what every blocking point needs: the `-v` narrative line, the span and
//! the gauges for the pictures, the edge in the wait-for graph (which may refuse a wait that
//! closes a cycle, or find a wait nobody is left to answer), the signal bookkeeping that
//! tells a wake-up from a poll, and the [`Outcome`]. It is also where a scheduler that
//! decides which thread runs next will sit: a blocking point says what it waits for, and
//! the protocol may answer "not yet".
//!
//! Holding is a [`Hold`]: made by [`Probe::hold`] when a thread gets a lock or a permit,
//! it records the hold (span, gauges, wait-for graph) and undoes all of it when dropped.
//!
//! A probe that is off ([`Probe::off`]) records its waits only as thread spans when
//! pictures were asked for, and costs one branch otherwise.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use super::record::{
    MomentKind, Recorder, Span, State, ThreadSpan, current_name, current_slot, lock,
};
use super::waitgraph::{self, Cycle, SIGNAL_SLICE, WaitGraph, Waiting, next_resource_id};

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

/// How long before a slice ran out a signal may have come and still be the one that woke
/// the waiter (its notify raced the timeout): longer than a signaller holds a primitive's
/// lock between its signal and its notify, far shorter than the detector's slice.
pub const RACE_GRACE: Duration = Duration::from_millis(8);

/// How long a wait may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Until it gets what it waits for (or is refused by the deadlock detector).
    Forever,
    /// Until it gets it, but never longer than this: a safety bound, not the design, so the
    /// detector treats the wait as unbounded.
    Patience(Duration),
    /// At most this long, by design: the thread runs again whatever happens, so the wait
    /// never counts as stuck.
    Timeout(Duration),
}

impl Bound {
    /// The longest the wait may last, and whether that is the design (a timeout).
    fn parts(self) -> (Option<Duration>, bool) {
        match self {
            Bound::Forever => (None, false),
            Bound::Patience(d) => (Some(d), false),
            Bound::Timeout(d) => (Some(d), true),
        }
    }
}

/// What a blocking point waits for: the wait-for graph's (and a scheduler's) view of it.
#[derive(Debug, Clone, Copy)]
pub enum For<'s> {
    /// A resource other threads hold (a lock, a permit): an edge to its holders. With
    /// `refusable`, a wait that would close a cycle is refused ([`Outcome::Refused`]);
    /// without (a wait that has no way to give up), the cycle is told and the wait goes on.
    Held {
        /// Whether the detector may refuse the wait.
        refusable: bool,
    },
    /// A signal of this primitive (`put`, `set`, a notify), answered by the signals named in
    /// `by`. With `bare`, any wake-up ends the wait (a bare `Condition.wait()`). A wait
    /// nobody is left to answer is refused ([`Outcome::Refused`] with the stall).
    Signal {
        /// The signals that answer this wait.
        by: &'s [&'s str],
        /// Whether any wake-up ends it.
        bare: bool,
    },
    /// The end of a thread (a join): an edge to that thread.
    Join(ThreadId),
    /// Something outside the lab's primitives: the network, a future, a channel.
    Outside,
    /// Time itself: a simulated sleep (recorded as sleeping, not waiting).
    Time,
}

/// One blocking point: what it waits for, how long it may, and when it asked.
#[derive(Debug, Clone, Copy)]
pub struct Wait<'s> {
    what: For<'s>,
    bound: Bound,
    asked: Instant,
    registered: Option<Registered<'s>>,
}

/// Called once the wait is registered (in the graph, the record): a reported wait's
/// stand-in tells the event intake it may read on (`threadlab py`).
#[derive(Clone, Copy)]
pub struct Registered<'s>(pub &'s (dyn Fn() + Sync));

impl std::fmt::Debug for Registered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registered")
    }
}

impl<'s> Wait<'s> {
    /// A wait for `what` within `bound`, asked now.
    pub fn new(what: For<'s>, bound: Bound) -> Self {
        Self {
            what,
            bound,
            asked: crate::lab::now(),
            registered: None,
        }
    }

    /// The same wait, calling `f` once it is registered (and not if it is refused).
    pub fn when_registered(self, f: &'s (dyn Fn() + Sync)) -> Self {
        Self {
            registered: Some(Registered(f)),
            ..self
        }
    }

    /// The signals that answer this wait (none unless it waits for a signal).
    fn answered_by(&self) -> &'s [&'s str] {
        match self.what {
            For::Signal { by, .. } => by,
            _ => &[],
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It got what it waited for: the resource is free, or a notify woke it (a bare wait
    /// re-checks its condition).
    Got,
    /// The condition was found true only when a slice or the deadline ran out: nobody woke
    /// the waiter (a lost wake-up). The wait succeeds; the lab counts it against its checks.
    Polled,
    /// Its bound ran out.
    TimedOut,
    /// The deadlock detector refused it: it would close a cycle, or nobody is left to
    /// answer it (a stall).
    Refused(Box<Cycle>),
}

/// A wait or hold in progress: when it began, if recorded.
#[derive(Debug)]
struct Mark(Option<Instant>);

/// The instrumentation a primitive carries: its name and, when on, the recorder and the
/// wait-for graph it reports to.
#[derive(Debug, Clone)]
pub struct Probe {
    name: Arc<str>,
    /// This primitive's id, for the scheduler (what its waiters wait for).
    key: u64,
    sink: Option<(Arc<Recorder>, Arc<Gauges>)>,
    /// The wait-for graph this primitive's holds and waits go to, and its id there.
    graph: Option<(Arc<WaitGraph>, u64)>,
}

impl Probe {
    /// A probe that records nothing but thread spans for pictures: one branch per operation.
    pub fn off(name: &str) -> Self {
        Self {
            name: name.into(),
            key: next_resource_id(),
            sink: None,
            graph: None,
        }
    }

    /// A probe recording into `recorder` (spans, gauges), and telling `graph` its waits and
    /// holds, when given. The lab makes these (`Lab::probe`).
    pub(crate) fn on(
        name: &str,
        recorder: Option<Arc<Recorder>>,
        graph: Option<Arc<WaitGraph>>,
    ) -> Self {
        let name: Arc<str> = name.into();
        let sink = recorder.map(|recorder| {
            let gauges = Arc::new(Gauges::default());
            lock(&recorder.gauges).push((Arc::clone(&name), Arc::clone(&gauges)));
            (recorder, gauges)
        });
        let key = next_resource_id();
        Self {
            name,
            key,
            sink,
            graph: graph.map(|g| (g, key)),
        }
    }

    /// This primitive's id in a scheduled run: what its waiters wait for, what its
    /// signals and releases wake.
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// The primitive's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether waits and holds are recorded as spans (a hot primitive skips the protocol
    /// entirely when not).
    pub fn recording(&self) -> bool {
        self.sink.is_some()
    }

    /// The one condition-variable wait: blocks on `cv` (with `guard`'s mutex) while
    /// `blocked` holds, as `wait` says. A wait that finds nothing to wait for returns at
    /// once and is not recorded. Otherwise the wait is narrated, recorded, shown to the
    /// wait-for graph (waits on a signal in slices, so that one nobody is left to answer is
    /// found), and judged: [`Outcome::Got`] when a notify ended it, [`Outcome::Polled`] when
    /// the condition of a signal wait was found true only after a slice ran out.
    /// In a scheduled run (`lab::sched`) the wait is the scheduler's instead: `guard`'s lock
    /// (`mutex`) is released while this thread is not runnable, and taken again when it is.
    pub fn wait<'a, T>(
        &self,
        mutex: &'a Mutex<T>,
        guard: MutexGuard<'a, T>,
        cv: &Condvar,
        wait: Wait<'_>,
        mut blocked: impl FnMut(&T) -> bool,
    ) -> (MutexGuard<'a, T>, Outcome) {
        if !blocked(&guard) {
            return (guard, Outcome::Got);
        }
        let session = match self.begin(&wait) {
            Ok(session) => session,
            Err(cycle) => return (guard, Outcome::Refused(cycle)),
        };
        if let Some(Registered(f)) = wait.registered {
            f();
        }
        let (guard, outcome) = match super::sched::current() {
            Some(turn) => self.park_scheduled(&turn, mutex, guard, &wait, blocked),
            None => self.park(guard, cv, &wait, &session, blocked),
        };
        self.end(session, &wait, &outcome);
        (guard, outcome)
    }

    /// The one blocking call the lab cannot slice (`op`: a std mutex's lock, a thread's
    /// join, a request, a future's result, a sleep), recorded and shown to the wait-for
    /// graph as `wait` says. A wait for a held resource here cannot be refused.
    pub fn block<R>(&self, wait: Wait<'_>, op: impl FnOnce() -> R) -> R {
        let wait = match wait.what {
            For::Held { .. } => Wait {
                what: For::Held { refusable: false },
                ..wait
            },
            _ => wait,
        };
        let Ok(session) = self.begin(&wait) else {
            unreachable!("a wait that cannot be refused is registered whatever is found")
        };
        let result = op();
        self.end(session, &wait, &Outcome::Got);
        result
    }

    /// The current thread now holds this primitive (a lock, a permit): recorded until the
    /// returned guard is dropped. The guard borrows the probe; a primitive that keeps the
    /// hold in its own state takes [`Hold::owned`].
    pub fn hold(&self) -> Hold<'_> {
        if let Some((g, id)) = &self.graph {
            g.holding(*id, &self.name);
        }
        if self.sink.is_some() {
            tracing::debug!("holding '{}'", self.name);
        }
        Hold {
            mark: self.begin_gauge(|g| (&g.holding, &g.most_holding)),
            probe: Cow::Borrowed(self),
            moved: false,
        }
    }

    /// The current thread signalled this primitive (`put`, `set`, a notify): told to the
    /// deadlock detector (a waiter may be awake now; a wait that ends after it was answered),
    /// and a cause a waiter may wake from for the pictures' arrows.
    pub fn signal(&self, what: &str) {
        if let Some(turn) = super::sched::current() {
            turn.wake(self.key);
        }
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
}

/// A wait in progress: its record, and its place in the wait-for graph.
struct Session {
    mark: Mark,
    span: Option<ThreadSpan>,
    edge: Edge,
}

/// A wait's place in the wait-for graph.
enum Edge {
    None,
    /// A wait for a resource or a signal: ended with `stop_waiting`.
    Graph(Arc<WaitGraph>, Waiting),
    /// A join: ended when dropped.
    Join(#[allow(dead_code)] waitgraph::JoinGuard),
}

impl Probe {
    /// Starts a wait: the narrative, the span, the graph's edge. `Err` with the cycle when
    /// the graph refuses it (the wait is then over, recorded as given up).
    fn begin(&self, wait: &Wait<'_>) -> Result<Session, Box<Cycle>> {
        let (_, timed) = wait.bound.parts();
        if self.sink.is_some() && !matches!(wait.what, For::Time) {
            tracing::debug!("waiting for '{}'", self.name);
        }
        let mark = self.begin_gauge(|g| (&g.waiting, &g.most_waiting));
        let span = match (self.sink.is_some(), wait.what) {
            (false, For::Time) => Some(ThreadSpan::sleep(&self.name)),
            (false, _) => Some(ThreadSpan::waiting_for(&self.name)),
            (true, _) => None,
        };
        let graph = self.graph.as_ref();
        let edge = match (wait.what, graph) {
            (For::Held { refusable: true }, Some((g, id))) => {
                match g.start_waiting(*id, &self.name, wait.asked, timed) {
                    Ok(w) => Edge::Graph(Arc::clone(g), w),
                    Err(cycle) => {
                        self.end_mark(mark, wait, &Outcome::Refused(cycle.clone()));
                        return Err(cycle);
                    }
                }
            }
            (For::Held { refusable: false }, Some((g, id))) => Edge::Graph(
                Arc::clone(g),
                g.start_waiting_unrefusable(*id, &self.name, wait.asked),
            ),
            (For::Signal { .. }, Some((g, id))) => {
                Edge::Graph(Arc::clone(g), g.start_signal_wait(*id, &self.name, timed))
            }
            (For::Join(target), _) => match super::record::current_graph() {
                Some(g) => Edge::Join(g.joining(target)),
                None => Edge::None,
            },
            _ => Edge::None,
        };
        Ok(Session { mark, span, edge })
    }

    /// Blocks on `cv` until `blocked` is false or the wait ends otherwise.
    fn park<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        cv: &Condvar,
        wait: &Wait<'_>,
        session: &Session,
        mut blocked: impl FnMut(&T) -> bool,
    ) -> (MutexGuard<'a, T>, Outcome) {
        let (limit, timed) = wait.bound.parts();
        let (signal, bare) = match wait.what {
            For::Signal { bare, .. } => (true, bare),
            _ => (false, false),
        };
        // A signal wait is watched in slices for a stall; a lock wait's cycle was judged
        // when it began.
        let watched = match &session.edge {
            Edge::Graph(g, _) if signal && !timed => Some(g),
            _ => None,
        };
        let began = crate::lab::now();
        let mut seen = None;
        // When the last condvar wait ran out its slice (None: a notify ended it).
        let mut ran_out_at: Option<Instant> = None;
        let outcome = loop {
            if !blocked(&guard) {
                break match ran_out_at {
                    Some(at) if signal => self.judge_poll(at, wait.answered_by()),
                    _ => Outcome::Got,
                };
            }
            let left =
                limit.map(|l| l.saturating_sub(crate::lab::now().saturating_duration_since(began)));
            if left.is_some_and(|l| l.is_zero()) {
                break Outcome::TimedOut;
            }
            let slice = match (watched, left) {
                (Some(_), Some(l)) => l.min(SIGNAL_SLICE),
                (Some(_), None) => SIGNAL_SLICE,
                (None, Some(l)) => l,
                (None, None) => Duration::from_secs(3600),
            };
            let (g, r) = cv
                .wait_timeout(guard, slice)
                .unwrap_or_else(|e| e.into_inner());
            guard = g;
            ran_out_at = r.timed_out().then(super::now);
            if ran_out_at.is_none() && bare {
                break Outcome::Got;
            }
            if ran_out_at.is_some()
                && blocked(&guard)
                && let Some(g) = watched
                && let Some(stall) = g.check_stall(&mut seen)
            {
                break Outcome::Refused(stall);
            }
        };
        (guard, outcome)
    }

    /// [`Probe::park`] in a scheduled run: not runnable until this primitive is signalled
    /// or released (or the wait's virtual deadline comes), the lock released meanwhile.
    fn park_scheduled<'a, T>(
        &self,
        turn: &super::sched::Turn,
        mutex: &'a Mutex<T>,
        mut guard: MutexGuard<'a, T>,
        wait: &Wait<'_>,
        mut blocked: impl FnMut(&T) -> bool,
    ) -> (MutexGuard<'a, T>, Outcome) {
        let within = match wait.bound {
            Bound::Timeout(d) => Some(d.as_micros() as u64),
            Bound::Forever | Bound::Patience(_) => None,
        };
        let relock = || mutex.lock().unwrap_or_else(|e| e.into_inner());
        // A bare wait (Python's `if` around `wait()`) ends at the first wake-up, as on the
        // OS's schedule: what it finds then is the caller's to judge.
        let bare = matches!(wait.what, For::Signal { bare: true, .. });
        while blocked(&guard) {
            drop(guard);
            let woke = turn.block_on(self.key, within);
            guard = relock();
            match woke {
                Ok(super::sched::Woke::Woken) if bare => break,
                Ok(super::sched::Woke::Woken) => {}
                Ok(super::sched::Woke::TimedOut) if blocked(&guard) => {
                    return (guard, Outcome::TimedOut);
                }
                Ok(super::sched::Woke::TimedOut) => break,
                Err(super::sched::Abort) => return (guard, Outcome::Refused(self.stall())),
            }
        }
        (guard, Outcome::Got)
    }

    /// The stall the scheduler found (every thread waits, this one its victim), as the
    /// wait-for graph tells it (it looks twice, as a slice's poll would); this wait alone
    /// when the primitive has no graph.
    fn stall(&self) -> Box<Cycle> {
        let found = self.graph.as_ref().and_then(|(g, _)| {
            let mut seen = None;
            g.check_stall(&mut seen)
                .or_else(|| g.check_stall(&mut seen))
        });
        found.unwrap_or_else(|| {
            Box::new(Cycle::stall_of(super::thread_name(), self.name.to_string()))
        })
    }

    /// A wait whose slice ran out at `at` found its condition true. A signal that answers
    /// it came just before (within [`RACE_GRACE`]) or after: its notify raced the timeout
    /// (the signaller changed the state under the lock while the slice ran out), and the
    /// wait counts as woken by it. No such signal: the condition came true and stayed so
    /// with nobody waking the waiter, a lost wake-up.
    fn judge_poll(&self, at: Instant, answered_by: &[&str]) -> Outcome {
        let last = self
            .graph
            .as_ref()
            .and_then(|(g, id)| g.last_signal(*id, answered_by));
        match last {
            Some(t) if at.saturating_duration_since(t) <= RACE_GRACE => Outcome::Got,
            _ => Outcome::Polled,
        }
    }

    /// Ends a wait: the graph's edge (and, for a signal wait, how it woke), then the record.
    fn end(&self, session: Session, wait: &Wait<'_>, outcome: &Outcome) {
        let Session { mark, span, edge } = session;
        if let Edge::Graph(g, w) = edge {
            g.stop_waiting(w);
            if matches!(wait.what, For::Signal { .. })
                && matches!(outcome, Outcome::Got | Outcome::Polled)
            {
                g.woke(&self.name, *outcome == Outcome::Polled);
            }
        }
        drop(span);
        self.end_mark(mark, wait, outcome);
    }

    /// The narrative line, the moment (for the pictures' arrows) and the span of a wait.
    fn end_mark(&self, mark: Mark, wait: &Wait<'_>, outcome: &Outcome) {
        let gave_up = matches!(outcome, Outcome::TimedOut | Outcome::Refused(_));
        let answered = matches!(wait.what, For::Signal { .. }) && *outcome == Outcome::Got;
        if gave_up {
            self.narrate_end("gave up waiting for", &mark);
            // Recorded so that no arrow is drawn from an unrelated signal to this wait's end.
            self.wait_moment(&mark, MomentKind::GaveUp, || {
                format!("gave up on '{}'", self.name)
            });
        } else {
            if answered {
                self.wait_moment(&mark, MomentKind::Answered, || wait.answered_by().join(" "));
            }
            self.narrate_end("woke: done waiting for", &mark);
        }
        let waits_for = crate::lab::record::WaitsFor::answered_by(wait.answered_by());
        self.end_span(mark, State::Waiting, |g| &g.waiting, waits_for);
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

    /// The `-v` line that closes a span, with its length when recorded.
    fn narrate_end(&self, what: &str, mark: &Mark) {
        if self.sink.is_some() && tracing::enabled!(tracing::Level::DEBUG) {
            match mark.0 {
                Some(start) => tracing::debug!(
                    "{what} '{}' after {}",
                    self.name,
                    super::units::duration(crate::lab::now().saturating_duration_since(start))
                ),
                None => tracing::debug!("{what} '{}'", self.name),
            }
        }
    }

    fn begin_gauge(&self, gauge: impl Fn(&Gauges) -> (&AtomicUsize, &AtomicUsize)) -> Mark {
        let Some((_, gauges)) = &self.sink else {
            return Mark(None);
        };
        let (now, most) = gauge(gauges);
        let n = now.fetch_add(1, Ordering::Relaxed) + 1;
        most.fetch_max(n, Ordering::Relaxed);
        Mark(Some(crate::lab::now()))
    }

    fn end_gauge(&self, mark: Mark, state: State, gauge: impl Fn(&Gauges) -> &AtomicUsize) {
        self.end_span(mark, state, gauge, crate::lab::record::WaitsFor::Other);
    }

    fn end_span(
        &self,
        mark: Mark,
        state: State,
        gauge: impl Fn(&Gauges) -> &AtomicUsize,
        waits_for: crate::lab::record::WaitsFor,
    ) {
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
            end: crate::lab::now().saturating_duration_since(recorder.start),
            waits_for,
        });
    }
}

/// A primitive held by the current thread (a lock, a permit): the hold's span, gauges and
/// place in the wait-for graph, all undone when dropped.
#[derive(Debug)]
#[must_use = "the hold ends when this guard is dropped"]
pub struct Hold<'p> {
    probe: Cow<'p, Probe>,
    mark: Mark,
    /// Handed on to another guard (`owned`): this one ends nothing.
    moved: bool,
}

impl Hold<'_> {
    /// The same hold, owning its probe (a clone), for a primitive that keeps it in its own
    /// state (an `RLock`'s owner, a semaphore's permits).
    pub fn owned(mut self) -> Hold<'static> {
        self.moved = true;
        Hold {
            probe: Cow::Owned(self.probe.clone().into_owned()),
            mark: Mark(self.mark.0.take()),
            moved: false,
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if self.moved {
            return;
        }
        let probe = &self.probe;
        if let Some(turn) = super::sched::current() {
            turn.wake(probe.key);
        }
        if let Some((g, id)) = &probe.graph {
            g.released(*id);
        }
        probe.narrate_end("released", &self.mark);
        let mark = Mark(self.mark.0.take());
        probe.end_gauge(mark, State::Holding, |g| &g.holding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_that_is_off_records_nothing() {
        let probe = Probe::off("x");
        let _held = probe.hold();
        assert!(!probe.recording());
        assert!(probe.sink.is_none());
    }

    #[test]
    fn spans_and_gauges_follow_waits_and_holds() {
        let rec = Arc::new(Recorder::new(crate::lab::now()));
        let probe = Probe::on("permits", Some(Arc::clone(&rec)), None);
        let m = std::sync::Mutex::new(true);
        let cv = Condvar::new();
        let wait = Wait::new(
            For::Held { refusable: true },
            Bound::Timeout(Duration::ZERO),
        );
        let (_guard, outcome) = probe.wait(&m, m.lock().unwrap(), &cv, wait, |b| *b);
        assert_eq!(outcome, Outcome::TimedOut);
        let h1 = probe.hold();
        let h2 = probe.hold();
        drop(h1);
        drop(h2);
        let spans = rec.spans();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].state, State::Waiting);
        assert_eq!(&*spans[1].primitive, "permits");
        let gauges = &probe.sink.as_ref().unwrap().1;
        assert_eq!(gauges.most_holding(), 2);
        assert_eq!(gauges.most_waiting(), 1);
    }

    #[test]
    fn a_wait_that_finds_nothing_to_wait_for_is_not_recorded() {
        let rec = Arc::new(Recorder::new(crate::lab::now()));
        let probe = Probe::on("q", Some(Arc::clone(&rec)), None);
        let m = std::sync::Mutex::new(false);
        let wait = Wait::new(For::Held { refusable: true }, Bound::Forever);
        let (_guard, outcome) = probe.wait(&m, m.lock().unwrap(), &Condvar::new(), wait, |b| *b);
        assert_eq!(outcome, Outcome::Got);
        assert!(rec.spans().is_empty());
    }
}
