#![doc = include_str!("pages/semaphore.md")]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{Lab, Report, Table, units};
use crate::sync::{Semaphore, lock};

/// Flags of `threadlab semaphore`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Worker threads competing for permits (1..=256).
    #[arg(long, default_value_t = 7, value_name = "T",
          value_parser = crate::cli::whole::<usize>(1, 256))]
    pub threads: usize,
    /// Permits: how many may hold the resource at once (1..=256).
    #[arg(long, default_value_t = 3, value_name = "P",
          value_parser = crate::cli::whole::<usize>(1, 256))]
    pub permits: usize,
    /// Shortest hold, seconds (scaled by --pace).
    #[arg(long, default_value_t = 0.5, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub min_hold: f64,
    /// Longest hold, seconds (scaled by --pace).
    #[arg(long, default_value_t = 1.5, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub max_hold: f64,
    /// Use a bounded semaphore, and show what releasing one time too many does to each kind.
    #[arg(long)]
    pub bounded: bool,
}

/// What one worker measured.
struct Visit {
    name: String,
    waited: Duration,
    held: f64,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.min_hold <= args.max_hold,
        "--min-hold ({}) must not exceed --max-hold ({})",
        args.min_hold,
        args.max_hold
    );
    let mut report = Report::new("semaphore");
    report.params_from(args);
    let kind = if args.bounded {
        "bounded semaphore"
    } else {
        "semaphore"
    };
    info!(
        "{} workers, one {kind} with {} permits",
        args.threads, args.permits
    );

    let probe = lab.probe("permits");
    let sem = if args.bounded {
        Semaphore::bounded(args.permits)
    } else {
        Semaphore::new(args.permits)
    }
    .with_probe(probe.clone());
    let holding = AtomicUsize::new(0);
    let narration = std::sync::Mutex::new(());
    let most = AtomicUsize::new(0);
    let gate = crate::sync::Barrier::new("start", args.threads, Duration::from_secs(3600));

    let visits: Vec<Visit> = lab.workers(
        "Worker",
        args.threads,
        |i| {
                let name = format!("Worker-{i}");
                let hold = lab.rng(&name).random_range(args.min_hold..=args.max_hold);
                    let _ = gate.wait(); // everyone asks at once
                    info!("Trying to acquire a permit…");
                    let asked = crate::lab::now();
                    let permit = sem.permit();
                    let waited = crate::lab::now().saturating_duration_since(asked);
                    // One snapshot, said in the order it changed: the holders the workers
                    // count themselves, counted and printed under one lock (the semaphore's
                    // own count, read at another moment, could pair with a stale one).
                    let said = lock(&narration);
                    let now = holding.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    info!(
                        "Acquired a permit after {} ({now} of {} permits held)",
                        units::duration(waited),
                        args.permits
                    );
                    drop(said);
                    lab.sleep_secs(hold);
                    let said = lock(&narration);
                    let now = holding.fetch_sub(1, SeqCst) - 1;
                    info!(
                        "Releasing the permit after {} of work (leaving {now} held)",
                        lab.simulated(hold)
                    );
                    drop(said);
                    drop(permit);
                    Visit {
                        name,
                        waited,
                        held: hold,
                    }
        },
        || {},
    )?;

    judge_visits(
        args,
        lab,
        &visits,
        most.load(SeqCst),
        &sem,
        &probe,
        &mut report,
    );
    if args.bounded {
        over_release(args.permits, lab, &mut report)?;
    }
    Ok(report)
}

/// The visits' table and the checks: holders never over the permits (counted by the
/// workers), the count reached, every permit back (taken again until one is refused).
fn judge_visits(
    args: &Args,
    lab: &Lab,
    visits: &[Visit],
    most: usize,
    sem: &Semaphore,
    probe: &crate::lab::Probe,
    report: &mut Report,
) {
    let expected_most = args.threads.min(args.permits);
    let mut table = Table::new(["worker", "waited", "held (simulated)"]);
    for v in visits {
        table.row([
            v.name.clone(),
            units::duration(v.waited),
            lab.simulated(v.held),
        ]);
        report.metric(format!("{}.waited_ms", v.name), units::ms(v.waited));
        report.metric(format!("{}.hold_s", v.name), v.held);
    }
    report.tables.push(table);
    report.metric("max_holders", most as u64);
    report.metric("permits", args.permits as u64);
    if probe.recording() {
        let (waiting, holding) = lab.recorder().most_at_once(probe.name());
        report.metric("permits.most_waiting", waiting as u64);
        report.metric("permits.most_holding", holding as u64);
    }
    report.check(
        "simultaneous-holders-never-exceeded-permits",
        "simultaneous holders never exceeded the permits",
        format!("<= {}", args.permits),
        most,
        most <= args.permits,
    );
    report.check_eq(
        "simultaneous-holders-reached-permit-count",
        "simultaneous holders reached the permit count",
        expected_most,
        most,
    );
    // Measured by behaviour, not by reading the count: take permits until one is refused.
    let mut takeable = 0;
    while takeable <= args.permits && sem.acquire_timeout(Duration::ZERO).is_some() {
        takeable += 1;
    }
    for _ in 0..takeable {
        let _ = sem.release(); // and given back
    }
    report.check(
        "permits-could-taken-again-after",
        "permits that could be taken again after the run",
        format!("{} (every permit came back)", args.permits),
        takeable,
        takeable == args.permits,
    );
}

/// The over-release lesson: the same mistake against each kind of semaphore, then
/// `permits + 1` workers at each, counting for themselves how many hold at once.
fn over_release(permits: usize, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!("Over-release: one release too many, against each kind of semaphore");
    let bounded = Semaphore::bounded(permits).with_probe(lab.probe("bounded"));
    bounded.acquire();
    let _ = bounded.release();
    let refused = match bounded.release() {
        Ok(count) => {
            warn!("BoundedSemaphore accepted the extra release (count {count})");
            false
        }
        Err(e) => {
            warn!("BoundedSemaphore: {e}: the bug is caught where it happens");
            true
        }
    };
    let plain = Semaphore::new(permits).with_probe(lab.probe("plain"));
    plain.acquire();
    let _ = plain.release();
    let _ = plain.release();
    warn!("Semaphore: the extra release was accepted without a word");
    let bounded_most = crowd(&bounded, "Bounded", permits, lab)?;
    let plain_most = crowd(&plain, "Plain", permits, lab)?;
    report.metric("over_release.bounded_refused", refused);
    report.metric("over_release.bounded_most_holders", bounded_most as u64);
    report.metric("over_release.plain_most_holders", plain_most as u64);
    report.check(
        "boundedsemaphore-extra-release",
        "BoundedSemaphore: the extra release",
        "refused (ValueError in Python)",
        if refused { "refused" } else { "accepted" },
        refused,
    );
    report.check(
        "boundedsemaphore-after-most-workers-holding",
        format!(
            "BoundedSemaphore after it: most of {} workers holding at once",
            permits + 1
        ),
        format!("<= {permits} (the permits)"),
        bounded_most,
        bounded_most <= permits,
    );
    report.check(
        "semaphore-after-extra-release-most",
        format!(
            "Semaphore after the extra release: most of {} workers holding at once",
            permits + 1
        ),
        format!(
            "{} (one more than the {permits} permits: the bug)",
            permits + 1
        ),
        plain_most,
        plain_most == permits + 1,
    );
    Ok(())
}

/// `permits + 1` workers take a permit each from `sem`, hold it until all of them hold one
/// or a short while passes, and count the holders themselves. Returns the most at once.
fn crowd(sem: &Semaphore, label: &str, permits: usize, lab: &Lab) -> anyhow::Result<usize> {
    let holding = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let crowd = permits + 1;
    // Long enough for every worker to arrive if the semaphore lets them all in.
    let linger = lab
        .scaled(Duration::from_millis(500))
        .max(Duration::from_millis(20));
    let visit = |_| {
        let _permit = sem.permit();
        let now = holding.fetch_add(1, SeqCst) + 1;
        most.fetch_max(now, SeqCst);
        let until = crate::lab::now() + linger;
        while holding.load(SeqCst) < crowd && crate::lab::now() < until {
            crate::lab::pause(Duration::from_millis(1));
        }
        holding.fetch_sub(1, SeqCst);
    };
    lab.workers(label, crowd, visit, || {})?;
    let most = most.load(SeqCst);
    if most > permits {
        warn!("{most} workers held a permit at once, with {permits} permits");
    } else {
        info!("at most {most} of {crowd} workers held a permit at once");
    }
    Ok(most)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(threads: usize, permits: usize, bounded: bool) -> Args {
        Args {
            threads,
            permits,
            min_hold: 0.5,
            max_hold: 1.5,
            bounded,
        }
    }

    #[test]
    fn holders_never_exceed_the_permits() {
        let lab = Lab::quiet(0.02, 11);
        let mut report = run(&args(7, 3, false), &lab).unwrap();
        lab.finish(&mut report);
        assert!(report.metric_u64("max_holders").unwrap() <= 3);
        assert_eq!(
            report.metric_u64("permits.most_holding"),
            report.metric_u64("max_holders")
        );
        assert_eq!(report.threads.len(), 7);
    }

    #[test]
    fn fewer_threads_than_permits_never_wait() {
        let lab = Lab::quiet(0.02, 11);
        let report = run(&args(2, 5, false), &lab).unwrap();
        assert_eq!(report.metric_u64("max_holders"), Some(2));
        assert!(report.ok);
    }

    #[test]
    fn bounded_mode_shows_both_over_release_outcomes() {
        let lab = Lab::quiet(0.02, 11);
        let report = run(&args(4, 2, true), &lab).unwrap();
        assert_eq!(report.metrics["over_release.bounded_refused"], true);
        assert_eq!(
            report.metric_u64("over_release.plain_most_holders"),
            Some(3)
        );
        assert!(
            report
                .metric_u64("over_release.bounded_most_holders")
                .unwrap()
                <= 2
        );
    }

    #[test]
    fn inverted_hold_times_are_refused() {
        let lab = Lab::quiet(0.02, 11);
        let mut a = args(2, 1, false);
        a.min_hold = 2.0;
        assert!(
            run(&a, &lab)
                .unwrap_err()
                .to_string()
                .contains("--min-hold")
        );
    }
}
