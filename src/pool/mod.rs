//! `ThreadPool`: Python's `ThreadPoolExecutor` for Rust, small enough to read in one sitting.
//!
//! A fixed set of named worker threads (`{prefix}_{index}`) takes boxed jobs from one
//! crossbeam channel. `submit` wraps the task so that its value, its error, or its panic is
//! sent to a one-shot channel that the returned [`Future`] reads. The worker catches the
//! panic, so it survives and takes the next job: a failing task never shrinks the pool.
//! Dropping the pool (or [`ThreadPool::shutdown`]) closes the job channel; workers finish
//! what is queued, see the channel closed, and exit; the drop joins them all.

pub mod ordered;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender};

use crate::lab::{Bound, For, Probe, Recorder, Wait, panic_message};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a Future holds no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The task returned an error.
    #[error("task failed: {0}")]
    Failed(String),
    /// The task panicked; the pool caught it and kept working.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The pool went away before the task ran (it cannot, while the Future's pool lives).
    #[error("task was lost: the pool shut down before running it")]
    Lost,
}

/// The eventual result of a submitted task.
#[derive(Debug)]
pub struct Future<T> {
    rx: Receiver<Result<T, TaskError>>,
}

impl<T> Future<T> {
    /// Whether the task has finished (without blocking).
    pub fn done(&self) -> bool {
        !self.rx.is_empty()
    }

    /// Waits for the task and returns its value, or why there is none.
    pub fn result(self) -> Result<T, TaskError> {
        crate::lab::recv("future", &self.rx).unwrap_or(Err(TaskError::Lost))
    }

    /// Waits at most `timeout`. On timeout the Future is handed back, still pending.
    pub fn result_timeout(self, timeout: Duration) -> Result<Result<T, TaskError>, Future<T>> {
        let wait = Wait::new(For::Outside, Bound::Timeout(timeout));
        let received = match crate::lab::sched::current() {
            Some(turn) => crate::lab::scheduled_recv(&turn, &self.rx, Some(timeout)),
            None => Probe::off("future").block(wait, || self.rx.recv_timeout(timeout)),
        };
        match received {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => Err(self),
            Err(RecvTimeoutError::Disconnected) => Ok(Err(TaskError::Lost)),
        }
    }
}

/// A fixed-size pool of named worker threads.
pub struct ThreadPool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    prefix: String,
}

impl ThreadPool {
    /// Python's default worker count: `min(32, cores + 4)`.
    pub fn default_workers() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        32.min(cores + 4)
    }

    /// A pool of `workers` threads named `{prefix}_0`, `{prefix}_1`, …
    pub fn new(workers: usize, prefix: &str) -> std::io::Result<Self> {
        Self::build(workers, prefix, None)
    }

    /// The same, recording each worker's life in `recorder` (for a demo's report).
    pub fn recorded(
        workers: usize,
        prefix: &str,
        recorder: Arc<Recorder>,
    ) -> std::io::Result<Self> {
        Self::build(workers, prefix, Some(recorder))
    }

    fn build(
        workers: usize,
        prefix: &str,
        recorder: Option<Arc<Recorder>>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let mut pool = Self {
            jobs: Some(tx),
            workers: Vec::with_capacity(workers),
            prefix: prefix.to_string(),
        };
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let name = format!("{prefix}_{i}");
            let recorder = recorder.clone();
            // A place kept now, so the workers are listed in the order they were spawned.
            let slot = recorder.as_ref().map(|r| r.reserve(&name));
            // In a scheduled run the workers are the run's threads, as the lab's are.
            let (turn, spawned) = crate::lab::scheduled_spawn(&name);
            pool.workers
                .push(std::thread::Builder::new().name(name).spawn(move || {
                    let _turn = spawned.map(crate::lab::sched::Spawned::enter);
                    let _life = recorder
                        .as_ref()
                        .zip(slot)
                        .map(|(r, slot)| r.thread_started_at(slot));
                    // Runs until the pool closes the channel and the queue is drained. The
                    // pictures show the idle time as a wait for `jobs`.
                    while let Some(job) = crate::lab::recv("jobs", &rx) {
                        job();
                    }
                })?);
            if let Some(worker) = pool.workers.last() {
                crate::lab::bind(turn, worker.thread());
            }
        }
        Ok(pool)
    }

    /// How many workers the pool has.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The worker-name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Schedules `task`; its value, or its panic, arrives in the returned Future.
    pub fn submit<T, F>(&self, task: F) -> Future<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.try_submit(move || Ok::<T, std::convert::Infallible>(task()))
    }

    /// Schedules a fallible `task`: an `Err` becomes [`TaskError::Failed`] in its Future.
    pub fn try_submit<T, E, F>(&self, task: F) -> Future<T>
    where
        T: Send + 'static,
        E: std::fmt::Display,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job: Job = Box::new(move || {
            // A task's panic is caught on purpose: it becomes the Future's error.
            let caught = crate::lab::expecting_panics(|| catch_unwind(AssertUnwindSafe(task)));
            let outcome = match caught {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(TaskError::Failed(e.to_string())),
                Err(payload) => Err(TaskError::Panicked(panic_message(payload.as_ref()))),
            };
            let _ = tx.send(outcome); // the caller may have dropped its Future: fine
        });
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
        Future { rx }
    }

    /// Applies `f` to every item on the pool; results come back in input order.
    pub fn map<I, T, R, F>(
        &self,
        items: I,
        f: F,
    ) -> impl Iterator<Item = Result<R, TaskError>> + use<I, T, R, F>
    where
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let futures: Vec<Future<R>> = items
            .into_iter()
            .map(|item| {
                let f = Arc::clone(&f);
                self.submit(move || f(item))
            })
            .collect();
        futures.into_iter().map(Future::result)
    }

    /// Finishes queued work and joins every worker (what dropping the pool does).
    pub fn shutdown(self) {}
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        drop(self.jobs.take()); // close the queue: workers drain it and exit
        let ids: Vec<_> = self.workers.iter().map(|w| w.thread().id()).collect();
        if let Err(e) = crate::lab::scheduled_join(&ids) {
            tracing::warn!("{e:#}");
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Yields `(index, result)` for each Future as it completes, in completion order.
pub fn as_completed<T>(
    futures: Vec<Future<T>>,
) -> impl Iterator<Item = (usize, Result<T, TaskError>)> {
    let mut pending: Vec<(usize, Future<T>)> = futures.into_iter().enumerate().collect();
    std::iter::from_fn(move || {
        if pending.is_empty() {
            return None;
        }
        if let Some(turn) = crate::lab::sched::current() {
            return Some(next_scheduled(&turn, &mut pending));
        }
        let mut select = Select::new();
        for (_, f) in &pending {
            select.recv(&f.rx);
        }
        let op = select.select();
        let k = op.index();
        let result = op.recv(&pending[k].1.rx).unwrap_or(Err(TaskError::Lost));
        let (index, _) = pending.swap_remove(k);
        Some((index, result))
    })
}

/// [`as_completed`]'s next in a scheduled run: the first pending Future (in order) that
/// has finished, looked for at each turn (a select would block outside the scheduler).
fn next_scheduled<T>(
    turn: &crate::lab::sched::Turn,
    pending: &mut Vec<(usize, Future<T>)>,
) -> (usize, Result<T, TaskError>) {
    use crossbeam_channel::TryRecvError;
    loop {
        for k in 0..pending.len() {
            let result = match pending[k].1.rx.try_recv() {
                Ok(r) => r,
                Err(TryRecvError::Disconnected) => Err(TaskError::Lost),
                Err(TryRecvError::Empty) => continue,
            };
            return (pending.remove(k).0, result);
        }
        crate::lab::scheduled_poll(turn, crate::lab::POLL_TICK_US);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_future_resolves_with_its_value() {
        let _bound = crate::sync::bounded_test(20);
        let pool = ThreadPool::new(4, "T").unwrap();
        let futures: Vec<_> = (0..1000u64).map(|i| pool.submit(move || i * 2)).collect();
        let sum: u64 = futures.into_iter().map(|f| f.result().unwrap()).sum();
        assert_eq!(sum, 999 * 1000);
    }

    #[test]
    fn errors_and_panics_land_in_their_futures_and_the_pool_keeps_working() {
        let _bound = crate::sync::bounded_test(20);
        let pool = ThreadPool::new(2, "T").unwrap();
        let failed = pool.try_submit(|| Err::<u32, _>("no such file"));
        let panicked = pool.submit(|| -> u32 { panic!("boom") });
        assert_eq!(
            failed.result(),
            Err(TaskError::Failed("no such file".into()))
        );
        assert_eq!(panicked.result(), Err(TaskError::Panicked("boom".into())));
        // Both workers still alive: more tasks than workers all complete.
        let names: Vec<String> = (0..20)
            .map(|_| pool.submit(|| std::thread::current().name().unwrap().to_string()))
            .map(|f| f.result().unwrap())
            .collect();
        assert!(names.iter().all(|n| n == "T_0" || n == "T_1"));
        assert_eq!(pool.workers(), 2);
    }

    #[test]
    fn map_keeps_input_order() {
        let _bound = crate::sync::bounded_test(20);
        let pool = ThreadPool::new(4, "T").unwrap();
        let out: Vec<u64> = pool
            .map((0..50u64).rev(), |i| {
                std::thread::sleep(Duration::from_micros(i * 10));
                i
            })
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, (0..50).rev().collect::<Vec<_>>());
    }

    #[test]
    fn as_completed_yields_each_future_once_in_completion_order() {
        let _bound = crate::sync::bounded_test(20);
        let pool = ThreadPool::new(3, "T").unwrap();
        let delays = [300u64, 1, 150]; // wide gaps: the order must survive a loaded machine
        let futures: Vec<_> = delays
            .iter()
            .map(|&d| pool.submit(move || std::thread::sleep(Duration::from_millis(d))))
            .collect();
        let order: Vec<usize> = as_completed(futures)
            .map(|(i, r)| {
                r.unwrap();
                i
            })
            .collect();
        let mut seen = order.clone();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2]);
        assert_eq!(order[0], 1, "the 1 ms task finishes first");
    }

    #[test]
    fn dropping_the_pool_finishes_queued_work_and_joins_every_worker() {
        let _bound = crate::sync::bounded_test(20);
        let ran = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(AtomicUsize::new(0));
        {
            let pool = ThreadPool::new(3, "T").unwrap();
            for _ in 0..3 {
                let alive = Arc::clone(&alive);
                pool.submit(move || {
                    // a guard that counts this worker alive until its thread-local dies
                    alive.fetch_add(1, Ordering::SeqCst);
                });
            }
            for _ in 0..100 {
                let ran = Arc::clone(&ran);
                pool.submit(move || {
                    std::thread::sleep(Duration::from_micros(100));
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
        }
        assert_eq!(
            ran.load(Ordering::SeqCst),
            100,
            "queued work finished before drop returned"
        );
        // Every worker was joined: the only references left to the counters are ours.
        assert_eq!(Arc::strong_count(&ran), 1);
        assert_eq!(Arc::strong_count(&alive), 1);
    }

    #[test]
    fn result_timeout_hands_back_a_pending_future() {
        let _bound = crate::sync::bounded_test(20);
        let pool = ThreadPool::new(1, "T").unwrap();
        let f = pool.submit(|| std::thread::sleep(Duration::from_millis(50)));
        let f = f.result_timeout(Duration::from_millis(1)).unwrap_err();
        assert!(f.result_timeout(Duration::from_secs(10)).is_ok());
    }
}
