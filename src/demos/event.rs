#![doc = include_str!("pages/event.md")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, signals, units};
use crate::sync::Event;

/// Flags of `threadlab event`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Threads waiting for the Starter's signal (1..=64).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub waiters: usize,
    /// Seconds before the Starter sets the event (scaled by --pace).
    #[arg(long, default_value_t = 1.0, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub delay: f64,
    /// The timeout of the timed waits in part 2 (scaled by --pace).
    #[arg(long, default_value_t = 0.3, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub timeout: f64,
    /// The shutdown loops' tick in part 3 (scaled by --pace; at least 0.01).
    #[arg(long, default_value_t = 0.5, value_name = "SECS",
          value_parser = crate::cli::parse_period, allow_negative_numbers = true)]
    pub tick: f64,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("event");
    report.params_from(args);
    one_sets_many_wake(args, lab, &mut report)?;
    if !lab.interrupted() {
        timed_waits_and_clear(args, lab, &mut report)?;
    }
    if !lab.interrupted() {
        shutdown_loops(args, lab, &mut report)?;
    }
    Ok(report)
}

/// How late a woken waiter may be after the set and still count as "woken by it": far
/// above a wake-up's usual tens of microseconds, far below the bounded wait's patience.
const WAKE_BOUND: Duration = Duration::from_millis(100);

/// Part 1: N waiters block on one event; the Starter sets it; every one wakes.
///
/// The evidence is two clocks outside the event: the Starter notes the instant just
/// before `set()`, each waiter the instant its `wait` returned.
fn one_sets_many_wake(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!(
        "Part 1: {} waiters wait for 'go'; the Starter sets it after {}",
        args.waiters,
        lab.simulated(args.delay)
    );
    let go = Event::new().with_probe(lab.probe("go"));
    let delay = lab.scaled(Duration::from_secs_f64(args.delay));
    // Bounded: a waiter whose wake-up never comes stops waiting here and says so.
    let patience = delay * 2 + Duration::from_secs(2);
    let (set_at, woke) = lab.scope(|s| -> anyhow::Result<_> {
        let waiters: Vec<_> = (1..=args.waiters)
            .map(|w| {
                let go = &go;
                s.spawn(format!("Waiter-{w}"), move || {
                    info!("waiting for 'go'");
                    let set = go.wait_timeout(patience);
                    let at = crate::lab::now();
                    if set {
                        info!("woke: 'go' is set");
                    } else {
                        warn!(
                            "gave up after {}: 'go' never woke me",
                            units::duration(patience)
                        );
                    }
                    (set, at)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let starter = s.spawn("Starter", || {
            lab::sleep(delay);
            info!("set 'go': every waiter may go");
            let at = crate::lab::now();
            go.set();
            at
        })?;
        let woke: Vec<(bool, Instant)> = waiters
            .into_iter()
            .map(lab::Handle::join)
            .collect::<anyhow::Result<_>>()?;
        Ok((starter.join()?, woke))
    })?;
    let woken = woke.iter().filter(|(set, _)| *set).count();
    let early = woke.iter().filter(|(_, at)| *at < set_at).count();
    let latest = woke
        .iter()
        .map(|(_, at)| at.saturating_duration_since(set_at))
        .max()
        .unwrap_or_default();
    report.metric("woken", woken as u64);
    report.metric("latest_wake_ms", units::ms(latest));
    report.check(
        "waiters-woken-set",
        "waiters woken by one set()",
        format!("{} of {}", args.waiters, args.waiters),
        format!("{woken} of {}", args.waiters),
        woken == args.waiters,
    );
    report.check(
        "waiters-went-before-set",
        "waiters that went on before the set (by their own clocks)",
        "0",
        early,
        early == 0,
    );
    report.check(
        "last-waiter-wake-after-set",
        "the last waiter to wake, after the set",
        format!("< {}", units::duration(WAKE_BOUND)),
        units::duration(latest),
        latest < WAKE_BOUND,
    );
    Ok(())
}

/// Part 2: `wait(timeout)` when nobody sets, when someone does, and after `clear()`.
fn timed_waits_and_clear(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let timeout = lab.scaled(Duration::from_secs_f64(args.timeout));
    // Long enough that the Setter's set lands well inside it, however busy the machine.
    let long = (timeout * 4).max(timeout + Duration::from_millis(200));
    info!(
        "Part 2: timed waits on 'signal' ({} and {})",
        units::duration(timeout),
        units::duration(long)
    );
    let signal = Event::new().with_probe(lab.probe("signal"));
    // The clock starts at `began`: for the Setter's wait, before the Setter is spawned, so
    // its sleep cannot begin before the clock does (a waiter preempted after the spawn would
    // otherwise see the set sooner than the Setter's sleep).
    let timed_from = |began: Instant, t: Duration| {
        let set = signal.wait_timeout(t);
        (set, crate::lab::now().saturating_duration_since(began))
    };
    let timed = |t: Duration| timed_from(crate::lab::now(), t);
    let mut table = Table::new(["wait", "who sets", "returned", "after"]);
    let row = |table: &mut Table, wait: Duration, who: &str, (set, took): (bool, Duration)| {
        table.row([
            format!("wait(timeout={})", units::duration(wait)),
            who.to_string(),
            set.to_string(),
            units::duration(took),
        ]);
        info!(
            "wait(timeout={}) returned {set} after {}",
            units::duration(wait),
            units::duration(took)
        );
    };

    // Nobody sets: the wait runs out and says false.
    let alone = timed(timeout);
    row(&mut table, timeout, "nobody", alone);

    // A Setter sets after `timeout`: the long wait returns true, well before its end.
    let helped = lab.scope(|s| -> anyhow::Result<_> {
        let began = crate::lab::now();
        let setter = s.spawn("Setter", || {
            lab::sleep(timeout);
            info!("set 'signal'");
            signal.set();
        })?;
        let got = timed_from(began, long);
        setter.join()?;
        Ok(got)
    })?;
    row(
        &mut table,
        long,
        &format!("Setter, at {}", units::duration(timeout)),
        helped,
    );

    // clear() re-arms it: the same wait runs out again.
    signal.clear();
    info!("clear 'signal': is_set() = {}", signal.is_set());
    let cleared = timed(timeout);
    row(&mut table, timeout, "nobody, after clear()", cleared);
    report.tables.push(table);

    report.check(
        "wait-timeout-nobody-setting",
        "wait(timeout) with nobody setting",
        format!("false, after >= {}", units::duration(timeout)),
        format!("{}, after {}", alone.0, units::duration(alone.1)),
        !alone.0 && alone.1 >= timeout,
    );
    report.check(
        "wait-timeout-with-set",
        format!(
            "wait(timeout={}) with a set at {}",
            units::duration(long),
            units::duration(timeout)
        ),
        format!(
            "true, after >= {} and < {}",
            units::duration(timeout),
            units::duration(long)
        ),
        format!("{}, after {}", helped.0, units::duration(helped.1)),
        helped.0 && helped.1 >= timeout && helped.1 < long,
    );
    report.check(
        "wait-timeout-after-clear",
        "wait(timeout) after clear()",
        format!("false, after >= {} (re-armed)", units::duration(timeout)),
        format!("{}, after {}", cleared.0, units::duration(cleared.1)),
        !cleared.0 && cleared.1 >= timeout,
    );
    Ok(())
}

/// How one shutdown loop ended, by its own clock.
#[derive(Debug, Default)]
struct Stopped {
    ticks: u64,
    at: Option<Instant>,
}

/// What Part 3 saw: how each loop stopped (its own clock), when the stop was requested,
/// and how late that request was against its aim (the main thread's own clock).
struct Loops {
    waiting: Stopped,
    polling: Stopped,
    stop_at: Instant,
    late: Duration,
}

/// The two loops, told to stop at the same instant: `into` (a fraction of a tick) into the
/// polling loop's fourth sleep, as the polling loop reported that sleep's start.
fn run_loops(lab: &Lab, tick: Duration, into: f64) -> anyhow::Result<Loops> {
    let stop = Event::new().with_probe(lab.probe("stop"));
    let flag = AtomicBool::new(false);
    let waiting = Mutex::new(Stopped::default());
    let polling = Mutex::new(Stopped::default());
    // Bounded: neither loop outlives this many ticks, whatever happens to the stop.
    let most_ticks = 3 + (Duration::from_secs(5).as_secs_f64() / tick.as_secs_f64()) as u64 + 4;
    // The polling loop says when each of its sleeps begins: the stop is aimed into one.
    let (sleeps_tx, sleeps) = crossbeam_channel::unbounded();
    let (stop_at, late) = lab.scope(|s| -> anyhow::Result<_> {
        let a = s.spawn("EventLoop", || {
            let mut ticks = 0;
            // the fix: the wait *is* the tick, and a set ends it at once.
            while !stop.wait_timeout(tick) && ticks < most_ticks && !lab.interrupted() {
                ticks += 1;
            }
            let (ticks, at) = (ticks, Some(crate::lab::now()));
            info!("stopped after {ticks} ticks");
            *crate::sync::lock(&waiting) = Stopped { ticks, at };
        })?;
        let b = s.spawn("PollLoop", || {
            let mut ticks = 0;
            // the slow form: check a flag, then sleep a whole tick before checking again.
            while !flag.load(SeqCst) && ticks < most_ticks && !lab.interrupted() {
                let _ = sleeps_tx.send(crate::lab::now());
                lab::sleep(tick);
                ticks += 1;
            }
            let (ticks, at) = (ticks, Some(crate::lab::now()));
            info!("stopped after {ticks} ticks");
            *crate::sync::lock(&polling) = Stopped { ticks, at };
        })?;
        // The fourth sleep's start (or, should it never come, now: bounded either way).
        let deadline = crate::lab::now() + tick * 8 + Duration::from_secs(5);
        let mut fourth = None;
        for _ in 0..4 {
            let left = deadline.saturating_duration_since(crate::lab::now());
            fourth = signals::recv_timeout(&sleeps, left);
            if fourth.is_none() {
                break;
            }
        }
        let fourth = fourth.unwrap_or_else(crate::lab::now);
        let aim = fourth + tick.mul_f64(into);
        lab::sleep(aim.saturating_duration_since(crate::lab::now()));
        info!("stop: set 'stop' and the flag");
        let at = crate::lab::now();
        flag.store(true, SeqCst);
        stop.set();
        a.join()?;
        b.join()?;
        Ok((at, at.saturating_duration_since(aim)))
    })?;
    let into = |m: Mutex<Stopped>| m.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Loops {
        waiting: into(waiting),
        polling: into(polling),
        stop_at,
        late,
    })
}

/// The shortest paced tick at which the polling loop's lateness (up to a tick) stands clear
/// of a wake-up's noise.
const MIN_TELLING_TICK: Duration = Duration::from_millis(5);

/// Part 3: two worker loops told to stop at the same instant: `while !stop.wait(tick)`
/// wakes at once; `while !flag { sleep(tick) }` sleeps out its tick first.
fn shutdown_loops(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let tick = lab.scaled(Duration::from_secs_f64(args.tick));
    // Stop partway into the polling loop's fourth tick (seeded), so it has a tick to finish.
    let fraction = lab.rng("stop").random_range(0.3..0.7);
    info!(
        "Part 3: two loops ticking every {}; both told to stop {} into the polling loop's \
         fourth sleep",
        units::duration(tick),
        units::duration(tick.mul_f64(fraction))
    );
    let Loops {
        waiting,
        polling,
        stop_at,
        late,
    } = run_loops(lab, tick, fraction)?;
    let latency = |m: &Stopped| m.at.map(|at| at.saturating_duration_since(stop_at));
    let (Some(event_latency), Some(poll_latency)) = (latency(&waiting), latency(&polling)) else {
        anyhow::bail!("a shutdown loop did not report when it stopped");
    };
    report.metric("stop_latency.event_ms", units::ms(event_latency));
    report.metric("stop_latency.poll_ms", units::ms(poll_latency));
    let mut table = Table::new(["loop", "ticks", "stopped after the request"]);
    table.row([
        "while !stop.wait(tick)".to_string(),
        waiting.ticks.to_string(),
        units::duration(event_latency),
    ]);
    table.row([
        "while !flag { sleep(tick) }".to_string(),
        polling.ticks.to_string(),
        units::duration(poll_latency),
    ]);
    report.tables.push(table);
    // A quarter tick, and never under 20 ms: a busy machine may take that long to run a
    // woken thread. (At small paces, raise --tick to see the difference.)
    let bound = (tick / 4).max(Duration::from_millis(20));
    report.check(
        "event-loop-time-stop-request",
        "event loop: time from the stop request to the loop's end",
        format!(
            "< {} (a quarter tick, at least 20 ms: it wakes at once)",
            units::duration(bound)
        ),
        units::duration(event_latency),
        event_latency < bound,
    );
    if tick < MIN_TELLING_TICK {
        report.cannot_show(
            "the polling loop ending later than the event loop",
            format!(
                "a tick of {} (--tick × --pace) is within a busy machine's wake-up; give a \
                 tick of at least {}",
                units::duration(tick),
                units::duration(MIN_TELLING_TICK)
            ),
        );
        return Ok(());
    }
    // The stop came so late that the polling loop's sleep had (nearly) run out: its
    // lateness is not there to see. The main thread knows how late it was, by its own clock.
    let left = tick.mul_f64(1.0 - fraction);
    let doubt = (late * 2 > left).then(|| {
        format!(
            "the stop came {} after its aim, which was {} before the polling loop's sleep \
             ended (a busy machine)",
            units::duration(late),
            units::duration(left)
        )
    });
    report.judged(
        doubt,
        "polling-loop-time-stop-request",
        "polling loop: time from the stop request to the loop's end",
        format!(
            "later than the event loop, and <= one tick + {}",
            units::duration(WAKE_BOUND)
        ),
        units::duration(poll_latency),
        poll_latency > event_latency && poll_latency <= tick + WAKE_BOUND,
    );
    report.note(format!(
        "The polling loop ends up to a tick late ({} here); a shutdown that waits on an Event \
         ends within a wake-up. Python: `while not stop.wait(tick): work()`.",
        units::duration(poll_latency)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_waiter_wakes_after_the_set_and_the_event_loop_stops_first() {
        let args = Args {
            waiters: 4,
            delay: 1.0,
            timeout: 0.3,
            tick: 0.5,
        };
        for report in lab::holding_over_seeds(run, &args, 0.1, 0..3) {
            assert_eq!(report.metric_u64("woken"), Some(4));
        }
    }
}
