//! Work on a pool, results in input order: `job(0)`, `job(1)`, … run on a pool of named
//! threads, each taking the next index as it becomes free, and each result is handed on in
//! index order as soon as every earlier one has been.
//!
//! An early result waits for its turn in a buffer. With a `window`, at most that many
//! results are ever made and not yet handed on: a worker takes a ticket before it takes an
//! index, and the consumer gives the ticket back when it hands a result on, so memory stays
//! bounded however slow one item is (the reading of a folder of documents). Without one,
//! workers never wait for the consumer (the checks of URLs, where one slow server must not
//! hold the others back).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::ThreadPool;
use crate::lab::Recorder;

/// How the work is spread: how many workers, named how, recorded where, with what window.
pub struct InOrder<'a> {
    pub workers: usize,
    /// Workers are named `{prefix}_N`.
    pub prefix: &'a str,
    /// Where the workers' lives are recorded (a demo's report), if anywhere.
    pub recorder: Option<Arc<Recorder>>,
    /// At most this many results made and not yet handed on (`None`: no bound).
    pub window: Option<usize>,
}

impl InOrder<'_> {
    /// Runs `job(i)` for every `i` in `0..count` and hands each result to `emit` in index
    /// order. Stops handing out work when the run is interrupted; `left(i)` stands for each
    /// result never made. Returns the pool's time.
    pub fn run<R: Send + 'static>(
        self,
        count: usize,
        job: Arc<dyn Fn(usize) -> R + Send + Sync>,
        left: impl Fn(usize) -> R,
        mut emit: impl FnMut(usize, R) -> anyhow::Result<()>,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let workers = self.workers.min(count).max(1);
        let pool = match self.recorder {
            Some(recorder) => ThreadPool::recorded(workers, self.prefix, recorder)?,
            None => ThreadPool::new(workers, self.prefix)?,
        };
        // The window's tickets; the consumer alone can give one back, so when it stops, a
        // worker waiting for a ticket sees the channel closed and ends.
        let (give, tickets) = match self.window {
            Some(window) => {
                let (give, tickets) = crossbeam_channel::bounded::<()>(window.max(1));
                while give.try_send(()).is_ok() {}
                (Some(give), Some(tickets))
            }
            None => (None, None),
        };
        let next = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = crossbeam_channel::unbounded::<(usize, R)>();
        for _ in 0..pool.workers() {
            let (job, next, tx, tickets) = (
                Arc::clone(&job),
                Arc::clone(&next),
                tx.clone(),
                tickets.clone(),
            );
            pool.submit(move || {
                while !crate::lab::signals::interrupted() {
                    if let Some(tickets) = &tickets
                        && crate::lab::recv("window", tickets).is_none()
                    {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count || tx.send((i, job(i))).is_err() {
                        break;
                    }
                }
            });
        }
        drop((tx, tickets));
        let mut waiting: BTreeMap<usize, R> = BTreeMap::new();
        let mut turn = 0;
        // Until every result is handed on (then the workers still waiting for a ticket see
        // the window closed), or every worker has stopped (an interruption).
        while turn < count {
            let Some((i, result)) = crate::lab::recv("results", &rx) else {
                break;
            };
            waiting.insert(i, result);
            while let Some(result) = waiting.remove(&turn) {
                emit(turn, result)?;
                turn += 1;
                if let Some(give) = &give {
                    let _ = give.try_send(());
                }
            }
        }
        drop(give);
        drop(pool); // joins every worker
        let elapsed = started.elapsed();
        for i in turn..count {
            let result = waiting.remove(&i).unwrap_or_else(|| left(i));
            emit(i, result)?;
        }
        Ok(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn results_come_in_index_order_and_the_window_bounds_those_made_ahead() {
        let made = Arc::new(AtomicUsize::new(0));
        let handed = Arc::new(AtomicUsize::new(0));
        let most_ahead = Arc::new(AtomicUsize::new(0));
        let job = {
            let (made, handed, most_ahead) = (made.clone(), handed.clone(), most_ahead.clone());
            Arc::new(move |i: usize| {
                // Item 0 is slow: without a window, the others would all be made meanwhile.
                if i == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let ahead = made.fetch_add(1, Ordering::SeqCst) + 1 - handed.load(Ordering::SeqCst);
                most_ahead.fetch_max(ahead, Ordering::SeqCst);
                i * 10
            })
        };
        let mut seen = Vec::new();
        let order = InOrder {
            workers: 4,
            prefix: "Ordered",
            recorder: None,
            window: Some(3),
        };
        order
            .run(
                40,
                job,
                |_| usize::MAX,
                |i, r| {
                    handed.fetch_add(1, Ordering::SeqCst);
                    seen.push((i, r));
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(seen, (0..40).map(|i| (i, i * 10)).collect::<Vec<_>>());
        let most = most_ahead.load(Ordering::SeqCst);
        assert!(
            most <= 3,
            "{most} results made ahead of the consumer, window 3"
        );
    }

    #[test]
    fn a_consumer_that_stops_early_ends_the_workers() {
        let job = Arc::new(|i: usize| i);
        let order = InOrder {
            workers: 2,
            prefix: "Ordered",
            recorder: None,
            window: Some(2),
        };
        let stopped = order.run(
            1000,
            job,
            |_| 0,
            |i, _| {
                anyhow::ensure!(i < 5, "enough");
                Ok(())
            },
        );
        assert!(stopped.is_err());
    }
}
