#![doc = include_str!("pages/condition.md")]

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tracing::info;

use crate::lab::evidence::Occupancy;
use crate::lab::{Bound, For, Lab, Outcome, Probe, Report, Table, Wait};

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
    /// Run the bug the lesson is about: `if` instead of `while` around the consumers' wait.
    #[arg(long, value_enum, default_value_t = Bug::None)]
    pub bug: Bug,
}

/// Which mistake to make on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bug {
    /// None: the wait sits in a `while` loop.
    None,
    /// `if` instead of `while`: a woken consumer does not re-check.
    If,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<u64>,
    closed: bool,
    /// Consumers waiting for an item right now (for the producer's pacing in the `if` run,
    /// not for any check).
    waiting_consumers: usize,
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
    /// Wake-ups that found the condition false again (a consumer beaten to the item).
    empty_wakeups: u64,
    /// Times this consumer got nothing from a buffer that was not closed: counted by the
    /// consumer itself from what `take` handed it.
    took_nothing: u64,
    /// The items this consumer took, in its own order.
    took: Vec<u64>,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `cv` once (until a wake-up, or until `blocked` turns false), bounded by the
    /// patience; errors if it ran out, or if the lab's deadlock detector refused the wait
    /// because no thread is left to signal.
    fn wait<'a>(
        &'a self,
        cv: &Condvar,
        st: MutexGuard<'a, State>,
        why: &str,
        answered_by: &[&str],
        blocked: impl Fn(&State) -> bool,
    ) -> anyhow::Result<MutexGuard<'a, State>> {
        // A bare wait (Python's `cond.wait()`): any wake-up ends it. The probe waits in
        // slices for the detector; a change found only when a slice ran out is a `Polled`
        // wait (nobody notified), which the lab counts against its checks.
        let (st, outcome) = self.probe.wait(&self.state, st, cv, Wait::new(For::Signal { by: answered_by, bare: true }, Bound::Patience(self.patience)), blocked);
        match outcome {
            Outcome::Got | Outcome::Polled => Ok(st),
            Outcome::TimedOut => anyhow::bail!("gave up after waiting {:?} {why}", self.patience),
            Outcome::Refused(stall) => {
                anyhow::bail!(
                    "waited {why}, and nobody is left to signal: {}",
                    stall.drawing()
                )
            }
        }
    }

    fn put(&self, item: u64, tally: &mut Tally) -> anyhow::Result<()> {
        // Under the lab's schedule, another thread may run before this one takes the lock.
        crate::lab::sched::point_doing(|| format!("put Item-{item}"));
        let mut st = self.lock();
        if st.items.len() == self.capacity {
            info!("Queue full ({} items). Waiting for room…", st.items.len());
            tally.waits += 1;
            // A predicate wait (Python's `wait_for`): the loop is inside this one.
            let full = |s: &State| s.items.len() == self.capacity;
            while full(&st) {
                st = self.wait(&self.not_full, st, "for room", &["take"], full)?;
            }
            tally.wakeups += 1;
            info!("Room again.");
        }
        st.items.push_back(item);
        self.probe.count("depth", st.items.len());
        self.probe.signal("put");
        info!("Added Item-{item}. Queue size: {}", st.items.len());
        // Every waiting consumer wakes; all but one will find the item gone.
        self.not_empty.notify_all();
        Ok(())
    }

    /// The next item; `None` once the buffer is empty and closed, or (with the `if` bug) when
    /// a woken consumer did not re-check and there was nothing to take.
    fn take(&self, tally: &mut Tally, bug: Bug) -> anyhow::Result<Option<u64>> {
        crate::lab::sched::point_doing(|| String::from("take an item"));
        let mut st = self.lock();
        match bug {
            Bug::None => {
                // `while`, not `if`: re-check after every wake-up.
                while st.items.is_empty() && !st.closed {
                    st = self.wait_for_item(st, tally)?;
                }
            }
            Bug::If => {
                // the bug: one check, then on as if the item must be there.
                if st.items.is_empty() && !st.closed {
                    st = self.wait_for_item(st, tally)?;
                }
            }
        }
        let Some(item) = st.items.pop_front() else {
            return Ok(None); // empty: closed, or the `if` bug
        };
        self.probe.count("depth", st.items.len());
        self.probe.signal("take");
        info!("Consumed Item-{item}. Queue size: {}", st.items.len());
        self.not_full.notify_one();
        Ok(Some(item))
    }

    /// One wait for an item, narrated, with the wake-up judged.
    fn wait_for_item<'a>(
        &'a self,
        st: MutexGuard<'a, State>,
        tally: &mut Tally,
    ) -> anyhow::Result<MutexGuard<'a, State>> {
        info!("Queue empty. Waiting…");
        tally.waits += 1;
        let mut st = st;
        st.waiting_consumers += 1;
        let mut st = self.wait(&self.not_empty, st, "for an item", &["put", "close"], |s| {
            s.items.is_empty() && !s.closed
        })?;
        st.waiting_consumers -= 1;
        tally.wakeups += 1;
        if st.items.is_empty() && !st.closed {
            tally.empty_wakeups += 1;
            if tally.empty_wakeups == 1 {
                info!(
                    "Woke up, but the buffer is empty again: the Producer's notify_all() woke \
                     every waiting consumer and another took the item (notify() would have woken \
                     one); the `while` re-check sends me back to wait"
                );
            } else {
                info!("Woke up, but the buffer is empty again.");
            }
        } else {
            info!("Woke up.");
        }
        Ok(st)
    }

    /// Waits (a bounded poll) until `n` consumers wait for an item, so the next item wakes
    /// them all: the moment the `if` bug loses. Sequencing only; nothing is checked on it.
    fn until_consumers_wait(&self, n: usize, lab: &Lab) {
        let deadline = crate::lab::now() + Duration::from_secs(2);
        while self.lock().waiting_consumers < n
            && crate::lab::now() < deadline
            && !lab.interrupted()
        {
            crate::lab::pause(Duration::from_micros(200));
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn close(&self) {
        self.lock().closed = true;
        self.probe.signal("close");
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

/// Runs the demo: observe the run, then judge what the threads saw.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.bug == Bug::None || args.consumers >= 2,
        "--bug if needs --consumers 2 or more: the bug is a woken consumer finding the item \
         taken by another, and with one consumer there is no other"
    );
    let mut report = Report::new("condition");
    report.params_from(args);
    info!(
        "1 producer making {} items, {} consumers, buffer capacity {}; the Producer calls \
         notify_all() after each put (Python: cond.notify_all()), so every waiting consumer \
         wakes",
        args.items, args.consumers, args.capacity
    );
    let (tallies, high_water) = observe(args, lab)?;
    judge(args, &tallies, high_water, &mut report);
    Ok(report)
}

/// The run: the producer's tally first, then each consumer's; and the most items certainly
/// in the buffer at once (each item's put-returned and take-called instants).
fn observe(args: &Args, lab: &Lab) -> anyhow::Result<(Vec<Tally>, usize)> {
    let worst = args.produce_time.max(args.consume_time) * (args.items as f64 + 1.0);
    let buffer = Buffer {
        state: Mutex::new(State::default()),
        not_full: Condvar::new(),
        not_empty: Condvar::new(),
        capacity: args.capacity,
        probe: lab.probe("buffer"),
        patience: lab.scaled(Duration::from_secs_f64(worst)) + Duration::from_secs(30),
    };
    let occupancy = Occupancy::default();
    let tallies: Vec<Tally> = lab.scope(|s| -> anyhow::Result<_> {
        let (buffer, occupancy) = (&buffer, &occupancy);
        let producer = s.spawn("Producer", move || produce(args, lab, buffer, occupancy))?;
        let consumers: Vec<_> = (1..=args.consumers)
            .map(|i| {
                let name = format!("Consumer-{i}");
                s.spawn(name.clone(), move || {
                    consume(args, lab, buffer, occupancy, name)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let mut all = vec![producer.join()??];
        for c in consumers {
            all.push(c.join()??);
        }
        Ok(all)
    })?;
    Ok((tallies, occupancy.most_inside()))
}

/// The producer: `--items` items, then the buffer closes (also on an error: the guard).
fn produce(
    args: &Args,
    lab: &Lab,
    buffer: &Buffer,
    occupancy: &Occupancy<u64>,
) -> anyhow::Result<Tally> {
    let _close = CloseOnDrop(buffer);
    let mut rng = lab.rng("Producer");
    let mut tally = Tally {
        name: "Producer".into(),
        ..Tally::default()
    };
    for item in 0..args.items {
        // With the bug on, a steady pace: both consumers are waiting when an item comes, so
        // the race the bug loses is sure to be run.
        let make = match args.bug {
            Bug::None => rng.random_range(0.0..=args.produce_time),
            Bug::If => args.produce_time,
        };
        lab.sleep_secs(make);
        // Put each item when every consumer waits for one: all of them wake. Under the
        // lab's schedule, the lab's choices decide instead.
        if args.bug == Bug::If && !crate::lab::sched::active() {
            buffer.until_consumers_wait(args.consumers, lab);
        }
        buffer.put(item, &mut tally)?;
        occupancy.put_done(item, crate::lab::now());
        tally.items += 1;
    }
    info!("Done producing. Closing the buffer and waking every consumer.");
    Ok(tally)
}

/// A consumer: takes until the buffer is closed and drained, counting what it got itself.
fn consume(
    args: &Args,
    lab: &Lab,
    buffer: &Buffer,
    occupancy: &Occupancy<u64>,
    name: String,
) -> anyhow::Result<Tally> {
    let mut rng = lab.rng(&name);
    let mut tally = Tally {
        name,
        ..Tally::default()
    };
    loop {
        let called = crate::lab::now();
        match buffer.take(&mut tally, args.bug)? {
            Some(item) => {
                occupancy.get_called(item, called);
                tally.items += 1;
                tally.took.push(item);
                lab.sleep_secs(rng.random_range(args.consume_time / 2.0..=args.consume_time));
            }
            None if !buffer.is_closed() => {
                // What `if` costs: this thread went on with nothing to take.
                tally.took_nothing += 1;
                tracing::warn!(
                    "Took from an empty buffer (Python: IndexError: pop from an empty deque). \
                     Caught and counted; back to waiting."
                );
            }
            None => break,
        }
    }
    info!("No more items. Exiting.");
    Ok(tally)
}

/// The checks, from the threads' own tallies and clocks: none from the buffer's state.
fn judge(args: &Args, tallies: &[Tally], high_water: usize, report: &mut Report) {
    let mut table = Table::new(["thread", "items", "waits", "wake-ups", "woke to empty"]);
    for t in tallies {
        table.row([
            t.name.clone(),
            t.items.to_string(),
            t.waits.to_string(),
            t.wakeups.to_string(),
            t.empty_wakeups.to_string(),
        ]);
        report.metric(format!("{}.items", t.name), t.items);
        report.metric(format!("{}.waits", t.name), t.waits);
        report.metric(format!("{}.wakeups", t.name), t.wakeups);
    }
    report.tables.push(table);
    let consumed: u64 = tallies[1..].iter().map(|t| t.items).sum();
    let empty_wakeups: u64 = tallies.iter().map(|t| t.empty_wakeups).sum();
    let took_nothing: u64 = tallies.iter().map(|t| t.took_nothing).sum();
    // Every count from the threads' own tallies, the occupancy from their own clocks: none
    // from the buffer's state.
    let mut distinct: Vec<u64> = tallies[1..].iter().flat_map(|t| t.took.clone()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    report.metric("produced", tallies[0].items);
    report.metric("consumed", consumed);
    report.metric("empty_wakeups", empty_wakeups);
    report.metric("took_nothing", took_nothing);
    report.metric("high_water", high_water as u64);
    report.metric("capacity", args.capacity as u64);
    report.check(
        "items-certainly-buffer-once-most",
        "items certainly in the buffer at once, at most (put returned, take not yet called)",
        format!("<= {} (the capacity)", args.capacity),
        high_water,
        high_water <= args.capacity,
    );
    report.check(
        "items-consumed-distinct-items-among",
        "items consumed (counted by the consumers), and distinct items among them",
        format!("{0} consumed, {0} distinct", args.items),
        format!("{consumed} consumed, {} distinct", distinct.len()),
        consumed == args.items && distinct.len() as u64 == args.items,
    );
    let outcome = match took_nothing {
        0 => String::from("every take found an item"),
        n => format!("a consumer got nothing from an open buffer ({n}×)"),
    };
    report.outcome(outcome, took_nothing > 0);
    match args.bug {
        Bug::None => report.check(
            "times-consumer-got-nothing-open",
            "times a consumer got nothing from an open buffer (counted by the consumer)",
            "0: every wake-up re-checks in a while loop",
            took_nothing,
            took_nothing == 0,
        ),
        Bug::If => report.check(
            "times-consumer-got-nothing-if-bug",
            "times a consumer got nothing from an open buffer: the `if` bug, caught",
            ">= 1 (the bug shows when two consumers wake for one item)",
            took_nothing,
            took_nothing >= 1,
        ),
    }
    report.check_eq(
        "items-produced-no-consumer-took",
        "items produced that no consumer took (the producer's count less the consumers')",
        0,
        tallies[0].items.saturating_sub(consumed),
    );
    if args.bug == Bug::None && empty_wakeups > 0 {
        let woke = if empty_wakeups == 1 {
            "1 wake-up".to_string()
        } else {
            format!("{empty_wakeups} wake-ups")
        };
        report.note(format!(
            "{woke} found the buffer empty again (another consumer took the item first) and \
             waited again: that is what the while loop is for. Try --bug if."
        ));
    }
    if args.bug == Bug::If {
        report.note(
            "With `if`, a consumer woken for an item another consumer already took goes on as if \
             the item were there. Python raises IndexError; Rust's pop_front returns None, which \
             the demo counts. The fix is one word: while.",
        );
    }
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
            bug: Bug::None,
        }
    }

    #[test]
    fn every_item_is_consumed_once_in_order_within_capacity() {
        let _bound = crate::sync::bounded_test(20);
        for seed in 0..3 {
            let lab = Lab::quiet(0.01, seed);
            let report = run(&args(20, 3, 2), &lab).unwrap();
            assert!(report.ok, "seed {seed}: {:?}", report.checks);
            assert!(report.metric_u64("high_water").unwrap() <= 2);
            assert_eq!(report.metric_u64("consumed"), Some(20));
        }
    }

    #[test]
    fn the_if_bug_is_caught_and_counted_and_the_while_loop_never_takes_nothing() {
        let _bound = crate::sync::bounded_test(20);
        for seed in 0..3 {
            let lab = Lab::quiet(0.01, seed);
            let mut a = args(6, 2, 3);
            a.consume_time = 0.01;
            let fixed = run(&a, &lab).unwrap();
            assert_eq!(fixed.metric_u64("took_nothing"), Some(0));
            a.bug = Bug::If;
            let buggy = run(&a, &lab).unwrap();
            assert!(
                buggy.metric_u64("took_nothing").unwrap() >= 1,
                "seed {seed}"
            );
            assert!(buggy.ok, "{:?}", buggy.checks);
            assert_eq!(
                buggy.metric_u64("consumed"),
                Some(6),
                "every item still consumed"
            );
        }
    }

    #[test]
    fn a_full_buffer_makes_the_producer_wait() {
        let _bound = crate::sync::bounded_test(20);
        // Consumers far slower than the producer: the buffer must fill.
        let lab = Lab::quiet(0.01, 5);
        let mut a = args(10, 1, 1);
        a.produce_time = 0.0;
        let report = run(&a, &lab).unwrap();
        assert!(report.metric_u64("Producer.waits").unwrap() > 0);
        assert_eq!(report.metric_u64("high_water"), Some(1));
    }
}
