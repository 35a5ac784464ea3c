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
    #[arg(long, default_value_t = 10, value_name = "N",
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

/// Runs the demo: observe the run, then judge what was seen.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("producer-consumer");
    report.params_from(args);
    let plural = |n: usize, one: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    };
    let shutdown = match args.shutdown {
        Shutdown::Sentinel => "sentinel",
        Shutdown::Timeout => "timeout",
        Shutdown::Close => "close",
    };
    info!(
        "{}, {}, {} tasks, queue maxsize {}, shutdown: {shutdown}",
        plural(args.producers, "producer"),
        plural(args.consumers, "consumer"),
        args.items,
        args.maxsize
    );
    let seen = observe(args, lab)?;
    judge(args, &seen, &mut report);
    Ok(report)
}

/// What one run showed, every figure by the threads' own counts and clocks.
struct Seen {
    /// Tasks the producers say they put.
    produced: u64,
    /// (consumer, tasks it says it processed).
    per_consumer: Vec<(String, u64)>,
    /// Consumers still waiting after the shutdown's grace.
    stuck: usize,
    /// When the main thread's `join()` returned, and the latest `task_done()` call began.
    joined_at: Instant,
    last_done: Option<Instant>,
    /// The most tasks certainly in the queue at once (`lab::evidence::Occupancy`).
    high_water: usize,
    /// (id, result) from the result queue, sorted.
    results: Vec<(u64, u64)>,
    /// Time producers spent blocked on a full queue, and the run's wall time.
    put_blocked: Duration,
    wall: Duration,
}

/// What the producer and consumer threads share.
struct Shared<'a> {
    args: &'a Args,
    lab: &'a Lab,
    queue: &'a JoinableQueue<Msg>,
    get_timeout: Duration,
    /// The latest moment a consumer marked a task done, by the consumers' clocks.
    last_done: &'a std::sync::Mutex<Option<Instant>>,
    /// Each task's way through the queue, timed by its producer and its consumer.
    occupancy: &'a Occupancy<u64>,
}

fn observe(args: &Args, lab: &Lab) -> anyhow::Result<Seen> {
    let queue: JoinableQueue<Msg> = JoinableQueue::new(args.maxsize, lab.probe("queue"));
    let (results_tx, results_rx) = crossbeam_channel::unbounded::<(u64, u64, String)>();
    // The consumers' get timeout (timeout style) must outlast the longest gap between tasks.
    let get_timeout = lab
        .scaled(Duration::from_secs_f64(args.produce_time * 2.0 + 0.5))
        .max(Duration::from_millis(50));
    let last_done = std::sync::Mutex::new(None);
    let occupancy: Occupancy<u64> = Occupancy::default();
    let sh = Shared {
        args,
        lab,
        queue: &queue,
        get_timeout,
        last_done: &last_done,
        occupancy: &occupancy,
    };
    let started = crate::lab::now();
    let (produced, per_consumer, stuck, joined_at) =
        lab.scope(|s| -> anyhow::Result<_> {
            // Whatever path leaves this scope (an error included), close the queue first so no
            // consumer is left blocked in `get` while the scope waits for it.
            let _close = CloseOnExit(&queue);
            let sh = &sh;
            let consumers: Vec<_> = (1..=args.consumers)
                .map(|c| {
                    let results = results_tx.clone();
                    let name = format!("Worker-{c}");
                    s.spawn(name.clone(), move || consume(sh, &name, &results))
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
                    s.spawn(name.clone(), move || produce(sh, p, &name))
                })
                .collect::<anyhow::Result<_>>()?;
            let mut produced = 0;
            for p in producers {
                produced += p.join()??;
            }
            let joined_at = join_and_stop(sh)?;
            let (per_consumer, stuck) = wait_for_consumers(sh, consumers)?;
            Ok((produced, per_consumer, stuck, joined_at))
        })?;
    let wall = crate::lab::now().saturating_duration_since(started);
    let mut results: Vec<(u64, u64)> = results_rx.try_iter().map(|(id, r, _)| (id, r)).collect();
    results.sort_unstable();
    Ok(Seen {
        produced,
        per_consumer,
        stuck,
        joined_at,
        last_done: last_done.into_inner().unwrap_or_else(|e| e.into_inner()),
        high_water: occupancy.most_inside(),
        results,
        put_blocked: queue.put_blocked(),
        wall,
    })
}

/// One producer: tasks p, p + P, p + 2P, … (distinct ids across producers).
fn produce(sh: &Shared, p: usize, name: &str) -> anyhow::Result<u64> {
    let args = sh.args;
    let mut rng = sh.lab.rng(name);
    let mut made = 0;
    for id in (p as u64..args.items).step_by(args.producers) {
        sh.lab.sleep_secs(rng.random_range(0.0..=args.produce_time));
        info!("Adding 'Task Data {id}' to queue.");
        let mut full = None;
        sh.queue.put_announced(Msg::Task(id), |n| {
            info!("Queue full ({n}): waiting for room…");
            crate::lab::pause::moment("queue-full", "the queue is full: the producer waits");
            full = Some(crate::lab::now());
        })?;
        if let Some(since) = full {
            info!(
                "'Task Data {id}' went in after {} waiting for room",
                units::duration(crate::lab::now().saturating_duration_since(since))
            );
        }
        sh.occupancy.put_done(id, crate::lab::now());
        made += 1;
    }
    Ok(made)
}

/// The next message for a consumer, in the shutdown style's way; `None`: time to leave.
fn next_message(sh: &Shared) -> Option<Msg> {
    match sh.args.shutdown {
        Shutdown::Timeout => match sh.queue.get_timeout(sh.get_timeout) {
            Got::Item(m) => Some(m),
            Got::Timeout => {
                info!("Nothing for {}. Exiting.", units::duration(sh.get_timeout));
                None
            }
            // A timed get is never refused: it ends by itself.
            Got::Closed | Got::Stalled(_) => None,
        },
        _ => match sh.queue.next() {
            Got::Item(m) => Some(m),
            Got::Closed | Got::Timeout => {
                info!("Queue closed. Exiting.");
                None
            }
            Got::Stalled(_) => {
                info!("Nobody is left to put or close. Exiting.");
                None
            }
        },
    }
}

/// One consumer: process tasks until its shutdown signal; returns how many it processed.
fn consume(
    sh: &Shared,
    name: &str,
    results: &crossbeam_channel::Sender<(u64, u64, String)>,
) -> anyhow::Result<u64> {
    let args = sh.args;
    let mut rng = sh.lab.rng(name);
    let mut handled = 0;
    loop {
        let called = crate::lab::now();
        let Some(msg) = next_message(sh) else { break };
        let id = match msg {
            Msg::Stop => {
                info!("Received sentinel. Exiting.");
                sh.queue.task_done()?;
                break;
            }
            Msg::Task(id) => id,
        };
        sh.occupancy.get_called(id, called);
        info!("Processing 'Task Data {id}'");
        sh.lab
            .sleep_secs(rng.random_range(args.work_time / 5.0..=args.work_time));
        let result = id * id;
        info!("Finished 'Task Data {id}'. Result: {result}");
        results.send((id, result, lab::thread_name()))?;
        handled += 1;
        // By the consumer's clock, just before it marks the task done: the queue's join may
        // return only after the last of these.
        let marking = crate::lab::now();
        let mut last = crate::sync::lock(sh.last_done);
        *last = Some(last.map_or(marking, |t: Instant| t.max(marking)));
        drop(last);
        sh.queue.task_done()?;
    }
    Ok(handled)
}

/// The main thread: `join()` the queue (returns when it came back), then tell the consumers
/// to stop in the shutdown style's way.
fn join_and_stop(sh: &Shared) -> anyhow::Result<Instant> {
    let args = sh.args;
    let patience = sh.lab.scaled(Duration::from_secs_f64(
        (args.produce_time + args.work_time) * args.items as f64,
    )) + Duration::from_secs(60);
    info!("All tasks produced; waiting for the queue to be processed (join)…");
    anyhow::ensure!(
        sh.queue.join_timeout(patience),
        "the queue was not processed within {patience:?}"
    );
    let joined_at = crate::lab::now();
    info!("Queue joined: every task processed.");
    match args.shutdown {
        Shutdown::Sentinel => {
            info!("Sending {} sentinels.", args.consumers);
            for _ in 0..args.consumers {
                sh.queue.put(Msg::Stop)?;
            }
        }
        Shutdown::Close => {
            info!("Closing the queue.");
            sh.queue.close();
        }
        Shutdown::Timeout => info!(
            "Consumers will leave after {} without tasks.",
            units::duration(sh.get_timeout)
        ),
    }
    Ok(joined_at)
}

/// Every consumer should now leave on its own, promptly. One that does not (its stop signal
/// lost) is counted, then released by closing the queue: the demo never hangs on a lost
/// signal. Returns (consumer, tasks) and how many were stuck.
fn wait_for_consumers(
    sh: &Shared,
    consumers: Vec<lab::Handle<'_, anyhow::Result<u64>>>,
) -> anyhow::Result<(Vec<(String, u64)>, usize)> {
    let grace = sh.lab.scaled(Duration::from_secs_f64(sh.args.work_time)) * 2
        + sh.get_timeout
        + Duration::from_secs(2);
    let deadline = crate::lab::now() + grace;
    while consumers.iter().any(|c| !c.is_finished()) && crate::lab::now() < deadline {
        crate::lab::pause(Duration::from_millis(5));
    }
    let stuck = consumers.iter().filter(|c| !c.is_finished()).count();
    if stuck > 0 {
        warn!(
            "{stuck} consumer(s) still waiting {} after the shutdown; closing the queue",
            units::duration(grace)
        );
        sh.queue.close();
    }
    let mut per_consumer = Vec::new();
    for (i, c) in consumers.into_iter().enumerate() {
        per_consumer.push((format!("Worker-{}", i + 1), c.join()??));
    }
    Ok((per_consumer, stuck))
}

/// The checks, from what the threads saw.
fn judge(args: &Args, seen: &Seen, report: &mut Report) {
    // Every task exactly once on the result queue?
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for (id, _) in &seen.results {
        *counts.entry(*id).or_default() += 1;
    }
    let shown: Vec<String> = seen
        .results
        .iter()
        .take(16)
        .map(|(_, r)| r.to_string())
        .collect();
    info!(
        "Results collected from the result queue: [{}{}]",
        shown.join(", "),
        if seen.results.len() > 16 { ", …" } else { "" }
    );
    // A second path to the same answer: the sum of the squares of the ids the producers
    // were asked for, against the sum of what came back through the result queue.
    let want: u128 = (0..args.items)
        .map(|id| u128::from(id) * u128::from(id))
        .sum();
    let got: u128 = seen.results.iter().map(|&(_, r)| u128::from(r)).sum();
    let consumed: u64 = seen.per_consumer.iter().map(|(_, n)| n).sum();
    let duplicates = counts.values().filter(|&&n| n > 1).count();
    let missing = (0..args.items)
        .filter(|id| !counts.contains_key(id))
        .count();
    let mut t = Table::new(["consumer", "tasks"]);
    for (name, n) in &seen.per_consumer {
        t.row([name.clone(), n.to_string()]);
        report.metric(format!("{name}.items"), *n);
    }
    report.tables.push(t);
    let throughput = consumed as f64 / seen.wall.as_secs_f64().max(1e-9);
    report.metric("produced", seen.produced);
    report.metric("consumed", consumed);
    report.metric("results", seen.results.len() as u64);
    report.metric("duplicates", duplicates as u64);
    report.metric("missing", missing as u64);
    report.metric("high_water", seen.high_water as u64);
    report.metric("producer_blocked_ms", units::ms(seen.put_blocked));
    report.metric("throughput_per_s", (throughput * 10.0).round() / 10.0);
    report.check(
        "consumers-left-shutdown-signal",
        "consumers that left on the shutdown signal",
        format!("{0} of {0}", args.consumers),
        format!("{} of {}", args.consumers - seen.stuck, args.consumers),
        seen.stuck == 0,
    );
    report.check(
        "tasks-processed-counted-consumers",
        "tasks processed, counted by the consumers",
        format!("{} (--items)", args.items),
        consumed,
        consumed == args.items,
    );
    report.check(
        "item-consumed-exactly-once",
        "every item consumed exactly once",
        "0 missing, 0 duplicated",
        format!("{missing} missing, {duplicates} duplicated"),
        missing == 0 && duplicates == 0,
    );
    report.check(
        "sum-results-result-queue",
        "sum of the results from the result queue",
        format!("{want} (Σ id² over the {} tasks)", args.items),
        got,
        got == want,
    );
    judge_join(seen, report);
    report.check(
        "tasks-certainly-queue-once-most",
        "tasks certainly in the queue at once, at most (put returned, get not yet called)",
        format!("<= {} (maxsize)", args.maxsize),
        seen.high_water,
        seen.high_water <= args.maxsize,
    );
    report.note(format!(
        "Producers were blocked on a full queue for {}; throughput {:.1} tasks/s.",
        units::duration(seen.put_blocked),
        throughput
    ));
}

/// join() waits for every task_done, not for an empty queue: it returns after the last task
/// was marked done (the consumers' clocks against the joiner's), and promptly.
fn judge_join(seen: &Seen, report: &mut Report) {
    let join_after = seen
        .last_done
        .map(|t| seen.joined_at.checked_duration_since(t));
    if let Some(after) = join_after {
        report.metric(
            "join_after_last_task_done_ms",
            after.map_or(-1.0, units::ms),
        );
    }
    report.check(
        "queue-join-returned-after-last",
        "queue.join() returned after the last task_done(), within a wake-up (by the threads' clocks)",
        format!("after it, within {}", units::duration(JOIN_BOUND)),
        match join_after {
            Some(Some(d)) => format!("{} after it", units::duration(d)),
            Some(None) => "before it".to_string(),
            None => "no task was marked done".to_string(),
        },
        matches!(join_after, Some(Some(d)) if d < JOIN_BOUND),
    );
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
