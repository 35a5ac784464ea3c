//! `RateLimiter`: at most N starts per second, built in plain view.
//!
//! The fixed-interval form: the limiter keeps the earliest moment the next caller may go.
//! `acquire` reserves that moment under the limiter's lock and moves it one interval (1/N s)
//! on, then waits for its moment outside the lock (a caller never sleeps holding it). So two
//! releases are always at least an interval apart, whatever the callers do after, and
//! however many wait.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::lab::{Bound, For, Probe, Wait};

use super::lock;

/// Lets callers go at most `per_second` times a second, evenly spaced.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    /// The earliest moment the next caller may go.
    next: Mutex<Option<Instant>>,
    probe: Probe,
}

impl RateLimiter {
    /// A limiter for `per_second` starts a second over `window` (a second scaled by the
    /// pace: the interval is `window / per_second`).
    pub fn new(per_second: u32, window: Duration) -> Self {
        Self {
            interval: window / per_second.max(1),
            next: Mutex::new(None),
            probe: Probe::off("rate"),
        }
    }

    /// Records waits through `probe`.
    pub fn with_probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self
    }

    /// The spacing between two releases.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this caller's turn; returns false if the run was interrupted first.
    /// Each caller reserves the first free moment, at least an interval after the last one.
    pub fn acquire(&self) -> bool {
        // One wait on the limiter: for the callers ahead, then for this caller's moment.
        let wait = Wait::new(For::Held { refusable: false }, Bound::Forever);
        self.probe.block(wait, || {
            // This caller's moment, reserved under the lock: the first free one.
            let (now, at) = {
                let mut next = lock(&self.next);
                let now = crate::lab::now();
                let at = next.map_or(now, |at| at.max(now));
                // the rule: the next caller may go one interval after this release.
                *next = Some(at + self.interval);
                (now, at)
            };
            // Waited for outside the lock: a caller never sleeps holding it.
            at <= now || crate::lab::sleep(at - now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_at_least_an_interval_apart_however_many_call() {
        let _bound = crate::sync::bounded_test(20);
        let limiter = RateLimiter::new(50, Duration::from_secs(1));
        let times = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5 {
                        assert!(limiter.acquire());
                        lock(&times).push(crate::lab::now());
                    }
                });
            }
        });
        let mut times = times.into_inner().unwrap();
        times.sort();
        // 20 releases, 20 ms apart: the whole run takes at least 19 intervals.
        assert!(times[19] - times[0] >= Duration::from_millis(19 * 20) - Duration::from_millis(5));
    }
}
