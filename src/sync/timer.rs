//! `Timer`: run something later on its own thread, or not at all (Python's
//! `threading.Timer`), and a repeating timer with the two ways to schedule the next tick.
//!
//! A timer is a thread that waits on a condition variable until its deadline, then checks,
//! under the same lock `cancel` takes, whether it was cancelled. That one lock makes
//! "cancelled in time" and "fired" mutually exclusive: `cancel` either wins (the action never
//! runs) or learns it came too late.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::{Bound, For, Lab, Outcome, Probe, Wait};

use super::lock;

/// Where a timer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Cancelled,
    Fired,
}

/// What `cancel` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Cancelled before the deadline: the action will never run.
    InTime,
    /// The action had already started (or finished): too late to stop it.
    TooLate,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// The lab's wait protocol: a cancel nobody notified shows as a lost wake-up.
    probe: Probe,
}

impl Shared {
    fn new(lab: &Lab, name: &str) -> Self {
        Self {
            state: Mutex::new(State::Waiting),
            changed: Condvar::new(),
            probe: Probe::on(name, None, Some(Arc::clone(lab.wait_graph()))),
        }
    }

    /// Waits until `deadline` unless cancelled first (spurious wake-ups re-checked).
    /// Returns whether the state is still `Waiting` at the deadline.
    fn wait_until(&self, deadline: Instant) -> bool {
        let st = lock(&self.state);
        let left = deadline.saturating_duration_since(crate::lab::now());
        if *st != State::Waiting || left.is_zero() {
            return *st == State::Waiting;
        }
        let (st, outcome) = self.probe.wait(
            &self.state,
            st,
            &self.changed,
            Wait::new(
                For::Signal {
                    by: &["cancel"],
                    bare: false,
                },
                Bound::Timeout(left),
            ),
            |s| *s == State::Waiting,
        );
        outcome == Outcome::TimedOut && *st == State::Waiting
    }

    /// At the deadline: fire unless cancelled, under the lock `cancel` takes.
    fn fire(&self) -> bool {
        let mut st = lock(&self.state);
        if *st == State::Waiting {
            *st = State::Fired;
            true
        } else {
            false
        }
    }

    fn cancel(&self) -> Cancel {
        let mut st = lock(&self.state);
        let answer = match *st {
            State::Fired => Cancel::TooLate,
            _ => {
                *st = State::Cancelled;
                Cancel::InTime
            }
        };
        self.probe.signal("cancel");
        self.changed.notify_all();
        answer
    }
}

/// A one-shot timer: `action` runs on the timer's own thread after `delay`, unless
/// cancelled first.
#[derive(Debug)]
pub struct Timer {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

impl Timer {
    /// Starts a timer thread named `name` that runs `action` after `delay` (a real duration:
    /// scale simulated ones with `lab.scaled` first).
    pub fn start(
        lab: &Lab,
        name: &str,
        delay: Duration,
        action: impl FnOnce() + Send + 'static,
    ) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared::new(lab, name));
        let deadline = crate::lab::now() + delay;
        let theirs = Arc::clone(&shared);
        let thread = lab.spawn_detached(name, move || {
            if theirs.wait_until(deadline) && theirs.fire() {
                crate::lab::record::mark(|| "fired".to_string());
                action();
            }
        })?;
        Ok(Self { shared, thread })
    }

    /// Cancels the timer. `InTime` means the action will never run; `TooLate` that it
    /// already started.
    pub fn cancel(&self) -> Cancel {
        self.shared.cancel()
    }

    /// Waits up to `timeout` for the timer's thread to end. Returns whether it ended.
    pub fn join_timeout(self, timeout: Duration) -> bool {
        join_bounded(self.thread, timeout).is_some()
    }
}

/// How a repeating timer picks the time of its next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The tutorials' `RepeatingTimer`, as written: when a tick fires, `_run` first re-arms
    /// (`start()`: a new `Timer(interval)`, on a new thread), then does the work on the thread
    /// that fired. No drift by the work, only by each re-arm's own moment; but a tick whose
    /// work outlasts the interval runs beside the next one (they overlap).
    RearmFirst,
    /// Wait `interval` after the work is done (a loop of `sleep(interval); work()`). Every
    /// tick starts late by all the work before it (the drift).
    AfterWork,
    /// Aim at `start + k × interval` whatever the work took; a tick missed entirely (work
    /// longer than an interval) is skipped, not run in a burst.
    FixedRate,
}

/// A repeating timer: `tick(k)` runs on the timer's thread for k = 1, 2, … until cancelled.
#[derive(Debug)]
pub struct Repeating {
    shared: Arc<Shared>,
    thread: JoinHandle<u64>,
}

impl Repeating {
    /// Starts ticking every `interval` (a real duration) after `start`. The thread returns
    /// how many ticks it skipped (fixed rate only).
    pub fn start(
        lab: &Lab,
        name: &str,
        start: Instant,
        interval: Duration,
        schedule: Schedule,
        tick: impl Fn(u64) + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let tick = Arc::new(tick);
        let shared = Arc::new(Shared::new(lab, name));
        let theirs = Arc::clone(&shared);
        let interval = interval.max(Duration::from_micros(100));
        let recorder = Arc::clone(lab.recorder());
        let thread = lab.spawn_detached(name, move || {
            let mut skipped = 0;
            let mut next = start + interval;
            let mut k = 1;
            // RearmFirst: each tick's work runs on a thread of its own, as the work of
            // Python's fired Timer runs on that Timer's thread while the next one waits.
            let mut fired: Vec<JoinHandle<()>> = Vec::new();
            while theirs.wait_until(next) {
                crate::lab::record::mark(|| format!("tick {k}"));
                if schedule == Schedule::RearmFirst {
                    // `_run`: re-arm first (the next deadline counts from now), then work.
                    next = crate::lab::now() + interval;
                    let tick = Arc::clone(&tick);
                    let name = format!("Tick-{k}");
                    match crate::lab::spawn_recorded(&recorder, name, move || tick(k)) {
                        Ok(h) => fired.push(h),
                        Err(_) => break,
                    }
                    k += 1;
                    continue;
                }
                tick(k);
                match schedule {
                    Schedule::RearmFirst => unreachable!("handled above"),
                    // the bug: the next wait starts when the work ends.
                    Schedule::AfterWork => next = crate::lab::now() + interval,
                    // the fix: the next deadline is fixed in advance.
                    Schedule::FixedRate => {
                        next += interval;
                        while next < crate::lab::now() {
                            next += interval;
                            skipped += 1;
                        }
                    }
                }
                k += 1;
            }
            // Every tick that fired has ended before the timer counts as stopped.
            let deadline = crate::lab::now() + Duration::from_secs(10) + interval * 2;
            for h in fired {
                join_bounded(h, deadline.saturating_duration_since(crate::lab::now()));
            }
            skipped
        })?;
        Ok(Self { shared, thread })
    }

    /// Stops the ticking: no tick starts after this returns (one already running finishes).
    pub fn cancel(&self) {
        let _ = self.shared.cancel();
    }

    /// Waits up to `timeout` for the thread to end; returns the ticks it skipped, or `None`
    /// if it did not end in time.
    pub fn join_timeout(self, timeout: Duration) -> Option<u64> {
        join_bounded(self.thread, timeout)
    }
}

/// Joins `thread` if it ends within `timeout` and returns what it returned; a thread that
/// does not end in time is left detached (`None`), as is one that panicked.
fn join_bounded<T>(thread: JoinHandle<T>, timeout: Duration) -> Option<T> {
    let deadline = crate::lab::now() + timeout;
    // In a scheduled run, ended as the scheduler knows it (the OS's exit follows at once).
    let id = thread.thread().id();
    let ended = || crate::lab::sched::ended(id).unwrap_or_else(|| thread.is_finished());
    while !ended() {
        if crate::lab::now() >= deadline {
            return None;
        }
        crate::lab::pause(Duration::from_millis(1));
    }
    thread.join().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    fn lab() -> Lab {
        Lab::quiet(1.0, 1)
    }

    #[test]
    fn a_timer_fires_no_earlier_than_its_delay() {
        let _bound = crate::sync::bounded_test(20);
        let fired = Arc::new(Mutex::new(None));
        let at = Arc::clone(&fired);
        let began = crate::lab::now();
        let t = Timer::start(&lab(), "t", Duration::from_millis(30), move || {
            *at.lock().unwrap() = Some(crate::lab::now());
        })
        .unwrap();
        assert!(t.join_timeout(Duration::from_secs(10)));
        let when = fired.lock().unwrap().expect("fired");
        assert!(when - began >= Duration::from_millis(30));
    }

    #[test]
    fn a_timer_cancelled_in_time_never_fires() {
        let _bound = crate::sync::bounded_test(20);
        let fired = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&fired);
        let t = Timer::start(&lab(), "t", Duration::from_millis(50), move || {
            f.store(true, Ordering::SeqCst)
        })
        .unwrap();
        assert_eq!(t.cancel(), Cancel::InTime);
        std::thread::sleep(Duration::from_millis(80));
        assert!(!fired.load(Ordering::SeqCst));
        assert!(t.join_timeout(Duration::from_secs(10)));
    }

    #[test]
    fn cancelling_after_the_action_started_is_too_late() {
        let _bound = crate::sync::bounded_test(20);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let t = Timer::start(&lab(), "t", Duration::from_millis(1), move || {
            let _ = tx.send(());
        })
        .unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(t.cancel(), Cancel::TooLate);
    }

    #[test]
    fn a_fixed_rate_timer_does_not_drift_by_its_work() {
        let _bound = crate::sync::bounded_test(20);
        let starts = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&starts);
        let began = crate::lab::now();
        let interval = Duration::from_millis(50);
        let r = Repeating::start(
            &lab(),
            "r",
            began,
            interval,
            Schedule::FixedRate,
            move |_| {
                log.lock().unwrap().push(crate::lab::now());
                std::thread::sleep(Duration::from_millis(30));
            },
        )
        .unwrap();
        while starts.lock().unwrap().len() < 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        r.cancel();
        assert!(r.join_timeout(Duration::from_secs(10)).is_some());
        let fourth = starts.lock().unwrap()[3];
        // After work re-arming would start the fourth tick 90 ms late.
        let late = fourth.saturating_duration_since(began + interval * 4);
        assert!(late < Duration::from_millis(45), "late by {late:?}");
    }

    #[test]
    fn a_repeating_timer_stops_when_cancelled() {
        let _bound = crate::sync::bounded_test(20);
        let ticks = Arc::new(AtomicU64::new(0));
        let n = Arc::clone(&ticks);
        let r = Repeating::start(
            &lab(),
            "r",
            crate::lab::now(),
            Duration::from_millis(5),
            Schedule::FixedRate,
            move |_| {
                n.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
        while ticks.load(Ordering::SeqCst) < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        r.cancel();
        let seen = ticks.load(Ordering::SeqCst);
        assert!(r.join_timeout(Duration::from_secs(10)).is_some());
        assert!(ticks.load(Ordering::SeqCst) <= seen + 1);
    }

    #[test]
    fn cancel_wakes_the_waiting_timer_thread_at_once() {
        let _bound = crate::sync::bounded_test(20);
        let t = Timer::start(&lab(), "t", Duration::from_secs(8), || {}).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(t.cancel(), Cancel::InTime);
        // Not at its 8 s deadline: the cancel itself must wake it.
        assert!(
            t.join_timeout(Duration::from_secs(3)),
            "the timer thread slept on"
        );
    }
}
