#![doc = include_str!("pages/daemon.md")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::Event;

/// Flags of `threadlab daemon`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Which ending to show.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// Seconds the main thread works (scaled by --pace).
    #[arg(long, default_value_t = 2.0, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub work: f64,
    /// Seconds between the monitor's ticks (scaled by --pace; more than 0).
    #[arg(long, default_value_t = 0.5, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub tick: f64,
    /// Internal: run the daemon scenario itself (the parent runs this in a child process).
    #[arg(long, hide = true)]
    #[serde(skip)]
    pub child: bool,
}

/// The ending to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The process exits under a running background thread.
    Daemon,
    /// The background thread is signalled, cleans up and is joined.
    Graceful,
    /// Both, one after the other, compared.
    Both,
}

/// What one mode observed.
struct Outcome {
    ticks: u64,
    /// "cleanup done" lines seen by an observer: relayed from the child (daemon), or sent by
    /// the monitor's cleanup guard to the main thread (graceful).
    cleanups: u64,
    /// From the main thread finishing its work to the program being done (`None` under
    /// `--schedule` for the child: its exit is the OS's, in real time, not replayed).
    end_delay: Option<Duration>,
    /// Graceful only: the monitor's last wait, from its start to the stop waking it,
    /// timed by the monitor's own clock.
    last_wait: Option<Duration>,
    /// Graceful only: how far into that wait the main thread set the stop (its clock and
    /// the monitor's are the lab's one clock).
    stop_offset: Option<Duration>,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    anyhow::ensure!(args.tick > 0.0, "--tick must be more than 0 seconds");
    if args.child {
        // However the parent ends (a watchdog, a signal, a crash), this process ends too.
        lab::signals::die_with_parent();
        child_scenario(args, lab);
    }
    let mut report = Report::new("daemon");
    report.params_from(args);
    let mut table = Table::new([
        "mode",
        "ticks",
        "cleanup ran",
        "program ended after main by",
    ]);
    info!("Rust's default is Python's daemon=True: main's return ends every thread");
    if matches!(args.mode, Mode::Daemon | Mode::Both) {
        let o = daemon_in_child(args, lab)?;
        record(&mut report, &mut table, "daemon", &o);
        report.check(
            "daemon-cleanup-done-lines-relayed",
            "daemon: 'cleanup done' lines relayed from the child before the OS reported its exit",
            format!(
                "0: the exit cut the monitor off (it planned {} ticks, then its cleanup)",
                planned_ticks(args)
            ),
            o.cleanups,
            o.cleanups == 0,
        );
    }
    if matches!(args.mode, Mode::Graceful | Mode::Both) {
        let o = graceful(args, lab)?;
        record(&mut report, &mut table, "graceful", &o);
        report.check(
            "graceful-cleanup-done-messages-main",
            "graceful: 'cleanup done' messages the main thread received before the join returned",
            "1",
            o.cleanups,
            o.cleanups == 1,
        );
        judge_last_wait(args, lab, &o, &mut report);
    }
    report.tables.push(table);
    report.note(
        "Python and Rust differ here: Python waits at exit for every non-daemon thread (the \
         default, daemon=False); Rust never waits for a spawned thread. To get Python's default \
         in Rust, join the thread (or use thread::scope, which joins for you).",
    );
    Ok(report)
}

/// The graceful monitor's last wait: the stop, set a quarter into it, must end it before
/// its tick. Where the stop itself came late (the main thread ran late on a busy machine,
/// measured on the one clock), the tick had nearly run out anyway: inconclusive, not ✘.
fn judge_last_wait(args: &Args, lab: &Lab, o: &Outcome, report: &mut Report) {
    let tick = graceful_tick(args, lab);
    let last = o.last_wait.unwrap_or(Duration::MAX);
    let offset = o.stop_offset.unwrap_or_default();
    let (id, name) = (
        "graceful-monitor-last-wait-stop",
        "graceful: the monitor's last wait, the stop set a quarter into it (timed by the monitor)",
    );
    let expected = format!(
        "< one tick ({}): the Event woke it early",
        units::duration(tick)
    );
    let observed = format!(
        "{} (the stop came {} into it)",
        units::duration(last),
        units::duration(offset)
    );
    if last >= tick && offset > tick / 2 {
        let why = format!(
            "the stop came {} into the wait, not a quarter: the main thread itself ran late (a \
             busy machine), and the tick had nearly run out",
            units::duration(offset)
        );
        report.inconclusive(id, name, expected, observed, why);
    } else {
        report.check(id, name, expected, observed, last < tick);
    }
}

/// The table row, metrics and tick check every mode shares.
fn record(report: &mut Report, table: &mut Table, mode: &str, o: &Outcome) {
    let ran = if o.cleanups > 0 { "yes" } else { "no" };
    table.row([
        mode.to_string(),
        o.ticks.to_string(),
        ran.to_string(),
        o.end_delay.map_or(String::from("-"), units::duration),
    ]);
    report.metric(format!("{mode}.ticks"), o.ticks);
    report.metric(format!("{mode}.cleanup_ran"), o.cleanups > 0);
    match o.end_delay {
        Some(d) => report.metric(format!("{mode}.end_delay_ms"), units::ms(d)),
        None => report.cannot_show(
            format!("{mode}: how soon after its main thread the OS ended the program"),
            "under --schedule a child process's exit is the OS's, in real time, which no \
             schedule replays",
        ),
    }
    report.check(
        format!("{mode}.monitor-ticked-main-worked"),
        format!("{mode}: the monitor ticked while main worked"),
        ">= 1 tick",
        o.ticks,
        o.ticks >= 1,
    );
}

/// The monitor both modes run: it ticks until stopped or until its planned ticks are done,
/// then cleans up. The cleanup is a guard's `Drop`, so it runs however the loop ends (a stop,
/// the last tick, even a panic), unless the process itself ends first. Returns its ticks and
/// how long its last wait lasted and when it began.
fn monitor(
    stop: &Event,
    tick: Duration,
    planned: u64,
    cleaned: impl FnOnce(),
) -> (u64, Duration, Instant) {
    struct Cleanup<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Cleanup<F> {
        fn drop(&mut self) {
            info!("cleanup done");
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let _cleanup = Cleanup(Some(cleaned));
    let mut n = 0;
    let mut last_wait = Duration::ZERO;
    let mut began = crate::lab::now();
    while n < planned {
        began = crate::lab::now();
        // wait_timeout returns true the moment stop is set: no waiting out the tick.
        let stopped = stop.wait_timeout(tick);
        last_wait = crate::lab::now().saturating_duration_since(began);
        if stopped {
            info!("stop received; cleaning up…");
            return (n, last_wait, began);
        }
        n += 1;
        info!("tick {n}");
    }
    info!("planned ticks done; cleaning up…");
    (n, last_wait, began)
}

/// Ticks the monitor plans: two more than fit in the main thread's work, so it would still
/// be working when main ends.
fn planned_ticks(args: &Args) -> u64 {
    (args.work / args.tick).ceil() as u64 + 2
}

/// The child process: a detached monitor, the main thread's work, then exit.
fn child_scenario(args: &Args, lab: &Lab) -> ! {
    // Nobody sets this one: a daemon is not stopped, it is abandoned.
    static STOP: std::sync::OnceLock<Event> = std::sync::OnceLock::new();
    let stop = STOP.get_or_init(Event::new);
    let tick = lab.scaled(Duration::from_secs_f64(args.tick));
    let planned = planned_ticks(args);
    let spawned = lab.spawn_detached("Monitor", move || monitor(stop, tick, planned, || {}));
    if let Err(e) = spawned {
        warn!("{e:#}");
        std::process::exit(1);
    }
    info!("Main thread working for {}…", lab.simulated(args.work));
    lab.sleep_secs(args.work);
    info!("Main thread done; exiting now");
    // Returning from main does exactly this: end the process, daemon threads and all.
    std::process::exit(0);
}

/// Runs the daemon scenario in a child process and watches it from here.
fn daemon_in_child(args: &Args, lab: &Lab) -> anyhow::Result<Outcome> {
    info!("daemon: running the scenario in a child process and watching it");
    let ticks = AtomicU64::new(0);
    let cleanups = AtomicU64::new(0);
    let mut main_done_at = None::<Instant>;
    let deadline = lab.scaled(Duration::from_secs_f64(args.work)) + Duration::from_secs(20);
    let (work, tick) = (args.work.to_string(), args.tick.to_string());
    let mut child = vec!["daemon", "--child", "--work", &work, "--tick", &tick];
    // Under the lab's schedule the child runs on the default one: the same run every time.
    if lab::sched::active() {
        child.extend(["--schedule", "default"]);
    }
    let exited = lab::child::run_relayed(
        lab,
        &child,
        deadline,
        "the daemon kept it alive",
        |line, at| {
            if line.contains("(Monitor") && line.contains("tick ") {
                ticks.fetch_add(1, Ordering::Relaxed);
            }
            if line.contains("(Monitor") && line.contains("cleanup done") {
                cleanups.fetch_add(1, Ordering::Relaxed);
            }
            if line.contains("Main thread done") {
                main_done_at = Some(at);
            }
        },
    )?;
    anyhow::ensure!(
        exited.status.success() || lab.interrupted(),
        "the child process failed: {}",
        exited.status
    );
    let main_done = main_done_at.unwrap_or(exited.at);
    // Under the lab's schedule the child runs on the default schedule, but its exit is the
    // OS's, in real time: not a figure a replay could repeat.
    let delay = (!lab::sched::active()).then(|| exited.at.saturating_duration_since(main_done));
    let after = delay.map_or(String::from("after its main thread (in the OS's real time)"), |d| {
        format!("{} after its main thread", units::duration(d))
    });
    info!(
        "daemon: child exited {after}; {} ticks; cleanup {}",
        ticks.load(Ordering::Relaxed),
        if cleanups.load(Ordering::Relaxed) > 0 {
            "ran"
        } else {
            "never ran"
        }
    );
    Ok(Outcome {
        ticks: ticks.into_inner(),
        cleanups: cleanups.into_inner(),
        end_delay: delay,
        last_wait: None,
        stop_offset: None,
    })
}

/// The graceful ending: the same monitor, stopped by an Event set mid-tick, then joined.
/// The graceful monitor's tick: `--tick` at the pace, but at least 25 ms, so that a wake-up
/// late by a loaded machine's few milliseconds is never taken for a tick waited out.
fn graceful_tick(args: &Args, lab: &Lab) -> Duration {
    lab.scaled(Duration::from_secs_f64(args.tick))
        .max(Duration::from_millis(25))
}

fn graceful(args: &Args, lab: &Lab) -> anyhow::Result<Outcome> {
    info!("graceful: the same monitor, told to stop by an Event between its ticks");
    let stop = Event::new().with_probe(lab.probe("stop"));
    let tick = graceful_tick(args, lab);
    let planned = planned_ticks(args);
    let (cleaned_tx, cleaned_rx) = crossbeam_channel::unbounded::<()>();
    let (ticks, (last_wait, offset), delay) = lab.scope(|s| -> anyhow::Result<_> {
        let stop = &stop;
        let started = crate::lab::now();
        let monitor = s.spawn("Monitor", move || {
            monitor(stop, tick, planned, move || {
                let _ = cleaned_tx.send(());
            })
        })?;
        info!("Main thread working for {}…", lab.simulated(args.work));
        lab.sleep_secs(args.work);
        // On to a quarter into the monitor's next wait (its waits begin every tick from its
        // start), so the stop lands early in a tick: a monitor that slept its tick out would
        // be seen waiting the other three quarters.
        let since = crate::lab::now().saturating_duration_since(started);
        let waits = since.as_nanos().div_ceil(tick.as_nanos().max(1)) as u32;
        let quarter = started + tick * waits + tick / 4;
        lab::sleep(quarter.saturating_duration_since(crate::lab::now()));
        info!("Main thread done; setting the stop event and joining the monitor");
        let set_at = crate::lab::now();
        stop.set();
        let (n, last_wait, wait_began) = monitor.join()?;
        let offset = set_at.saturating_duration_since(wait_began);
        let delay = crate::lab::now().saturating_duration_since(set_at);
        info!(
            "Monitor joined {} after the stop signal",
            units::duration(delay)
        );
        Ok((n, (last_wait, offset), delay))
    })?;
    Ok(Outcome {
        ticks,
        cleanups: cleaned_rx.try_iter().count() as u64,
        end_delay: Some(delay),
        last_wait: Some(last_wait),
        stop_offset: Some(offset),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graceful_monitor_cleans_up_and_is_joined() {
        let lab = Lab::quiet(0.05, 1);
        let args = Args {
            mode: Mode::Graceful,
            work: 2.0,
            tick: 0.5,
            child: false,
        };
        let report = run(&args, &lab).unwrap();
        assert_eq!(report.metrics["graceful.cleanup_ran"], true);
        assert!(report.metric_u64("graceful.ticks").unwrap() >= 1);
    }
}
