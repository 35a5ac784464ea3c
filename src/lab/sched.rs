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
//! Time in a scheduled run is virtual: a wait may have a deadline (`block_on(what,
//! Some(µs))`), and the clock moves only when no thread can run, to the earliest deadline,
//! whose waiter then times out ([`Woke::TimedOut`]). A simulated sleep is such a wait that
//! nobody wakes. A run is identical on every replay, and takes CPU time only.
//!
//! This module is the core that the wait protocol (`lab::probe`) will drive ([`current`]
//! gives a scheduled thread its [`Turn`]): each blocking point of a primitive a `block_on`
//! of what it waits for, each signal a `wake`. One rule for that: a thread must never hold a
//! lock another scheduled thread may take across a scheduling point (the other would block
//! on it for real while the holder waits for the token): a primitive's point comes before
//! it takes its state's lock, and a wait releases that lock before `block_on`.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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
    /// then always the first runnable thread.
    Replay(Vec<u32>),
}

/// The run was ended by a deadlock: every thread left waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Runnable,
    /// Waiting for `what`, until a virtual deadline if it has one.
    Waiting {
        what: u64,
        until: Option<u64>,
    },
    /// Its deadline came with nobody waking it: runnable, and told so.
    TimedOut,
    Done,
}

/// How a [`Turn::block_on`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// Another thread woke what it waited for.
    Woken,
    /// Its deadline came first (virtual time: no thread could run before it).
    TimedOut,
}

struct State {
    /// The thread holding the token, if any.
    running: Option<usize>,
    lives: Vec<Life>,
    /// Set when no thread can run and some wait with no deadline: every waiter returns
    /// `Abort`.
    deadlock: bool,
    /// Virtual time, in µs: it moves only when no thread can run, to the earliest deadline.
    now: u64,
    chooser: Chooser,
    /// Each choice made among two or more runnable threads, and how many there were.
    choices: Vec<(u32, u32)>,
    steps: u32,
}

/// The strategy's state through one run.
struct Chooser {
    strategy: Strategy,
    rng: StdRng,
    /// PCT: each thread's priority (higher runs first), and the steps where the running
    /// thread's priority drops.
    priorities: Vec<u32>,
    change_points: Vec<u32>,
}

impl Chooser {
    fn new(strategy: Strategy, threads: usize) -> Self {
        let seed = match strategy {
            Strategy::Random(seed) | Strategy::Pct { seed, .. } => seed,
            Strategy::Replay(_) => 0,
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut priorities, mut change_points) = (Vec::new(), Vec::new());
        if let Strategy::Pct { depth, steps, .. } = strategy {
            // Distinct priorities above every change point's.
            let mut p: Vec<u32> = (0..threads as u32).map(|i| depth + i).collect();
            for i in (1..p.len()).rev() {
                p.swap(i, rng.random_range(0..=i));
            }
            priorities = p;
            change_points = (1..depth)
                .map(|_| rng.random_range(0..steps.max(1)))
                .collect();
        }
        Self {
            strategy,
            rng,
            priorities,
            change_points,
        }
    }

    /// The index (among `runnable`) to run, at the `decision`-th choice and the `step`-th
    /// scheduling point; `running` is the thread that just gave the token back.
    fn choose(
        &mut self,
        runnable: &[usize],
        decision: usize,
        step: u32,
        running: Option<usize>,
    ) -> u32 {
        match &self.strategy {
            Strategy::Random(_) => self.rng.random_range(0..runnable.len() as u32),
            Strategy::Replay(prefix) => prefix.get(decision).copied().unwrap_or(0),
            Strategy::Pct { .. } => {
                for (k, at) in self.change_points.iter().enumerate() {
                    if *at == step
                        && let Some(r) = running
                    {
                        self.priorities[r] = k as u32;
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

/// One scheduled run's shared state: the token, who is runnable, the choices made.
pub struct Scheduler {
    state: Mutex<State>,
    turn: Condvar,
}

/// A thread's handle on the scheduler, inside a scheduled run.
#[derive(Clone)]
pub struct Turn {
    scheduler: Arc<Scheduler>,
    me: usize,
}

thread_local! {
    /// The current thread's turn, while it runs a scheduled run's body.
    static CURRENT: std::cell::RefCell<Option<Turn>> = const { std::cell::RefCell::new(None) };
}

/// The current thread's turn, if it runs inside a scheduled run: the wait protocol asks,
/// and hands its waits and signals to the scheduler.
pub fn current() -> Option<Turn> {
    CURRENT.with(|c| c.borrow().clone())
}

/// What a scheduled run did.
#[derive(Debug)]
pub struct Run<T> {
    /// Each thread's result, in thread order (`Err(Abort)`: it was waiting when the run
    /// deadlocked).
    pub results: Vec<Result<T, Abort>>,
    /// Whether the run ended in a deadlock.
    pub deadlock: bool,
    /// Each choice among two or more runnable threads: the index chosen, and how many
    /// there were. The chosen indexes replay the run ([`Strategy::Replay`]).
    pub choices: Vec<(u32, u32)>,
    /// Scheduling points passed.
    pub steps: u32,
}

impl Scheduler {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the token to the next thread (chosen among the runnable), or declares the
    /// deadlock when none can run and some wait. Called with the token held (or at start).
    fn hand_on(&self, st: &mut State) {
        let runnable = |st: &State| -> Vec<usize> {
            (0..st.lives.len())
                .filter(|t| matches!(st.lives[*t], Life::Runnable | Life::TimedOut))
                .collect()
        };
        if runnable(st).is_empty() {
            Self::advance_clock(st);
        }
        let runnable = runnable(st);
        st.steps += 1;
        st.running = match runnable.len() {
            0 => {
                st.deadlock = st.lives.iter().any(|l| matches!(l, Life::Waiting { .. }));
                None
            }
            1 => Some(runnable[0]),
            n => {
                let decision = st.choices.len();
                let (steps, running) = (st.steps, st.running);
                let i = st.chooser.choose(&runnable, decision, steps, running);
                let i = i.min(n as u32 - 1);
                st.choices.push((i, n as u32));
                Some(runnable[i as usize])
            }
        };
        self.turn.notify_all();
    }

    /// No thread can run: virtual time jumps to the earliest deadline, and every waiter
    /// whose deadline it is times out (nothing changes when no waiter has one).
    fn advance_clock(st: &mut State) {
        let next = st
            .lives
            .iter()
            .filter_map(|l| match l {
                Life::Waiting { until, .. } => *until,
                _ => None,
            })
            .min();
        if let Some(at) = next {
            st.now = st.now.max(at);
            for life in st.lives.iter_mut() {
                if matches!(life, Life::Waiting { until: Some(u), .. } if *u <= at) {
                    *life = Life::TimedOut;
                }
            }
        }
    }

    /// Waits until `me` holds the token, or the run deadlocked (then `Abort` if `me` waits).
    fn wait_for_turn<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        me: usize,
    ) -> Result<MutexGuard<'a, State>, Abort> {
        loop {
            if st.running == Some(me) {
                return Ok(st);
            }
            if st.deadlock && matches!(st.lives[me], Life::Waiting { .. }) {
                return Err(Abort);
            }
            st = self.turn.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Turn {
    /// This thread's number in the run (its place in the list of bodies).
    pub fn me(&self) -> usize {
        self.me
    }

    /// A scheduling point: the scheduler may let another thread run before this one goes on.
    pub fn point(&self) {
        let s = &*self.scheduler;
        let mut st = s.lock();
        s.hand_on(&mut st);
        // This thread is runnable: it gets the token back, by the strategy's choice.
        drop(s.wait_for_turn(st, self.me));
    }

    /// This thread waits for `what` (a lock's id, a queue's items…), for at most `within`
    /// µs of virtual time if given: it is not runnable until another thread calls
    /// [`Turn::wake`] with it, or its deadline comes (virtual time moves only when no thread
    /// can run). `Err(Abort)` when every thread left waits with no deadline: the deadlock
    /// ended the run.
    pub fn block_on(&self, what: u64, within: Option<u64>) -> Result<Woke, Abort> {
        let s = &*self.scheduler;
        let mut st = s.lock();
        let until = within.map(|d| st.now.saturating_add(d));
        st.lives[self.me] = Life::Waiting { what, until };
        s.hand_on(&mut st);
        let mut st = s.wait_for_turn(st, self.me)?;
        let woke = if st.lives[self.me] == Life::TimedOut {
            Woke::TimedOut
        } else {
            Woke::Woken
        };
        st.lives[self.me] = Life::Runnable;
        Ok(woke)
    }

    /// Makes every thread waiting for `what` runnable again (they run when chosen).
    pub fn wake(&self, what: u64) {
        let mut st = self.scheduler.lock();
        for life in st.lives.iter_mut() {
            if matches!(life, Life::Waiting { what: w, .. } if *w == what) {
                *life = Life::Runnable;
            }
        }
    }

    /// Virtual time now, in µs since the run began.
    pub fn now(&self) -> u64 {
        self.scheduler.lock().now
    }
}

/// One thread's body in a scheduled run.
pub type Body<'a, T> = Box<dyn FnOnce(&Turn) -> Result<T, Abort> + Send + 'a>;

/// A scheduling point for the current thread if it runs in a scheduled run (one
/// thread-local read otherwise). A primitive calls it as an operation begins, before it
/// takes its state's lock.
pub fn point() {
    if let Some(turn) = current() {
        turn.point();
    }
}

/// Runs `bodies`, one OS thread each, one at a time by `strategy`: each body runs only while
/// its thread holds the token, and gives it back at its scheduling points and when it ends.
pub fn run<T: Send>(strategy: Strategy, bodies: Vec<Body<'_, T>>) -> Run<T> {
    let n = bodies.len();
    let scheduler = Arc::new(Scheduler {
        state: Mutex::new(State {
            running: None,
            lives: vec![Life::Runnable; n],
            deadlock: false,
            chooser: Chooser::new(strategy, n),
            choices: Vec::new(),
            steps: 0,
            now: 0,
        }),
        turn: Condvar::new(),
    });
    {
        let mut st = scheduler.lock();
        scheduler.hand_on(&mut st);
    }
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .into_iter()
            .enumerate()
            .map(|(me, body)| {
                let scheduler = Arc::clone(&scheduler);
                s.spawn(move || {
                    let turn = Turn {
                        scheduler: Arc::clone(&scheduler),
                        me,
                    };
                    CURRENT.with(|c| *c.borrow_mut() = Some(turn.clone()));
                    // Done however the body ends, a panic included: the token moves on.
                    let _leave = Leave(&scheduler, me);
                    scheduler
                        .wait_for_turn(scheduler.lock(), me)
                        .map(drop)
                        .and_then(|()| body(&turn))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Abort)))
            .collect()
    });
    let st = scheduler.lock();
    Run {
        results,
        deadlock: st.deadlock,
        choices: st.choices.clone(),
        steps: st.steps,
    }
}

/// Marks a thread of a scheduled run done when dropped (its body returned or panicked), and
/// hands the token on if it held it.
struct Leave<'a>(&'a Scheduler, usize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let Leave(scheduler, me) = *self;
        CURRENT.with(|c| *c.borrow_mut() = None);
        let mut st = scheduler.lock();
        st.lives[me] = Life::Done;
        if st.running == Some(me) {
            scheduler.hand_on(&mut st);
        }
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
}

/// Runs every schedule of `model` (a fresh scenario per run: its bodies, and what to call
/// the run's outcome), by re-running it with each prefix of choices in depth-first order.
/// Stops after `limit` schedules (`None` when there were more).
pub fn explore<O: Ord + Clone>(
    limit: u64,
    mut model: impl FnMut(Strategy) -> (O, Vec<(u32, u32)>),
) -> Option<Census<O>> {
    let mut census = Census {
        outcomes: BTreeMap::new(),
        schedules: 0,
    };
    let mut prefix: Vec<u32> = Vec::new();
    loop {
        if census.schedules == limit {
            return None;
        }
        let (outcome, choices) = model(Strategy::Replay(prefix.clone()));
        census.schedules += 1;
        let replay: Vec<u32> = choices.iter().map(|c| c.0).collect();
        census.outcomes.entry(outcome).or_insert((0, replay)).0 += 1;
        // The next schedule: the last choice that has an untried alternative, taken.
        let Some(at) = choices.iter().rposition(|(i, n)| i + 1 < *n) else {
            return Some(census);
        };
        prefix = choices[..at].iter().map(|c| c.0).collect();
        prefix.push(choices[at].0 + 1);
    }
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
pub fn counter_model(strategy: Strategy, k: u64) -> (u64, Vec<(u32, u32)>) {
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
            let replay: Vec<u32> = choices.iter().map(|c| c.0).collect();
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
            let census = explore(100_000, |s| counter(s, k)).expect("within the limit");
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
        let census = explore(100, |s| counter(s, 1)).unwrap();
        assert_eq!(census.outcomes[&1].0, 4);
        assert_eq!(census.outcomes[&2].0, 2);
    }

    /// Two tellers taking two locks, in opposite orders or in the same order. A lock is a
    /// holder slot; a taken lock makes the asker wait for it.
    fn tellers(strategy: Strategy, ordered: bool) -> (bool, Vec<(u32, u32)>) {
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
        let crossed = explore(10_000, |s| tellers(s, false)).unwrap();
        assert!(crossed.outcomes.contains_key(&true), "{crossed:?}");
        assert!(crossed.outcomes.contains_key(&false));
        let (deadlock, _) = tellers(Strategy::Replay(crossed.outcomes[&true].1.clone()), false);
        assert!(deadlock, "the deadlock's schedule replays to it");
        let ordered = explore(10_000, |s| tellers(s, true)).unwrap();
        assert_eq!(ordered.outcomes.keys().collect::<Vec<_>>(), [&false]);
    }

    #[test]
    fn virtual_time_moves_only_when_no_thread_can_run_to_the_earliest_deadline() {
        let _bound = crate::sync::bounded_test(20);
        for seed in 0..10 {
            // A sleeps 1000 µs; B sleeps 300 µs, then wakes C, which would wait 2000 µs.
            let sleeper = |d: u64| {
                move |turn: &Turn| -> Result<(Woke, u64), Abort> {
                    let woke = turn.block_on(1000 + turn.me() as u64, Some(d))?;
                    if turn.me() == 1 {
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
            assert_eq!(
                got,
                [
                    (Woke::TimedOut, 1000),
                    (Woke::TimedOut, 300),
                    (Woke::Woken, 300)
                ],
                "seed {seed}"
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
    fn tellers(strategy: Strategy, ordered: bool) -> (bool, Vec<(u32, u32)>) {
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
        let crossed = explore(10_000, |s| tellers(s, false)).expect("within the limit");
        assert!(crossed.outcomes.contains_key(&true), "{crossed:?}");
        assert!(crossed.outcomes.contains_key(&false), "{crossed:?}");
        let ordered = explore(10_000, |s| tellers(s, true)).expect("within the limit");
        assert_eq!(ordered.outcomes.keys().collect::<Vec<_>>(), [&false]);
    }

    /// A producer putting 3 items through a one-slot queue, then closing it; a consumer
    /// taking until closed. What the consumer got.
    fn pipeline(strategy: Strategy) -> (Vec<u32>, Vec<(u32, u32)>) {
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
        let census = explore(10_000, pipeline).expect("within the limit");
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
        let census = explore(10_000, |strategy| {
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
        assert_eq!(run.results[0], Ok((false, 30_000_000)));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
