//! `Mutex`: std's mutex with a probe, for the hot loops of the lessons (race's counter).
//!
//! With the probe off (the default unless pictures were asked for) a lock costs std's lock
//! plus one branch; on, every wait and hold is recorded. `make bench` measures both against
//! std's own mutex.

use crate::lab::Probe;
use crate::lab::record::Mark;

/// A mutual-exclusion lock around a `T`, recording its waits and holds through a probe.
#[derive(Debug)]
pub struct Mutex<T> {
    inner: std::sync::Mutex<T>,
    probe: Probe,
}

/// Access to the data; the lock is released (and the hold recorded) when dropped.
pub struct MutexGuard<'a, T> {
    // Declared first so the hold is recorded (in `drop`) before the lock opens.
    hold: Option<Mark>,
    probe: &'a Probe,
    guard: std::sync::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A mutex around `value`.
    pub fn new(value: T, probe: Probe) -> Self {
        Self {
            inner: std::sync::Mutex::new(value),
            probe,
        }
    }

    /// Locks, waiting if another thread holds it. A poisoned lock is recovered: the data of
    /// a counter stays meaningful after a panic elsewhere.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let guard = if self.probe.gauges().is_none() {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        } else {
            match self.inner.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    let mark = self.probe.waiting();
                    let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                    self.probe.waited(mark);
                    g
                }
            }
        };
        MutexGuard {
            hold: Some(self.probe.holding()),
            probe: &self.probe,
            guard,
        }
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
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            self.probe.released(hold);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_recording_mutex_records_every_hold_and_the_waits() {
        let rec = Arc::new(crate::lab::Recorder::new(std::time::Instant::now()));
        let m = Mutex::new(0u64, Probe::on("counter", Arc::clone(&rec)));
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
        assert_eq!(m.probe.gauges().unwrap().most_holding(), 1);
    }
}
