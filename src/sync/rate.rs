//! `RateLimiter`: at most N starts per second, built in plain view.
//!
//! The fixed-interval form: the limiter keeps the earliest moment the next caller may go.
//! `acquire` waits until then, and the caller it lets go sets the next moment one interval
//! (1/N s) after its own release, under the limiter's lock. So two releases are always at
//! least an interval apart, whatever the callers do after, and however many wait.

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
    /// Callers go one at a time through the lock, each at least an interval after the last.
    pub fn acquire(&self) -> bool {
        // One wait on the limiter: for the callers ahead, then for this caller's moment.
        let wait = Wait::new(For::Held { refusable: false }, Bound::Forever);
        self.probe.block(wait, || {
            let mut next = lock(&self.next);
            let now = Instant::now();
            if let Some(at) = *next
                && at > now
                && !crate::lab::sleep(at - now)
            {
                return false;
            }
            // the rule: the next caller may go one interval after this release.
            *next = Some(Instant::now() + self.interval);
            true
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
                        lock(&times).push(Instant::now());
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
