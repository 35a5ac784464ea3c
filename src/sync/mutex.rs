//! `Mutex`: std's mutex with a probe, for the hot loops of the lessons (race's counter).
//!
//! With the probe off (the default unless pictures were asked for) a lock costs std's lock
//! plus one branch; on, every wait and hold is recorded. A hot loop pays not even the branch:
//! it asks once, before the loop, for [`Mutex::unrecorded`] and, when nothing records, runs
//! on std's own mutex inside (code generic over [`Lockable`] is compiled for each). `make
//! bench` measures all three against std's own mutex.

use crate::lab::Probe;
use crate::lab::{Bound, For, Hold, Wait};

/// A mutual-exclusion lock around a `T`, recording its waits and holds through a probe.
#[derive(Debug)]
pub struct Mutex<T> {
    inner: std::sync::Mutex<T>,
    /// Whether the probe records or the mutex was made in a scheduled run: read once per
    /// lock, so neither costs one branch.
    instrumented: bool,
    probe: Probe,
}

/// Access to the data; the lock is released (and the hold recorded) when dropped.
pub struct MutexGuard<'a, T> {
    // Declared first so the hold is recorded (in `drop`) before the lock opens. `None`
    // when the probe is off: then dropping costs one branch.
    hold: Option<Box<Hold<'a>>>,
    guard: std::sync::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A mutex around `value`.
    pub fn new(value: T, probe: Probe) -> Self {
        Self {
            inner: std::sync::Mutex::new(value),
            instrumented: probe.recording() || crate::lab::sched::current().is_some(),
            probe,
        }
    }

    /// Locks, waiting if another thread holds it. A poisoned lock is recovered: the data of
    /// a counter stays meaningful after a panic elsewhere.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self.instrumented {
            return self.lock_recorded();
        }
        MutexGuard {
            hold: None,
            guard: self.inner.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The recording path, kept out of line so the default path stays std's lock and one
    /// branch.
    #[cold]
    #[inline(never)]
    fn lock_recorded(&self) -> MutexGuard<'_, T> {
        if let Some(turn) = crate::lab::sched::current() {
            return self.lock_scheduled(&turn);
        }
        let guard = match self.inner.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                let wait = Wait::new(For::Held { refusable: false }, Bound::Forever);
                self.probe.block(wait, || {
                    self.inner.lock().unwrap_or_else(|e| e.into_inner())
                })
            }
        };
        MutexGuard {
            hold: Some(Box::new(self.probe.hold())),
            guard,
        }
    }
}

impl<T> Mutex<T> {
    /// std's mutex inside, when nothing is recorded (nor scheduled): a hot loop locks it
    /// directly, the check made once, outside the loop.
    pub fn unrecorded(&self) -> Option<&std::sync::Mutex<T>> {
        (!self.instrumented).then_some(&self.inner)
    }

    /// The lock in a scheduled run: a scheduling point, then the lock if free, else a wait
    /// (the scheduler's) until its holder releases it. The hold wakes the waiters as it
    /// ends, before std's lock opens; nobody runs between the two.
    fn lock_scheduled(&self, turn: &crate::lab::sched::Turn) -> MutexGuard<'_, T> {
        let name = self.probe.name();
        turn.point_doing(|| format!("lock '{name}'"));
        loop {
            match self.inner.try_lock() {
                Ok(guard) => return self.held(guard),
                Err(std::sync::TryLockError::Poisoned(e)) => return self.held(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    let waits = || format!("wait for '{name}' (held)");
                    if turn.block_doing(self.probe.key(), None, waits).is_err() {
                        // Only a cycle of locks could leave this wait unanswered: a bug.
                        panic!("--schedule: '{name}' is never released (a deadlock)");
                    }
                }
            }
        }
    }

    fn held<'a>(&'a self, guard: std::sync::MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        MutexGuard {
            hold: Some(Box::new(self.probe.hold())),
            guard,
        }
    }
}

/// A lock a hot loop can be generic over: std's mutex, or this module's recording one.
pub trait Lockable<T> {
    /// Runs `f` on the data with the lock held.
    fn locked<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

impl<T> Lockable<T> for std::sync::Mutex<T> {
    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<T> Lockable<T> for Mutex<T> {
    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock())
    }
}

impl<T> std::ops::Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            released(*hold);
        }
    }
}

/// Closes a recorded hold (out of line, as [`Mutex::lock_recorded`]).
#[cold]
#[inline(never)]
fn released(hold: Hold<'_>) {
    drop(hold);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_recording_mutex_records_every_hold_and_the_waits() {
        let _bound = crate::sync::bounded_test(20);
        let rec = Arc::new(crate::lab::Recorder::new(crate::lab::now()));
        let m = Mutex::new(0u64, Probe::on("counter", Some(Arc::clone(&rec)), None));
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        *m.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(*m.lock(), 2000);
        let holds = rec
            .spans()
            .iter()
            .filter(|s| s.state == crate::lab::State::Holding)
            .count();
        assert_eq!(holds, 2001, "2000 increments and the read above");
        assert_eq!(rec.most_at_once("counter").1, 1);
    }
}
