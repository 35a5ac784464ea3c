#![doc = include_str!("pages/timer.md")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, signals, units};
use crate::sync::{Cancel, Repeating, Schedule, Timer, lock};

/// Flags of `threadlab timer`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Seconds before the one-shot timers fire (scaled by --pace).
    #[arg(long, default_value_t = 1.0, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub delay: f64,
    /// The repeating timers' interval (scaled by --pace; at least 0.01).
    #[arg(long, default_value_t = 0.5, value_name = "SECS",
          value_parser = crate::cli::parse_period, allow_negative_numbers = true)]
    pub interval: f64,
    /// Seconds of work each tick does (scaled by --pace; less than the interval).
    #[arg(long, default_value_t = 0.15, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub work: f64,
    /// Ticks each repeating timer runs before it is cancelled (2..=100).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = crate::cli::whole::<u64>(2, 100))]
    pub ticks: u64,
}

/// How late a timer may fire and still be "on time": far above a wake-up's usual tens of
/// microseconds on a busy machine.
const LATE_BOUND: Duration = Duration::from_millis(100);

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    if args.work > args.interval / 2.0 {
        anyhow::bail!(
            "--work ({} s) must be at most half of --interval ({} s): a fixed-rate tick must \
             end with room to spare before the next, or a late wake-up skips a tick",
            args.work,
            args.interval
        );
    }
    let mut report = Report::new("timer");
    report.params_from(args);
    one_shot(args, lab, &mut report)?;
    if !lab.interrupted() {
        cancelled(args, lab, &mut report)?;
    }
    if !lab.interrupted() {
        repeating(args, lab, &mut report)?;
    }
    if !lab.interrupted() {
        overlapping(args, lab, &mut report)?;
    }
    Ok(report)
}

/// Part 1: `Timer(delay, greet).start()`; the action notes when it ran.
fn one_shot(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let delay = lab.scaled(Duration::from_secs_f64(args.delay));
    info!(
        "Part 1: a timer that runs greet() after {}",
        lab.simulated(args.delay)
    );
    let (tx, rx) = crossbeam_channel::bounded(1);
    let started = crate::lab::now();
    let timer = Timer::start(lab, "Timer-1", delay, move || {
        let at = crate::lab::now();
        info!("greet(): hello from the timer's own thread");
        let _ = tx.send(at);
    })?;
    let fired = signals::recv_timeout(&rx, delay * 2 + Duration::from_secs(5));
    if fired.is_none() {
        timer.cancel();
    }
    timer.join_timeout(Duration::from_secs(5));
    let observed = match fired {
        Some(at) => {
            let after = at.duration_since(started);
            let late = after.saturating_sub(delay);
            report.metric("one_shot.late_ms", units::ms(late));
            info!(
                "greet() ran {} after start(): {} late",
                units::duration(after),
                units::duration(late)
            );
            format!(
                "after {} ({} late)",
                units::duration(after),
                units::duration(late)
            )
        }
        None => "never fired".to_string(),
    };
    report.check(
        "shot-timer-action-after-start",
        "the one-shot timer's action, after start()",
        format!(
            ">= {} and less than {} late",
            units::duration(delay),
            units::duration(LATE_BOUND)
        ),
        observed,
        fired.is_some_and(|at| {
            let after = at.duration_since(started);
            after >= delay && after - delay < LATE_BOUND
        }),
    );
    Ok(())
}

/// Part 2: `cancel()` before the deadline (never fires), and after (too late).
fn cancelled(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let delay = lab.scaled(Duration::from_secs_f64(args.delay));
    info!("Part 2: cancel() before and after a timer fires");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    // The main thread's clock, started before the timer's: a cancel() less than `delay`
    // after it is before the timer's deadline.
    let started = crate::lab::now();
    let timer = Timer::start(lab, "Timer-2", delay, move || {
        flag.store(true, SeqCst);
        warn!("fired although it was cancelled");
    })?;
    lab::sleep(delay / 2);
    let cancel_after = crate::lab::now().saturating_duration_since(started);
    let answer = timer.cancel();
    info!(
        "cancel() at {} of {}: {}",
        units::duration(cancel_after),
        units::duration(delay),
        said(answer)
    );
    // Wait past the deadline to prove it never fires.
    lab::sleep(delay);
    let fired = ran.load(SeqCst);
    let ended = timer.join_timeout(Duration::from_secs(5));
    info!(
        "{} after the deadline: {}",
        units::duration(delay / 2),
        if fired { "it fired" } else { "it never fired" }
    );
    // A sleep that overran past the deadline (a busy machine) tested nothing.
    let doubt = (cancel_after >= delay).then(|| {
        format!(
            "the main thread's sleep overran: cancel() came {} after start(), not before the \
             {} deadline",
            units::duration(cancel_after),
            units::duration(delay)
        )
    });
    report.judged(
        doubt,
        "timer-cancelled-halfway-cancel-answer",
        "a timer cancelled halfway: cancel()'s answer, and whether it fired by the deadline + 50 %",
        "in time; never fired",
        format!(
            "{}; {}",
            short_answer(answer),
            if fired { "fired" } else { "never fired" }
        ),
        answer == Cancel::InTime && !fired && ended,
    );

    let short = delay / 4;
    let runs = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&runs);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let timer = Timer::start(lab, "Timer-3", short, move || {
        count.fetch_add(1, SeqCst);
        info!("fired");
        let _ = tx.send(());
    })?;
    let seen = signals::recv_timeout(&rx, short * 2 + Duration::from_secs(5)).is_some();
    let answer = timer.cancel();
    info!("cancel() after it fired: {}", said(answer));
    timer.join_timeout(Duration::from_secs(5));
    let runs = runs.load(SeqCst);
    report.check(
        "timer-cancelled-after-fired-cancel",
        "a timer cancelled after it fired: cancel()'s answer, and the action's runs",
        "too late; ran once",
        format!("{}; ran {runs}×", short_answer(answer)),
        seen && answer == Cancel::TooLate && runs == 1,
    );
    Ok(())
}

/// What `cancel()` answered, in words, and what Python says instead: its `cancel()`
/// returns None whether it was in time or not.
fn said(answer: Cancel) -> String {
    format!(
        "{}; Python's cancel() returns None either way (only the action's effects tell)",
        match answer {
            Cancel::InTime => "in time, it will not run",
            Cancel::TooLate => "too late, it already ran",
        }
    )
}

/// `cancel()`'s answer as the checks state it.
fn short_answer(answer: Cancel) -> &'static str {
    match answer {
        Cancel::InTime => "in time",
        Cancel::TooLate => "too late",
    }
}

/// What one tick's work noted: its number and when it started.
type Ticks = Arc<Mutex<Vec<(u64, Instant)>>>;

/// What one repeating timer showed: its ticks' lateness (by the ticks' own clocks) and how
/// it stopped (the canceller's clock).
struct TimerSeen {
    name: &'static str,
    /// Its schedule's key in the metrics (`tutorial`, `after_work`, `fixed_rate`).
    key: &'static str,
    /// Lateness of ticks 1..=--ticks against start + k × interval.
    late: Vec<Duration>,
    /// It ran its ticks; its thread ended; how long after cancel(); ticks begun after it.
    finished: bool,
    ended: bool,
    ended_after: Duration,
    after_cancel: usize,
}

/// Part 3: the tutorials' `RepeatingTimer` as written (re-arm, then work), a loop that waits
/// after the work, and a fixed-rate one, each running `ticks` ticks of `work` every
/// `interval`, then cancelled.
fn repeating(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let interval = lab.scaled(Duration::from_secs_f64(args.interval));
    let work = lab.scaled(Duration::from_secs_f64(args.work));
    info!(
        "Part 3: three repeating timers: every {}, {} of work a tick",
        units::duration(interval),
        units::duration(work)
    );
    info!("Tutorial: Python's RepeatingTimer: _run re-arms a Timer, then works");
    info!("AfterWork: waits an interval after the work");
    info!("FixedRate: aims at start + k × interval");
    let seen = run_repeating(args, lab, interval, work)?;
    judge_repeating(args, &seen, work, report);
    Ok(())
}

/// Starts the three timers together; cancels each as soon as it has ticked `--ticks` times
/// (whichever finishes first is cancelled first: a timer left running would start a tick
/// near the moment of a late cancel(), and the check below is about cancel(), not about
/// that race).
fn run_repeating(
    args: &Args,
    lab: &Lab,
    interval: Duration,
    work: Duration,
) -> anyhow::Result<Vec<TimerSeen>> {
    let start = crate::lab::now();
    let schedules = [
        ("Tutorial", Schedule::RearmFirst),
        ("AfterWork", Schedule::AfterWork),
        ("FixedRate", Schedule::FixedRate),
    ];
    // Each timer's `--ticks`-th tick sends its timer's index here when its work is done.
    let (done_tx, done_rx) = crossbeam_channel::bounded(schedules.len());
    let mut timers = Vec::new();
    for (i, &(name, schedule)) in schedules.iter().enumerate() {
        let ticks: Ticks = Arc::default();
        let (log, done, wanted) = (Arc::clone(&ticks), done_tx.clone(), args.ticks);
        let timer = Repeating::start(lab, name, start, interval, schedule, move |k| {
            let at = crate::lab::now();
            // A timer that does not stop when cancelled must not flood the screen.
            if k > wanted * 4 {
                return;
            }
            let late = at.saturating_duration_since(start + interval * k as u32);
            info!("tick {k}: {} late", units::duration(late));
            lock(&log).push((k, at));
            lab::sleep(work);
            if k == wanted {
                let _ = done.send(i);
            }
        })?;
        timers.push(Some((timer, ticks)));
    }
    let patience = (interval + work) * (args.ticks as u32 + 2) + Duration::from_secs(5);
    let deadline = crate::lab::now() + patience;
    let mut seen: Vec<Option<TimerSeen>> = schedules.iter().map(|_| None).collect();
    let mut stop = |i: usize, finished: bool| {
        if let Some((timer, ticks)) = timers[i].take() {
            let (name, schedule) = schedules[i];
            let (ended, ended_after, after_cancel) = stop_one(name, timer, &ticks, interval + work);
            let late = lock(&ticks)
                .iter()
                .take(args.ticks as usize)
                .map(|(k, at)| at.saturating_duration_since(start + interval * *k as u32))
                .collect();
            let key = schedule_key(schedule);
            seen[i] = Some(TimerSeen { name, key, late, finished, ended, ended_after, after_cancel });
        }
    };
    // Each in the order they finish; then any that did not finish in time.
    for _ in 0..schedules.len() {
        let left = deadline.saturating_duration_since(crate::lab::now());
        match signals::recv_timeout(&done_rx, left) {
            Some(i) => stop(i, true),
            None => break,
        }
    }
    (0..schedules.len()).for_each(|i| stop(i, false));
    Ok(seen.into_iter().flatten().collect())
}

/// Cancels one repeating timer and sees it stop: whether its thread ended, how long after
/// cancel(), and how many ticks' work began after cancel() (by the ticks' own clocks).
fn stop_one(
    name: &str,
    timer: Repeating,
    ticks: &Ticks,
    slack: Duration,
) -> (bool, Duration, usize) {
    let cancel_at = crate::lab::now();
    timer.cancel();
    let ended = timer.join_timeout(slack + Duration::from_secs(2)).is_some();
    let ended_after = crate::lab::now().saturating_duration_since(cancel_at);
    info!(
        "{name}.cancel(): its thread ended {} later",
        units::duration(ended_after)
    );
    let after_cancel = lock(ticks).iter().filter(|(_, at)| *at > cancel_at).count();
    (ended, ended_after, after_cancel)
}

/// Each tick's lateness, one column per schedule.
fn lateness_table(ticks: usize, seen: &[TimerSeen]) -> Table {
    let mut table = Table::new([
        "tick",
        "Tutorial: late by",
        "AfterWork: late by",
        "FixedRate: late by",
    ]);
    for k in 0..ticks {
        let cell = |t: &TimerSeen| {
            t.late
                .get(k)
                .map(|d| units::duration(*d))
                .unwrap_or_else(|| "—".into())
        };
        table.row([
            (k + 1).to_string(),
            cell(&seen[0]),
            cell(&seen[1]),
            cell(&seen[2]),
        ]);
    }
    table
}

/// Part 3's table and checks: the drift of each schedule, and each timer's stop.
fn judge_repeating(args: &Args, seen: &[TimerSeen], work: Duration, report: &mut Report) {
    report.tables.push(lateness_table(args.ticks as usize, seen));
    for t in seen {
        if let Some(last) = t.late.last() {
            report.metric(format!("{}.last_late_ms", t.key), units::ms(*last));
        }
    }
    let lateness: Vec<&Vec<Duration>> = seen.iter().map(|t| &t.late).collect();
    let n = args.ticks;
    let drift = work * (n as u32 - 1);
    let last = |v: &Vec<Duration>| v.get(n as usize - 1).copied();
    let tutorial = last(lateness[0]);
    let naive = last(lateness[1]);
    let fixed = last(lateness[2]);
    let shown = |d: Option<Duration>| {
        d.map(units::duration)
            .unwrap_or_else(|| "no such tick".into())
    };
    report.check(
        "after-work-schedule-tick-lateness",
        format!("after-work schedule: tick {n}'s lateness"),
        format!(
            ">= {} ({} ticks × the work: it drifts)",
            units::duration(drift),
            n - 1
        ),
        shown(naive),
        naive.is_some_and(|d| d >= drift),
    );
    // Half the after-work drift, and never under 20 ms of a busy machine's scheduling.
    let bound = (drift / 2).max(Duration::from_millis(20));
    report.check(
        "tutorial-repeatingtimer-tick-lateness",
        format!("the tutorial's RepeatingTimer: tick {n}'s lateness"),
        format!(
            "< {} (it re-arms before the work: no drift by the work)",
            units::duration(bound)
        ),
        shown(tutorial),
        tutorial.is_some_and(|d| d < bound),
    );
    report.check(
        "fixed-rate-schedule-tick-lateness",
        format!("fixed-rate schedule: tick {n}'s lateness"),
        format!(
            "< {} (half the after-work drift, at least 20 ms: it does not drift)",
            units::duration(bound)
        ),
        shown(fixed),
        fixed.is_some_and(|d| d < bound),
    );
    for t in seen {
        report.check(
            format!("{}.ticks-started-after-cancel", t.name),
            format!(
                "{}: ticks started after cancel(), and when its thread ended",
                t.name
            ),
            format!(
                "0; within {} (cancel() wakes the waiting timer at once)",
                units::duration(LATE_BOUND)
            ),
            format!(
                "{}; {}",
                t.after_cancel,
                if t.ended {
                    units::duration(t.ended_after)
                } else {
                    "still running".into()
                }
            ),
            t.finished && t.ended && t.after_cancel == 0 && t.ended_after <= LATE_BOUND,
        );
    }
    report.note(format!(
        "The after-work timer starts each tick {} later than the one before (the work); the \
         tutorial's RepeatingTimer drifts only by each re-arm's moment, and a fixed-rate \
         schedule aims at start + k × interval.",
        units::duration(work)
    ));
}

/// Part 4: the tutorial's `RepeatingTimer` with work twice its interval. Its `_run` starts
/// the next `Timer` before the work, so a slow tick runs beside the next one: the ticks
/// overlap (counted by the ticks themselves), where the after-work loop never could.
fn overlapping(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let interval = lab.scaled(Duration::from_secs_f64(args.interval));
    let work = interval * 2;
    info!(
        "Part 4: RepeatingTimer, {} of work every {}: 3 ticks",
        units::duration(work),
        units::duration(interval)
    );
    let running = Arc::new(AtomicU64::new(0));
    let most = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let (now, peak) = (Arc::clone(&running), Arc::clone(&most));
    let timer = Repeating::start(
        lab,
        "Tutorial",
        crate::lab::now(),
        interval,
        Schedule::RearmFirst,
        move |k| {
            if k > 3 {
                return;
            }
            let at_once = now.fetch_add(1, SeqCst) + 1;
            peak.fetch_max(at_once, SeqCst);
            info!("tick {k}: working ({at_once} tick(s) running now)");
            lab::sleep(work);
            now.fetch_sub(1, SeqCst);
            if k == 3 {
                let _ = done_tx.send(());
            }
        },
    )?;
    let finished = signals::recv_timeout(&done_rx, interval * 8 + Duration::from_secs(5));
    timer.cancel();
    let ended = timer.join_timeout(work + Duration::from_secs(5)).is_some();
    let most = most.load(SeqCst);
    report.metric("tutorial.most_ticks_at_once", most);
    report.check(
        "tutorial-repeatingtimer-work-longer-interval",
        "the tutorial's RepeatingTimer, work longer than the interval: most ticks running at once",
        ">= 2 (the next Timer starts before the work: ticks overlap)",
        most.to_string(),
        finished.is_some() && ended && most >= 2,
    );
    report.note(
        "Python's RepeatingTimer.stop() cancels only the latest Timer: a tick already working \
         finishes, and a stop() that lands between _run's is_running = False and start() \
         leaves a new Timer running. The timer here checks a stopped flag under its lock.",
    );
    Ok(())
}

fn schedule_key(schedule: Schedule) -> &'static str {
    match schedule {
        Schedule::RearmFirst => "tutorial",
        Schedule::AfterWork => "after_work",
        Schedule::FixedRate => "fixed_rate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_on_time_cancel_in_time_and_the_fixed_rate_does_not_drift() {
        let args = Args {
            delay: 1.0,
            interval: 0.5,
            work: 0.15,
            ticks: 4,
        };
        crate::lab::holding_over_seeds(run, &args, 0.1, 0..2);
    }
}
