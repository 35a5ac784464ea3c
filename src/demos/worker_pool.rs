#![doc = include_str!("pages/worker_pool.md")]

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::JoinableQueue;
use crate::sync::queue::Got;

/// Flags of `threadlab worker-pool`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Workers (1..=64).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub workers: usize,
    /// Tasks submitted (1..=10000).
    #[arg(long, default_value_t = 9, value_name = "K",
          value_parser = crate::cli::whole::<usize>(1, 10_000))]
    pub tasks: usize,
    /// Seconds one task takes (scaled by --pace).
    #[arg(long, default_value_t = 0.2, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub task: f64,
    /// The tutorial's `queue.get(timeout=…)` in its worker loop, in seconds (scaled by
    /// --pace; at least 0.01).
    #[arg(long, default_value_t = 1.0, value_name = "SECS",
          value_parser = crate::cli::parse_period, allow_negative_numbers = true)]
    pub get_timeout: f64,
}

/// How long past the expected moment a thread may take to be seen ending.
const SLACK: Duration = Duration::from_millis(100);

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("worker-pool");
    report.params_from(args);
    let mut table = Table::new([
        "pool",
        "get_results() got",
        "alive after shutdown()",
        "stop latency",
    ]);
    let tutorial = tutorial_pool(args, lab, &mut report, &mut table)?;
    if !lab.interrupted() {
        fixed_pool(args, lab, tutorial, &mut report, &mut table)?;
    }
    report.tables.push(table);
    report.note(
        "The library version of the fixed pool, with futures, results in order or as completed, \
         and failures caught: `threadlab pool`.",
    );
    Ok(report)
}

/// What the tutorials' pool showed, by the workers' and the caller's own clocks.
struct TutorialSeen {
    /// Results `get_results()` returned when called without `task_queue.join()` first.
    without_join: usize,
    /// Results it returned after `task_queue.join()`, as the tutorial writes it.
    after_join: usize,
    /// When each worker left its loop (its own clock).
    exits: Vec<Instant>,
    /// When `shutdown()` (flag, then a join of every worker) was called and returned.
    shutdown: (Instant, Instant),
}

/// The tutorials' `WorkerPool`, as written: workers loop on `task_queue.get(timeout)` until a
/// flag says stop; the caller runs `task_queue.join()`, then `get_results()` (drain while not
/// empty), then `shutdown()`: the flag, then a join of every worker. Also `get_results()`
/// called without the `join()`, as the other tutorial's manager allows. Returns its stop
/// latency.
fn tutorial_pool(
    args: &Args,
    lab: &Lab,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<Duration> {
    let get_timeout = lab.scaled(Duration::from_secs_f64(args.get_timeout));
    info!(
        "WorkerPool (the tutorials'): {} workers loop on task_queue.get(timeout)",
        args.workers
    );
    info!(
        "until a flag says stop; the get timeout: {}",
        lab.simulated(args.get_timeout)
    );
    let seen = run_tutorial_pool(args, lab, get_timeout)?;
    judge_tutorial_pool(args, &seen, get_timeout, report, table)
}

fn run_tutorial_pool(
    args: &Args,
    lab: &Lab,
    get_timeout: Duration,
) -> anyhow::Result<TutorialSeen> {
    let work = lab.scaled(Duration::from_secs_f64(args.task));
    let tasks = JoinableQueue::new(args.tasks, lab.probe("task_queue"));
    let (result_tx, result_rx) = crossbeam_channel::unbounded::<usize>();
    let running = AtomicBool::new(true);
    let (exit_tx, exit_rx) = crossbeam_channel::unbounded::<Instant>();
    lab.scope(|s| -> anyhow::Result<_> {
        let mut workers = Vec::new();
        for w in 1..=args.workers {
            let (tasks, result_tx, running, exit_tx) =
                (&tasks, result_tx.clone(), &running, exit_tx.clone());
            workers.push(s.spawn(format!("Worker-{w}"), move || {
                while running.load(SeqCst) && !lab.interrupted() {
                    // `task = self.task_queue.get(timeout=1)`; `except queue.Empty: continue`
                    let Got::Item(task) = tasks.get_timeout(get_timeout) else {
                        continue;
                    };
                    info!("task {task}: working {}", units::duration(work));
                    lab::sleep(work);
                    let _ = result_tx.send(task);
                    let _ = tasks.task_done();
                }
                let _ = exit_tx.send(crate::lab::now());
            })?);
        }
        drop((result_tx, exit_tx));
        for t in 1..=args.tasks {
            tasks.put(t)?;
        }
        info!("submitted {} tasks", args.tasks);
        // Without `task_queue.join()` first: the queue of results looks empty while tasks are
        // still in flight.
        let drain = || {
            let mut got = 0;
            while let Ok(_r) = result_rx.try_recv() {
                got += 1;
            }
            got
        };
        while !tasks.is_empty() && !lab.interrupted() {
            lab::pause(Duration::from_millis(1));
        }
        let without_join = drain();
        info!(
            "get_results() without task_queue.join(): {without_join} of {} results",
            args.tasks
        );
        info!("task_queue.join(): waits until every task is marked done");
        let bound = work * (args.tasks as u32 + 1) + Duration::from_secs(10);
        tasks.join_timeout(bound);
        let after_join = without_join + drain();
        info!(
            "get_results() after join(): {after_join} of {} results",
            args.tasks
        );
        info!("shutdown(): running = False, then join every worker");
        let called = crate::lab::now();
        running.store(false, SeqCst);
        for w in workers {
            w.join()?;
        }
        let returned = crate::lab::now();
        info!(
            "shutdown() returned after {}: each worker waited out its get()",
            units::duration(returned - called)
        );
        Ok(TutorialSeen {
            without_join,
            after_join,
            exits: exit_rx.try_iter().collect(),
            shutdown: (called, returned),
        })
    })
}

fn judge_tutorial_pool(
    args: &Args,
    seen: &TutorialSeen,
    get_timeout: Duration,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<Duration> {
    let (called, returned) = seen.shutdown;
    let latency = seen
        .exits
        .iter()
        .map(|at| at.saturating_duration_since(called))
        .max()
        .unwrap_or_default();
    let ended_before = seen.exits.iter().filter(|at| **at <= returned).count();
    table.row([
        "tutorial (flag + timeout)".to_string(),
        format!("{}, or {} after join()", seen.without_join, seen.after_join),
        format!("{} of {}", args.workers - ended_before, args.workers),
        units::duration(latency),
    ]);
    report.metric("tutorial.collected_without_join", seen.without_join as u64);
    report.metric("tutorial.collected", seen.after_join as u64);
    report.metric("tutorial.stop_latency_ms", units::ms(latency));
    if args.tasks > args.workers && args.task == 0.0 {
        report.cannot_show(
            "get_results() missing the tasks in flight",
            "with --task 0 no task is ever in flight",
        );
    } else if args.tasks > args.workers {
        report.check(
            "tutorial-get-results-without-task-queue-join",
            "tutorial: get_results() without task_queue.join() first, as the last task is handed out",
            format!("< {} results (the tasks still in flight are missed)", args.tasks),
            seen.without_join,
            seen.without_join < args.tasks,
        );
    }
    report.check(
        "tutorial-written-get-results-after-task-queue",
        "tutorial as written: get_results() after task_queue.join()",
        format!("{} of {} results", args.tasks, args.tasks),
        format!("{} of {}", seen.after_join, args.tasks),
        seen.after_join == args.tasks,
    );
    report.check(
        "tutorial-workers-ended-shutdown-returned",
        "tutorial: workers ended (by their own clocks) when shutdown() returned",
        format!(
            "{} of {} (shutdown() joins them)",
            args.workers, args.workers
        ),
        format!("{ended_before} of {}", args.workers),
        ended_before == args.workers,
    );
    report.check(
        "tutorial-shutdown-last-worker-exit",
        "tutorial: from shutdown() to the last worker's exit (timed by the workers): the late stop",
        format!(
            "up to the get timeout, {} (+{})",
            units::duration(get_timeout),
            units::duration(SLACK)
        ),
        units::duration(latency),
        seen.exits.len() == args.workers && latency <= get_timeout + SLACK,
    );
    Ok(latency)
}

/// The fix: the task queue is closed when nothing more will come (no timeout, no flag);
/// results are read until every worker is done; every worker is joined.
/// A worker of the fixed pool: tasks until the queue is closed and drained; returns when it
/// left its loop, by its own clock.
fn fixed_worker(
    lab: &Lab,
    task_rx: &crossbeam_channel::Receiver<usize>,
    result_tx: &crossbeam_channel::Sender<usize>,
    work: Duration,
) -> Instant {
    // the fix: the loop ends when the queue is closed and empty. No timeout.
    let next = || lab::recv("tasks", task_rx);
    while let Some(task) = next() {
        if lab.interrupted() {
            break;
        }
        info!("task {task}: working {}", units::duration(work));
        lab::sleep(work);
        let _ = result_tx.send(task);
    }
    crate::lab::now()
}

fn fixed_pool(
    args: &Args,
    lab: &Lab,
    tutorial_latency: Duration,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<()> {
    let work = lab.scaled(Duration::from_secs_f64(args.task));
    info!(
        "fixed: {} scoped workers reading a queue that is closed at shutdown",
        args.workers
    );
    let (task_tx, task_rx) = crossbeam_channel::unbounded::<usize>();
    let (result_tx, result_rx) = crossbeam_channel::unbounded::<usize>();
    let (got, latency, joined) = lab.scope(|s| -> anyhow::Result<_> {
        let workers: Vec<_> = (1..=args.workers)
            .map(|w| {
                let (task_rx, result_tx) = (task_rx.clone(), result_tx.clone());
                s.spawn(format!("Worker-{w}"), move || {
                    fixed_worker(lab, &task_rx, &result_tx, work)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        drop(result_tx);
        for t in 1..=args.tasks {
            let _ = task_tx.send(t);
        }
        info!("submitted {} tasks", args.tasks);
        // Collect every result: exactly as many as were submitted.
        let mut got = Vec::new();
        while got.len() < args.tasks {
            match lab::signals::recv_timeout(&result_rx, work * 2 + Duration::from_secs(10)) {
                Some(r) => got.push(r),
                None => break,
            }
        }
        info!("shutdown(): close the task queue; join every worker");
        let stopped_at = crate::lab::now();
        drop(task_tx);
        let mut exits = Vec::new();
        for w in workers {
            exits.push(w.join()?);
        }
        let returned = crate::lab::now();
        let latency = exits
            .iter()
            .map(|at| at.saturating_duration_since(stopped_at))
            .max()
            .unwrap_or_default();
        // Ended by their own clocks before shutdown returned (not: how many joins ran).
        let ended = exits.iter().filter(|at| **at <= returned).count();
        Ok((got, latency, ended))
    })?;
    let mut ids = got.clone();
    ids.sort_unstable();
    let each_once = ids == (1..=args.tasks).collect::<Vec<_>>();
    info!(
        "fixed: {} of {} results; workers stopped {} after shutdown; {joined} joined",
        got.len(),
        args.tasks,
        units::duration(latency)
    );
    table.row([
        "fixed (close, join)".to_string(),
        got.len().to_string(),
        format!("{} of {}", args.workers - joined, args.workers),
        units::duration(latency),
    ]);
    report.metric("fixed.collected", got.len() as u64);
    report.metric("fixed.stop_latency_ms", units::ms(latency));
    report.check(
        "fixed-results-collected-task-once",
        "fixed: results collected, each task once",
        format!("{} of {}", args.tasks, args.tasks),
        format!(
            "{} of {}{}",
            got.len(),
            args.tasks,
            if each_once { "" } else { ", not each once" }
        ),
        each_once,
    );
    report.check(
        "fixed-shutdown-last-worker-exit",
        "fixed: from shutdown to the last worker's exit, and workers ended when it returned (both by the workers' clocks)",
        format!(
            "< {} and below the tutorial's {}; {} ended",
            units::duration(SLACK / 2),
            units::duration(tutorial_latency),
            args.workers
        ),
        format!("{}; {joined} ended", units::duration(latency)),
        latency < SLACK / 2 && latency < tutorial_latency && joined == args.workers,
    );
    if got.len() < args.tasks {
        warn!("fixed: {} results missing", args.tasks - got.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tutorial_pool_misses_results_and_stops_late_and_the_fix_does_neither() {
        let lab = Lab::quiet(0.1, 1);
        let args = Args {
            workers: 3,
            tasks: 9,
            task: 0.2,
            get_timeout: 1.0,
        };
        let report = run(&args, &lab).unwrap();
        assert!(report.ok, "{:?}", report.checks);
        assert_eq!(report.metric_u64("fixed.collected"), Some(9));
    }
}
