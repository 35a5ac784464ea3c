#![doc = include_str!("pages/rate_limit.md")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::{RateLimiter, Semaphore, lock};

/// Flags of `threadlab rate-limit`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// The limit the tutorial's RateLimitedAPI asks for, in calls per second (1..=1000).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = crate::cli::whole::<u32>(1, 1000))]
    pub per_second: u32,
    /// Seconds one API call takes (scaled by --pace).
    #[arg(long, default_value_t = 0.5, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub call: f64,
    /// Calls made, by six clients (1..=10000).
    #[arg(long, default_value_t = 9, value_name = "K",
          value_parser = crate::cli::whole::<usize>(1, 10_000))]
    pub calls: usize,
    /// Connections in the pool of part 3 (1..=64).
    #[arg(long, default_value_t = 3, value_name = "P",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub pool: usize,
}

/// Clients making the calls.
const CLIENTS: usize = 6;

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("rate-limit");
    report.params_from(args);
    let second = lab.scaled(Duration::from_secs(1));
    let mut table = Table::new([
        "limiter",
        "calls",
        "most in flight",
        "busiest second",
        "calls per second",
    ]);
    if lab.pace() != 1.0 {
        // Every "second" in this table is a paced one.
        table = table.titled(format!("a second here is {}", lab.simulated(1.0)));
    }
    let semaphore = Semaphore::new(args.per_second as usize).with_probe(lab.probe("api-slots"));
    let sem = calls(
        args,
        lab,
        "Semaphore",
        &mut table,
        || semaphore.acquire_timeout(Duration::from_secs(60)).is_some(),
        || {
            let _ = semaphore.release();
        },
    )?;
    let n = args.per_second as usize;
    report.metric("semaphore.most_in_flight", sem.most_in_flight as u64);
    report.metric("semaphore.busiest", sem.busiest as u64);
    report.check(
        "semaphore-most-calls-flight-once",
        format!("Semaphore({n}): most calls in flight at once (counted by the callers)"),
        format!("<= {n} (what a semaphore limits)"),
        sem.most_in_flight,
        sem.most_in_flight <= n,
    );
    let call = lab.scaled(Duration::from_secs_f64(args.call));
    // What it lets through: N at a time, each for `call`: N / call per second.
    let semaphore_rate = n as f64 / args.call.max(1e-9);
    if args.calls > n && args.call <= 0.9 {
        report.check(
            "semaphore-calls-started-busiest-second",
            format!("Semaphore({n}): calls started in the busiest second"),
            format!(
                "> {n} (it limits concurrency, not rate: {n} at a time, {} each: {semaphore_rate:.0} a second)",
                units::duration(call)
            ),
            sem.busiest,
            sem.busiest > n,
        );
    }
    if !lab.interrupted() {
        let limiter = RateLimiter::new(args.per_second, second).with_probe(lab.probe("rate"));
        let fixed = calls(
            args,
            lab,
            "RateLimiter",
            &mut table,
            || limiter.acquire(),
            || {},
        )?;
        report.metric("rate_limiter.busiest", fixed.busiest as u64);
        let slack = slack(second, n);
        if slack < MIN_SLACK {
            report.cannot_show(
                "the limiter's rate in its busiest second",
                format!(
                    "the window's slack is {} at this pace, less than the {} by which a busy \
                     machine may wake a thread late (a --pace of {:.2} or more gives it that)",
                    units::duration(slack),
                    units::duration(MIN_SLACK),
                    lab.pace() * MIN_SLACK.as_secs_f64() / slack.as_secs_f64()
                ),
            );
        } else {
            report.judged(
                late_doubt(fixed.latest_wake, slack),
                "ratelimiter-calls-started-busiest-second",
                format!(
                    "RateLimiter({n}/s): calls started in the busiest second (less {} of slack)",
                    units::duration(slack)
                ),
                format!("<= {n}"),
                fixed.busiest,
                fixed.busiest <= n,
            );
        }
    }
    report.tables.push(table);
    if !lab.interrupted() {
        connection_pool(args, lab, &mut report)?;
    }
    Ok(report)
}

/// What a run of calls showed, measured by the callers.
struct Calls {
    most_in_flight: usize,
    busiest: usize,
    /// The latest any caller woke from its call's sleep: how late this machine ran a
    /// thread whose time had come.
    latest_wake: Duration,
}

/// K calls by six clients, each call through `enter`/`leave`; the callers count how many
/// are in flight and note when each call started.
fn calls(
    args: &Args,
    lab: &Lab,
    label: &str,
    table: &mut Table,
    enter: impl Fn() -> bool + Sync,
    leave: impl Fn() + Sync,
) -> anyhow::Result<Calls> {
    let call = lab.scaled(Duration::from_secs_f64(args.call));
    let second = lab.scaled(Duration::from_secs(1));
    // The header says what the part does before it runs.
    let part = if label == "Semaphore" {
        "Part 1: a Semaphore as a rate limit"
    } else {
        "Part 2: a real RateLimiter"
    };
    info!(
        "{part}: {CLIENTS} clients make {} calls of {}; the limit asked for is {} per {}",
        args.calls,
        lab.simulated(args.call),
        args.per_second,
        lab.simulated(1.0)
    );
    let next = AtomicUsize::new(0);
    let in_flight = Mutex::new(0usize);
    let most = AtomicUsize::new(0);
    let latest = AtomicU64::new(0);
    let starts: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
    let began = crate::lab::now();
    lab.scope(|s| -> anyhow::Result<()> {
        let clients: Vec<_> = (1..=CLIENTS)
            .map(|c| {
                let (next, in_flight, most, latest, starts, enter, leave) =
                    (&next, &in_flight, &most, &latest, &starts, &enter, &leave);
                s.spawn(format!("Client-{c}"), move || {
                    while next.fetch_add(1, SeqCst) < args.calls && !lab.interrupted() {
                        if !enter() {
                            warn!("gave up waiting for the limiter");
                            break;
                        }
                        {
                            // Counted and told under one lock, so the lines come in the
                            // order the counts changed.
                            let mut now = lock(in_flight);
                            *now += 1;
                            most.fetch_max(*now, SeqCst);
                            lock(starts).push(crate::lab::now());
                            info!("call starts ({} in flight)", *now);
                        }
                        let asked = crate::lab::now();
                        lab::sleep(call);
                        // How late this sleeper woke: the machine's scheduling delay,
                        // measured outside the primitive under test.
                        let late = crate::lab::now().saturating_duration_since(asked + call);
                        latest.fetch_max(late.as_nanos() as u64, SeqCst);
                        *lock(in_flight) -= 1;
                        leave();
                    }
                })
            })
            .collect::<anyhow::Result<_>>()?;
        for c in clients {
            c.join()?;
        }
        Ok(())
    })?;
    let took = crate::lab::now().saturating_duration_since(began);
    let mut starts = starts.into_inner().unwrap_or_else(|e| e.into_inner());
    starts.sort();
    let per_second = args.per_second as usize;
    let busiest = busiest_window(&starts, second.saturating_sub(slack(second, per_second)));
    let rate = starts.len() as f64 / took.as_secs_f64().max(1e-9) * second.as_secs_f64();
    let most = most.load(SeqCst);
    info!(
        "{label}: {} calls in {}; most in flight {most}; busiest second {busiest}",
        starts.len(),
        units::duration(took)
    );
    table.row([
        label.to_string(),
        starts.len().to_string(),
        most.to_string(),
        busiest.to_string(),
        format!("{rate:.1}"),
    ]);
    Ok(Calls {
        most_in_flight: most,
        busiest,
        latest_wake: Duration::from_nanos(latest.load(SeqCst)),
    })
}

/// Slack taken off the one-second window: half the limiter's interval. The callers note
/// their own start a scheduling delay after their release; a correct limiter's N + 1 starts
/// span at least N intervals (a whole second), so only a delay of half an interval could
/// squeeze them into the window, while a limiter that lets calls through early squeezes
/// them by whole intervals.
fn slack(second: Duration, per_second: usize) -> Duration {
    second / (2 * per_second.max(1)) as u32
}

/// The least slack the limiter's window check is made with: less, and an ordinary delay in
/// waking a thread on a busy machine could squeeze a correct limiter's starts into the
/// window (seen on 2 CI cores at 3.3 ms and 16.7 ms).
const MIN_SLACK: Duration = Duration::from_millis(20);

/// A caller that woke later than the slack allows could have squeezed a correct limiter's
/// starts into the window: the machine, not the limiter, is then the likelier cause.
fn late_doubt(latest_wake: Duration, slack: Duration) -> Option<String> {
    (latest_wake >= slack).then(|| {
        format!(
            "this machine woke a sleeping caller {} late, more than the {} of slack: the \
             starts the callers noted were not when the limiter let them go",
            units::duration(latest_wake),
            units::duration(slack)
        )
    })
}

/// The most start times (sorted) that fall within any window of length `window`.
fn busiest_window(starts: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..starts.len() {
        while starts[hi] - starts[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Part 3: the tutorials' connection pool: a BoundedSemaphore for the count, a lock for
/// the list of idle connections.
fn connection_pool(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let size = args.pool;
    info!(
        "Part 3: a pool of {size} connections for {CLIENTS} clients; BoundedSemaphore({size}) + a lock"
    );
    let slots = Semaphore::bounded(size).with_probe(lab.probe("pool-slots"));
    let idle: Mutex<Vec<usize>> = Mutex::new((1..=size).collect());
    let out = Mutex::new(0usize);
    let most_out = AtomicUsize::new(0);
    let use_for = lab.scaled(Duration::from_secs_f64(args.call / 2.0));
    lab.scope(|s| -> anyhow::Result<()> {
        let clients: Vec<_> = (1..=CLIENTS)
            .map(|c| {
                let (slots, idle, out, most_out) = (&slots, &idle, &out, &most_out);
                s.spawn(format!("Client-{c}"), move || -> anyhow::Result<()> {
                    for _ in 0..2 {
                        anyhow::ensure!(
                            slots.acquire_timeout(Duration::from_secs(60)).is_some(),
                            "no connection came free"
                        );
                        let conn = lock(idle).pop();
                        let Some(conn) = conn else {
                            warn!("a slot, but no idle connection");
                            let _ = slots.release();
                            continue;
                        };
                        {
                            let mut now = lock(out);
                            *now += 1;
                            most_out.fetch_max(*now, SeqCst);
                            info!("using connection #{conn} ({} checked out)", *now);
                        }
                        lab::sleep(use_for);
                        *lock(out) -= 1;
                        lock(idle).push(conn);
                        let _ = slots.release();
                    }
                    Ok(())
                })
            })
            .collect::<anyhow::Result<_>>()?;
        for c in clients {
            c.join()??;
        }
        Ok(())
    })?;
    // A careless caller returns a connection twice: the bounded semaphore refuses.
    let refused = match slots.release() {
        Ok(_) => {
            warn!(
                "a second return of a connection was accepted: the pool now thinks it has {} ",
                size + 1
            );
            false
        }
        Err(e) => {
            info!("returning a connection twice: refused ({e})");
            true
        }
    };
    let most = most_out.load(SeqCst);
    let mut back = lock(&idle).clone();
    back.sort_unstable();
    report.metric("pool.most_checked_out", most as u64);
    report.check(
        "connections-checked-out-once",
        "connections checked out at once (counted by the clients)",
        format!("<= {size} (the pool's size)"),
        most,
        most <= size,
    );
    report.check(
        "connections-back-pool-end-double",
        "connections back in the pool at the end, and a double return",
        format!("all {size} (#1 to #{size}), each once; the double return refused"),
        format!(
            "{} ({}); {}",
            back.len(),
            back.iter()
                .map(|c| format!("#{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            if refused { "refused" } else { "accepted" }
        ),
        back == (1..=size).collect::<Vec<_>>() && refused,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_caller_woken_later_than_the_slack_casts_doubt() {
        let slack = Duration::from_micros(16_700);
        assert!(late_doubt(Duration::from_millis(1), slack).is_none());
        let why = late_doubt(Duration::from_millis(17), slack).unwrap();
        assert!(why.contains("17.0 ms late") && why.contains("16.7 ms of slack"), "{why}");
    }

    #[test]
    fn the_busiest_window_counts_starts_closer_than_the_window() {
        let t = crate::lab::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let starts = [
            at(0),
            at(100),
            at(200),
            at(1000),
            at(1050),
            at(1100),
            at(1150),
        ];
        assert_eq!(busiest_window(&starts, Duration::from_millis(1000)), 5);
        assert_eq!(busiest_window(&starts, Duration::from_millis(100)), 2);
    }

    #[test]
    fn a_semaphore_caps_concurrency_and_the_rate_limiter_caps_the_rate() {
        let lab = Lab::quiet(0.1, 1);
        let args = Args {
            per_second: 3,
            call: 0.5,
            calls: 12,
            pool: 3,
        };
        let report = run(&args, &lab).unwrap();
        assert!(report.ok, "{:?}", report.checks);
    }
}
