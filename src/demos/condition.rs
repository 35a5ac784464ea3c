//! condition: a bounded buffer guarded by a condition variable.
//!
//! One producer makes items; consumers take them; the buffer holds at most `--capacity`.
//! When it is full the producer waits for room; when it is empty a consumer waits for an
//! item. When the producer is done it *closes* the buffer and wakes everyone; a consumer that
//! finds the buffer empty and closed leaves. That flag is the shutdown: without it, the last
//! consumers would wait for an item that never comes.
//!
//! # What to watch for
//! - "Queue full (3 items). Waiting…" then "Woke up." in the producer's lane, right after a
//!   consumer's "Consumed".
//! - "Consumed Item-0 … Item-6" in order, each once, shared between the consumers.
//! - Every consumer's "No more items. Exiting.": a clean shutdown, nobody left waiting.
//!
//! # Why it works
//! A condition variable is a place to sleep until *something about the shared state* may
//! have changed; the state itself lives under the mutex. Waking is a hint, not a promise:
//! a wait can return spuriously, and between `notify` and the waiter running, another thread
//! may take the item or fill the slot. So every wait here sits in a `while` loop that
//! re-checks the condition under the lock (the job `Condvar::wait_while`, Python's
//! `wait_for`, does for you). With an `if`, a consumer woken for an item another consumer
//! already took would pop from an empty buffer.
//!
//! Two condition variables share the one mutex (`not_full` for the producer, `not_empty`
//! for consumers), as Python's `queue.Queue` does, so a notify wakes a thread that can act.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tracing::info;

use crate::lab::{self, Lab, Probe, Report, Table};

/// Flags of `threadlab condition`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Items the producer makes (1..=100000).
    #[arg(long, default_value_t = 7, value_name = "N",
          value_parser = crate::cli::whole::<u64>(1, 100_000))]
    pub items: u64,
    /// Consumer threads (1..=64).
    #[arg(long, default_value_t = 2, value_name = "C",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub consumers: usize,
    /// Most items the buffer holds (1..=10000).
    #[arg(long, default_value_t = 3, value_name = "M",
          value_parser = crate::cli::whole::<usize>(1, 10_000))]
    pub capacity: usize,
    /// Longest time to make one item, seconds (random from 0 up to this; scaled by --pace).
    #[arg(long, default_value_t = 0.2, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub produce_time: f64,
    /// Longest time to consume one item, seconds (random from half of this up to it; scaled
    /// by --pace). Slower than producing, so the buffer fills and the producer must wait.
    #[arg(long, default_value_t = 1.5, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub consume_time: f64,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<u64>,
    closed: bool,
    high_water: usize,
    /// Every item in the order it was taken (recorded under the lock).
    taken: Vec<u64>,
}

/// The buffer: state under one mutex, two condition variables to wait on.
struct Buffer {
    state: Mutex<State>,
    not_full: Condvar,
    not_empty: Condvar,
    capacity: usize,
    probe: Probe,
    /// Longest any single wait may last before the demo gives up with an error.
    patience: Duration,
}

/// What one thread did: items handled, waits, wake-ups.
#[derive(Debug, Default, Clone)]
struct Tally {
    name: String,
    items: u64,
    waits: u64,
    wakeups: u64,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `cv` once, bounded by the patience; errors if it ran out.
    fn wait<'a>(
        &self,
        cv: &Condvar,
        st: MutexGuard<'a, State>,
        why: &str,
    ) -> anyhow::Result<MutexGuard<'a, State>> {
        let mark = self.probe.waiting();
        let (st, timeout) = cv
            .wait_timeout(st, self.patience)
            .unwrap_or_else(|e| e.into_inner());
        self.probe.waited(mark);
        anyhow::ensure!(
            !timeout.timed_out(),
            "gave up after waiting {:?} {why}",
            self.patience
        );
        Ok(st)
    }

    fn put(&self, item: u64, tally: &mut Tally) -> anyhow::Result<()> {
        let mut st = self.lock();
        while st.items.len() == self.capacity {
            // `while`, not `if`: re-check after every wake-up.
            info!("Queue full ({} items). Waiting…", st.items.len());
            tally.waits += 1;
            st = self.wait(&self.not_full, st, "for room")?;
            tally.wakeups += 1;
            info!("Woke up.");
        }
        st.items.push_back(item);
        st.high_water = st.high_water.max(st.items.len());
        info!("Added Item-{item}. Queue size: {}", st.items.len());
        self.not_empty.notify_one();
        Ok(())
    }

    /// The next item, or `None` once the buffer is empty and closed.
    fn take(&self, tally: &mut Tally) -> anyhow::Result<Option<u64>> {
        let mut st = self.lock();
        while st.items.is_empty() && !st.closed {
            info!("Queue empty. Waiting…");
            tally.waits += 1;
            st = self.wait(&self.not_empty, st, "for an item")?;
            tally.wakeups += 1;
            info!("Woke up.");
        }
        let Some(item) = st.items.pop_front() else {
            return Ok(None); // empty and closed
        };
        st.taken.push(item);
        info!("Consumed Item-{item}. Queue size: {}", st.items.len());
        self.not_full.notify_one();
        Ok(Some(item))
    }

    fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
    }
}

/// Closes the buffer when dropped, so consumers leave even if the producer fails.
struct CloseOnDrop<'a>(&'a Buffer);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("condition");
    report.params_from(args);
    info!(
        "1 producer making {} items, {} consumers, buffer capacity {}",
        args.items, args.consumers, args.capacity
    );
    let worst = args.produce_time.max(args.consume_time) * (args.items as f64 + 1.0);
    let buffer = Buffer {
        state: Mutex::new(State::default()),
        not_full: Condvar::new(),
        not_empty: Condvar::new(),
        capacity: args.capacity,
        probe: lab.probe("buffer"),
        patience: lab.scaled(Duration::from_secs_f64(worst)) + Duration::from_secs(30),
    };
    let tallies: Vec<Tally> = std::thread::scope(|s| -> anyhow::Result<_> {
        let buffer = &buffer;
        let producer = lab.spawn(s, "Producer", move || -> anyhow::Result<Tally> {
            let _close = CloseOnDrop(buffer);
            let mut rng = lab.rng("Producer");
            let mut tally = Tally {
                name: "Producer".into(),
                ..Tally::default()
            };
            for item in 0..args.items {
                lab.sleep_secs(rng.random_range(0.0..=args.produce_time));
                buffer.put(item, &mut tally)?;
                tally.items += 1;
            }
            info!("Done producing. Closing the buffer and waking every consumer.");
            Ok(tally)
        })?;
        let consumers: Vec<_> = (1..=args.consumers)
            .map(|i| {
                let name = format!("Consumer-{i}");
                lab.spawn(s, name.clone(), move || -> anyhow::Result<Tally> {
                    let mut rng = lab.rng(&name);
                    let mut tally = Tally {
                        name,
                        ..Tally::default()
                    };
                    while buffer.take(&mut tally)?.is_some() {
                        tally.items += 1;
                        lab.sleep_secs(
                            rng.random_range(args.consume_time / 2.0..=args.consume_time),
                        );
                    }
                    info!("No more items. Exiting.");
                    Ok(tally)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let mut all = vec![lab::join(producer)??];
        for c in consumers {
            all.push(lab::join(c)??);
        }
        Ok(all)
    })?;

    let st = buffer.lock();
    let mut table = Table::new(["thread", "items", "waits", "wake-ups"]);
    for t in &tallies {
        table.row([
            t.name.clone(),
            t.items.to_string(),
            t.waits.to_string(),
            t.wakeups.to_string(),
        ]);
        report.metric(format!("{}.items", t.name), t.items);
        report.metric(format!("{}.waits", t.name), t.waits);
        report.metric(format!("{}.wakeups", t.name), t.wakeups);
    }
    report.tables.push(table);
    let consumed: u64 = tallies[1..].iter().map(|t| t.items).sum();
    let mut distinct = st.taken.clone();
    distinct.sort_unstable();
    distinct.dedup();
    report.metric("produced", tallies[0].items);
    report.metric("consumed", consumed);
    report.metric("high_water", st.high_water as u64);
    report.metric("capacity", args.capacity as u64);
    report.check(
        "occupancy never exceeded capacity",
        format!("<= {}", args.capacity),
        st.high_water,
        st.high_water <= args.capacity,
    );
    report.check_eq(
        "every item consumed exactly once",
        args.items,
        consumed.min(distinct.len() as u64),
    );
    report.check_eq("no item consumed twice", st.taken.len(), distinct.len());
    let in_order = st.taken.iter().copied().eq(0..args.items);
    report.check(
        "items consumed in the order produced",
        "Item-0 … Item-N in order",
        if in_order { "in order" } else { "out of order" },
        in_order,
    );
    report.check_eq("the buffer ended empty", 0, st.items.len());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: u64, consumers: usize, capacity: usize) -> Args {
        Args {
            items,
            consumers,
            capacity,
            produce_time: 0.2,
            consume_time: 1.5,
        }
    }

    #[test]
    fn every_item_is_consumed_once_in_order_within_capacity() {
        for seed in 0..3 {
            let lab = Lab::quiet(0.01, seed);
            let report = run(&args(20, 3, 2), &lab).unwrap();
            assert!(report.ok, "seed {seed}: {:?}", report.checks);
            assert!(report.metric_u64("high_water").unwrap() <= 2);
            assert_eq!(report.metric_u64("consumed"), Some(20));
        }
    }

    #[test]
    fn a_full_buffer_makes_the_producer_wait() {
        // Consumers far slower than the producer: the buffer must fill.
        let lab = Lab::quiet(0.01, 5);
        let mut a = args(10, 1, 1);
        a.produce_time = 0.0;
        let report = run(&a, &lab).unwrap();
        assert!(report.metric_u64("Producer.waits").unwrap() > 0);
        assert_eq!(report.metric_u64("high_water"), Some(1));
    }
}
