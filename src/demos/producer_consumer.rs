#![doc = include_str!("pages/producer_consumer.md")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::evidence::Occupancy;
use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::JoinableQueue;
use crate::sync::queue::Got;

/// Flags of `threadlab producer-consumer`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Producer threads (1..=64).
    #[arg(long, default_value_t = 1, value_name = "P",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub producers: usize,
    /// Consumer threads (1..=64).
    #[arg(long, default_value_t = 3, value_name = "C",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub consumers: usize,
    /// Tasks to produce in all (1..=1000000).
    #[arg(long, default_value_t = 12, value_name = "N",
          value_parser = crate::cli::whole::<u64>(1, 1_000_000))]
    pub items: u64,
    /// Most tasks the queue holds (1..=100000). Small, so a producer faster than its
    /// consumers is seen waiting for room.
    #[arg(long, default_value_t = 3, value_name = "M",
          value_parser = crate::cli::whole::<usize>(1, 100_000))]
    pub maxsize: usize,
    /// How consumers are told to stop.
    #[arg(long, value_enum, default_value_t = Shutdown::Sentinel)]
    pub shutdown: Shutdown,
    /// Longest time to produce a task, seconds (random from 0; scaled by --pace).
    #[arg(long, default_value_t = 0.05, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub produce_time: f64,
    /// Longest time to process a task, seconds (random from a fifth of it; scaled by --pace).
    #[arg(long, default_value_t = 0.5, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub work_time: f64,
}

/// The shutdown style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shutdown {
    /// One stop marker per consumer.
    Sentinel,
    /// Consumers leave after a `get` times out.
    Timeout,
    /// The queue is closed.
    Close,
}

/// What travels through the queue.
#[derive(Debug)]
enum Msg {
    Task(u64),
    Stop,
}

/// Closes the queue when dropped.
struct CloseOnExit<'a, T>(&'a JoinableQueue<T>);

impl<T> Drop for CloseOnExit<'_, T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// How soon after the last `task_done()` the joiner must be running again: a wake-up's usual
/// tens of microseconds, with room for a busy machine.
const JOIN_BOUND: Duration = Duration::from_millis(100);

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("producer-consumer");
    report.params_from(args);
    info!(
        "{} producer(s), {} consumers, {} tasks, queue maxsize {}, shutdown by {:?}",
        args.producers, args.consumers, args.items, args.maxsize, args.shutdown
    );
    let queue: JoinableQueue<Msg> = JoinableQueue::new(args.maxsize, lab.probe("queue"));
    let (results_tx, results_rx) = crossbeam_channel::unbounded::<(u64, u64, String)>();
    // The consumers' get timeout (timeout style) must outlast the longest gap between tasks.
    let get_timeout = lab
        .scaled(Duration::from_secs_f64(args.produce_time * 2.0 + 0.5))
        .max(Duration::from_millis(50));
    let patience = lab.scaled(Duration::from_secs_f64(
        (args.produce_time + args.work_time) * args.items as f64,
    )) + Duration::from_secs(60);
    let started = Instant::now();

    // The latest moment a consumer marked a task done, by the consumers' clocks.
    let last_done: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    // Each task's way through the queue, timed by its producer and its consumer.
    let occupancy: Occupancy<u64> = Occupancy::default();
    let (produced, per_consumer, stuck, joined_at) =
        std::thread::scope(|s| -> anyhow::Result<_> {
            let (last_done, occupancy) = (&last_done, &occupancy);
            let queue = &queue;
            // Whatever path leaves this scope (an error included), close the queue first so no
            // consumer is left blocked in `get` while the scope waits for it.
            let _close = CloseOnExit(queue);
            let consumers: Vec<_> = (1..=args.consumers)
                .map(|c| {
                    let results = results_tx.clone();
                    let name = format!("Worker-{c}");
                    lab.spawn(s, name.clone(), move || -> anyhow::Result<u64> {
                        let mut rng = lab.rng(&name);
                        let mut handled = 0;
                        loop {
                            let called = Instant::now();
                            let msg = match args.shutdown {
                                Shutdown::Timeout => match queue.get_timeout(get_timeout) {
                                    Got::Item(m) => m,
                                    Got::Timeout => {
                                        info!(
                                            "Nothing for {}. Exiting.",
                                            units::duration(get_timeout)
                                        );
                                        break;
                                    }
                                    // A timed get is never refused: it ends by itself.
                                    Got::Closed | Got::Stalled(_) => break,
                                },
                                _ => match queue.next() {
                                    Got::Item(m) => m,
                                    Got::Closed | Got::Timeout => {
                                        info!("Queue closed. Exiting.");
                                        break;
                                    }
                                    Got::Stalled(_) => {
                                        info!("Nobody is left to put or close. Exiting.");
                                        break;
                                    }
                                },
                            };
                            let id = match msg {
                                Msg::Stop => {
                                    info!("Received sentinel. Exiting.");
                                    queue.task_done()?;
                                    break;
                                }
                                Msg::Task(id) => id,
                            };
                            occupancy.get_called(id, called);
                            info!("Processing 'Task Data {id}'");
                            lab.sleep_secs(rng.random_range(args.work_time / 5.0..=args.work_time));
                            let result = id * id;
                            info!("Finished 'Task Data {id}'. Result: {result}");
                            results.send((id, result, lab::thread_name()))?;
                            handled += 1;
                            // By the consumer's clock, just before it marks the task done: the
                            // queue's join may return only after the last of these.
                            let marking = Instant::now();
                            let mut last = crate::sync::lock(last_done);
                            *last = Some(last.map_or(marking, |t: Instant| t.max(marking)));
                            drop(last);
                            queue.task_done()?;
                        }
                        Ok(handled)
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            drop(results_tx);
            let producers: Vec<_> = (0..args.producers)
                .map(|p| {
                    let name = if args.producers == 1 {
                        "Producer".to_string()
                    } else {
                        format!("Producer-{}", p + 1)
                    };
                    lab.spawn(s, name.clone(), move || -> anyhow::Result<u64> {
                        let mut rng = lab.rng(&name);
                        let mut made = 0;
                        // Producer p makes tasks p, p + P, p + 2P, …: distinct ids across producers.
                        for id in (p as u64..args.items).step_by(args.producers) {
                            lab.sleep_secs(rng.random_range(0.0..=args.produce_time));
                            info!("Adding 'Task Data {id}' to queue.");
                            queue.put_announced(Msg::Task(id), |n| {
                                info!("Queue full ({n}). Waiting for room…");
                            })?;
                            occupancy.put_done(id, Instant::now());
                            made += 1;
                        }
                        Ok(made)
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let mut produced = 0;
            for p in producers {
                produced += lab::join(p)??;
            }
            info!("All tasks produced; waiting for the queue to be processed (join)…");
            anyhow::ensure!(
                queue.join_timeout(patience),
                "the queue was not processed within {patience:?}"
            );
            let joined_at = Instant::now();
            info!("Queue joined: every task processed.");
            match args.shutdown {
                Shutdown::Sentinel => {
                    info!("Sending {} sentinels.", args.consumers);
                    for _ in 0..args.consumers {
                        queue.put(Msg::Stop)?;
                    }
                }
                Shutdown::Close => {
                    info!("Closing the queue.");
                    queue.close();
                }
                Shutdown::Timeout => info!(
                    "Consumers will leave after {} without tasks.",
                    units::duration(get_timeout)
                ),
            }
            // Every consumer should now leave on its own, promptly. One that does not (its stop
            // signal lost) is counted, then released by closing the queue: the demo never hangs
            // on a lost signal.
            let grace = lab.scaled(Duration::from_secs_f64(args.work_time)) * 2
                + get_timeout
                + Duration::from_secs(2);
            let deadline = Instant::now() + grace;
            while consumers.iter().any(|c| !c.is_finished()) && Instant::now() < deadline {
                crate::lab::pause(Duration::from_millis(5));
            }
            let stuck = consumers.iter().filter(|c| !c.is_finished()).count();
            if stuck > 0 {
                warn!(
                    "{stuck} consumer(s) still waiting {} after the shutdown; closing the queue",
                    units::duration(grace)
                );
                queue.close();
            }
            let mut per_consumer = Vec::new();
            for (i, c) in consumers.into_iter().enumerate() {
                per_consumer.push((format!("Worker-{}", i + 1), lab::join(c)??));
            }
            Ok((produced, per_consumer, stuck, joined_at))
        })?;
    let wall = started.elapsed();

    // Drain the result queue: every task exactly once?
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    let mut results: Vec<(u64, u64)> = Vec::new();
    for (id, result, _thread) in results_rx.try_iter() {
        *seen.entry(id).or_default() += 1;
        results.push((id, result));
    }
    results.sort_unstable();
    let shown: Vec<String> = results
        .iter()
        .take(16)
        .map(|(_, r)| r.to_string())
        .collect();
    info!(
        "Results collected from the result queue: [{}{}]",
        shown.join(", "),
        if results.len() > 16 { ", …" } else { "" }
    );
    // A second path to the same answer: the sum of the squares of the ids the producers
    // were asked for, against the sum of what came back through the result queue.
    let want: u128 = (0..args.items)
        .map(|id| u128::from(id) * u128::from(id))
        .sum();
    let got: u128 = results.iter().map(|&(_, r)| u128::from(r)).sum();
    let consumed: u64 = per_consumer.iter().map(|(_, n)| n).sum();
    let duplicates = seen.values().filter(|&&n| n > 1).count();
    let missing = (0..args.items).filter(|id| !seen.contains_key(id)).count();
    let mut t = Table::new(["consumer", "tasks"]);
    for (name, n) in &per_consumer {
        t.row([name.clone(), n.to_string()]);
        report.metric(format!("{name}.items"), *n);
    }
    report.tables.push(t);
    let throughput = consumed as f64 / wall.as_secs_f64().max(1e-9);
    report.metric("produced", produced);
    report.metric("consumed", consumed);
    report.metric("results", seen.values().map(|&n| u64::from(n)).sum::<u64>());
    report.metric("duplicates", duplicates as u64);
    report.metric("missing", missing as u64);
    let high_water = occupancy.most_inside();
    report.metric("high_water", high_water as u64);
    report.metric("producer_blocked_ms", units::ms(queue.put_blocked()));
    report.metric("throughput_per_s", (throughput * 10.0).round() / 10.0);
    report.check(
        "consumers that left on the shutdown signal",
        format!("{0} of {0}", args.consumers),
        format!("{} of {}", args.consumers - stuck, args.consumers),
        stuck == 0,
    );
    report.check(
        "tasks processed, counted by the consumers",
        format!("{} (--items)", args.items),
        consumed,
        consumed == args.items,
    );
    report.check(
        "every item consumed exactly once",
        "0 missing, 0 duplicated",
        format!("{missing} missing, {duplicates} duplicated"),
        missing == 0 && duplicates == 0,
    );
    report.check(
        "sum of the results from the result queue",
        format!("{want} (Σ id² over the {} tasks)", args.items),
        got,
        got == want,
    );
    // join() waits for every task_done, not for an empty queue: it returns after the last
    // task was marked done (the consumers' clocks against the joiner's), and promptly.
    let last_done = last_done.into_inner().unwrap_or_else(|e| e.into_inner());
    let join_after = last_done.map(|t| joined_at.checked_duration_since(t));
    if let Some(after) = join_after {
        report.metric(
            "join_after_last_task_done_ms",
            after.map_or(-1.0, units::ms),
        );
    }
    report.check(
        "queue.join() returned after the last task_done(), within a wake-up (by the threads' clocks)",
        format!("after it, within {}", units::duration(JOIN_BOUND)),
        match join_after {
            Some(Some(d)) => format!("{} after it", units::duration(d)),
            Some(None) => "before it".to_string(),
            None => "no task was marked done".to_string(),
        },
        matches!(join_after, Some(Some(d)) if d < JOIN_BOUND),
    );
    report.check(
        "tasks certainly in the queue at once, at most (put returned, get not yet called)",
        format!("<= {} (maxsize)", args.maxsize),
        high_water,
        high_water <= args.maxsize,
    );
    report.note(format!(
        "Producers were blocked on a full queue for {}; throughput {:.1} tasks/s.",
        units::duration(queue.put_blocked()),
        throughput
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shutdown_style_accounts_for_every_item() {
        for shutdown in [Shutdown::Sentinel, Shutdown::Timeout, Shutdown::Close] {
            let lab = Lab::quiet(0.01, 4);
            let args = Args {
                producers: 2,
                consumers: 3,
                items: 30,
                maxsize: 2,
                shutdown,
                produce_time: 0.1,
                work_time: 0.5,
            };
            let report = run(&args, &lab).unwrap();
            assert!(report.ok, "{shutdown:?}: {:#?}", report.checks);
            assert_eq!(report.metric_u64("consumed"), Some(30));
            assert!(report.metric_u64("high_water").unwrap() <= 2);
        }
    }
}
