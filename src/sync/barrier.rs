//! `Barrier`: nobody goes on until everyone arrives (Python's `threading.Barrier`).
//!
//! std has a `Barrier`, but it cannot time out, be aborted or reset: one thread that never
//! arrives strands the rest forever. This one does what Python's does, in plain view:
//! `parties` threads call [`Barrier::wait`]; the last to arrive runs the action, then every
//! waiter goes on. A wait that times out, an [`abort`](Barrier::abort) or a
//! [`reset`](Barrier::reset) *breaks* the barrier: every thread waiting on it (and every
//! later caller, until a reset) gets [`BrokenBarrier`] instead of hanging.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::lab::{Bound, For, Outcome, Probe, Wait};

use super::lock;

/// Python's `BrokenBarrierError`: the barrier was broken (a wait timed out, someone called
/// `abort` or `reset`) while this thread waited, or before it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("broken barrier '{name}'")]
pub struct BrokenBarrier {
    /// The barrier's name.
    pub name: &'static str,
}

/// What the barrier's mutex guards.
#[derive(Debug)]
struct State {
    /// Threads waiting in the current round.
    arrived: usize,
    /// Rounds completed (a waiter goes on when this moves past the round it arrived in).
    round: u64,
    /// Broken: every waiter and later caller gets `BrokenBarrier` until `reset`.
    broken: bool,
    /// Bumped by `reset`, so the threads it breaks can tell a reset from a completed round.
    resets: u64,
}

/// A barrier for `parties` threads, with an optional action run by the last to arrive and a
/// default timeout for every wait.
pub struct Barrier {
    name: &'static str,
    parties: usize,
    timeout: Duration,
    action: Option<Box<dyn Fn() + Send + Sync>>,
    state: Mutex<State>,
    changed: Condvar,
    probe: Probe,
    /// Whether its rounds are moments of the lesson (a barrier with a probe), or it only
    /// stages a demo's unlucky interleaving and stays out of the pictures' marks.
    marked: bool,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("name", &self.name)
            .field("parties", &self.parties)
            .field("state", &*lock(&self.state))
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` threads (at least 1) whose waits give up after `timeout`.
    pub fn new(name: &'static str, parties: usize, timeout: Duration) -> Self {
        Self {
            name,
            parties: parties.max(1),
            timeout,
            action: None,
            state: Mutex::new(State {
                arrived: 0,
                round: 0,
                broken: false,
                resets: 0,
            }),
            changed: Condvar::new(),
            probe: Probe::off(name),
            marked: false,
        }
    }

    /// Runs `action` once per round, in the last thread to arrive, before anyone goes on.
    pub fn with_action(mut self, action: impl Fn() + Send + Sync + 'static) -> Self {
        self.action = Some(Box::new(action));
        self
    }

    /// Records waits through `probe`.
    pub fn with_probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self.marked = true;
        self
    }

    /// How many threads the barrier waits for.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// Waits for the others, up to the barrier's timeout. Returns this thread's arrival
    /// index (0 for the first, `parties - 1` for the last, as Python's `wait()` does), or
    /// `BrokenBarrier` if the barrier is or becomes broken; a timeout breaks it for all.
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_timeout(self.timeout)
    }

    /// [`Barrier::wait`] with its own timeout.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        let broken = BrokenBarrier { name: self.name };
        crate::lab::sched::point_doing(|| format!("arrive at '{}'", self.name));
        let mut st = lock(&self.state);
        if st.broken {
            return Err(broken);
        }
        let index = st.arrived;
        st.arrived += 1;
        if st.arrived == self.parties {
            // The last one: run the action, then release this round.
            // Under the barrier's own lock, as Python does: nobody can arrive or leave
            // while it runs.
            if let Some(action) = &self.action {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action));
                if ran.is_err() {
                    // Python: an action that raises breaks the barrier.
                    self.break_locked(&mut st);
                    return Err(broken);
                }
            }
            st.arrived = 0;
            st.round += 1;
            let (name, round) = (self.name, st.round);
            if self.marked {
                crate::lab::record::mark(|| {
                    format!("'{name}': round {round}, all {} through", self.parties)
                });
            }
            self.probe.signal("release");
            self.changed.notify_all();
            return Ok(index);
        }
        let (round, resets) = (st.round, st.resets);
        // One wait through the lab's protocol: until the round moves on, the barrier
        // breaks, or a reset; a change nobody notified is counted as a lost wake-up.
        let (mut st, outcome) = self.probe.wait(
            &self.state,
            st,
            &self.changed,
            Wait::new(
                For::Signal {
                    by: &["release", "break", "reset"],
                    bare: false,
                },
                Bound::Timeout(timeout),
            ),
            |s| s.round == round && !s.broken && s.resets == resets,
        );
        if st.round != round {
            return Ok(index);
        }
        if outcome == Outcome::TimedOut {
            // Python: the thread whose wait times out breaks the barrier for everyone.
            self.break_locked(&mut st);
        }
        Err(broken)
    }

    /// Breaks the barrier: every waiting thread and every later `wait` gets `BrokenBarrier`.
    pub fn abort(&self) {
        let mut st = lock(&self.state);
        self.break_locked(&mut st);
    }

    /// Makes the barrier usable again. Threads waiting on it now get `BrokenBarrier` (as in
    /// Python).
    pub fn reset(&self) {
        let mut st = lock(&self.state);
        st.broken = false;
        st.arrived = 0;
        st.resets += 1;
        self.probe.signal("reset");
        self.changed.notify_all();
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        lock(&self.state).broken
    }

    /// Threads waiting in the current round.
    pub fn n_waiting(&self) -> usize {
        lock(&self.state).arrived
    }

    fn break_locked(&self, st: &mut State) {
        st.broken = true;
        st.arrived = 0;
        self.probe.signal("break");
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const LONG: Duration = Duration::from_secs(10);

    /// Spins until a thread waits at `b`, for at most a few seconds (a test never hangs).
    fn wait_until_someone_waits(b: &Barrier) {
        let deadline = crate::lab::now() + Duration::from_secs(5);
        while b.n_waiting() == 0 && crate::lab::now() < deadline {
            std::thread::yield_now();
        }
    }

    #[test]
    fn nobody_leaves_before_the_last_arrives_and_the_action_runs_once_per_round() {
        let _bound = crate::sync::bounded_test(20);
        let ran = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let b = Barrier::new("b", 4, LONG).with_action(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let arrived = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..4 {
                let (b, arrived) = (&b, &arrived);
                s.spawn(move || {
                    for round in 0..3 {
                        std::thread::sleep(Duration::from_millis(i * 3));
                        arrived.fetch_add(1, Ordering::SeqCst);
                        b.wait().unwrap();
                        // Everyone of this round has arrived before anyone goes on.
                        assert!(arrived.load(Ordering::SeqCst) >= 4 * (round + 1));
                    }
                });
            }
        });
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn arrival_indexes_are_each_given_once() {
        let _bound = crate::sync::bounded_test(20);
        let b = Barrier::new("b", 3, LONG);
        let mut got: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3).map(|_| s.spawn(|| b.wait().unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        got.sort();
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[test]
    fn a_missing_party_breaks_the_barrier_for_every_waiter_after_the_timeout() {
        let _bound = crate::sync::bounded_test(20);
        let b = Barrier::new("b", 3, Duration::from_millis(50));
        let began = crate::lab::now();
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2).map(|_| s.spawn(|| b.wait())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().all(|r| r.is_err()), "{results:?}");
        assert!(crate::lab::now().saturating_duration_since(began) >= Duration::from_millis(50));
        assert!(b.is_broken());
        assert!(b.wait().is_err(), "a later caller is refused at once");
    }

    #[test]
    fn abort_breaks_waiters_at_once_and_reset_makes_it_usable_again() {
        let _bound = crate::sync::bounded_test(20);
        let b = Barrier::new("b", 2, LONG);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let t = crate::lab::now();
                (b.wait(), crate::lab::now().saturating_duration_since(t))
            });
            wait_until_someone_waits(&b);
            b.abort();
            let (r, took) = waiter.join().unwrap();
            assert!(r.is_err());
            assert!(took < Duration::from_secs(5));
        });
        b.reset();
        assert!(!b.is_broken());
        std::thread::scope(|s| {
            let other = s.spawn(|| b.wait());
            assert!(b.wait().is_ok());
            assert!(other.join().unwrap().is_ok());
        });
    }

    #[test]
    fn reset_breaks_the_threads_waiting_now() {
        let _bound = crate::sync::bounded_test(20);
        let b = Barrier::new("b", 2, LONG);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| b.wait());
            wait_until_someone_waits(&b);
            b.reset();
            assert!(waiter.join().unwrap().is_err());
        });
        assert!(!b.is_broken());
    }

    #[test]
    fn an_action_that_panics_breaks_the_barrier() {
        let _bound = crate::sync::bounded_test(20);
        let b = Barrier::new("b", 1, LONG).with_action(|| panic!("action failed"));
        crate::lab::expecting_panics(|| assert!(b.wait().is_err()));
        assert!(b.is_broken());
    }
}
