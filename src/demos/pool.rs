#![doc = include_str!("pages/pool.md")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{Lab, Report, Table, units};
use crate::pool::{TaskError, ThreadPool, as_completed};

/// Flags of `threadlab pool`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Scenarios to run, comma-separated (default: downloads, order, failure; sweep runs when
    /// named or when --sweep is given).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Vec<Scenario>,
    /// Workers in the pool for downloads, order and failure (1..=512).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 512))]
    pub workers: usize,
    /// Simulated downloads (1..=100000).
    #[arg(long, default_value_t = 6, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 100_000))]
    pub tasks: usize,
    /// Seconds per simulated download (scaled by --pace).
    #[arg(long, default_value_t = 0.5, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub task_time: f64,
    /// Worker counts for the sizing sweep, e.g. 1,2,4,8,16,32 (each 1..=512, like --workers).
    #[arg(long, value_name = "LIST", value_parser = parse_workers_list)]
    pub sweep: Option<::std::vec::Vec<usize>>,
}

fn parse_workers_list(s: &str) -> Result<Vec<usize>, String> {
    crate::cli::parse_counts_within(s, 512)
}

/// One part of the pool demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Concurrent versus sequential simulated downloads.
    Downloads,
    /// as_completed versus map.
    Order,
    /// An error and a panic caught in their Futures.
    Failure,
    /// Time versus worker count.
    Sweep,
}

const SWEEP_DEFAULT: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("pool");
    report.params_from(args);
    let mut scenarios = args.scenario.clone();
    if scenarios.is_empty() {
        scenarios = vec![Scenario::Downloads, Scenario::Order, Scenario::Failure];
    }
    // A sweep list asks for the sweep, whatever else was named.
    if args.sweep.is_some() && !scenarios.contains(&Scenario::Sweep) {
        scenarios.push(Scenario::Sweep);
    }
    for s in scenarios {
        match s {
            Scenario::Downloads => downloads(args, lab, &mut report)?,
            Scenario::Order => order(args, lab, &mut report)?,
            Scenario::Failure => failure(args, lab, &mut report)?,
            Scenario::Sweep => sweep(
                args.sweep.as_deref().unwrap_or(&SWEEP_DEFAULT),
                lab,
                &mut report,
            )?,
        }
    }
    Ok(report)
}

/// Counts, from inside each task, how many times it ran: the evidence that every task ran
/// exactly once comes from the tasks, not from the Futures that carry their results.
fn run_counts(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

/// Checks that every task ran exactly once (its own count), that every Future resolved, and
/// that every worker name carries the prefix.
fn check_pool_evidence(
    report: &mut Report,
    scenario: &str,
    runs: &[AtomicUsize],
    resolved: usize,
    names: &BTreeSet<String>,
    prefix: &str,
) {
    let once = runs.iter().filter(|r| r.load(SeqCst) == 1).count();
    report.check(
        format!("{scenario}.tasks-ran-exactly-once"),
        format!("{scenario}: tasks that ran exactly once (counted inside each task)"),
        format!("{0} of {0}", runs.len()),
        format!("{once} of {}", runs.len()),
        once == runs.len(),
    );
    report.check(
        format!("{scenario}.futures-resolved"),
        format!("{scenario}: Futures resolved"),
        runs.len(),
        resolved,
        resolved == runs.len(),
    );
    let bad: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with(&format!("{prefix}_")))
        .collect();
    report.check(
        format!("{scenario}.tasks-ran-on-named-workers"),
        format!("{scenario}: tasks ran on workers named {prefix}_N"),
        format!("every name {prefix}_<number> (thread_name_prefix={prefix:?})"),
        names.iter().cloned().collect::<Vec<_>>().join(", "),
        bad.is_empty() && !names.is_empty(),
    );
}

fn downloads(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let (n, w) = (args.tasks, args.workers);
    info!(
        "downloads: {n} simulated downloads of {} on {w} workers, then sequentially",
        lab.simulated(args.task_time)
    );
    let task = Duration::from_secs_f64(args.task_time);
    let pool = ThreadPool::recorded(w, "Downloader", lab.recorder().clone())?;
    let started = crate::lab::now();
    let runs = run_counts(n);
    // Downloads in progress, and the most at once, counted by the downloads themselves.
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let futures: Vec<_> = (0..n)
        .map(|i| {
            let pace = lab.pace();
            let runs = Arc::clone(&runs);
            let (now, most) = (Arc::clone(&now), Arc::clone(&most));
            pool.submit(move || {
                runs[i].fetch_add(1, SeqCst);
                most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
                info!("Downloading file-{i}…");
                crate::lab::sleep(task.mul_f64(pace));
                info!("Finished file-{i}");
                now.fetch_sub(1, SeqCst);
                crate::lab::thread_name()
            })
        })
        .collect();
    let results: Vec<_> = futures.into_iter().map(|f| f.result()).collect();
    let concurrent = crate::lab::now().saturating_duration_since(started);
    drop(pool);
    let resolved = results.iter().filter(|r| r.is_ok()).count();
    let names: BTreeSet<String> = results.into_iter().filter_map(Result::ok).collect();
    let started = crate::lab::now();
    for i in 0..n {
        info!("Downloading file-{i} (sequential)…");
        crate::lab::sleep(lab.scaled(task));
    }
    let sequential = crate::lab::now().saturating_duration_since(started);
    let speedup = sequential.as_secs_f64() / concurrent.as_secs_f64().max(1e-9);
    let ideal = w.min(n) as f64;
    let rounds_bound = n as f64 / n.div_ceil(w) as f64;
    info!(
        "Sequential: {} / Concurrent: {} / Speedup: {}",
        units::duration(sequential),
        units::duration(concurrent),
        units::speedup(speedup)
    );
    let mut t = Table::new(["downloads", "time", "speedup"])
        .titled(format!("downloads: {n} tasks on {w} workers"));
    t.row([
        "sequential".to_string(),
        units::duration(sequential),
        "1.00x".into(),
    ]);
    t.row([
        format!("{w} workers"),
        units::duration(concurrent),
        units::speedup(speedup),
    ]);
    t.row([
        "ideal min(workers, tasks)".to_string(),
        String::new(),
        units::speedup(ideal),
    ]);
    t.row([
        "bound by rounds ⌈tasks/workers⌉".to_string(),
        String::new(),
        units::speedup(rounds_bound),
    ]);
    report.tables.push(t);
    report.metric("downloads.sequential_ms", units::ms(sequential));
    report.metric("downloads.concurrent_ms", units::ms(concurrent));
    report.metric("downloads.speedup", (speedup * 100.0).round() / 100.0);
    report.metric("downloads.ideal_speedup", ideal);
    let most = most.load(SeqCst);
    report.metric("downloads.most_at_once", most as u64);
    report.check_eq(
        "downloads-most-running-once",
        "downloads: most running at once (counted by the downloads)",
        w.min(n),
        most,
    );
    if w.min(n) > 1 {
        report.check(
            "downloads-speedup-over",
            "downloads: speedup over one by one",
            format!(
                ">= {} (half the bound by rounds, {})",
                units::speedup(rounds_bound / 2.0),
                units::speedup(rounds_bound)
            ),
            units::speedup(speedup),
            speedup >= rounds_bound / 2.0,
        );
    }
    check_pool_evidence(report, "downloads", &runs, resolved, &names, "Downloader");
    Ok(())
}

/// Completion order beside input order, one row per position.
fn order_table(completed: &[usize], shown: &[String]) -> Table {
    let mut t = Table::new(["position", "as_completed (completion order)", "map (input order)"])
        .titled("order: as_completed yields each result as soon as it is ready; map waits to keep input order");
    for (pos, &i) in completed.iter().enumerate() {
        t.row([
            pos.to_string(),
            format!("task {i} ({})", shown[i]),
            format!("task {pos} ({})", shown[pos]),
        ]);
    }
    t
}

/// The order scenario: `as_completed` yields results as tasks finish, `map` in input order
/// (each measured against the finish times the tasks note themselves).
fn order(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let lengths = [0.5, 0.1, 0.4, 0.2, 0.3];
    // The tasks' lengths differ by 0.1 s × pace, but by 20 ms at least: the order is then
    // measurable even at a test's pace on a loaded machine.
    let step = lab
        .scaled(Duration::from_millis(100))
        .max(Duration::from_millis(20));
    let real = move |secs: f64| step.mul_f64(secs * 10.0);
    let shown: Vec<String> = lengths.iter().map(|&l| units::duration(real(l))).collect();
    info!(
        "order: tasks of {} through as_completed, then through map",
        shown.join(", ")
    );
    let pool = ThreadPool::recorded(
        args.workers.max(lengths.len()),
        "Worker",
        lab.recorder().clone(),
    )?;
    // Each task notes when it finished, from inside the task: an observer independent of
    // as_completed and map, which the checks compare them against.
    let finished: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new(lengths.iter().map(|_| std::sync::OnceLock::new()).collect());
    let task = move |i: usize, secs: f64, finished: &[std::sync::OnceLock<Instant>]| {
        crate::lab::sleep(real(secs));
        let _ = finished[i].set(crate::lab::now());
        secs
    };
    let futures: Vec<_> = lengths
        .iter()
        .enumerate()
        .map(|(i, &secs)| {
            let finished = Arc::clone(&finished);
            pool.submit(move || task(i, secs, &finished))
        })
        .collect();
    let mut completed = Vec::new();
    for (i, r) in as_completed(futures) {
        r?;
        info!("as_completed: task {i} ({}) done", shown[i]);
        completed.push(i);
    }
    let by_finish = finish_order(&finished);
    report.check(
        "order-as-completed-yielded-tasks-order",
        "order: as_completed yielded tasks in the order they finished (timed inside each task)",
        format!("{by_finish:?}"),
        format!("{completed:?}"),
        completed == by_finish,
    );
    // map: results in input order, so the first (longest) task holds back the rest.
    let mapped_finished: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new(lengths.iter().map(|_| std::sync::OnceLock::new()).collect());
    let started = crate::lab::now();
    let mut mapped = Vec::new();
    let mut first_yield = None;
    {
        let finished = Arc::clone(&mapped_finished);
        for (i, r) in pool
            .map(lengths.iter().copied().enumerate(), move |(i, secs)| {
                task(i, secs, &finished)
            })
            .enumerate()
        {
            let secs = r?;
            first_yield.get_or_insert_with(crate::lab::now);
            info!("map: result {i} ({})", units::duration(real(secs)));
            mapped.push(secs);
        }
    }
    let first_yield = first_yield.unwrap_or(started);
    let done_before_first = mapped_finished
        .iter()
        .skip(1)
        .filter(|f| f.get().is_some_and(|t| *t <= first_yield))
        .count();
    report.check(
        "order-map-held-back-shorter",
        "order: map held back the shorter tasks' results until task 0 (the longest) was done",
        format!(
            "{} of them finished before map yielded anything",
            lengths.len() - 1
        ),
        format!("{done_before_first} finished before map's first result"),
        done_before_first == lengths.len() - 1 && mapped.iter().zip(&lengths).all(|(a, b)| a == b),
    );
    report.tables.push(order_table(&completed, &shown));
    report.extra.insert(
        "order".into(),
        serde_json::json!({"as_completed": completed, "finished": by_finish, "map": mapped}),
    );
    Ok(())
}

/// Task indices sorted by the instant each finished (unfinished last).
fn finish_order(finished: &[std::sync::OnceLock<Instant>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..finished.len()).collect();
    order.sort_by_key(|&i| finished[i].get().copied());
    order.sort_by_key(|&i| finished[i].get().is_none());
    order
}

fn failure(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!("failure: 6 tasks; task 2 returns an error, task 4 panics");
    let pool = ThreadPool::recorded(args.workers, "Worker", lab.recorder().clone())?;
    let runs = run_counts(6);
    let futures: Vec<_> = (0..6u32)
        .map(|i| {
            let runs = Arc::clone(&runs);
            pool.try_submit(move || {
                runs[i as usize].fetch_add(1, SeqCst);
                match i {
                    2 => Err(format!("task {i}: disk full")),
                    4 => panic!("task {i}: index out of bounds"),
                    _ => Ok((i * 10, crate::lab::thread_name())),
                }
            })
        })
        .collect();
    let (mut ok, mut failed, mut panicked) = (0, 0, 0);
    let mut names = BTreeSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        match f.result() {
            Ok((v, name)) => {
                ok += 1;
                names.insert(name);
                info!("task {i}: result {v}");
            }
            Err(e @ TaskError::Failed(_)) => {
                failed += 1;
                warn!("task {i}: caught from its Future: {e}");
            }
            Err(e) => {
                panicked += 1;
                warn!("task {i}: caught from its Future: {e}");
            }
        }
    }
    // Proof the pool still has every worker: one task per worker, each waiting (bounded)
    // until all of them run at the same time. A dead worker would leave them short.
    let arrived = Arc::new(AtomicUsize::new(0));
    let w = args.workers;
    let rendezvous: Vec<_> = (0..w)
        .map(|_| {
            let arrived = Arc::clone(&arrived);
            pool.submit(move || {
                arrived.fetch_add(1, SeqCst);
                let deadline = crate::lab::now() + Duration::from_secs(10);
                while arrived.load(SeqCst) < w && crate::lab::now() < deadline {
                    crate::lab::pause(Duration::from_micros(200));
                }
                crate::lab::thread_name()
            })
        })
        .collect();
    let live: BTreeSet<String> = rendezvous
        .into_iter()
        .filter_map(|f| f.result().ok())
        .collect();
    info!(
        "after the failures, {w} tasks ran at the same time on {} distinct live workers",
        live.len()
    );
    report.metric("failure.ok", ok as u64);
    report.metric("failure.failed", failed as u64);
    report.metric("failure.panicked", panicked as u64);
    report.check(
        "failure-error-panic-caught-futures",
        "failure: the error and the panic were caught in their Futures",
        "1 error, 1 panic",
        format!("{failed} error, {panicked} panic"),
        (failed, panicked) == (1, 1),
    );
    report.check_eq("failure-other-task-result-arrived", "failure: every other task's result arrived", 4, ok);
    report.check_eq(
        "failure-pool-kept-all-workers",
        "failure: the pool kept all its workers (all ran at once afterwards)",
        args.workers,
        live.len(),
    );
    check_pool_evidence(
        report,
        "failure",
        &runs,
        ok + failed + panicked,
        &names,
        "Worker",
    );
    Ok(())
}

fn sweep(counts: &[usize], lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    const TASKS: usize = 100;
    info!(
        "sweep: {TASKS} tasks of {} at worker counts {counts:?}",
        lab.simulated(0.1)
    );
    let task = lab.scaled(Duration::from_millis(100));
    let mut rows = Vec::new();
    for &w in counts {
        if lab.interrupted() {
            break;
        }
        let pool = ThreadPool::recorded(w, &format!("Sweep{w}"), lab.recorder().clone())?;
        let started = crate::lab::now();
        let done = pool
            .map(0..TASKS, move |_| crate::lab::sleep(task))
            .filter(Result::is_ok)
            .count();
        let took = crate::lab::now().saturating_duration_since(started);
        drop(pool);
        let speedup = (task * TASKS as u32).as_secs_f64() / took.as_secs_f64();
        info!(
            "{w} workers: {} ({})",
            units::duration(took),
            units::speedup(speedup)
        );
        report.check_eq(
            format!("sweep.{w}-workers.all-tasks-done"),
            format!("sweep: all {TASKS} tasks done with {w} workers"),
            TASKS,
            done,
        );
        rows.push((w, took, speedup));
    }
    report.sweep(
        format!("sweep: {TASKS} tasks of {}", lab.simulated(0.1)),
        &rows,
        // Rounds bound it: 32 workers on 100 tasks take 4 rounds, 25x at best, not 32x.
        Some(&|w: usize| TASKS as f64 / TASKS.div_ceil(w) as f64),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_holds_its_checks() {
        let lab = Lab::quiet(0.02, 1);
        let args = Args {
            scenario: vec![],
            workers: 3,
            tasks: 10,
            task_time: 1.0,
            sweep: Some(vec![1, 4]),
        };
        let report = run(&args, &lab).unwrap();
        assert!(report.ok, "{:#?}", report.checks);
        assert_eq!(report.metric_u64("failure.panicked"), Some(1));
        assert!(report.metrics.contains_key("sweep.4.ms"));
    }
}
