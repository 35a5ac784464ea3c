//! `Semaphore` and its bounded variant: a counter of permits guarded by a mutex, and a
//! condition variable that blocked acquirers wait on.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use crate::lab::{Bound, For, Hold, Outcome, Probe, Wait};

use super::lock;

/// What a bounded semaphore says when released more often than acquired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("semaphore '{name}' released too many times (count would be {would_be} of {bound})")]
pub struct ReleaseError {
    /// The semaphore's name.
    pub name: String,
    /// The count the release would have made.
    pub would_be: usize,
    /// The initial (maximum) count.
    pub bound: usize,
}

/// A counting semaphore: `acquire` takes a permit, waiting while none is left; `release`
/// gives one back. A bounded semaphore (Python's `BoundedSemaphore`) refuses a release that
/// would lift the count above its initial value; a plain one lets the count grow.
#[derive(Debug)]
pub struct Semaphore {
    state: Mutex<Permits>,
    freed: Condvar,
    bound: Option<usize>,
    probe: Probe,
}

/// The count, and the holds of the permits taken (a permit may come back from another
/// thread than took it: then the oldest hold ends).
#[derive(Debug, Default)]
struct Permits {
    count: usize,
    holds: VecDeque<(ThreadId, Hold<'static>)>,
}

impl Semaphore {
    /// A plain semaphore with `permits` permits.
    pub fn new(permits: usize) -> Self {
        Self {
            state: Mutex::new(Permits {
                count: permits,
                holds: VecDeque::new(),
            }),
            freed: Condvar::new(),
            bound: None,
            probe: Probe::off("semaphore"),
        }
    }

    /// A bounded semaphore: releasing past `permits` is an error.
    pub fn bounded(permits: usize) -> Self {
        Self {
            bound: Some(permits),
            ..Self::new(permits)
        }
    }

    /// Records waits and holds through `probe`.
    pub fn with_probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self
    }

    /// The semaphore's name (its probe's).
    pub fn name(&self) -> &str {
        self.probe.name()
    }

    /// Whether this is a bounded semaphore.
    pub fn is_bounded(&self) -> bool {
        self.bound.is_some()
    }

    /// Permits available right now.
    pub fn available(&self) -> usize {
        lock(&self.state).count
    }

    /// Takes a permit, waiting as long as it takes. Returns the permits left.
    ///
    /// This wait takes part in the deadlock detector's graph; a cycle it closes is told, and,
    /// having no way to give up, it waits on (use `acquire_timeout` to be refused).
    pub fn acquire(&self) -> usize {
        let wait = Wait::new(For::Held { refusable: false }, Bound::Forever);
        self.take(wait)
            .expect("an unbounded wait returns only when it got a permit")
    }

    /// Takes a permit if one frees up within `timeout`. Returns the permits left, or `None`.
    /// `None` too when the runtime's deadlock detector refuses the wait (it would close a
    /// cycle: see `lab::waitgraph`).
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<usize> {
        self.take(Wait::new(
            For::Held { refusable: true },
            Bound::Timeout(timeout),
        ))
    }

    /// The textbook acquire: wait while the count is zero, then take one.
    fn take(&self, wait: Wait<'_>) -> Option<usize> {
        crate::lab::sched::point();
        let st = lock(&self.state);
        let (mut st, outcome) = self
            .probe
            .wait(&self.state, st, &self.freed, wait, |p| p.count == 0);
        if st.count == 0 {
            debug_assert!(outcome != Outcome::Got);
            return None;
        }
        st.count -= 1;
        let hold = self.probe.hold().owned();
        st.holds.push_back((std::thread::current().id(), hold));
        self.probe.count("available", st.count);
        Some(st.count)
    }

    /// Gives a permit back and wakes one waiter. Returns the new count, or the bounded
    /// semaphore's error when the release is one too many (the count is then unchanged).
    pub fn release(&self) -> Result<usize, ReleaseError> {
        crate::lab::sched::point();
        let mut st = lock(&self.state);
        if let Some(bound) = self.bound
            && st.count >= bound
        {
            return Err(ReleaseError {
                name: self.name().to_string(),
                would_be: st.count + 1,
                bound,
            });
        }
        st.count += 1;
        let me = std::thread::current().id();
        let mine = st.holds.iter().position(|(t, _)| *t == me).unwrap_or(0);
        drop(st.holds.remove(mine));
        self.probe.count("available", st.count);
        self.probe.signal("release");
        self.freed.notify_one();
        Ok(st.count)
    }

    /// Takes a permit as a guard that gives it back when dropped (the `with sem:` of Python).
    pub fn permit(&self) -> Permit<'_> {
        let left = self.acquire();
        Permit {
            semaphore: self,
            left,
        }
    }
}

/// A permit held; released on drop.
#[derive(Debug)]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
    left: usize,
}

impl Permit<'_> {
    /// Permits that were left right after this one was taken.
    pub fn left_when_acquired(&self) -> usize {
        self.left
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // A permit taken from this semaphore always fits back in.
        let _ = self.semaphore.release();
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_cycle_through_a_semaphore_and_a_lock_is_found_and_refused() {
        let _bound = crate::sync::bounded_test(20);
        // A holds lock L and waits for the semaphore's only permit; B holds that permit and
        // asks for L: B's wait closes the cycle and is refused.
        let lab = crate::lab::Lab::quiet(1.0, 1);
        let l = crate::sync::Lock::new(lab.probe("L"));
        let sem = Semaphore::new(1).with_probe(lab.probe("S"));
        let (b_holds_tx, b_holds_rx) = crossbeam_channel::bounded::<()>(1);
        let (a_waits_tx, a_waits_rx) = crossbeam_channel::bounded::<()>(1);
        std::thread::scope(|s| {
            let a = s.spawn(|| {
                let _g = l.guard(Duration::from_secs(5)).unwrap();
                b_holds_rx.recv().unwrap();
                a_waits_tx.send(()).unwrap();
                sem.acquire_timeout(Duration::from_secs(5))
            });
            let b = s.spawn(|| {
                sem.acquire_timeout(Duration::from_secs(5)).unwrap();
                b_holds_tx.send(()).unwrap();
                a_waits_rx.recv().unwrap();
                // Let A's wait begin (it is registered before it blocks).
                std::thread::sleep(Duration::from_millis(50));
                let r = l.guard(Duration::from_secs(5)).map(|_| ());
                let _ = sem.release();
                r
            });
            let refused = b.join().unwrap();
            assert!(
                matches!(refused, Err(crate::sync::rlock::LockError::Deadlock { .. })),
                "{refused:?}"
            );
            assert!(a.join().unwrap().is_some());
        });
        assert_eq!(lab.wait_graph().cycles().len(), 1);
    }

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_semaphore_never_admits_more_than_its_count() {
        let _bound = crate::sync::bounded_test(20);
        for permits in 1..=4 {
            let sem = Semaphore::new(permits);
            let inside = AtomicUsize::new(0);
            let most = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        for _ in 0..200 {
                            let _p = sem.permit();
                            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            std::thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        }
                    });
                }
            });
            assert!(most.load(Ordering::SeqCst) <= permits);
            assert_eq!(sem.available(), permits);
        }
    }

    #[test]
    fn a_bounded_semaphore_refuses_over_release() {
        let _bound = crate::sync::bounded_test(20);
        let sem = Semaphore::bounded(2);
        sem.acquire();
        assert_eq!(sem.release(), Ok(2));
        let err = sem.release().unwrap_err();
        assert_eq!(err.would_be, 3);
        assert!(err.to_string().contains("released too many times"));
        assert_eq!(sem.available(), 2);
    }

    #[test]
    fn a_plain_semaphore_lets_its_count_grow() {
        let _bound = crate::sync::bounded_test(20);
        let sem = Semaphore::new(2);
        assert_eq!(sem.release(), Ok(3));
        assert_eq!(sem.available(), 3);
    }

    #[test]
    fn acquire_timeout_gives_up_when_no_permit_frees() {
        let _bound = crate::sync::bounded_test(20);
        let sem = Semaphore::new(1);
        assert_eq!(sem.acquire_timeout(Duration::from_millis(1)), Some(0));
        assert_eq!(sem.acquire_timeout(Duration::from_millis(20)), None);
    }

    #[test]
    fn a_release_wakes_a_blocked_acquirer() {
        let _bound = crate::sync::bounded_test(20);
        let sem = Semaphore::new(0);
        std::thread::scope(|s| {
            let h = s.spawn(|| sem.acquire());
            std::thread::sleep(Duration::from_millis(10));
            sem.release().unwrap();
            assert_eq!(h.join().unwrap(), 0);
        });
    }
}
