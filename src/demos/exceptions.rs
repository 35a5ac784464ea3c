#![doc = include_str!("pages/exceptions.md")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::lock;

/// Flags of `threadlab exceptions`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Items the workers of part 3 process; some are bad on purpose (1..=100000).
    #[arg(long, default_value_t = 12, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 100_000))]
    pub items: usize,
    /// Workers in part 3 (1..=64).
    #[arg(long, default_value_t = 3, value_name = "W",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub workers: usize,
    /// Seconds each step of work takes (scaled by --pace).
    #[arg(long, default_value_t = 0.4, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub work: f64,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("exceptions");
    report.params_from(args);
    let mut table = Table::new(["thread", "ended", "with"]);
    bare_panic(args, lab, &mut report, &mut table)?;
    if !lab.interrupted() {
        hook_names_the_thread(lab, &mut report, &mut table)?;
    }
    if !lab.interrupted() {
        errors_through_a_queue(args, lab, &mut report)?;
    }
    report.tables.insert(0, table);
    report.note(
        "A task that fails in a thread pool: its panic is caught and handed back by its Future \
         (Python: re-raised by result()). See `threadlab pool --scenario failure`.",
    );
    Ok(report)
}

/// Part 1: a bare thread panics while two others work. Its `join` returns the panic; the
/// others and the process carry on.
fn bare_panic(
    args: &Args,
    lab: &Lab,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<()> {
    info!("Part 1: Crasher panics halfway; Steady-1 and Steady-2 keep working");
    let step = lab.scaled(Duration::from_secs_f64(args.work));
    let (crashed, steps) = lab.scope(|s| -> anyhow::Result<_> {
        let steady: Vec<_> = (1..=2)
            .map(|k| {
                s.spawn(format!("Steady-{k}"), move || {
                    let mut done = 0;
                    for n in 1..=4 {
                        lab::sleep(step);
                        done += 1;
                        info!("step {n} of 4");
                    }
                    done
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let crasher = s.spawn("Crasher", move || -> u32 {
            lab::expecting_panics(|| {
                lab::sleep(step * 2);
                let divisor: u32 = std::hint::black_box(0);
                info!("dividing 84 by {divisor}…");
                84 / divisor
            })
        })?;
        // `join` on the panicked thread: Err with the payload (its message), never a crash
        // here.
        let crashed = crasher.join().map_err(|e| match e.downcast::<lab::Panicked>() {
            Ok(p) => p.message,
            Err(e) => e.to_string(),
        });
        let steps: Vec<u32> = steady
            .into_iter()
            .map(lab::Handle::join)
            .collect::<anyhow::Result<_>>()?;
        Ok((crashed, steps))
    })?;
    match &crashed {
        Ok(v) => warn!("Crasher returned {v}"),
        Err(msg) => {
            info!("join(Crasher) → Err(panic: {msg:?}); the process carries on");
            info!("(Python's t.join() returns None here: the exception is printed by");
            info!("threading.excepthook, lost to the caller unless the thread catches it)");
        }
    }
    table.row([
        "Crasher".to_string(),
        if crashed.is_err() {
            "panicked"
        } else {
            "finished"
        }
        .to_string(),
        match &crashed {
            Err(m) => format!("panic: {}", units::shortened(m, 40)),
            Ok(v) => format!("returned {v}"),
        },
    ]);
    for (k, n) in steps.iter().enumerate() {
        table.row([
            format!("Steady-{}", k + 1),
            "finished".into(),
            format!("{n} of 4 steps"),
        ]);
    }
    report.check(
        "join-thread-panicked",
        "join() on the thread that panicked",
        "Err, carrying the panic's message (attempt to divide by zero)",
        match &crashed {
            Err(m) => format!("Err: {m}"),
            Ok(v) => format!("Ok({v})"),
        },
        crashed
            .as_ref()
            .is_err_and(|m| m.contains("divide by zero")),
    );
    report.check(
        "other-threads-steps-counted",
        "the other threads' steps, counted by each",
        "4 and 4 (one thread's panic does not stop the others)",
        format!("{} and {}", steps[0], steps[1]),
        steps == [4, 4],
    );
    Ok(())
}

/// Panics the demo's own hook saw: (thread name, message).
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Part 2: a panic hook that names the thread (Python's `threading.excepthook`), installed
/// in front of threadlab's own and removed after.
fn hook_names_the_thread(lab: &Lab, report: &mut Report, table: &mut Table) -> anyhow::Result<()> {
    info!(
        "Part 2: a panic hook that logs the failing thread's name (Python: threading.excepthook)"
    );
    let seen: Seen = Arc::default();
    let theirs = Arc::clone(&seen);
    let previous = Arc::new(std::panic::take_hook());
    let chained = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        let thread = lab::thread_name();
        let msg = lab::panic_message(info.payload());
        lock(&theirs).push((thread.clone(), msg.clone()));
        warn!("excepthook: thread {thread} failed: {msg}");
        chained(info);
    }));
    let outcome = lab.scope(|s| -> anyhow::Result<_> {
        let faulty = s.spawn("Faulty", || {
            lab::expecting_panics(|| {
                let config: Option<&str> = std::hint::black_box(None);
                config.expect("the config file was missing").len()
            })
        })?;
        Ok(faulty.join().is_err())
    });
    // Put threadlab's own hook back, whatever happened.
    let _ = std::panic::take_hook();
    match Arc::try_unwrap(previous) {
        Ok(hook) => std::panic::set_hook(hook),
        Err(_) => crate::install_panic_hook(),
    }
    let panicked = outcome?;
    let mine: Vec<(String, String)> = lock(&seen)
        .iter()
        .filter(|(t, _)| t == "Faulty")
        .cloned()
        .collect();
    table.row([
        "Faulty".to_string(),
        if panicked { "panicked" } else { "finished" }.to_string(),
        mine.first()
            .map(|(_, m)| format!("panic: {}", units::shortened(m, 40)))
            .unwrap_or_else(|| "—".into()),
    ]);
    report.check(
        "panics-hook-reported-faulty-name",
        "panics the hook reported for Faulty, with its name and message",
        "1: Faulty, the config file was missing",
        match mine.as_slice() {
            [(t, m)] => format!("1: {t}, {m}"),
            other => format!("{}", other.len()),
        },
        panicked && mine.len() == 1 && mine[0].1.contains("config file was missing"),
    );
    Ok(())
}

/// Part 3: workers that catch their own errors and send every outcome through a result
/// queue (the tutorials' pattern), so no failure goes unreported.
fn errors_through_a_queue(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!(
        "Part 3: {} workers process {} items; each catches its own errors and reports every outcome",
        args.workers, args.items
    );
    // The inputs, with the bad ones chosen (seeded) and known here, apart from the workers.
    let mut rng = lab.rng("items");
    let items: Vec<String> = (0..args.items)
        .map(|i| match rng.random_range(0..6) {
            0 => format!("x{i}"),
            1 => String::new(),
            _ => (i * 7).to_string(),
        })
        .collect();
    let bad: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, s)| s.parse::<u64>().is_err())
        .map(|(i, _)| i)
        .collect();
    let step = lab.scaled(Duration::from_secs_f64(args.work / 4.0));
    let (work_tx, work_rx) = crossbeam_channel::unbounded::<(usize, &str)>();
    let (result_tx, result_rx) = crossbeam_channel::unbounded::<(usize, Result<u64, String>)>();
    for (i, s) in items.iter().enumerate() {
        let _ = work_tx.send((i, s.as_str()));
    }
    drop(work_tx);
    lab.scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (1..=args.workers)
            .map(|w| {
                let (rx, tx) = (work_rx.clone(), result_tx.clone());
                s.spawn(format!("Worker-{w}"), move || {
                    for (i, text) in rx.iter() {
                        if lab.interrupted() {
                            break;
                        }
                        lab::sleep(step);
                        // Catch everything this item can throw, a panic included.
                        let outcome =
                            lab::expecting_panics(|| std::panic::catch_unwind(|| process(text)))
                                .unwrap_or_else(|p| {
                                    Err(format!("panic: {}", lab::panic_message(p.as_ref())))
                                });
                        match &outcome {
                            Ok(v) => info!("item {i}: {text:?} → {v}"),
                            Err(e) => warn!("item {i}: {text:?} failed: {e}"),
                        }
                        let _ = tx.send((i, outcome));
                    }
                })
            })
            .collect::<anyhow::Result<_>>()?;
        for w in workers {
            // A worker that died is reported; its unreported items show in the checks.
            if let Err(e) = w.join() {
                warn!("{e:#}");
            }
        }
        Ok(())
    })?;
    drop(result_tx);
    let mut results: Vec<(usize, Result<u64, String>)> = result_rx.iter().collect();
    results.sort_by_key(|(i, _)| *i);
    let reported_bad: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| *i)
        .collect();
    let ids: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
    let once = ids == (0..args.items).collect::<Vec<_>>();
    report.metric("items.reported", results.len() as u64);
    report.metric("items.failed", reported_bad.len() as u64);
    report.check(
        "outcomes-result-queue-per-item",
        "outcomes on the result queue, one per item",
        format!("{} (every item once, success or failure)", args.items),
        format!(
            "{}{}",
            results.len(),
            if once { "" } else { ", not each once" }
        ),
        once,
    );
    report.check(
        "failures-reported-against-bad-items",
        "failures reported, against the bad items chosen before the workers ran",
        format!("{} (items {bad:?})", bad.len()),
        format!("{} (items {reported_bad:?})", reported_bad.len()),
        reported_bad == bad,
    );
    Ok(())
}

/// One item's work: parse it and halve it; an empty item panics (a bug in the worker's
/// code, not bad input), and the worker's catch turns that into a reported error too.
fn process(text: &str) -> Result<u64, String> {
    assert!(!text.is_empty(), "empty item reached process()");
    text.parse::<u64>()
        .map(|n| n / 2)
        .map_err(|e| format!("not a number: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_reported_and_nothing_else_stops() {
        let lab = Lab::quiet(0.02, 3);
        let args = Args {
            items: 30,
            workers: 3,
            work: 0.2,
        };
        let mut report = Report::new("exceptions");
        let mut table = Table::new(["thread", "ended", "with"]);
        bare_panic(&args, &lab, &mut report, &mut table).unwrap();
        errors_through_a_queue(&args, &lab, &mut report).unwrap();
        assert!(report.ok, "{:?}", report.checks);
        assert_eq!(report.metric_u64("items.reported"), Some(30));
    }
}
