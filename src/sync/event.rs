//! `Event`: a flag threads can wait on (Python's `threading.Event`).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::lab::{Bound, For, Probe, Wait};

use super::lock;

/// A boolean flag with waiting: `set` wakes every waiter, `clear` resets, `wait` blocks
/// until set. Every wait here has a bounded variant; shutdown signals use it.
#[derive(Debug)]
pub struct Event {
    flag: Mutex<bool>,
    changed: Condvar,
    probe: Probe,
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// An event that is not set.
    pub fn new() -> Self {
        Self {
            flag: Mutex::new(false),
            changed: Condvar::new(),
            probe: Probe::off("event"),
        }
    }

    /// Records waits through `probe`.
    pub fn with_probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        crate::lab::sched::point();
        *lock(&self.flag) = true;
        self.probe.signal("set");
        self.changed.notify_all();
    }

    /// Resets the flag.
    pub fn clear(&self) {
        *lock(&self.flag) = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        *lock(&self.flag)
    }

    /// Waits until the flag is set. Returns whether it is: `false` only when the lab's
    /// deadlock detector refused the wait because no thread is left to set it.
    pub fn wait(&self) -> bool {
        self.wait_bounded(Bound::Forever)
    }

    /// Waits until the flag is set or `timeout` passes. Returns whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_bounded(Bound::Timeout(timeout))
    }

    fn wait_bounded(&self, bound: Bound) -> bool {
        crate::lab::sched::point();
        let flag = lock(&self.flag);
        if *flag {
            return true;
        }
        let set = For::Signal {
            by: &["set"],
            bare: false,
        };
        let wait = Wait::new(set, bound);
        let (flag, _) = self
            .probe
            .wait(&self.flag, flag, &self.changed, wait, |set| !*set);
        *flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_wakes_every_waiter() {
        let _bound = crate::sync::bounded_test(20);
        let ev = Event::new();
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..5)
                .map(|_| {
                    s.spawn(|| {
                        let began = crate::lab::now();
                        (
                            ev.wait_timeout(Duration::from_secs(8)),
                            crate::lab::now().saturating_duration_since(began),
                        )
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(10));
            ev.set();
            for w in waiters {
                let (set, waited) = w.join().unwrap();
                // Woken by the set, not by running out its wait (which also sees the flag).
                assert!(set && waited < Duration::from_secs(4), "waited {waited:?}");
            }
        });
    }

    #[test]
    fn wait_timeout_returns_false_when_never_set() {
        let _bound = crate::sync::bounded_test(20);
        let ev = Event::new();
        assert!(!ev.wait_timeout(Duration::from_millis(5)));
    }

    #[test]
    fn clear_resets_the_flag() {
        let _bound = crate::sync::bounded_test(20);
        let ev = Event::new();
        ev.set();
        assert!(ev.is_set());
        ev.wait();
        ev.clear();
        assert!(!ev.is_set());
    }

    #[test]
    fn a_timed_wait_returns_as_soon_as_the_event_is_set() {
        let _bound = crate::sync::bounded_test(20);
        let ev = Event::new();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let began = crate::lab::now();
                (
                    ev.wait_timeout(Duration::from_secs(8)),
                    crate::lab::now().saturating_duration_since(began),
                )
            });
            std::thread::sleep(Duration::from_millis(20));
            ev.set();
            let (set, waited) = waiter.join().unwrap();
            assert!(set);
            assert!(waited < Duration::from_secs(4), "waited {waited:?}");
        });
    }
}
