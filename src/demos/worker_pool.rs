#![doc = include_str!("pages/worker_pool.md")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};

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
        "joined",
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

/// The tutorials' `WorkerPool`: daemon workers loop on `get(timeout)` until a flag says
/// stop; `get_results()` drains what the result queue holds right now; `shutdown()` sets
/// the flag and returns. Returns its stop latency.
fn tutorial_pool(
    args: &Args,
    lab: &Lab,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<Duration> {
    let get_timeout = lab.scaled(Duration::from_secs_f64(args.get_timeout));
    let work = lab.scaled(Duration::from_secs_f64(args.task));
    info!(
        "the tutorials' WorkerPool: {} daemon workers looping on get(timeout={}) until a flag says stop",
        args.workers,
        lab.simulated(args.get_timeout)
    );
    let (task_tx, task_rx) = crossbeam_channel::unbounded::<usize>();
    let (result_tx, result_rx) = crossbeam_channel::unbounded::<usize>();
    let running = Arc::new(AtomicBool::new(true));
    let produced = Arc::new(AtomicUsize::new(0));
    // When each worker left its loop: noted by the worker, outside the pool.
    let (exit_tx, exit_rx) = crossbeam_channel::unbounded::<Instant>();
    let mut handles = Vec::new();
    for w in 1..=args.workers {
        let (task_rx, result_tx, running, produced, exit_tx) = (
            task_rx.clone(),
            result_tx.clone(),
            Arc::clone(&running),
            Arc::clone(&produced),
            exit_tx.clone(),
        );
        // Daemon threads: detached, never joined by the pool.
        handles.push(lab.spawn_detached(format!("Worker-{w}"), move || {
            while running.load(SeqCst) && !lab::signals::interrupted() {
                // `queue.get(timeout=1)`; the pictures show it as a wait for 'tasks'.
                let got = {
                    let _waiting = crate::lab::record::ThreadSpan::waiting_for("tasks");
                    task_rx.recv_timeout(get_timeout)
                };
                match got {
                    Ok(task) => {
                        info!("task {task}: working {}", units::duration(work));
                        lab::signals::sleep(work);
                        let _ = result_tx.send(task);
                        produced.fetch_add(1, SeqCst);
                    }
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let _ = exit_tx.send(Instant::now());
        })?);
    }
    drop((result_tx, exit_tx));
    for t in 1..=args.tasks {
        let _ = task_tx.send(t);
    }
    info!("submitted {} tasks", args.tasks);
    // The tutorial's mistake: collect as soon as every task has been handed out, reading
    // `while not result_queue.empty()`. The tasks in flight are not there yet.
    let deadline = Instant::now() + work * (args.tasks as u32 + 1) + Duration::from_secs(10);
    while !task_rx.is_empty() && Instant::now() < deadline && !lab.interrupted() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut got = Vec::new();
    while !result_rx.is_empty() {
        if let Ok(r) = result_rx.try_recv() {
            got.push(r);
        }
    }
    info!(
        "get_results(): {} of {} results (the queue looked empty before the rest arrived)",
        got.len(),
        args.tasks
    );
    // Let the rest finish (the observer waits; the tutorial code does not know to), then
    // shut down as the tutorial does: set the flag and return.
    while produced.load(SeqCst) < args.tasks && Instant::now() < deadline && !lab.interrupted() {
        std::thread::sleep(Duration::from_millis(1));
    }
    info!("shutdown(): running = False; returns at once");
    let stopped_at = Instant::now();
    running.store(false, SeqCst);
    let alive = handles.iter().filter(|h| !h.is_finished()).count();
    info!(
        "after shutdown() returned: {alive} of {} workers still alive",
        args.workers
    );
    // The observer waits (bounded) to see when each daemon worker actually stopped.
    let mut exits = Vec::new();
    for _ in 0..args.workers {
        match lab::signals::recv_timeout(&exit_rx, get_timeout + Duration::from_secs(5)) {
            Some(at) => exits.push(at),
            None => break,
        }
    }
    let latency = exits
        .iter()
        .map(|at| at.saturating_duration_since(stopped_at))
        .max()
        .unwrap_or_default();
    info!(
        "the workers stopped up to {} after shutdown(): each finished its get(timeout) first",
        units::duration(latency)
    );
    table.row([
        "tutorial: flag + get(timeout)".to_string(),
        format!("{} of {}", got.len(), args.tasks),
        format!("{alive} of {}", args.workers),
        units::duration(latency),
        "never".to_string(),
    ]);
    report.metric("tutorial.collected", got.len() as u64);
    report.metric("tutorial.alive_after_shutdown", alive as u64);
    report.metric("tutorial.stop_latency_ms", units::ms(latency));
    if args.tasks > args.workers {
        report.check(
            "tutorial: results get_results() returned when called as the last task was handed out",
            format!("< {} (the tasks still in flight are missed)", args.tasks),
            got.len(),
            got.len() < args.tasks,
        );
    }
    report.check(
        "tutorial: workers still alive when shutdown() returned",
        format!("{} (daemon workers, never joined)", args.workers),
        alive,
        alive == args.workers,
    );
    report.check(
        "tutorial: from shutdown() to the last worker's exit (timed by the workers)",
        format!(
            "up to the get timeout, {} (+{})",
            units::duration(get_timeout),
            units::duration(SLACK)
        ),
        units::duration(latency),
        exits.len() == args.workers && latency <= get_timeout + SLACK,
    );
    Ok(latency)
}

/// The fix: the task queue is closed when nothing more will come (no timeout, no flag);
/// results are read until every worker is done; every worker is joined.
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
    let (got, latency, joined) = std::thread::scope(|s| -> anyhow::Result<_> {
        let workers: Vec<_> = (1..=args.workers)
            .map(|w| {
                let (task_rx, result_tx) = (task_rx.clone(), result_tx.clone());
                lab.spawn(s, format!("Worker-{w}"), move || {
                    // the fix: the loop ends when the queue is closed and empty. No timeout.
                    let next = || {
                        let _waiting = crate::lab::record::ThreadSpan::waiting_for("tasks");
                        task_rx.recv().ok()
                    };
                    while let Some(task) = next() {
                        if lab.interrupted() {
                            break;
                        }
                        info!("task {task}: working {}", units::duration(work));
                        lab::signals::sleep(work);
                        let _ = result_tx.send(task);
                    }
                    Instant::now()
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
        let stopped_at = Instant::now();
        drop(task_tx);
        let mut exits = Vec::new();
        for w in workers {
            exits.push(lab::join(w)?);
        }
        let latency = exits
            .iter()
            .map(|at| at.saturating_duration_since(stopped_at))
            .max()
            .unwrap_or_default();
        Ok((got, latency, exits.len()))
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
        "fixed: close the queue, join".to_string(),
        format!("{} of {}", got.len(), args.tasks),
        "0".to_string(),
        units::duration(latency),
        format!("{joined} of {}", args.workers),
    ]);
    report.metric("fixed.collected", got.len() as u64);
    report.metric("fixed.stop_latency_ms", units::ms(latency));
    report.check(
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
        "fixed: from shutdown to the last worker's exit (timed by the workers), all joined",
        format!(
            "< {} and below the tutorial's {}; {} joined",
            units::duration(SLACK / 2),
            units::duration(tutorial_latency),
            args.workers
        ),
        format!("{}; {joined} joined", units::duration(latency)),
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
