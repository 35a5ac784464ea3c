//! `JoinableQueue`: a bounded FIFO with Python's `task_done()` / `join()` on top.
//!
//! `put` waits while the queue is full; `get` waits while it is empty. Every `put` raises an
//! *unfinished* count that only `task_done` lowers, so `join` can wait until every item put
//! has not just been taken but *processed*. `close` is the Rust-style shutdown: after it,
//! `get` drains what is left and then returns `None` to every consumer.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::lab::waitgraph::Cycle;
use crate::lab::{Bound, For, Outcome, Probe, Wait};

use super::lock;

/// What a bounded `get` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Got<T> {
    /// An item.
    Item(T),
    /// Nothing arrived within the timeout.
    Timeout,
    /// The queue is closed and empty.
    Closed,
    /// The lab's deadlock detector refused the wait: the queue is empty and no thread is
    /// left to put anything (or close it).
    Stalled(Box<Cycle>),
}

/// Misuse the queue reports instead of corrupting its count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// `put` after `close`.
    #[error("queue '{0}' is closed")]
    Closed(String),
    /// `put` on a full queue that no thread is left to take from: refused by the lab's
    /// deadlock detector.
    #[error("queue '{0}' is full and nobody is left to take from it")]
    Stalled(String, Box<Cycle>),
    /// More `task_done` calls than items put.
    #[error("task_done() called too many times on queue '{0}'")]
    TooManyTaskDone(String),
}

struct State<T> {
    items: VecDeque<T>,
    unfinished: usize,
    closed: bool,
    high_water: usize,
    put_blocked: Duration,
}

/// A bounded, joinable, closable FIFO queue.
pub struct JoinableQueue<T> {
    state: Mutex<State<T>>,
    not_full: Condvar,
    not_empty: Condvar,
    all_done: Condvar,
    maxsize: usize,
    probe: Probe,
}

impl<T> JoinableQueue<T> {
    /// A queue holding at most `maxsize` items (at least 1).
    pub fn new(maxsize: usize, probe: Probe) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                unfinished: 0,
                closed: false,
                high_water: 0,
                put_blocked: Duration::ZERO,
            }),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
            all_done: Condvar::new(),
            maxsize: maxsize.max(1),
            probe,
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    /// Adds `item`, waiting while the queue is full.
    pub fn put(&self, item: T) -> Result<(), QueueError> {
        self.put_announced(item, |_| {})
    }

    /// [`JoinableQueue::put`], calling `on_full(len)` first if it is about to wait: the
    /// narrative's "Queue full" comes before any consumer's line that makes room.
    pub fn put_announced(&self, item: T, on_full: impl FnOnce(usize)) -> Result<(), QueueError> {
        crate::lab::sched::point();
        let mut st = self.state();
        if st.items.len() >= self.maxsize && !st.closed {
            on_full(st.items.len());
            let began = crate::lab::now();
            let outcome;
            (st, outcome) = self.probe.wait(
                &self.state,
                st,
                &self.not_full,
                Wait::new(
                    For::Signal {
                        by: &["get", "close"],
                        bare: false,
                    },
                    Bound::Forever,
                ),
                |s| s.items.len() >= self.maxsize && !s.closed,
            );
            st.put_blocked += crate::lab::now().saturating_duration_since(began);
            if let Outcome::Refused(stall) = outcome {
                return Err(QueueError::Stalled(self.probe.name().to_string(), stall));
            }
        }
        if st.closed {
            return Err(QueueError::Closed(self.probe.name().to_string()));
        }
        st.items.push_back(item);
        st.unfinished += 1;
        st.high_water = st.high_water.max(st.items.len());
        self.probe.count("depth", st.items.len());
        self.probe.signal("put");
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the next item, waiting while empty: [`Got::Item`], [`Got::Closed`] once closed
    /// and drained, or [`Got::Stalled`] when nobody is left to put or close.
    pub fn next(&self) -> Got<T> {
        self.get_bounded(Bound::Forever)
    }

    /// [`JoinableQueue::next`], but giving up with [`Got::Timeout`] after `patience`: a safety
    /// bound, not the design, so the deadlock detector still treats the wait as unbounded.
    pub fn next_within(&self, patience: Duration) -> Got<T> {
        self.get_bounded(Bound::Patience(patience))
    }

    /// Takes the next item, waiting while empty; `None` once closed and drained (or when
    /// the wait is refused because nobody is left to put: see [`JoinableQueue::next`]).
    pub fn get(&self) -> Option<T> {
        match self.get_bounded(Bound::Forever) {
            Got::Item(item) => Some(item),
            _ => None,
        }
    }

    /// Takes the next item, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Got<T> {
        self.get_bounded(Bound::Timeout(timeout))
    }

    fn get_bounded(&self, bound: Bound) -> Got<T> {
        crate::lab::sched::point();
        let mut st = self.state();
        if st.items.is_empty() && !st.closed {
            let outcome;
            (st, outcome) = self.probe.wait(
                &self.state,
                st,
                &self.not_empty,
                Wait::new(
                    For::Signal {
                        by: &["put", "close"],
                        bare: false,
                    },
                    bound,
                ),
                |s| s.items.is_empty() && !s.closed,
            );
            if let Outcome::Refused(stall) = outcome {
                return Got::Stalled(stall);
            }
        }
        match st.items.pop_front() {
            Some(item) => {
                self.probe.count("depth", st.items.len());
                self.probe.signal("get");
                self.not_full.notify_one();
                Got::Item(item)
            }
            None if st.closed => Got::Closed,
            None => Got::Timeout,
        }
    }

    /// Marks one taken item as processed; wakes `join` when none are left.
    pub fn task_done(&self) -> Result<(), QueueError> {
        crate::lab::sched::point();
        let mut st = self.state();
        if st.unfinished == 0 {
            return Err(QueueError::TooManyTaskDone(self.probe.name().to_string()));
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            // The cause `join` wakes from (for the pictures' arrows and the detector).
            self.probe.signal("task_done");
            self.all_done.notify_all();
        }
        Ok(())
    }

    /// Waits until every item put has been marked done, at most `timeout`. Returns whether
    /// it got there.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let st = self.state();
        if st.unfinished == 0 {
            return true;
        }
        // Python's join() has no timeout: `timeout` is a safety bound (the detector may refuse
        // a join nobody is left to finish). Done only if done: a join that finds the work
        // finished only when a slice ran out (nobody woke it) is a `Polled` wait, which the
        // lab counts against its checks.
        let (st, _) = self.probe.wait(
            &self.state,
            st,
            &self.all_done,
            Wait::new(
                For::Signal {
                    by: &["task_done"],
                    bare: false,
                },
                Bound::Patience(timeout),
            ),
            |s| s.unfinished > 0,
        );
        st.unfinished == 0
    }

    /// Closes the queue: no more puts; getters drain what is left, then get `None`.
    pub fn close(&self) {
        crate::lab::sched::point();
        self.state().closed = true;
        self.probe.signal("close");
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Items waiting now.
    pub fn len(&self) -> usize {
        self.state().items.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items ever waiting at once.
    pub fn high_water(&self) -> usize {
        self.state().high_water
    }

    /// Total time `put` callers spent blocked on a full queue.
    pub fn put_blocked(&self) -> Duration {
        self.state().put_blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_waits_until_every_item_is_marked_done() {
        let _bound = crate::sync::bounded_test(20);
        let q = JoinableQueue::new(2, Probe::off("q"));
        std::thread::scope(|s| {
            s.spawn(|| {
                while let Some(_item) = q.get() {
                    std::thread::sleep(Duration::from_millis(1));
                    q.task_done().unwrap();
                }
            });
            for i in 0..10 {
                q.put(i).unwrap();
            }
            assert!(q.join_timeout(Duration::from_secs(10)));
            q.close();
        });
        assert!(q.high_water() <= 2);
    }

    #[test]
    fn join_times_out_while_work_is_unfinished() {
        let _bound = crate::sync::bounded_test(20);
        let q = JoinableQueue::new(2, Probe::off("q"));
        q.put(1).unwrap();
        assert_eq!(q.get(), Some(1));
        assert!(!q.join_timeout(Duration::from_millis(5)));
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::from_millis(5)));
    }

    #[test]
    fn task_done_too_often_is_an_error() {
        let _bound = crate::sync::bounded_test(20);
        let q: JoinableQueue<u8> = JoinableQueue::new(1, Probe::off("q"));
        assert!(matches!(q.task_done(), Err(QueueError::TooManyTaskDone(_))));
    }

    #[test]
    fn a_closed_queue_drains_then_returns_none_and_refuses_puts() {
        let _bound = crate::sync::bounded_test(20);
        let q = JoinableQueue::new(3, Probe::off("q"));
        q.put(1).unwrap();
        q.close();
        assert!(q.put(2).is_err());
        assert_eq!(q.get_timeout(Duration::from_millis(1)), Got::Item(1));
        assert_eq!(q.get_timeout(Duration::from_millis(1)), Got::Closed);
        assert_eq!(q.get(), None);
    }

    #[test]
    fn get_timeout_on_an_empty_open_queue_times_out() {
        let _bound = crate::sync::bounded_test(20);
        let q: JoinableQueue<u8> = JoinableQueue::new(1, Probe::off("q"));
        assert_eq!(q.get_timeout(Duration::from_millis(2)), Got::Timeout);
    }

    #[test]
    fn a_full_queue_blocks_put_until_a_get() {
        let _bound = crate::sync::bounded_test(20);
        let q = JoinableQueue::new(1, Probe::off("q"));
        q.put(1).unwrap();
        std::thread::scope(|s| {
            let h = s.spawn(|| q.put(2));
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(q.get(), Some(1));
            h.join().unwrap().unwrap();
        });
        assert!(q.put_blocked() > Duration::ZERO);
        assert_eq!(q.high_water(), 1);
    }

    #[test]
    fn every_item_put_through_a_full_queue_comes_out_once() {
        let _bound = crate::sync::bounded_test(20);
        let q = JoinableQueue::new(2, Probe::off("q"));
        let got = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while let Some(item) = q.get() {
                        got.lock().unwrap().push(item);
                        q.task_done().unwrap();
                    }
                });
            }
            for i in 0..200 {
                q.put(i).unwrap();
            }
            assert!(q.join_timeout(Duration::from_secs(30)));
            q.close();
        });
        let mut got = got.into_inner().unwrap();
        got.sort_unstable();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn waiting_getters_are_woken_by_put_and_close_not_by_their_timeouts() {
        let _bound = crate::sync::bounded_test(20);
        let q = JoinableQueue::new(1, Probe::off("q"));
        let long = Duration::from_secs(10);
        std::thread::scope(|s| {
            let getters: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let began = crate::lab::now();
                        (
                            q.get_timeout(long),
                            crate::lab::now().saturating_duration_since(began),
                        )
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(30));
            q.put(7).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            q.close();
            let got: Vec<_> = getters.into_iter().map(|h| h.join().unwrap()).collect();
            for (what, waited) in &got {
                assert!(
                    *waited < Duration::from_secs(5),
                    "{what:?} after {waited:?}"
                );
            }
            assert_eq!(got.iter().filter(|g| g.0 == Got::Item(7)).count(), 1);
            assert_eq!(got.iter().filter(|g| g.0 == Got::Closed).count(), 2);
        });
    }

    #[test]
    fn join_is_woken_by_the_last_task_done_not_by_an_empty_queue() {
        let _bound = crate::sync::bounded_test(20);
        let q = JoinableQueue::new(2, Probe::off("q"));
        q.put(1).unwrap();
        q.put(2).unwrap();
        std::thread::scope(|s| {
            let joiner = s.spawn(|| {
                let began = crate::lab::now();
                (
                    q.join_timeout(Duration::from_secs(10)),
                    crate::lab::now().saturating_duration_since(began),
                )
            });
            assert_eq!(q.get(), Some(1));
            assert_eq!(q.get(), Some(2));
            std::thread::sleep(Duration::from_millis(30));
            // Empty, but two tasks unfinished: the join must still wait.
            assert!(!joiner.is_finished(), "join returned on an empty queue");
            q.task_done().unwrap();
            q.task_done().unwrap();
            let (done, waited) = joiner.join().unwrap();
            assert!(
                done && waited < Duration::from_secs(5),
                "{done} after {waited:?}"
            );
        });
    }
}
