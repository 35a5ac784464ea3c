//! The lab's scheduler: real OS threads that run one at a time, the lab choosing which runs
//! at every scheduling point (CHESS's idea: a user-mode scheduler over real threads).
//!
//! A scheduled run hands a single token between its threads. A thread runs only while it
//! holds the token; at a scheduling point ([`Turn::point`]) it gives the token back and the
//! scheduler chooses the next thread among the runnable ones by its [`Strategy`]. A thread
//! that waits for something ([`Turn::block_on`]) is not runnable until another thread
//! [`Turn::wake`]s what it waits for. When no thread can run and some still wait, the run is
//! a deadlock: every waiting thread is told so ([`Abort`]) and the run ends, never hangs.
//!
//! Every choice among two or more runnable threads is recorded: the list of choices replays
//! the run exactly ([`Strategy::Replay`]), and [`explore`] runs every schedule of a small
//! model by re-running it with each prefix of choices (stateless exploration, as CHESS and
//! loom do), counting the outcomes: a census.
//!
//! Time in a scheduled run is virtual: each step takes [`STEP_US`] (so pictures draw the
//! turns in order), a wait may have a deadline (`block_on(what, Some(µs))`), and when no
//! thread can run the clock jumps to the earliest deadline, whose waiter then times out
//! ([`Woke::TimedOut`]). A simulated sleep is such a wait that nobody wakes. A run is
//! identical on every replay, and takes CPU time only.
//!
//! This module is the core that the wait protocol (`lab::probe`) will drive ([`current`]
//! gives a scheduled thread its [`Turn`]): each blocking point of a primitive a `block_on`
//! of what it waits for, each signal a `wake`. One rule for that: a thread must never hold a
//! lock another scheduled thread may take across a scheduling point (the other would block
//! on it for real while the holder waits for the token): a primitive's point comes before
//! it takes its state's lock, and a wait releases that lock before `block_on`.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the scheduler chooses the next thread among the runnable ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Uniformly at random, from a seed.
    Random(u64),
    /// Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010): random distinct
    /// priorities, the highest runnable runs; at `depth − 1` random steps (of the first
    /// `steps` steps) the running thread's priority drops below every other.
    Pct {
        /// The seed of the priorities and the change points.
        seed: u64,
        /// The bug depth aimed at (1: no priority change).
        depth: u32,
        /// How many steps the change points are drawn among.
        steps: u32,
    },
    /// These choices first (each an index among the runnable threads, in thread order),
    /// then the default: the thread that was running if it still can (no preemption), else
    /// the first runnable thread.
    Replay(Vec<u32>),
}

/// A thread of a scheduled run was told to give up its wait: the run deadlocked (every
/// thread left waited, none with a deadline) and this waiter, the last to block, is the
/// victim, as the wait-for graph refuses the wait that closes a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Life {
    Runnable,
    /// Waiting for `what`, until a virtual deadline if it has one.
    Waiting {
        what: u64,
        until: Option<u64>,
    },
    /// Waiting for these threads to end.
    Joining(Vec<usize>),
    /// Its deadline came with nobody waking it: runnable, and told so.
    TimedOut,
    /// The victim of a deadlock: runnable, and told to give up its wait.
    Aborted,
    Done,
}

impl Life {
    fn runnable(&self) -> bool {
        matches!(self, Life::Runnable | Life::TimedOut | Life::Aborted)
    }
}

/// How a [`Turn::block_on`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// Another thread woke what it waited for.
    Woken,
    /// Its deadline came first (virtual time: no thread could run before it).
    TimedOut,
}

/// One thread of a scheduled run, as the scheduler sees it.
struct Slot {
    name: String,
    life: Life,
    /// What it does when it next runs (for `--step`).
    next: String,
    /// The step at which it last blocked (a deadlock's victim is the last to block).
    blocked_at: u32,
    tid: Option<ThreadId>,
    /// Where this thread waits for the token: only the chosen thread is woken.
    turn: Arc<Condvar>,
}

impl Slot {
    fn new(name: &str, next: &str, tid: Option<ThreadId>) -> Slot {
        Slot {
            name: name.to_string(),
            life: Life::Runnable,
            next: next.to_string(),
            blocked_at: 0,
            tid,
            turn: Arc::new(Condvar::new()),
        }
    }
}

/// One choice among two or more runnable threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The index chosen among the runnable threads (in thread order).
    pub chosen: u32,
    /// How many could run.
    pub of: u32,
    /// The index of the thread that gave the token back at a scheduling point, if it could
    /// go on: choosing another is a preemption.
    pub stay: Option<u32>,
    /// What the strategy itself chose (before a token's override or `--step`'s pick).
    pub proposed: u32,
}

impl Choice {
    /// Whether this choice preempted the running thread.
    pub fn preempts(&self) -> bool {
        self.stay.is_some_and(|s| s != self.chosen)
    }

    /// What a replay chooses here when its choices have run out.
    pub fn default_choice(&self) -> u32 {
        self.stay.unwrap_or(0)
    }
}

/// A decision as `--step` shows it: every live thread, what it is about to do, which can
/// run, and the strategy's choice.
pub struct Decision<'a> {
    /// Each live thread: its name, what it does next, and its index among the runnable
    /// (`None`: it cannot run now, and why is in the text).
    pub threads: Vec<(&'a str, &'a str, Option<u32>)>,
    /// The index the strategy chose by itself.
    pub own: u32,
    /// The index to take unless the picker says otherwise (a token's override, or `own`).
    pub proposed: u32,
    /// The running thread's index if it can go on (choosing another preempts it).
    pub stay: Option<u32>,
    /// How many choices were made before this one.
    pub made: usize,
}

/// A hook that makes each choice instead of the strategy (`--step`): given the decision,
/// the index to run.
pub type Picker = Box<dyn FnMut(&Decision<'_>) -> u32 + Send>;

struct State {
    /// The thread holding the token, if any.
    running: Option<usize>,
    slots: Vec<Slot>,
    /// Deadlocks met: each made its last waiter the victim.
    deadlocks: u32,
    /// Virtual time, in µs: it moves only when no thread can run, to the earliest deadline.
    now: u64,
    chooser: Chooser,
    choices: Vec<Choice>,
    steps: u32,
    /// When the token last moved (real time: a thread that keeps it too long is stuck).
    moved: Instant,
}

/// The strategy's state through one run.
struct Chooser {
    strategy: Strategy,
    /// Choices that override the strategy's (decision index → choice): a token's.
    overrides: BTreeMap<u32, u32>,
    picker: Option<Picker>,
    cap: Option<f64>,
    /// The product of the alternatives of the choices so far.
    tree: f64,
    rng: StdRng,
    /// PCT: each thread's priority (higher runs first), and the steps where the running
    /// thread's priority drops.
    priorities: Vec<u32>,
    change_points: Vec<u32>,
}

impl Chooser {
    fn new(plan: Plan) -> Self {
        let seed = match plan.strategy {
            Strategy::Random(seed) | Strategy::Pct { seed, .. } => seed,
            Strategy::Replay(_) => 0,
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let change_points = match plan.strategy {
            Strategy::Pct { depth, steps, .. } => (1..depth)
                .map(|_| rng.random_range(0..steps.max(1)))
                .collect(),
            _ => Vec::new(),
        };
        Self {
            strategy: plan.strategy,
            overrides: plan.overrides,
            picker: plan.picker,
            cap: plan.cap,
            tree: 1.0,
            rng,
            priorities: Vec::new(),
            change_points,
        }
    }

    /// PCT's priority of thread `t` (drawn when the thread is first seen: threads appear as
    /// the run spawns them).
    fn priority(&mut self, t: usize) -> u32 {
        let depth = match self.strategy {
            Strategy::Pct { depth, .. } => depth,
            _ => 1,
        };
        while self.priorities.len() <= t {
            // Distinct, above every change point's: a random place among those drawn.
            let p = depth + self.priorities.len() as u32;
            let at = self.rng.random_range(0..=self.priorities.len());
            self.priorities.insert(at, p);
        }
        self.priorities[t]
    }

    /// The strategy's index (among `runnable`) at the `decision`-th choice and the
    /// `step`-th scheduling point; `running` gave the token back, `stay` is its index if
    /// it can go on.
    fn propose(
        &mut self,
        runnable: &[usize],
        decision: usize,
        step: u32,
        running: Option<usize>,
        stay: Option<u32>,
    ) -> u32 {
        match &self.strategy {
            Strategy::Random(_) => self.rng.random_range(0..runnable.len() as u32),
            Strategy::Replay(prefix) => prefix.get(decision).copied().unwrap_or(stay.unwrap_or(0)),
            Strategy::Pct { .. } => {
                for t in runnable {
                    self.priority(*t);
                }
                let drops: Vec<u32> = (0..self.change_points.len() as u32)
                    .filter(|k| self.change_points[*k as usize] == step)
                    .collect();
                for k in drops {
                    if let Some(r) = running {
                        self.priority(r);
                        self.priorities[r] = k;
                    }
                }
                let best = runnable
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, t)| self.priorities[**t])
                    .map_or(0, |(i, _)| i);
                best as u32
            }
        }
    }
}

/// What a scheduled run follows: a strategy, choices that override it (a token's), and
/// optionally a picker that makes every choice (`--step`).
pub struct Plan {
    /// The strategy.
    pub strategy: Strategy,
    /// Decision index → choice, overriding the strategy's.
    pub overrides: BTreeMap<u32, u32>,
    /// Makes each choice after the overrides (`--step`).
    pub picker: Option<Picker>,
    /// Once the product of the choices' alternatives passes this (a schedule tree that
    /// large), the run goes on by the default, recording nothing more: an estimate's probe
    /// learns the size without running every point's switch.
    pub cap: Option<f64>,
}

impl From<Strategy> for Plan {
    fn from(strategy: Strategy) -> Self {
        Plan {
            strategy,
            overrides: BTreeMap::new(),
            picker: None,
            cap: None,
        }
    }
}

/// One scheduled run's shared state: the token, who is runnable, the choices made.
pub struct Scheduler {
    state: Mutex<State>,
    /// Virtual time zero, as an `Instant` (see [`now`]).
    base: Instant,
}

/// A thread's handle on the scheduler, inside a scheduled run.
#[derive(Clone)]
pub struct Turn {
    scheduler: Arc<Scheduler>,
    me: usize,
}

thread_local! {
    /// The current thread's turn, while it runs in a scheduled run.
    static CURRENT: std::cell::RefCell<Option<Turn>> = const { std::cell::RefCell::new(None) };
}

/// The current thread's turn, if it runs inside a scheduled run: the wait protocol asks,
/// and hands its waits and signals to the scheduler.
pub fn current() -> Option<Turn> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The time now: in a scheduled run the virtual clock (its zero an `Instant` taken when the
/// run began), otherwise the real one. Every timestamp the lab shows comes from here.
pub fn now() -> Instant {
    CURRENT.with(|c| match &*c.borrow() {
        Some(turn) => turn.scheduler.base + Duration::from_micros(turn.now()),
        None => REPORTED.with(|r| match &*r.borrow() {
            // A stand-in for a reported thread (`threadlab py`): the time of the event it
            // is playing, as the reporting program's clock said it.
            Some((base, clock)) => {
                *base + Duration::from_nanos(clock.load(std::sync::atomic::Ordering::Acquire))
            }
            // The OS's clock, less the time `--pause` held the run.
            None => {
                let now = Instant::now();
                now.checked_sub(super::pause::paused()).unwrap_or(now)
            }
        }),
    })
}

thread_local! {
    /// A stand-in's clock: its zero, and the offset of the event it plays (see [`now`]).
    static REPORTED: std::cell::RefCell<Option<(Instant, Arc<std::sync::atomic::AtomicU64>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes the current thread a stand-in for a thread another program reports: from now on its
/// [`now`] is `base` plus the nanoseconds in `clock`, which the event intake sets to each
/// event's time before the stand-in plays it. Every record, narrative line and detector
/// verdict the stand-in makes then carries the time the event happened, not when it was read.
pub fn use_reported_clock(base: Instant, clock: Arc<std::sync::atomic::AtomicU64>) {
    REPORTED.with(|r| *r.borrow_mut() = Some((base, clock)));
}

/// The virtual time one step (a thread's run from one scheduling point to the next) takes.
pub const STEP_US: u64 = 1;

/// How long the token may stay with one thread, in real time, before the run is declared
/// stuck: a thread that blocks outside the lab's primitives never hands it on. (The tests
/// shorten it with `THREADLAB_STUCK_SECS`.)
fn stuck_after() -> Duration {
    static AFTER: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *AFTER.get_or_init(|| {
        let secs = std::env::var("THREADLAB_STUCK_SECS")
            .ok()
            .and_then(|s| s.parse().ok());
        Duration::from_secs(secs.unwrap_or(20))
    })
}

impl Scheduler {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the token to the next thread, chosen among the runnable. When none can run,
    /// virtual time jumps to the earliest deadline; with no deadline left the run is
    /// deadlocked, and the waiter that blocked last is told so (it runs, and gives up its
    /// wait). `point`: the running thread handed on at a scheduling point (it can go on).
    fn hand_on(&self, st: &mut State, point: bool) {
        let runnable = loop {
            let runnable: Vec<usize> = (0..st.slots.len())
                .filter(|t| st.slots[*t].life.runnable())
                .collect();
            if !runnable.is_empty() {
                break runnable;
            }
            if Self::advance_clock(st) {
                continue;
            }
            match Self::victim(st) {
                Some(v) => {
                    st.slots[v].life = Life::Aborted;
                    st.deadlocks += 1;
                }
                None => break runnable,
            }
        };
        st.steps += 1;
        // Each step takes a tick of virtual time, so the pictures draw the threads' turns in
        // the order they came (a run with no sleep would otherwise happen all at 0).
        st.now += STEP_US;
        let prev = st.running;
        let stay = prev
            .filter(|_| point)
            .and_then(|p| runnable.iter().position(|t| *t == p))
            .map(|i| i as u32);
        st.running = match runnable.len() {
            0 => None,
            1 => Some(runnable[0]),
            n => Some(runnable[Self::choose(st, &runnable, prev, stay).min(n as u32 - 1) as usize]),
        };
        st.moved = Instant::now();
        if let Some(r) = st.running {
            st.slots[r].turn.notify_one();
        }
    }

    /// The choice among `runnable` (two or more): the strategy's, a token's override, or
    /// the picker's; recorded.
    fn choose(st: &mut State, runnable: &[usize], prev: Option<usize>, stay: Option<u32>) -> u32 {
        if st.chooser.cap.is_some_and(|cap| st.chooser.tree > cap) {
            return stay.unwrap_or(0);
        }
        st.chooser.tree *= runnable.len() as f64;
        let decision = st.choices.len();
        let steps = st.steps;
        let proposed = st.chooser.propose(runnable, decision, steps, prev, stay);
        let mut i = proposed;
        if let Some(o) = st.chooser.overrides.get(&(decision as u32)) {
            i = *o;
        }
        i = i.min(runnable.len() as u32 - 1);
        if let Some(mut picker) = st.chooser.picker.take() {
            let decision = Decision {
                threads: Self::describe(st, runnable),
                own: proposed,
                proposed: i,
                stay,
                made: decision,
            };
            i = picker(&decision).min(runnable.len() as u32 - 1);
            st.chooser.picker = Some(picker);
        }
        st.choices.push(Choice {
            chosen: i,
            of: runnable.len() as u32,
            stay,
            proposed,
        });
        i
    }

    /// Every live thread for `--step`: name, what it does next, its runnable index.
    fn describe<'a>(st: &'a State, runnable: &[usize]) -> Vec<(&'a str, &'a str, Option<u32>)> {
        (0..st.slots.len())
            .filter(|t| st.slots[*t].life != Life::Done)
            .map(|t| {
                let slot = &st.slots[t];
                let index = runnable.iter().position(|r| *r == t).map(|i| i as u32);
                (slot.name.as_str(), slot.next.as_str(), index)
            })
            .collect()
    }

    /// No thread can run: virtual time jumps to the earliest deadline, and every waiter
    /// whose deadline it is times out. False when no waiter has a deadline.
    fn advance_clock(st: &mut State) -> bool {
        let next = st
            .slots
            .iter()
            .filter_map(|s| match s.life {
                Life::Waiting { until, .. } => until,
                _ => None,
            })
            .min();
        let Some(at) = next else { return false };
        st.now = st.now.max(at);
        for slot in st.slots.iter_mut() {
            if matches!(slot.life, Life::Waiting { until: Some(u), .. } if u <= at) {
                slot.life = Life::TimedOut;
            }
        }
        true
    }

    /// A deadlock's victim: of the threads that wait for a lock or a signal, the last to
    /// block (as the wait-for graph refuses the wait that closes a cycle); a thread waiting
    /// to join others only when nobody else waits (a join waits on the others' waits).
    fn victim(st: &State) -> Option<usize> {
        let last = |joins: bool| {
            (0..st.slots.len())
                .filter(|t| match st.slots[*t].life {
                    Life::Waiting { .. } => !joins,
                    Life::Joining(_) => joins,
                    _ => false,
                })
                .max_by_key(|t| (st.slots[*t].blocked_at, *t))
        };
        last(false).or_else(|| last(true))
    }

    /// Waits until `me` holds the token; `Err(Abort)` when it is a deadlock's victim. A
    /// token that stays with one thread longer than [`stuck_after`] (real time) ends the
    /// process with an error naming that thread: a scheduled run never hangs.
    fn wait_for_turn<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        me: usize,
    ) -> Result<MutexGuard<'a, State>, Abort> {
        loop {
            if st.running == Some(me) {
                if st.slots[me].life == Life::Aborted {
                    st.slots[me].life = Life::Runnable;
                    return Err(Abort);
                }
                return Ok(st);
            }
            let turn = Arc::clone(&st.slots[me].turn);
            let (next, waited) = turn
                .wait_timeout(st, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner());
            st = next;
            if waited.timed_out()
                && let Some(r) = st.running
                && st.moved.elapsed() > stuck_after()
            {
                stuck(&st.slots[r].name);
            }
        }
    }

    /// Marks `me` done, makes every thread that waited for it (and for nothing else still
    /// running) runnable, and hands the token on if `me` held it.
    fn leave(&self, me: usize) {
        let mut st = self.lock();
        st.slots[me].life = Life::Done;
        st.slots[me].next = String::from("done");
        for t in 0..st.slots.len() {
            if let Life::Joining(on) = &st.slots[t].life
                && on.iter().all(|j| st.slots[*j].life == Life::Done)
            {
                st.slots[t].life = Life::Runnable;
            }
        }
        if st.running == Some(me) {
            self.hand_on(&mut st, false);
        }
    }
}

/// A thread kept the token too long (see [`stuck_after`]): one line, and the process ends
/// (exit 1).
fn stuck(name: &str) -> ! {
    eprintln!(
        "threadlab: error: --schedule: thread {name} ran {} s without reaching a scheduling \
         point (it blocks on something the lab does not schedule)",
        stuck_after().as_secs()
    );
    crate::pictures::files::discard_scratch();
    std::process::exit(1)
}

impl Turn {
    /// This thread's number in the run (0 for the thread that began it, then in the order
    /// threads were spawned).
    pub fn me(&self) -> usize {
        self.me
    }

    /// A scheduling point: the scheduler may let another thread run before this one goes on.
    pub fn point(&self) {
        self.point_doing(String::new);
    }

    /// A scheduling point where this thread is about to do what `next` says (shown by
    /// `--step`; computed only when a picker asks).
    pub fn point_doing(&self, next: impl FnOnce() -> String) {
        let s = &*self.scheduler;
        let mut st = s.lock();
        if st.chooser.picker.is_some() {
            st.slots[self.me].next = next();
        }
        s.hand_on(&mut st, true);
        // This thread is runnable: it gets the token back, by the strategy's choice.
        drop(s.wait_for_turn(st, self.me));
    }

    /// This thread waits for `what` (a lock's id, a queue's items…), for at most `within`
    /// µs of virtual time if given: it is not runnable until another thread calls
    /// [`Turn::wake`] with it, or its deadline comes (virtual time moves only when no thread
    /// can run). `Err(Abort)` when it is a deadlock's victim.
    pub fn block_on(&self, what: u64, within: Option<u64>) -> Result<Woke, Abort> {
        self.block_doing(what, within, String::new)
    }

    /// [`Turn::block_on`], saying what the thread waits for (shown by `--step`).
    pub fn block_doing(
        &self,
        what: u64,
        within: Option<u64>,
        waits: impl FnOnce() -> String,
    ) -> Result<Woke, Abort> {
        let s = &*self.scheduler;
        let mut st = s.lock();
        let until = within.map(|d| st.now.saturating_add(d));
        let steps = st.steps;
        let slot = &mut st.slots[self.me];
        slot.life = Life::Waiting { what, until };
        slot.blocked_at = steps;
        if st.chooser.picker.is_some() {
            st.slots[self.me].next = waits();
        }
        s.hand_on(&mut st, false);
        let mut st = s.wait_for_turn(st, self.me)?;
        let woke = if st.slots[self.me].life == Life::TimedOut {
            Woke::TimedOut
        } else {
            Woke::Woken
        };
        st.slots[self.me].life = Life::Runnable;
        Ok(woke)
    }

    /// Makes every thread waiting for `what` runnable again (they run when chosen).
    pub fn wake(&self, what: u64) {
        let mut st = self.scheduler.lock();
        for slot in st.slots.iter_mut() {
            if matches!(slot.life, Life::Waiting { what: w, .. } if w == what) {
                slot.life = Life::Runnable;
            }
        }
    }

    /// Waits until the threads `tids` (spawned in this run) have ended. Threads not of this
    /// run are not waited for. `Err(Abort)`: a deadlock's victim.
    pub fn join(&self, tids: &[ThreadId]) -> Result<(), Abort> {
        let s = &*self.scheduler;
        let mut st = s.lock();
        let on: Vec<usize> = (0..st.slots.len())
            .filter(|t| st.slots[*t].tid.is_some_and(|id| tids.contains(&id)))
            .filter(|t| st.slots[*t].life != Life::Done)
            .collect();
        if on.is_empty() {
            return Ok(());
        }
        let steps = st.steps;
        if st.chooser.picker.is_some() {
            let names: Vec<&str> = on.iter().map(|t| st.slots[*t].name.as_str()).collect();
            st.slots[self.me].next = format!("join {}", names.join(", "));
        }
        st.slots[self.me].life = Life::Joining(on);
        st.slots[self.me].blocked_at = steps;
        s.hand_on(&mut st, false);
        s.wait_for_turn(st, self.me).map(drop)
    }

    /// Registers a thread about to be spawned, named `name`: runnable, it first runs when
    /// chosen. The spawned thread calls [`Spawned::enter`]; the spawner, once it has the
    /// thread, [`Turn::bind`]s it.
    pub fn spawn(&self, name: &str) -> Spawned {
        let mut st = self.scheduler.lock();
        st.slots.push(Slot::new(name, "start", None));
        Spawned {
            scheduler: Arc::clone(&self.scheduler),
            me: st.slots.len() - 1,
        }
    }

    /// Tells the scheduler which OS thread a [`Turn::spawn`]ed slot is (for joins).
    pub fn bind(&self, spawned: usize, tid: ThreadId) {
        self.scheduler.lock().slots[spawned].tid = Some(tid);
    }

    /// [`Turn::bind`] for the last thread registered (the spawner holds the token: no
    /// other thread registered one since).
    pub fn bind_last(&self, tid: ThreadId) {
        let mut st = self.scheduler.lock();
        if let Some(slot) = st.slots.last_mut() {
            slot.tid = Some(tid);
        }
    }

    /// Virtual time now, in µs since the run began.
    pub fn now(&self) -> u64 {
        self.scheduler.lock().now
    }
}

/// A thread registered in a scheduled run, not yet started.
pub struct Spawned {
    scheduler: Arc<Scheduler>,
    me: usize,
}

impl Spawned {
    /// Its number in the run.
    pub fn index(&self) -> usize {
        self.me
    }

    /// Called first on the spawned thread: it becomes this run's thread, and waits to be
    /// chosen. The returned guard ends it in the run when dropped (returned or panicked).
    pub fn enter(self) -> Leave {
        let turn = Turn {
            scheduler: Arc::clone(&self.scheduler),
            me: self.me,
        };
        CURRENT.with(|c| *c.borrow_mut() = Some(turn));
        let st = self.scheduler.lock();
        // A thread that has not started waits for nothing: it cannot be a victim.
        let st = self.scheduler.wait_for_turn(st, self.me);
        let name = st
            .as_ref()
            .map(|st| st.slots[self.me].name.clone())
            .unwrap_or_default();
        drop(st);
        // A test hook: this thread blocks outside the lab once it runs, as one stuck on
        // something the scheduler does not see would.
        if std::env::var("THREADLAB_TEST_STUCK").is_ok_and(|n| n == name) {
            std::thread::sleep(Duration::from_secs(60));
        }
        Leave {
            scheduler: self.scheduler,
            me: self.me,
        }
    }
}

/// Ends a thread in its scheduled run when dropped (its body returned or panicked), and
/// hands the token on if it held it.
pub struct Leave {
    scheduler: Arc<Scheduler>,
    me: usize,
}

impl Drop for Leave {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
        self.scheduler.leave(self.me);
    }
}

/// A scheduled run, from the thread that begins it (thread 0, which holds the token).
pub struct Session {
    scheduler: Arc<Scheduler>,
}

/// What a scheduled run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Each choice among two or more runnable threads.
    pub choices: Vec<Choice>,
    /// Scheduling points passed.
    pub steps: u32,
    /// Deadlocks met (each ended its last waiter's wait).
    pub deadlocks: u32,
    /// Virtual time at the end, in µs.
    pub now: u64,
    /// The product of the choices' alternatives (past the plan's cap, the run stopped
    /// choosing).
    pub tree: f64,
}

impl Summary {
    /// How many choices preempted a thread that could have gone on.
    pub fn preemptions(&self) -> u32 {
        self.choices.iter().filter(|c| c.preempts()).count() as u32
    }
}

impl Session {
    /// Begins a scheduled run on the current thread, named `name`, by `plan`.
    pub fn begin(plan: impl Into<Plan>, name: &str) -> Session {
        let scheduler = Arc::new(Scheduler {
            state: Mutex::new(State {
                running: Some(0),
                slots: vec![Slot::new(name, "", Some(std::thread::current().id()))],
                deadlocks: 0,
                chooser: Chooser::new(plan.into()),
                choices: Vec::new(),
                steps: 0,
                now: 0,
                moved: Instant::now(),
            }),
            base: Instant::now(),
        });
        let turn = Turn {
            scheduler: Arc::clone(&scheduler),
            me: 0,
        };
        CURRENT.with(|c| *c.borrow_mut() = Some(turn));
        Session { scheduler }
    }

    /// Ends the run (every thread it spawned should have ended) and says what it did.
    pub fn end(self) -> Summary {
        CURRENT.with(|c| *c.borrow_mut() = None);
        let st = self.scheduler.lock();
        Summary {
            choices: st.choices.clone(),
            steps: st.steps,
            deadlocks: st.deadlocks,
            now: st.now,
            tree: st.chooser.tree,
        }
    }
}

/// One thread's body in a scheduled run.
pub type Body<'a, T> = Box<dyn FnOnce(&Turn) -> Result<T, Abort> + Send + 'a>;

/// Whether the current thread runs in a scheduled run. A demo that arranges the unlucky
/// interleaving on the OS's schedule (a barrier that makes both tellers hold before either
/// asks) leaves it to the lab's choices here: that is what exploring counts.
pub fn active() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// A scheduling point for the current thread if it runs in a scheduled run (one
/// thread-local read otherwise). A primitive calls it as an operation begins, before it
/// takes its state's lock.
pub fn point() {
    if let Some(turn) = current() {
        turn.point();
    }
}

/// Whether the thread `tid` of the current scheduled run has ended (`None` outside one, or
/// for a thread not of it).
pub fn ended(tid: ThreadId) -> Option<bool> {
    let turn = current()?;
    let st = turn.scheduler.lock();
    let slot = st.slots.iter().find(|s| s.tid == Some(tid))?;
    Some(slot.life == Life::Done)
}

/// [`point`], with what the thread is about to do (for `--step`): a demo declares where
/// its lesson lives ("read 75", "write 76 (read 75)").
pub fn point_doing(next: impl FnOnce() -> String) {
    if let Some(turn) = current() {
        turn.point_doing(next);
    }
}

/// What [`run`] did.
#[derive(Debug)]
pub struct Run<T> {
    /// Each body's result, in order (`Err(Abort)`: it gave up a wait, a deadlock's victim,
    /// or it panicked).
    pub results: Vec<Result<T, Abort>>,
    /// Whether the run met a deadlock.
    pub deadlock: bool,
    /// Each choice among two or more runnable threads.
    pub choices: Vec<Choice>,
    /// Scheduling points passed.
    pub steps: u32,
}

/// Runs `bodies`, one OS thread each, one at a time by `strategy`, from a thread that
/// spawns them and waits for them all: a scheduled run of a model (tests, `make bench`).
pub fn run<T: Send>(strategy: impl Into<Plan>, bodies: Vec<Body<'_, T>>) -> Run<T> {
    let session = Session::begin(strategy, "main");
    let turn = current().expect("the session's thread");
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let spawned = turn.spawn(&format!("T{i}"));
                let me = spawned.index();
                let h = s.spawn(move || {
                    let leave = spawned.enter();
                    let result = body(&current().expect("entered"));
                    drop(leave);
                    result
                });
                turn.bind(me, h.thread().id());
                h
            })
            .collect();
        let tids: Vec<ThreadId> = handles.iter().map(|h| h.thread().id()).collect();
        let _ = turn.join(&tids);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Abort)))
            .collect()
    });
    let summary = session.end();
    Run {
        results,
        deadlock: summary.deadlocks > 0,
        choices: summary.choices,
        steps: summary.steps,
    }
}

/// What [`explore`] found: each outcome, how many schedules reach it, and the choices of
/// the first schedule that did (a replay).
#[derive(Debug)]
pub struct Census<O> {
    /// Outcome → (schedules, the first one's choices).
    pub outcomes: BTreeMap<O, (u64, Vec<u32>)>,
    /// Schedules run.
    pub schedules: u64,
    /// Alternatives not run because they would preempt more than the bound allows.
    pub pruned: u64,
}

/// The alternatives at a choice, the default first (the running thread going on, if it
/// can), then the others in thread order: the order exploration tries them in.
fn alternatives(c: &Choice) -> impl Iterator<Item = u32> {
    let d = c.default_choice();
    std::iter::once(d).chain((0..c.of).filter(move |a| *a != d))
}

/// Runs every schedule of `model` (a fresh scenario per run: its outcome and the run's
/// choices), by re-running it with each prefix of choices in depth-first order, the
/// default continuation after each prefix. With `preemptions`, a schedule that would
/// preempt a running thread more often is not run (counted as pruned): CHESS's bound,
/// under which most concurrency bugs already show. Stops after `limit` schedules (`None`
/// when there were more).
pub fn explore<O: Ord + Clone>(
    limit: u64,
    preemptions: Option<u32>,
    mut model: impl FnMut(Strategy) -> (O, Vec<Choice>),
) -> Option<Census<O>> {
    let mut census = Census {
        outcomes: BTreeMap::new(),
        schedules: 0,
        pruned: 0,
    };
    let mut prefix: Vec<u32> = Vec::new();
    loop {
        if census.schedules == limit {
            return None;
        }
        let (outcome, choices) = model(Strategy::Replay(prefix.clone()));
        census.schedules += 1;
        let replay: Vec<u32> = choices.iter().map(|c| c.chosen).collect();
        census.outcomes.entry(outcome).or_insert((0, replay)).0 += 1;
        match next_prefix(&choices, preemptions, &mut census.pruned) {
            Some(next) => prefix = next,
            None => return Some(census),
        }
    }
}

/// The next schedule to run after one that made `choices`: the last choice that has an
/// untried alternative within the preemption bound, taken.
fn next_prefix(choices: &[Choice], bound: Option<u32>, pruned: &mut u64) -> Option<Vec<u32>> {
    for at in (0..choices.len()).rev() {
        let c = &choices[at];
        let before = choices[..at].iter().filter(|c| c.preempts()).count() as u32;
        let order: Vec<u32> = alternatives(c).collect();
        let tried = order
            .iter()
            .position(|a| *a == c.chosen)
            .unwrap_or(order.len());
        for &a in &order[tried + 1..] {
            let preempts = c.stay.is_some_and(|s| s != a);
            if bound.is_some_and(|b| before + u32::from(preempts) > b) {
                *pruned += 1;
                continue;
            }
            let mut next: Vec<u32> = choices[..at].iter().map(|c| c.chosen).collect();
            next.push(a);
            return Some(next);
        }
    }
    None
}

/// A replay's choices as a short text: one base-36 digit per choice (`0-9a-z`).
pub fn encode(choices: &[u32]) -> String {
    choices
        .iter()
        .map(|c| char::from_digit(*c, 36).unwrap_or('z'))
        .collect()
}

/// The choices an [`encode`]d text stands for, or the first character that is not a digit.
pub fn decode(text: &str) -> Result<Vec<u32>, char> {
    text.chars().map(|c| c.to_digit(36).ok_or(c)).collect()
}

/// Race's lesson as a model: two threads each adding 1 to a shared counter `k` times, a
/// scheduling point before each read and each write (a thread's start is the point before
/// its first read). Returns the final value and the run's choices. Its schedules are the
/// C(4k, 2k) interleavings of the reads and writes (tests and `make bench` explore it).
pub fn counter_model(strategy: impl Into<Plan>, k: u64) -> (u64, Vec<Choice>) {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    let value = AtomicU64::new(0);
    let add = |turn: &Turn| {
        for i in 0..k {
            if i > 0 {
                turn.point();
            }
            let read = value.load(SeqCst);
            turn.point();
            value.store(read + 1, SeqCst);
        }
        Ok(())
    };
    let run = run(strategy, vec![Box::new(add), Box::new(add)]);
    (value.load(SeqCst), run.choices)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::counter_model as counter;

    #[test]
    fn the_same_seed_and_the_same_choices_replay_the_same_run() {
        let _bound = crate::sync::bounded_test(20);
        for seed in 0..20 {
            let (a, choices) = counter(Strategy::Random(seed), 3);
            let (b, again) = counter(Strategy::Random(seed), 3);
            assert_eq!((a, &choices), (b, &again), "seed {seed}");
            let replay: Vec<u32> = choices.iter().map(|c| c.chosen).collect();
            let (c, replayed) = counter(Strategy::Replay(replay.clone()), 3);
            assert_eq!((c, replayed), (a, choices), "seed {seed}: the replay");
            assert_eq!(decode(&encode(&replay)), Ok(replay));
        }
    }

    /// C(n, k).
    fn binomial(n: u64, k: u64) -> u64 {
        (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
    }

    #[test]
    fn exploring_the_counter_runs_every_interleaving_and_counts_the_lost_updates() {
        let _bound = crate::sync::bounded_test(60);
        for k in 1..=3u64 {
            let census = explore(100_000, None, |s| counter(s, k)).expect("within the limit");
            // Each thread's 2k operations, interleaved: C(4k, 2k) schedules, each once.
            assert_eq!(census.schedules, binomial(4 * k, 2 * k), "k = {k}");
            let total: u64 = census.outcomes.values().map(|o| o.0).sum();
            assert_eq!(total, census.schedules);
            // No update lost exactly when no increment is split by the other thread's: the
            // interleavings of 2k whole increments, C(2k, k).
            assert_eq!(
                census.outcomes[&(2 * k)].0,
                binomial(2 * k, k),
                "k = {k}: none lost"
            );
            assert!(
                census.outcomes.keys().any(|v| *v < 2 * k),
                "k = {k}: a lost update exists"
            );
            // Each outcome's first schedule replays to it.
            for (value, (_, choices)) in &census.outcomes {
                assert_eq!(counter(Strategy::Replay(choices.clone()), k).0, *value);
            }
        }
        // k = 1 by hand: both reads before both writes (4 orders) lose one update.
        let census = explore(100, None, |s| counter(s, 1)).unwrap();
        assert_eq!(census.outcomes[&1].0, 4);
        assert_eq!(census.outcomes[&2].0, 2);
    }

    #[test]
    fn a_preemption_bound_runs_only_the_schedules_within_it() {
        let _bound = crate::sync::bounded_test(30);
        // No preemption: one thread runs whole, then the other (2 schedules), nothing lost.
        let none = explore(1000, Some(0), |s| counter(s, 2)).expect("within the limit");
        assert_eq!(none.schedules, 2);
        assert_eq!(none.outcomes.keys().collect::<Vec<_>>(), [&4]);
        // One: a thread preempted between its read and its write loses the other's work.
        let one = explore(1000, Some(1), |s| counter(s, 2)).expect("within the limit");
        assert!(one.schedules > 2 && one.schedules < 70, "{}", one.schedules);
        assert!(one.pruned > 0);
        assert!(one.outcomes.keys().any(|v| *v < 4), "{:?}", one.outcomes);
        for (_, choices) in one.outcomes.values() {
            let (_, replayed) = counter(Strategy::Replay(choices.clone()), 2);
            assert!(replayed.iter().filter(|c| c.preempts()).count() <= 1);
        }
    }

    /// Two tellers taking two locks, in opposite orders or in the same order. A lock is a
    /// holder slot; a taken lock makes the asker wait for it.
    fn tellers(strategy: Strategy, ordered: bool) -> (bool, Vec<Choice>) {
        let locks: [Mutex<Option<usize>>; 2] = [Mutex::new(None), Mutex::new(None)];
        let take = |turn: &Turn, l: usize| -> Result<(), Abort> {
            loop {
                turn.point();
                let mut holder = locks[l].lock().unwrap();
                if holder.is_none() {
                    *holder = Some(turn.me());
                    return Ok(());
                }
                drop(holder);
                turn.block_on(l as u64, None)?;
            }
        };
        let give = |turn: &Turn, l: usize| {
            *locks[l].lock().unwrap() = None;
            turn.wake(l as u64);
        };
        let teller = |first: usize, second: usize| {
            move |turn: &Turn| -> Result<(), Abort> {
                take(turn, first)?;
                take(turn, second)?;
                give(turn, second);
                give(turn, first);
                Ok(())
            }
        };
        let second = if ordered { teller(0, 1) } else { teller(1, 0) };
        let run = run(strategy, vec![Box::new(teller(0, 1)), Box::new(second)]);
        (run.deadlock, run.choices)
    }

    #[test]
    fn the_deadlock_is_found_in_some_schedules_and_never_with_one_lock_order() {
        let _bound = crate::sync::bounded_test(60);
        let crossed = explore(10_000, None, |s| tellers(s, false)).unwrap();
        assert!(crossed.outcomes.contains_key(&true), "{crossed:?}");
        assert!(crossed.outcomes.contains_key(&false));
        let (deadlock, _) = tellers(Strategy::Replay(crossed.outcomes[&true].1.clone()), false);
        assert!(deadlock, "the deadlock's schedule replays to it");
        let ordered = explore(10_000, None, |s| tellers(s, true)).unwrap();
        assert_eq!(ordered.outcomes.keys().collect::<Vec<_>>(), [&false]);
    }

    #[test]
    fn virtual_time_moves_only_when_no_thread_can_run_to_the_earliest_deadline() {
        let _bound = crate::sync::bounded_test(20);
        for seed in 0..10 {
            // A (thread 1) sleeps 1000 µs; B (2) sleeps 300 µs, then wakes C, which would wait 2000 µs.
            let sleeper = |d: u64| {
                move |turn: &Turn| -> Result<(Woke, u64), Abort> {
                    let woke = turn.block_on(1000 + turn.me() as u64, Some(d))?;
                    if turn.me() == 2 {
                        turn.wake(30);
                    }
                    Ok((woke, turn.now()))
                }
            };
            let waiter = |turn: &Turn| -> Result<(Woke, u64), Abort> {
                let woke = turn.block_on(30, Some(2000))?;
                Ok((woke, turn.now()))
            };
            let run = run(
                Strategy::Random(seed),
                vec![
                    Box::new(sleeper(1000)),
                    Box::new(sleeper(300)),
                    Box::new(waiter),
                ],
            );
            let got: Vec<(Woke, u64)> = run.results.into_iter().map(Result::unwrap).collect();
            let woke: Vec<Woke> = got.iter().map(|g| g.0).collect();
            assert_eq!(
                woke,
                [Woke::TimedOut, Woke::TimedOut, Woke::Woken],
                "seed {seed}"
            );
            // Each deadline from when its wait began, a few steps (a µs each) in; C woken
            // when B woke it, after B's deadline.
            let (a, b, c) = (got[0].1, got[1].1, got[2].1);
            let steps = 10 * STEP_US;
            assert!((1000..1000 + steps).contains(&a), "seed {seed}: {got:?}");
            assert!((300..300 + steps).contains(&b), "seed {seed}: {got:?}");
            assert!(
                (b..b + steps).contains(&c) && c < 2000,
                "seed {seed}: {got:?}"
            );
            assert!(!run.deadlock);
        }
    }

    #[test]
    fn a_body_that_panics_ends_its_thread_and_the_run_goes_on() {
        let _bound = crate::sync::bounded_test(20);
        crate::lab::expecting_panics(|| {
            let run = run(
                Strategy::Random(3),
                vec![
                    Box::new(|turn: &Turn| -> Result<u32, Abort> {
                        turn.point();
                        panic!("on purpose");
                    }),
                    Box::new(|turn: &Turn| -> Result<u32, Abort> {
                        turn.point();
                        turn.point();
                        Ok(7)
                    }),
                ],
            );
            assert_eq!(run.results, [Err(Abort), Ok(7)]);
        });
    }

    #[test]
    fn random_and_pct_find_the_lost_update_within_100_schedules() {
        let _bound = crate::sync::bounded_test(60);
        let found =
            |make: &dyn Fn(u64) -> Strategy| (0..100).find(|seed| counter(make(*seed), 2).0 < 4);
        assert!(found(&Strategy::Random).is_some());
        assert!(
            found(&|seed| Strategy::Pct {
                seed,
                depth: 2,
                steps: 16
            })
            .is_some()
        );
    }
}

/// The primitives under the scheduler: their waits are the scheduler's, their signals and
/// releases wake, their operations are scheduling points.
#[cfg(test)]
mod primitives {
    use super::*;
    use crate::lab::Probe;
    use crate::sync::{Event, JoinableQueue, RLock};

    /// Two tellers taking two real `RLock`s, in opposite orders or the same order: whether
    /// the run ended refused (a deadlock), and its choices.
    fn tellers(strategy: Strategy, ordered: bool) -> (bool, Vec<Choice>) {
        let locks = [RLock::new(Probe::off("A")), RLock::new(Probe::off("B"))];
        let teller = |first: usize, second: usize| {
            let locks = &locks;
            move |_: &Turn| -> Result<bool, Abort> {
                locks[first].acquire();
                let got = locks[second].acquire_timeout(std::time::Duration::from_secs(3600));
                if got.is_ok() {
                    let _ = locks[second].release();
                }
                let _ = locks[first].release();
                Ok(got.is_err())
            }
        };
        let second = if ordered { teller(0, 1) } else { teller(1, 0) };
        let run = run(strategy, vec![Box::new(teller(0, 1)), Box::new(second)]);
        let refused = run.results.iter().any(|r| !matches!(r, Ok(false)));
        (refused || run.deadlock, run.choices)
    }

    #[test]
    fn real_locks_deadlock_in_some_schedules_and_never_in_one_order() {
        let _bound = crate::sync::bounded_test(60);
        let crossed = explore(10_000, None, |s| tellers(s, false)).expect("within the limit");
        assert!(crossed.outcomes.contains_key(&true), "{crossed:?}");
        assert!(crossed.outcomes.contains_key(&false), "{crossed:?}");
        let ordered = explore(10_000, None, |s| tellers(s, true)).expect("within the limit");
        assert_eq!(ordered.outcomes.keys().collect::<Vec<_>>(), [&false]);
    }

    /// A producer putting 3 items through a one-slot queue, then closing it; a consumer
    /// taking until closed. What the consumer got.
    fn pipeline(strategy: Strategy) -> (Vec<u32>, Vec<Choice>) {
        let q = JoinableQueue::new(1, Probe::off("q"));
        let producer = |_: &Turn| -> Result<Vec<u32>, Abort> {
            for i in 0..3 {
                q.put(i).expect("open");
            }
            q.close();
            Ok(Vec::new())
        };
        let consumer = |_: &Turn| -> Result<Vec<u32>, Abort> {
            let mut got = Vec::new();
            while let Some(i) = q.get() {
                got.push(i);
                let _ = q.task_done();
            }
            Ok(got)
        };
        let run = run(strategy, vec![Box::new(producer), Box::new(consumer)]);
        let got = run.results.into_iter().flatten().flatten().collect();
        (got, run.choices)
    }

    #[test]
    fn every_schedule_of_a_bounded_queue_delivers_every_item_once_in_order() {
        let _bound = crate::sync::bounded_test(60);
        let census = explore(10_000, None, pipeline).expect("within the limit");
        assert_eq!(
            census.outcomes.keys().collect::<Vec<_>>(),
            [&vec![0, 1, 2]],
            "{census:?}"
        );
        assert!(census.schedules > 1, "more than one interleaving explored");
    }

    #[test]
    fn a_set_event_wakes_its_waiter_in_every_schedule_and_a_timed_wait_times_out_in_virtual_time() {
        let _bound = crate::sync::bounded_test(60);
        let census = explore(10_000, None, |strategy| {
            let ev = Event::new();
            let waiter = |_: &Turn| -> Result<bool, Abort> { Ok(ev.wait()) };
            let setter = |_: &Turn| -> Result<bool, Abort> {
                ev.set();
                Ok(true)
            };
            let run = run(strategy, vec![Box::new(waiter), Box::new(setter)]);
            let woke = run.results.iter().all(|r| *r == Ok(true));
            (woke, run.choices)
        })
        .expect("within the limit");
        assert_eq!(census.outcomes.keys().collect::<Vec<_>>(), [&true]);
        // Nobody sets: the timed wait ends at its deadline, at once in real time.
        let started = std::time::Instant::now();
        let ev = Event::new();
        let run = run(
            Strategy::Random(1),
            vec![Box::new(|turn: &Turn| -> Result<(bool, u64), Abort> {
                Ok((
                    ev.wait_timeout(std::time::Duration::from_secs(30)),
                    turn.now(),
                ))
            })],
        );
        let (woke, at) = run.results[0].expect("ran");
        assert!(!woke);
        assert!(
            (30_000_000..30_000_000 + 10 * STEP_US).contains(&at),
            "{at}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
