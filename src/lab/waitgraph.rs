//! The wait-for graph: which thread holds which lock, which thread waits for which, and the
//! deadlock detector that watches it.
//!
//! Every lock built with a lab's probe (`Lock`, `RLock`) reports here when a thread starts
//! holding it, stops holding it, starts waiting for it and stops waiting. A deadlock is a
//! cycle: Teller-1 waits for 'account-B', held by Teller-2, who waits for 'account-A', held
//! by Teller-1. Such a cycle can only close when a thread *starts* waiting (every thread in
//! it is waiting, and the last one to begin closes it), so the check runs right there, in
//! the thread about to block: a cycle is found the instant it forms, at no cost while none
//! does, and without any watcher thread.
//!
//! What then depends on the [`Policy`]: [`Policy::Break`] (the default) refuses that wait,
//! as a database aborts one transaction of a deadlock: the thread that closed the cycle is
//! the victim; its acquire returns an error, it releases what it holds and the others go
//! on. [`Policy::Observe`] only records the cycle (for waits that will time out on their
//! own).
//!
//! A deadlock needs no lock: a consumer waiting for an item the producer will never send
//! (it left without closing the queue), an event nobody is left to set. Such a wait has no
//! holder, so it closes no cycle; it is hopeless when every other thread of the lab is
//! finished or stuck itself (waiting for such a signal, for a lock whose holders are all
//! stuck, or to join a stuck thread): a *stall*. A signal wait checks for one every
//! [`SIGNAL_SLICE`] while it waits, and refuses itself (the victim) once the same stall has
//! stood, with nothing in the graph changing, for a whole slice: a thread that was woken but
//! has not yet said so cannot be mistaken for a stuck one. Waits that end by a timeout of
//! their own are never stuck, and a thread the lab knows nothing of is never counted stuck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use serde::Serialize;

/// What the detector does with a cycle it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Refuse the wait that closed the cycle: that thread is the victim.
    Break,
    /// Record the cycle and let the wait go on (its timeout will end it).
    Observe,
}

/// What kind of deadlock a [`Cycle`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Threads waiting for each other's locks in a ring.
    Cycle,
    /// Waits for a signal (an item, an event) that no thread is left to give.
    Stall,
}

/// What one thread of a deadlock waits for: typed, shown (and serialized) as the primitive's
/// name, or `join(T)` for a join of thread T.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    /// A lock or a permit (a primitive with holders).
    Lock(String),
    /// A signal of a primitive (an item, an event, a notify).
    Signal(String),
    /// The end of the named thread.
    Join(String),
}

impl Waited {
    /// The primitive's name, or `None` for a join.
    pub fn primitive(&self) -> Option<&str> {
        match self {
            Waited::Lock(n) | Waited::Signal(n) => Some(n),
            Waited::Join(_) => None,
        }
    }
}

impl std::fmt::Display for Waited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waited::Lock(n) | Waited::Signal(n) => f.write_str(n),
            Waited::Join(t) => write!(f, "join({t})"),
        }
    }
}

impl Serialize for Waited {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl PartialEq<String> for Waited {
    fn eq(&self, other: &String) -> bool {
        self.primitive() == Some(other.as_str())
    }
}

/// A deadlock found. For a cycle, `threads[i]` waits for `locks[i]`, which `threads[i + 1]`
/// holds (the last lock is held by the first thread). For a stall, `threads[i]` waits for
/// `locks[i]` (a signal, a lock, or `join(T)`), and nobody outside them can end any of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cycle {
    /// A ring of lock waits, or a stall.
    pub kind: Kind,
    /// The threads in the cycle, the one whose wait closed it first.
    pub threads: Vec<String>,
    /// `locks[i]` is what `threads[i]` waits for.
    pub locks: Vec<Waited>,
    /// The thread whose wait was refused (`None` when only observed).
    pub victim: Option<String>,
    /// When the cycle closed, ms from the demo's start.
    pub at_ms: f64,
    /// From the victim's call to acquire to the detector's answer, µs (for a stall: from
    /// the last change in the graph, when it became hopeless, to the answer).
    pub detect_us: f64,
    /// For a stall: the lab's threads that had already finished (none of them can signal).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<String>,
}

// The times are never NaN: they come from `Instant` differences.
impl Eq for Cycle {}

impl Cycle {
    /// A stall found by the scheduler of a scheduled run: `thread` waits for `what` and no
    /// thread is left that can run.
    pub fn stall_of(thread: String, what: String) -> Self {
        Self {
            kind: Kind::Stall,
            threads: vec![thread.clone()],
            locks: vec![Waited::Signal(what)],
            victim: Some(thread),
            at_ms: 0.0,
            detect_us: 0.0,
            finished: Vec::new(),
        }
    }

    /// One sentence per thread: "Teller-1 holds 'account-A' and waits for 'account-B'"; for
    /// a stall, what each waits for and why nobody can end it.
    pub fn story(&self) -> Vec<String> {
        let n = self.threads.len();
        if self.kind == Kind::Stall {
            let mut lines: Vec<String> = (0..n)
                .map(|i| match &self.locks[i] {
                    Waited::Join(who) => format!("{} waits to join {who}", self.threads[i]),
                    what => format!("{} waits for '{what}'", self.threads[i]),
                })
                .collect();
            lines.push(match self.finished.last() {
                None => "every other thread waits too: nobody is left to end these waits".into(),
                Some(last) => {
                    format!("nobody left to signal: the rest finished (last: {last}) or wait")
                }
            });
            return lines;
        }
        (0..n)
            .map(|i| {
                let held = &self.locks[(i + n - 1) % n];
                format!(
                    "{} holds '{held}' and waits for '{}'",
                    self.threads[i], self.locks[i]
                )
            })
            .collect()
    }

    /// Whether this cycle is exactly `claims`: (thread, what it said it holds, what it said
    /// it wants), one per thread in the cycle. A demo checks the detector against what its
    /// threads said, not against the detector's own record.
    pub fn matches(&self, claims: &[(String, String, String)]) -> bool {
        let n = self.threads.len();
        n == claims.len()
            && (0..n).all(|i| {
                let held = &self.locks[(i + n - 1) % n];
                claims
                    .iter()
                    .any(|(t, h, w)| *t == self.threads[i] && *held == *h && self.locks[i] == *w)
            })
    }

    /// What `thread` waits for in this deadlock, if it is in it.
    pub fn waits_for(&self, thread: &str) -> Option<&Waited> {
        let i = self.threads.iter().position(|t| t == thread)?;
        Some(&self.locks[i])
    }

    /// The cycle drawn on one line: `Teller-2 ─waits→ 'account-A' ─held by→ Teller-1 …`;
    /// a stall as its chain of waits ending in nobody.
    pub fn drawing(&self) -> String {
        if self.kind == Kind::Stall {
            let waits: Vec<String> = self
                .threads
                .iter()
                .zip(&self.locks)
                .map(|(t, l)| format!("{t} ─waits→ {l}"))
                .collect();
            return format!("{} ─signalled by→ nobody", waits.join(" · "));
        }
        let mut out = String::new();
        for (t, l) in self.threads.iter().zip(&self.locks) {
            out.push_str(&format!("{t} ─waits→ '{l}' ─held by→ "));
        }
        out.push_str(self.threads.first().map_or("", String::as_str));
        out
    }
}

/// A unique id for each instrumented primitive (probes of one primitive share it).
pub fn next_resource_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a thread is waiting for.
#[derive(Debug, Clone, Copy)]
struct Wait {
    resource: u64,
    /// Ends by a timeout of its own design: the thread will run again whatever happens.
    timed: bool,
    /// A wait with no holder (an item, an event): only another thread's signal ends it.
    signal: bool,
    /// The generation at which the waiter last saw its condition false (it registered, or
    /// a slice ran out with the condition still false). A signal of its resource after
    /// that may have woken it: until it looks again it is not counted stuck.
    since: u64,
}

#[derive(Debug)]
struct Graph {
    /// Resource → the threads holding it.
    holders: HashMap<u64, Vec<ThreadId>>,
    /// Thread → what it waits for.
    waits: HashMap<ThreadId, Wait>,
    /// Display names.
    threads: HashMap<ThreadId, String>,
    resources: HashMap<u64, String>,
    /// The lab's threads that are running (spawned through the lab, and its main thread).
    live: Vec<ThreadId>,
    /// The lab's threads that have finished, in the order they did.
    finished: Vec<(ThreadId, String)>,
    /// Bumped on every change; a stall is believed only if it stood through a slice unchanged.
    generation: u64,
    /// When the last change happened.
    changed_at: Instant,
    /// Resource → the generation of its last signal (`put`, `set`, a release).
    signalled: HashMap<u64, u64>,
    /// Thread → the thread it is joining (through `lab::join`).
    joins: HashMap<ThreadId, ThreadId>,
    /// Stand-ins for another program's threads (`threadlab py`): they cannot look at the
    /// program's state themselves, so a slice does not count as their looking again; the
    /// program says when its thread looked ([`WaitGraph::looked_again`]).
    reported: Vec<ThreadId>,
}

impl Graph {
    fn new(start: Instant) -> Self {
        Self {
            holders: HashMap::new(),
            waits: HashMap::new(),
            threads: HashMap::new(),
            resources: HashMap::new(),
            live: Vec::new(),
            finished: Vec::new(),
            signalled: HashMap::new(),
            joins: HashMap::new(),
            reported: Vec::new(),
            generation: 0,
            changed_at: start,
        }
    }

    fn touch(&mut self) {
        self.generation += 1;
        self.changed_at = crate::lab::now();
    }

    /// `me` starts waiting for `resource` (having just seen its condition false).
    fn begin_wait(&mut self, me: ThreadId, resource: u64, timed: bool, signal: bool) {
        let since = self.generation;
        self.waits.insert(
            me,
            Wait {
                resource,
                timed,
                signal,
                since,
            },
        );
        self.touch();
    }

    /// What resource `t` waits for, if any.
    fn waits_on(&self, t: &ThreadId) -> Option<u64> {
        self.waits.get(t).map(|w| w.resource)
    }

    /// Remembers the display names of the current thread and of `resource`.
    fn name(&mut self, me: ThreadId, resource: u64, name: &str) {
        self.resources
            .entry(resource)
            .or_insert_with(|| name.to_string());
        self.threads.entry(me).or_insert_with(super::thread_name);
    }
}

/// One lab's wait-for graph and the cycles found in it.
#[derive(Debug)]
pub struct WaitGraph {
    start: Instant,
    policy: Mutex<Policy>,
    /// When the policy last changed, ms from the start: cycles observed since are one run's.
    observing_since: Mutex<f64>,
    graph: Mutex<Graph>,
    found: Mutex<Vec<Cycle>>,
    wakes: Mutex<Wakes>,
    /// When each primitive last gave each kind of signal (`put`, `set`, …).
    signal_times: Mutex<std::collections::HashMap<(u64, String), Instant>>,
}

/// How the signal waits of a run ended: by the signal they waited for, or found over by a
/// poll (a slice or the deadline ran out and the condition already held: nobody woke the
/// waiter). A poll keeps the detector honest; it must never stand in for a wake-up.
#[derive(Debug, Default, Clone)]
pub struct Wakes {
    /// Waits a signal ended.
    pub by_signal: usize,
    /// Waits that ended only by a poll: "thread waiting for 'primitive'", in order.
    pub by_poll: Vec<String>,
}

/// A wait in progress; hand it back with [`WaitGraph::stop_waiting`].
#[derive(Debug)]
#[must_use]
pub struct Waiting(ThreadId);

impl WaitGraph {
    /// An empty graph for a demo that started at `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            policy: Mutex::new(Policy::Break),
            observing_since: Mutex::new(0.0),
            graph: Mutex::new(Graph::new(start)),
            found: Mutex::new(Vec::new()),
            wakes: Mutex::new(Wakes::default()),
            signal_times: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// `resource` gave a signal of kind `what` now.
    pub fn signal_time(&self, resource: u64, what: &str) {
        crate::sync::lock(&self.signal_times)
            .insert((resource, what.to_string()), crate::lab::now());
    }

    /// When `resource` last gave a signal of one of these kinds, if ever.
    pub fn last_signal(&self, resource: u64, kinds: &[&str]) -> Option<Instant> {
        let times = crate::sync::lock(&self.signal_times);
        kinds
            .iter()
            .filter_map(|k| times.get(&(resource, (*k).to_string())).copied())
            .max()
    }

    /// A signal wait on `primitive` ended with its condition true: woken by a signal, or
    /// found so only by a poll (`by_poll`).
    pub fn woke(&self, primitive: &str, by_poll: bool) {
        let mut w = crate::sync::lock(&self.wakes);
        if by_poll {
            w.by_poll.push(format!(
                "{} waiting for '{primitive}'",
                super::thread_name()
            ));
        } else {
            w.by_signal += 1;
        }
    }

    /// How this run's signal waits ended.
    pub fn wakes(&self) -> Wakes {
        crate::sync::lock(&self.wakes).clone()
    }

    /// Sets what happens when a cycle is found (from now on).
    pub fn set_policy(&self, policy: Policy) {
        *crate::sync::lock(&self.policy) = policy;
        *crate::sync::lock(&self.observing_since) =
            super::units::ms(crate::lab::now().saturating_duration_since(self.start));
    }

    /// Every cycle found so far.
    pub fn cycles(&self) -> Vec<Cycle> {
        crate::sync::lock(&self.found).clone()
    }

    /// The current thread now holds `resource`.
    pub fn holding(&self, resource: u64, name: &str) {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        g.name(me, resource, name);
        g.holders.entry(resource).or_default().push(me);
        g.touch();
    }

    /// The current thread no longer holds `resource` (for a semaphore: one permit came back).
    pub fn released(&self, resource: u64) {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        if let Some(hs) = g.holders.get_mut(&resource) {
            // A semaphore's permit may come back from another thread than took it: then
            // the oldest holder's entry goes (the permit count stays right).
            let i = hs.iter().position(|t| *t == me).unwrap_or(0);
            if i < hs.len() {
                hs.remove(i);
            }
            if hs.is_empty() {
                g.holders.remove(&resource);
            }
        }
        g.touch();
    }

    /// The current thread is about to block on `resource`, asked for at `asked`. Returns
    /// the cycle as an error if this wait would close one and the policy is `Break` (the
    /// wait must not happen); otherwise the wait is registered.
    /// `timed`: the wait ends by a timeout of its own (it never makes its thread stuck for
    /// good, though it may still close a cycle while it lasts).
    pub fn start_waiting(
        &self,
        resource: u64,
        name: &str,
        asked: Instant,
        timed: bool,
    ) -> Result<Waiting, Box<Cycle>> {
        self.start_waiting_as(resource, name, asked, true, timed)
    }

    /// [`WaitGraph::start_waiting`] for a wait that has no way to give up (an unbounded
    /// acquire): a cycle it closes is recorded and told, never refused.
    pub fn start_waiting_unrefusable(&self, resource: u64, name: &str, asked: Instant) -> Waiting {
        match self.start_waiting_as(resource, name, asked, false, false) {
            Ok(w) => w,
            // Not reached: a wait that may not be refused is registered whatever is found.
            Err(_) => Waiting(std::thread::current().id()),
        }
    }

    fn start_waiting_as(
        &self,
        resource: u64,
        name: &str,
        asked: Instant,
        refusable: bool,
        timed: bool,
    ) -> Result<Waiting, Box<Cycle>> {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        g.name(me, resource, name);
        if let Some(path) = find_cycle(&g, me, resource) {
            let policy = match *crate::sync::lock(&self.policy) {
                Policy::Break if refusable => Policy::Break,
                _ => Policy::Observe,
            };
            let now = crate::lab::now();
            let cycle = Cycle {
                kind: Kind::Cycle,
                finished: Vec::new(),
                threads: path
                    .iter()
                    .map(|(t, _)| g.threads.get(t).cloned().unwrap_or_default())
                    .collect(),
                locks: path
                    .iter()
                    .map(|(_, r)| Waited::Lock(g.resources.get(r).cloned().unwrap_or_default()))
                    .collect(),
                victim: (policy == Policy::Break).then(super::thread_name),
                at_ms: super::units::ms(now.saturating_duration_since(self.start)),
                detect_us: now.saturating_duration_since(asked).as_secs_f64() * 1e6,
            };
            // Told the moment it is found, by the thread whose wait closed it. Observed
            // cycles (many, in a run of timed waits) are told in full once, then with -v.
            let mut found = crate::sync::lock(&self.found);
            let first_observed = !found.iter().any(|c| {
                c.victim.is_none() && c.at_ms >= *crate::sync::lock(&self.observing_since)
            });
            if policy == Policy::Break || first_observed {
                tracing::warn!(
                    "deadlock: a cycle of {} threads{}",
                    cycle.threads.len(),
                    if policy == Policy::Break {
                        "; this wait is refused (the victim)"
                    } else {
                        "; left to the waits' timeouts (the next ones are told with -v)"
                    }
                );
                for line in cycle.story() {
                    tracing::warn!("  {line}");
                }
                tracing::warn!("  the cycle: {}", cycle.drawing());
                super::pause::moment("cycle", "a cycle closed: each thread waits for the next");
            } else {
                tracing::debug!("deadlock: {}", cycle.drawing());
            }
            found.push(cycle.clone());
            drop(found);
            if policy == Policy::Break {
                return Err(Box::new(cycle));
            }
        }
        g.begin_wait(me, resource, timed, false);
        Ok(Waiting(me))
    }

    /// The wait registered by `start_waiting` is over (acquired, or gave up).
    pub fn stop_waiting(&self, waiting: Waiting) {
        let mut g = crate::sync::lock(&self.graph);
        g.waits.remove(&waiting.0);
        g.touch();
    }

    /// The current thread is one of the lab's and runs (its main thread, or one it spawned).
    pub fn thread_started(&self) {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        g.threads.entry(me).or_insert_with(super::thread_name);
        if !g.live.contains(&me) {
            g.live.push(me);
        }
        g.touch();
    }

    /// The current thread stands in for a thread another program reports (`threadlab py`).
    pub fn stands_in(&self) {
        let me = std::thread::current().id();
        crate::sync::lock(&self.graph).reported.push(me);
    }

    /// Stand-in `t`'s program thread looked at what it waits for and found it still
    /// missing: a signal before now was not for it (what a slice's look is for a lab thread).
    pub fn looked_again(&self, t: ThreadId) {
        let mut g = crate::sync::lock(&self.graph);
        let now = g.generation;
        if let Some(w) = g.waits.get_mut(&t) {
            w.since = now;
        }
    }

    /// The current thread leaves the lab's threads without having run its program: it only
    /// watches (`threadlab py`'s main thread, while stand-ins play the program's threads).
    /// It is no longer counted as a thread that might yet signal, nor as finished.
    pub fn step_aside(&self) {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        g.live.retain(|t| *t != me);
        // Nor a stranger, which the stall test also counts as able to signal.
        g.threads.remove(&me);
        g.touch();
    }

    /// The current thread, one of the lab's, has finished: it will signal nobody.
    pub fn thread_finished(&self) {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        g.live.retain(|t| *t != me);
        g.waits.remove(&me);
        g.finished.push((me, super::thread_name()));
        g.touch();
    }

    /// The current thread is about to wait for a signal on `resource` (an item, an event):
    /// a wait no thread holds anything for. `timed` as for [`WaitGraph::start_waiting`].
    pub fn start_signal_wait(&self, resource: u64, name: &str, timed: bool) -> Waiting {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        g.name(me, resource, name);
        g.begin_wait(me, resource, timed, true);
        Waiting(me)
    }

    /// The current thread signalled `resource` (a `put`, a `set`, a release): a waiter on it
    /// that has not looked since may have been woken, and is not counted stuck until it has.
    pub fn signalled(&self, resource: u64) {
        let mut g = crate::sync::lock(&self.graph);
        g.touch();
        let now = g.generation;
        g.signalled.insert(resource, now);
    }

    /// Called by a thread in a signal wait, between slices of it: the stall it is in, once
    /// that stall has stood unchanged since the previous call (`seen` carries what that call
    /// saw). The caller is the victim: it must stop waiting. Recorded and told here.
    pub fn check_stall(&self, seen: &mut Option<u64>) -> Option<Box<Cycle>> {
        let me = std::thread::current().id();
        let mut g = crate::sync::lock(&self.graph);
        // The caller holds its primitive's lock and found its condition still false: any
        // signal before now was not for it (or was taken by another). It looked again.
        let now = g.generation;
        let reported = g.reported.contains(&me);
        if let Some(w) = g.waits.get_mut(&me).filter(|_| !reported) {
            w.since = now;
        }
        let stuck = stalled(&g);
        if !stuck.contains(&me) {
            *seen = None;
            return None;
        }
        if *seen != Some(g.generation) {
            *seen = Some(g.generation);
            return None;
        }
        // A stand-in's program decides for itself under Observe (`threadlab py --on-deadlock
        // observe`): its thread waits on, nobody is refused; only the stand-in's wait ends.
        let observed = reported && *crate::sync::lock(&self.policy) == Policy::Observe;
        let name = |t: &ThreadId| g.threads.get(t).cloned().unwrap_or_default();
        // The victim first, then the others in the order the lab knows them.
        let mut order = vec![me];
        order.extend(g.live.iter().filter(|t| **t != me && stuck.contains(t)));
        let now = crate::lab::now();
        let stall = Cycle {
            kind: Kind::Stall,
            locks: order
                .iter()
                .map(|t| match g.waits.get(t) {
                    Some(w) => {
                        let what = g.resources.get(&w.resource).cloned().unwrap_or_default();
                        if w.signal {
                            Waited::Signal(what)
                        } else {
                            Waited::Lock(what)
                        }
                    }
                    None => Waited::Join(g.joins.get(t).map(&name).unwrap_or_default()),
                })
                .collect(),
            threads: order.iter().map(name).collect(),
            victim: (!observed).then(|| name(&me)),
            at_ms: super::units::ms(g.changed_at.saturating_duration_since(self.start)),
            detect_us: now.saturating_duration_since(g.changed_at).as_secs_f64() * 1e6,
            finished: g.finished.iter().map(|(_, n)| n.clone()).collect(),
        };
        // A change: another thread of the same stall, checking in this same slice, looks
        // again a slice later, when this victim's wait has ended. One victim per stall.
        g.touch();
        drop(g);
        tracing::warn!(
            "deadlock without a lock: {} threads stuck; {}",
            stall.threads.len(),
            if observed {
                "told, not refused (observed)"
            } else {
                "this wait is refused (the victim)"
            }
        );
        for line in stall.story() {
            tracing::warn!("  {line}");
        }
        super::pause::moment("stall", "a wait nobody is left to end");
        crate::sync::lock(&self.found).push(stall.clone());
        Some(Box::new(stall))
    }
}

impl WaitGraph {
    /// The current thread is joining `target` until the returned guard is dropped: the
    /// detector counts it stuck while `target` is.
    pub fn joining(self: &Arc<Self>, target: ThreadId) -> JoinGuard {
        let me = std::thread::current().id();
        crate::sync::lock(&self.graph).joins.insert(me, target);
        JoinGuard(Arc::clone(self), me)
    }
}

/// Ends a join registered by [`WaitGraph::joining`].
#[derive(Debug)]
pub struct JoinGuard(Arc<WaitGraph>, ThreadId);

impl Drop for JoinGuard {
    fn drop(&mut self) {
        crate::sync::lock(&self.0.graph).joins.remove(&self.1);
    }
}

/// How often a signal wait looks for a stall; one is refused at most two slices after it
/// forms.
pub const SIGNAL_SLICE: Duration = Duration::from_millis(20);

/// The threads of `g` that can never run again: the greatest set in which every thread is
/// in an untimed wait that only threads of the set could end. Start from every blocked
/// thread and drop, until nothing changes, any whose wait someone outside the set can end:
/// a lock with a holder outside it (or none), a signal while any other thread the lab knows
/// is outside it, a join of a thread outside it (or not the lab's). Threads that touched the
/// graph without being the lab's are never stuck, and count as able to signal.
fn stalled(g: &Graph) -> Vec<ThreadId> {
    let joined = |t: &ThreadId| g.joins.get(t).copied();
    let finished = |t: &ThreadId| g.finished.iter().any(|(f, _)| f == t);
    let mut others: Vec<ThreadId> = g.live.clone();
    let strangers: Vec<ThreadId> = g
        .threads
        .keys()
        .filter(|t| !g.live.contains(t) && !finished(t))
        .copied()
        .collect();
    others.extend(strangers);
    let mut stuck: Vec<ThreadId> = g
        .live
        .iter()
        .filter(|t| match g.waits.get(t) {
            Some(w) => !w.timed,
            None => joined(t).is_some(),
        })
        .copied()
        .collect();
    loop {
        let snapshot = stuck.clone();
        stuck.retain(|t| match g.waits.get(t) {
            // Signalled since it last looked: it may be awake already, and able to signal.
            Some(w) if w.signal && g.signalled.get(&w.resource).is_some_and(|s| *s > w.since) => {
                false
            }
            Some(w) if w.signal => others.iter().all(|o| o == t || snapshot.contains(o)),
            Some(w) => g
                .holders
                .get(&w.resource)
                .is_some_and(|hs| !hs.is_empty() && hs.iter().all(|h| snapshot.contains(h))),
            None => joined(t).is_some_and(|j| snapshot.contains(&j)),
        });
        if stuck.len() == snapshot.len() {
            return stuck;
        }
    }
}

/// A path of (thread, resource it waits for) from `me` waiting on `resource` back to `me`,
/// if `me` is deadlocked.
///
/// A lock has one holder, a semaphore may have several, and a wait on a semaphore ends as
/// soon as *any* holder gives a permit back. So a cycle is a deadlock only if every holder of
/// every resource in it is itself stuck. First the stuck set: start from every waiting
/// thread (and `me`), and keep dropping any thread whose resource has no holder or a holder
/// outside the set (that holder can still run, and release). What remains cannot move. If
/// `me` remains, a depth-first search inside the set finds the cycle through `me`.
fn find_cycle(g: &Graph, me: ThreadId, resource: u64) -> Option<Vec<(ThreadId, u64)>> {
    let waits_for = |t: &ThreadId| {
        if *t == me {
            Some(resource)
        } else {
            g.waits_on(t)
        }
    };
    let mut stuck: Vec<ThreadId> = g.waits.keys().copied().collect();
    if !stuck.contains(&me) {
        stuck.push(me);
    }
    loop {
        let before = stuck.len();
        let snapshot = stuck.clone();
        stuck.retain(|t| {
            let Some(r) = waits_for(t) else {
                return false;
            };
            match g.holders.get(&r) {
                Some(hs) if !hs.is_empty() => hs.iter().all(|h| snapshot.contains(h)),
                _ => false,
            }
        });
        if stuck.len() == before {
            break;
        }
    }
    if !stuck.contains(&me) {
        return None;
    }
    let mut path = vec![(me, resource)];
    let mut seen = vec![me];
    if dfs(g, me, resource, &stuck, &mut path, &mut seen) {
        Some(path)
    } else {
        None
    }
}

fn dfs(
    g: &Graph,
    me: ThreadId,
    resource: u64,
    stuck: &[ThreadId],
    path: &mut Vec<(ThreadId, u64)>,
    seen: &mut Vec<ThreadId>,
) -> bool {
    for holder in g.holders.get(&resource).into_iter().flatten() {
        if *holder == me {
            // A thread waiting for what it holds itself (a plain lock re-acquired) is a
            // cycle of one only if it is the start: that is the self-deadlock rlock shows
            // with a timeout. Cycles of two or more are what this detector is for.
            if path.len() > 1 {
                return true;
            }
            continue;
        }
        if seen.contains(holder) || !stuck.contains(holder) {
            continue;
        }
        let Some(next) = g.waits_on(holder) else {
            continue;
        };
        seen.push(*holder);
        path.push((*holder, next));
        if dfs(g, me, next, stuck, path, seen) {
            return true;
        }
        path.pop();
    }
    false
}

/// How long a run may take to notice a cycle and still call it "at once".
pub const DETECT_BOUND: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Makes `n` threads each hold resource i and then wait for resource i+1 (mod n), each
    /// step in order; returns what each wait answered.
    fn ring(n: usize, policy: Policy) -> (Arc<WaitGraph>, Vec<Result<(), Box<Cycle>>>) {
        let g = Arc::new(WaitGraph::new(crate::lab::now()));
        g.set_policy(policy);
        let ids: Vec<u64> = (0..n).map(|_| next_resource_id()).collect();
        let (held_tx, held_rx) = crossbeam_channel::unbounded::<()>();
        let turn: Vec<_> = (0..n)
            .map(|_| crossbeam_channel::bounded::<()>(1))
            .collect();
        let done = Arc::new(std::sync::Barrier::new(n + 1));
        let mut answers = Vec::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (g, ids, held_tx, rx, done) =
                        (&g, &ids, held_tx.clone(), turn[i].1.clone(), done.clone());
                    std::thread::Builder::new()
                        .name(format!("T{i}"))
                        .spawn_scoped(s, move || {
                            g.holding(ids[i], &format!("r{i}"));
                            held_tx.send(()).unwrap();
                            rx.recv().unwrap();
                            let answer =
                                g.start_waiting(ids[(i + 1) % n], "next", crate::lab::now(), false);
                            // Answered (and, if registered, seen by the next thread's check).
                            held_tx.send(()).unwrap();
                            let out = answer.as_ref().map(|_| ()).map_err(|c| c.clone());
                            done.wait();
                            if let Ok(w) = answer {
                                g.stop_waiting(w);
                            }
                            g.released(ids[i]);
                            out
                        })
                        .unwrap()
                })
                .collect();
            for _ in 0..n {
                held_rx.recv().unwrap();
            }
            for (tx, _) in &turn {
                tx.send(()).unwrap();
                held_rx.recv().unwrap();
            }
            done.wait();
            answers = handles.into_iter().map(|h| h.join().unwrap()).collect();
        });
        (g, answers)
    }

    #[test]
    fn a_cycle_of_two_is_found_when_it_closes_and_the_closer_is_the_victim() {
        let _bound = crate::sync::bounded_test(20);
        let (g, answers) = ring(2, Policy::Break);
        assert!(answers[0].is_ok());
        let cycle = answers[1].as_ref().unwrap_err();
        assert_eq!(cycle.threads, ["T1", "T0"]);
        assert_eq!(
            cycle.locks,
            [Waited::Lock("r0".into()), Waited::Lock("r1".into())]
        );
        assert_eq!(cycle.victim.as_deref(), Some("T1"));
        assert_eq!(
            cycle.story(),
            [
                "T1 holds 'r1' and waits for 'r0'",
                "T0 holds 'r0' and waits for 'r1'"
            ]
        );
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn a_cycle_of_three_names_every_thread_and_resource() {
        let _bound = crate::sync::bounded_test(20);
        let (g, answers) = ring(3, Policy::Break);
        assert!(answers[0].is_ok() && answers[1].is_ok());
        let cycle = answers[2].as_ref().unwrap_err();
        assert_eq!(cycle.threads, ["T2", "T0", "T1"]);
        let lock = |n: &str| Waited::Lock(n.into());
        assert_eq!(cycle.locks, [lock("r0"), lock("r1"), lock("r2")]);
        assert_eq!(g.cycles().len(), 1);
    }

    #[test]
    fn observing_records_the_cycle_and_lets_the_wait_go_on() {
        let _bound = crate::sync::bounded_test(20);
        let (g, answers) = ring(2, Policy::Observe);
        assert!(answers.iter().all(|a| a.is_ok()));
        let found = g.cycles();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].victim, None);
    }

    #[test]
    fn a_semaphore_with_a_holder_that_can_still_run_is_no_deadlock() {
        let _bound = crate::sync::bounded_test(20);
        // T0 holds lock a and waits for semaphore s; s's permits are held by T1 (which waits
        // for a) and by this thread (which waits for nothing): this thread can release, so
        // nobody is stuck. Without it, the same waits are a deadlock.
        let g = WaitGraph::new(crate::lab::now());
        let (a, sem) = (next_resource_id(), next_resource_id());
        let me = std::thread::current().id();
        {
            let mut gr = crate::sync::lock(&g.graph);
            let (t0, t1) = spawn_ids();
            gr.holders.insert(a, vec![t0]);
            gr.holders.insert(sem, vec![t1, me]);
            gr.waits.insert(
                t1,
                Wait {
                    resource: a,
                    timed: false,
                    signal: false,
                    since: 0,
                },
            );
            assert!(
                find_cycle(&gr, t0, sem).is_none(),
                "a free holder can release"
            );
            gr.holders.insert(sem, vec![t1]);
            let path = find_cycle(&gr, t0, sem).expect("every holder is stuck");
            assert_eq!(path, vec![(t0, sem), (t1, a)]);
        }
    }

    #[test]
    fn a_waiter_signalled_since_it_last_looked_is_not_counted_stuck() {
        let _bound = crate::sync::bounded_test(20);
        // T waits on queue q and W on event e; both are the lab's only threads. If q was
        // signalled after T last looked, T may be awake (about to set e): no stall. Once T
        // looks again and finds nothing, both are stuck.
        let mut g = Graph::new(crate::lab::now());
        let (t, w) = spawn_ids();
        let (q, e) = (next_resource_id(), next_resource_id());
        g.live = vec![t, w];
        let wait = |resource, since| Wait {
            resource,
            timed: false,
            signal: true,
            since,
        };
        g.waits.insert(t, wait(q, 1));
        g.waits.insert(w, wait(e, 3));
        g.signalled.insert(q, 2);
        assert!(stalled(&g).is_empty(), "T may be awake");
        g.waits.insert(t, wait(q, 4));
        let mut stuck = stalled(&g);
        stuck.sort_by_key(|id| format!("{id:?}"));
        let mut both = vec![t, w];
        both.sort_by_key(|id| format!("{id:?}"));
        assert_eq!(stuck, both);
    }

    /// Two ThreadIds of threads that have ended (ids are never reused).
    fn spawn_ids() -> (ThreadId, ThreadId) {
        let a = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        let b = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        (a, b)
    }

    #[test]
    fn a_long_wait_without_a_cycle_is_not_a_deadlock() {
        let _bound = crate::sync::bounded_test(20);
        let g = WaitGraph::new(crate::lab::now());
        let r = next_resource_id();
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        std::thread::scope(|s| {
            let g = &g;
            s.spawn(move || {
                g.holding(r, "slow");
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                g.released(r);
            });
            rx.recv().unwrap();
            // A chain: this thread waits for a holder that waits for nothing.
            let w = g
                .start_waiting(r, "slow", crate::lab::now(), false)
                .unwrap();
            std::thread::sleep(Duration::from_millis(60));
            g.stop_waiting(w);
        });
        assert!(g.cycles().is_empty());
    }

    /// Runs a consumer of a queue named 'orders' that a producer puts `items` into after
    /// `delay`, leaving without closing it; the main thread joins both. Returns what the
    /// consumer's gets answered, the cycles found, and the consumer's own wait after the
    /// last item.
    fn orders(items: u64, delay: Duration, timed: Option<Duration>) -> (Vec<String>, Vec<Cycle>) {
        use crate::sync::JoinableQueue;
        use crate::sync::queue::Got;
        let lab = crate::lab::Lab::quiet(1.0, 1);
        let queue: JoinableQueue<u64> = JoinableQueue::new(4, lab.probe("orders"));
        let got = std::thread::scope(|s| {
            let (lab, queue) = (&lab, &queue);
            let producer = lab
                .spawn(s, "Producer", move || {
                    std::thread::sleep(delay);
                    for i in 0..items {
                        queue.put(i).unwrap();
                    }
                })
                .unwrap();
            let consumer = lab
                .spawn(s, "Consumer", move || {
                    let mut got = Vec::new();
                    loop {
                        // A safety bound: a broken detector fails the test, never hangs it.
                        let answer = match timed {
                            Some(t) => queue.get_timeout(t),
                            None => queue.next_within(Duration::from_secs(5)),
                        };
                        match answer {
                            Got::Item(i) => got.push(format!("item {i}")),
                            Got::Timeout => break got.push("timeout".into()),
                            Got::Closed => break got.push("closed".into()),
                            Got::Stalled(c) => break got.push(format!("stalled: {}", c.drawing())),
                        }
                    }
                    got
                })
                .unwrap();
            crate::lab::join(producer).unwrap();
            crate::lab::join(consumer).unwrap()
        });
        (got, lab.wait_graph().cycles())
    }

    #[test]
    fn a_wait_nobody_is_left_to_signal_is_refused_and_named() {
        let _bound = crate::sync::bounded_test(20);
        let (got, found) = orders(2, Duration::ZERO, None);
        assert_eq!(got[..2], ["item 0", "item 1"]);
        assert!(
            got[2].starts_with("stalled: Consumer ─waits→ orders"),
            "{got:?}"
        );
        assert_eq!(found.len(), 1);
        let stall = &found[0];
        assert_eq!(stall.kind, Kind::Stall);
        assert_eq!(stall.victim.as_deref(), Some("Consumer"));
        assert_eq!(
            stall.waits_for("Consumer"),
            Some(&Waited::Signal("orders".into()))
        );
        assert_eq!(stall.finished, ["Producer"]);
        // Found within two slices of the producer's exit (and some scheduling).
        assert!(stall.detect_us < 1e6, "{stall:?}");
        assert!(stall.story().last().unwrap().contains("(last: Producer)"));
    }

    #[test]
    fn a_signal_wait_is_never_refused_while_another_thread_can_still_signal() {
        let _bound = crate::sync::bounded_test(20);
        // The producer sleeps through ten slices before it puts: it is running, not stuck.
        let (got, found) = orders(1, SIGNAL_SLICE * 10, None);
        assert_eq!(got[0], "item 0");
        assert!(got[1].starts_with("stalled"), "{got:?}");
        assert_eq!(
            found.len(),
            1,
            "only the wait after the producer left: {found:?}"
        );
    }

    #[test]
    fn a_timed_wait_is_never_a_stall() {
        let _bound = crate::sync::bounded_test(20);
        let (got, found) = orders(1, Duration::ZERO, Some(SIGNAL_SLICE * 5));
        assert_eq!(got, ["item 0", "timeout"]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn an_event_nobody_is_left_to_set_is_refused() {
        let _bound = crate::sync::bounded_test(20);
        let lab = crate::lab::Lab::quiet(1.0, 1);
        let ev = Arc::new(crate::sync::Event::new().with_probe(lab.probe("go")));
        // A safety bound: a thread the lab does not know sets it after 5 s, so a broken
        // detector fails the test instead of hanging it.
        let late = Arc::clone(&ev);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            late.set();
        });
        let set = std::thread::scope(|s| {
            let h = lab.spawn(s, "Waiter", || ev.wait()).unwrap();
            crate::lab::join(h).unwrap()
        });
        assert!(!set);
        let found = lab.wait_graph().cycles();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].waits_for("Waiter"),
            Some(&Waited::Signal("go".into()))
        );
        assert!(
            found[0].threads.len() == 2,
            "the waiter and the joiner: {found:?}"
        );
    }
}
