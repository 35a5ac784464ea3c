//! `RLock` (re-entrant) and `Lock` (plain), both knowing their owner so the narrative can
//! say who holds what, and both offering a bounded wait so no demo ever hangs on one.

use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use crate::lab::waitgraph::Cycle;
use crate::lab::{Bound, For, Hold, Outcome, Probe, Wait, thread_name};

use super::lock;

/// Why a lock operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The bounded wait ran out. `owner` held the lock then (it may be the caller itself:
    /// a plain lock re-acquired by its owner would wait forever).
    #[error("timed out waiting for '{lock}' held by {owner}")]
    Timeout {
        /// The lock's name.
        lock: String,
        /// Its holder's thread name.
        owner: String,
        /// Whether the holder is the thread that asked: a self-deadlock.
        by_caller: bool,
    },
    /// Waiting would close a cycle of threads each waiting for a lock the next holds: the
    /// runtime's deadlock detector refused the wait (this thread is the victim).
    #[error("deadlock: waiting for '{lock}' would close a cycle: {}", cycle.drawing())]
    Deadlock {
        /// The lock's name.
        lock: String,
        /// The cycle found.
        cycle: Box<Cycle>,
    },
    /// Only the owner may release.
    #[error("'{lock}' released by {caller}, which does not hold it")]
    NotOwner {
        /// The lock's name.
        lock: String,
        /// The thread that tried.
        caller: String,
    },
}

#[derive(Debug, Default)]
struct State {
    owner: Option<(ThreadId, String)>,
    count: usize,
    hold: Option<Hold<'static>>,
}

/// The shared core: owner, count, and whether the owner may enter again.
#[derive(Debug)]
struct OwnedLock {
    state: Mutex<State>,
    freed: Condvar,
    reentrant: bool,
    probe: Probe,
}

impl OwnedLock {
    fn new(reentrant: bool, probe: Probe) -> Self {
        Self {
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            reentrant,
            probe,
        }
    }

    /// The caller may enter if the lock is free, or it owns it and re-entry is allowed.
    fn blocked(&self, st: &State, me: ThreadId) -> bool {
        match &st.owner {
            None => false,
            Some((id, _)) => !(self.reentrant && *id == me),
        }
    }

    /// The textbook acquire: wait while another thread owns it, then own it (again).
    fn acquire(&self, timeout: Option<Duration>) -> Result<usize, LockError> {
        crate::lab::sched::point();
        let me = std::thread::current().id();
        let bound = timeout.map_or(Bound::Forever, Bound::Timeout);
        let wait = Wait::new(For::Held { refusable: true }, bound);
        let st = lock(&self.state);
        let (mut st, outcome) = self
            .probe
            .wait(&self.state, st, &self.freed, wait, |s| self.blocked(s, me));
        if let Outcome::Refused(cycle) = outcome {
            let lock = self.probe.name().to_string();
            return Err(LockError::Deadlock { lock, cycle });
        }
        if self.blocked(&st, me) {
            let (id, owner) = st.owner.clone().unwrap_or((me, "nobody".into()));
            return Err(LockError::Timeout {
                lock: self.probe.name().to_string(),
                owner,
                by_caller: id == me,
            });
        }
        if st.count == 0 {
            st.owner = Some((me, thread_name()));
            st.hold = Some(self.probe.hold().owned());
        }
        st.count += 1;
        Ok(st.count)
    }

    /// Releases once; `announce(count_left)` runs while the release is still invisible to
    /// other threads (the state is locked and nobody has been woken), so whatever it logs
    /// comes before anything a woken thread logs.
    fn release_with(&self, announce: impl FnOnce(usize)) -> Result<usize, LockError> {
        crate::lab::sched::point();
        let me = std::thread::current().id();
        let mut st = lock(&self.state);
        match &st.owner {
            Some((id, _)) if *id == me => {}
            _ => {
                return Err(LockError::NotOwner {
                    lock: self.probe.name().to_string(),
                    caller: thread_name(),
                });
            }
        }
        st.count -= 1;
        announce(st.count);
        if st.count == 0 {
            st.owner = None;
            drop(st.hold.take());
            self.freed.notify_all();
        }
        Ok(st.count)
    }

    fn owner(&self) -> Option<(String, usize)> {
        let st = lock(&self.state);
        st.owner.as_ref().map(|(_, name)| (name.clone(), st.count))
    }
}

/// A re-entrant lock (Python's `RLock`): its owner may acquire it again; each acquire needs
/// a matching release, and other threads wait until the count is back to zero.
#[derive(Debug)]
pub struct RLock(OwnedLock);

impl RLock {
    /// An unlocked re-entrant lock named by its probe.
    pub fn new(probe: Probe) -> Self {
        Self(OwnedLock::new(true, probe))
    }
    /// Acquires, waiting as long as another thread holds it. Returns the hold count.
    pub fn acquire(&self) -> usize {
        self.0
            .acquire(None)
            .expect("an unbounded wait returns only when it acquired")
    }
    /// Acquires if possible within `timeout`. Returns the hold count.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<usize, LockError> {
        self.0.acquire(Some(timeout))
    }
    /// Releases one level. Returns the count left; only the owner may release.
    pub fn release(&self) -> Result<usize, LockError> {
        self.0.release_with(|_| {})
    }
    /// Releases one level, calling `announce(count_left)` before any waiter can wake: what
    /// it logs comes before the next owner's first line.
    pub fn release_with(&self, announce: impl FnOnce(usize)) -> Result<usize, LockError> {
        self.0.release_with(announce)
    }
    /// The owner's name and hold count, if held.
    pub fn owner(&self) -> Option<(String, usize)> {
        self.0.owner()
    }
    /// The lock's name.
    pub fn name(&self) -> &str {
        self.0.probe.name()
    }
}

/// A plain lock (Python's `Lock`): acquiring it again from its owner waits forever, so the
/// demos only ever do that with [`Lock::acquire_timeout`].
#[derive(Debug)]
pub struct Lock(OwnedLock);

impl Lock {
    /// An unlocked plain lock named by its probe.
    pub fn new(probe: Probe) -> Self {
        Self(OwnedLock::new(false, probe))
    }
    /// Acquires if possible within `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<usize, LockError> {
        self.0.acquire(Some(timeout))
    }
    /// Releases; only the owner may.
    pub fn release(&self) -> Result<usize, LockError> {
        self.0.release_with(|_| {})
    }
    /// Acquires within `timeout` as a guard that releases when dropped: at the end of the
    /// scope, on an early return, or while a panic unwinds (Python's `with lock:`).
    pub fn guard(&self, timeout: Duration) -> Result<LockGuard<'_>, LockError> {
        self.acquire_timeout(timeout)?;
        Ok(LockGuard { lock: self })
    }
    /// Releases, calling `announce()` before any waiter can wake (see
    /// [`RLock::release_with`]).
    pub fn release_with(&self, announce: impl FnOnce()) -> Result<usize, LockError> {
        self.0.release_with(|_| announce())
    }
    /// The owner's name, if held.
    pub fn owner(&self) -> Option<String> {
        self.0.owner().map(|(name, _)| name)
    }
    /// The lock's name.
    pub fn name(&self) -> &str {
        self.0.probe.name()
    }
}

/// A held [`Lock`]; released on drop, however the scope ends.
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // The guard's thread is the owner, so this release cannot be refused.
        let _ = self.lock.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rlock_lets_its_owner_reenter_and_counts_levels() {
        let _bound = crate::sync::bounded_test(20);
        let l = RLock::new(Probe::off("r"));
        assert_eq!(l.acquire(), 1);
        assert_eq!(l.acquire(), 2);
        assert_eq!(l.owner().unwrap().1, 2);
        assert_eq!(l.release(), Ok(1));
        assert_eq!(l.release(), Ok(0));
        assert!(l.owner().is_none());
    }

    #[test]
    fn an_rlock_keeps_other_threads_out_until_the_count_is_zero() {
        let _bound = crate::sync::bounded_test(20);
        let l = RLock::new(Probe::off("r"));
        l.acquire();
        l.acquire();
        std::thread::scope(|s| {
            let other = s.spawn(|| l.acquire_timeout(Duration::from_millis(20)));
            assert!(matches!(
                other.join().unwrap(),
                Err(LockError::Timeout {
                    by_caller: false,
                    ..
                })
            ));
        });
        l.release().unwrap();
        l.release().unwrap();
        std::thread::scope(|s| {
            let other = s.spawn(|| {
                let n = l.acquire_timeout(Duration::from_secs(5));
                l.release().unwrap();
                n
            });
            assert_eq!(other.join().unwrap(), Ok(1));
        });
    }

    #[test]
    fn a_plain_lock_reacquired_by_its_owner_times_out_as_a_self_deadlock() {
        let _bound = crate::sync::bounded_test(20);
        let l = Lock::new(Probe::off("plain"));
        assert_eq!(l.acquire_timeout(Duration::from_millis(1)), Ok(1));
        let err = l.acquire_timeout(Duration::from_millis(10)).unwrap_err();
        assert!(matches!(
            err,
            LockError::Timeout {
                by_caller: true,
                ..
            }
        ));
        l.release().unwrap();
    }

    #[test]
    fn only_the_owner_may_release() {
        let _bound = crate::sync::bounded_test(20);
        let l = RLock::new(Probe::off("r"));
        assert!(matches!(l.release(), Err(LockError::NotOwner { .. })));
        l.acquire();
        std::thread::scope(|s| {
            assert!(s.spawn(|| l.release()).join().unwrap().is_err());
        });
        assert_eq!(l.release(), Ok(0));
    }

    #[test]
    fn an_rlock_is_mutually_exclusive_under_contention() {
        let _bound = crate::sync::bounded_test(20);
        let l = RLock::new(Probe::off("r"));
        let value = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..500 {
                        l.acquire();
                        l.acquire();
                        // read-modify-write that would lose updates without the lock
                        let v = value.load(std::sync::atomic::Ordering::Relaxed);
                        std::thread::yield_now();
                        value.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                        l.release().unwrap();
                        l.release().unwrap();
                    }
                });
            }
        });
        assert_eq!(value.into_inner(), 2000);
    }

    #[test]
    fn a_guard_releases_even_when_its_holder_panics() {
        let _bound = crate::sync::bounded_test(20);
        let l = Lock::new(Probe::off("g"));
        let unwound = std::thread::scope(|s| {
            s.spawn(|| {
                let _g = l.guard(Duration::from_secs(1)).unwrap();
                panic!("inside the critical section");
            })
            .join()
            .is_err()
        });
        assert!(unwound);
        assert!(l.owner().is_none());
        assert!(l.acquire_timeout(Duration::from_millis(100)).is_ok());
    }
}
