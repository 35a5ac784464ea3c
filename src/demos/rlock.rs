#![doc = include_str!("pages/rlock.md")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::rlock::LockError;
use crate::sync::{Lock, RLock};

/// Flags of `threadlab rlock`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// How many times the recursion re-acquires the lock (1..=32).
    #[arg(long, default_value_t = 3, value_name = "D",
          value_parser = crate::cli::whole::<usize>(1, 32))]
    pub depth: usize,
    /// Seconds of work at each level while holding the lock (scaled by --pace).
    #[arg(long, default_value_t = 0.3, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub hold: f64,
    /// How many times each of two threads calls add_many([1, 2, 3]) (1..=10000).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = crate::cli::whole::<u64>(1, 10_000))]
    pub rounds: u64,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("rlock");
    report.params_from(args);
    recursion_with_contender(args, lab, &mut report)?;
    plain_lock_self_deadlock(args, lab, &mut report);
    add_many_calls_add(args, lab, &mut report)?;
    Ok(report)
}

/// Part 1: recursion under an RLock while another thread waits for it.
///
/// The evidence comes from the threads, not the lock: the Recursor counts the levels it
/// holds in its own counter (up after each acquire, down after each release), and the
/// Contender reads that counter the moment it gets in. If the lock let it in early (say,
/// at the owner's first release), the Recursor would still count levels held.
fn recursion_with_contender(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!(
        "Part 1: Recursor takes 'shared-lock' {} times deep; Contender wants it too",
        args.depth
    );
    let lock = RLock::new(lab.probe("shared-lock"));
    let (holding_tx, holding_rx) = crossbeam_channel::bounded::<()>(1);
    // The Recursor's own count of the levels it holds: not the lock's.
    let levels_held = AtomicUsize::new(0);
    let deepest = AtomicUsize::new(0);
    let nested: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
    let freed_at: Mutex<Option<Instant>> = Mutex::new(None);
    // Generous bound for the contender: the whole recursion plus slack. It never waits forever.
    let patience = lab.scaled(Duration::from_secs_f64(args.hold * args.depth as f64))
        + Duration::from_secs(30);

    let (release_errors, contender) = lab.scope(|s| -> anyhow::Result<_> {
        let recursor = s.spawn("Recursor", || {
            let mut errors = Vec::new();
            let ctx = Recursion {
                depth: args.depth,
                lock: &lock,
                lab,
                hold: args.hold,
                holding: &holding_tx,
                levels_held: &levels_held,
                deepest: &deepest,
                nested: &nested,
                freed_at: &freed_at,
            };
            ctx.recurse(1, &mut errors);
            errors
        })?;
        let contender = s.spawn("Contender", || {
            contend(&lock, &holding_rx, &levels_held, patience)
        })?;
        Ok((recursor.join()?, contender.join()??))
    })?;
    let nested = nested.into_inner().unwrap_or_else(|e| e.into_inner());
    let freed_at = freed_at.into_inner().unwrap_or_else(|e| e.into_inner());
    judge_recursion(args, &contender, &nested, freed_at, &release_errors, report);
    Ok(())
}

/// What the Contender saw, by its own clock and the Recursor's own count.
struct ContenderSaw {
    /// Levels the Recursor said it still held the moment the Contender got in.
    still_held: usize,
    /// How long the Contender waited for the lock.
    waited: Duration,
    /// When it got the lock.
    got_at: Instant,
    /// What a release() before holding the lock did: `None` refused, else the count left.
    stranger: Option<usize>,
    /// Its own release, refused (should not be).
    refused: Option<String>,
}

/// The Contender: a release without holding the lock (refused, as Python raises), then a
/// wait for the lock while the Recursor holds it.
fn contend(
    lock: &RLock,
    holding_rx: &crossbeam_channel::Receiver<()>,
    levels_held: &AtomicUsize,
    patience: Duration,
) -> anyhow::Result<ContenderSaw> {
    // Wait (bounded) until the recursor holds the lock, so the contention is real.
    lab::recv_timeout("holding", holding_rx, patience)
        .map_err(|_| anyhow::anyhow!("Recursor never took the lock"))?;
    // A release by a thread that does not hold the lock (Python: RuntimeError).
    let stranger = match lock.release() {
        Err(e) => {
            tracing::debug!("{e}");
            info!("release() without holding it: refused (Python raises RuntimeError)");
            None
        }
        Ok(left) => {
            warn!("release() without holding it was let through ({left} left)");
            Some(left)
        }
    };
    let (owner, count) = lock.owner().unwrap_or(("nobody".into(), 0));
    info!("Wants 'shared-lock'; held {count}× by {owner}. Waiting…");
    let asked = crate::lab::now();
    let n = lock.acquire_timeout(patience)?;
    let got_at = crate::lab::now();
    // What the Recursor itself says it still holds, read the moment we got in.
    let still_held = levels_held.load(SeqCst);
    let waited = got_at - asked;
    info!(
        "Acquired 'shared-lock' (held {n}×) after waiting {}; the Recursor counts {still_held} level(s) still held",
        units::duration(waited)
    );
    // A refused release is evidence, not a reason to stop.
    let refused = lock
        .release_with(|_| info!("Released 'shared-lock': lock is free"))
        .err()
        .map(|e| {
            warn!("{e}");
            e.to_string()
        });
    Ok(ContenderSaw {
        still_held,
        waited,
        got_at,
        stranger,
        refused,
    })
}

/// Part 1's checks, from the two threads' own clocks and counts.
fn judge_recursion(
    args: &Args,
    saw: &ContenderSaw,
    nested: &[Duration],
    freed_at: Option<Instant>,
    release_errors: &[String],
    report: &mut Report,
) {
    report.check(
        "release-contender-before-held-lock",
        "a release() by the Contender before it held the lock (it is not the owner)",
        "refused (Python: RuntimeError: cannot release un-acquired lock)",
        saw.stranger.map_or("refused".to_string(), |left| {
            format!("let through, {left} left")
        }),
        saw.stranger.is_none(),
    );
    report.metric("recursor.max_count", (nested.len() + 1) as u64);
    report.metric("contender.still_held_levels", saw.still_held as u64);
    report.metric("contender.waited_ms", units::ms(saw.waited));
    let slowest = nested.iter().max().copied().unwrap_or_default();
    report.check(
        "recursor-nested-acquires-timed-itself",
        "the Recursor's nested acquires, each timed by itself: went straight in",
        format!(
            "{} of {} within {} (the owner re-enters without waiting)",
            args.depth - 1,
            args.depth - 1,
            units::duration(STRAIGHT_IN)
        ),
        format!(
            "{} of {}, the slowest {}",
            nested.iter().filter(|d| **d < STRAIGHT_IN).count(),
            nested.len(),
            units::duration(slowest)
        ),
        nested.len() == args.depth - 1 && slowest < STRAIGHT_IN,
    );
    report.check(
        "levels-recursor-still-held-contender",
        "levels the Recursor still held (its own count) when the Contender got in",
        "0: only the owner's last release lets another thread in",
        saw.still_held,
        saw.still_held == 0,
    );
    let after = freed_at.and_then(|f| saw.got_at.checked_duration_since(f));
    report.check(
        "recursor-last-release-contender-acquire",
        "from the Recursor's last release to the Contender's acquire (their two clocks)",
        format!("after it, within {}", units::duration(STRAIGHT_IN)),
        match after {
            Some(d) => units::duration(d),
            None if freed_at.is_some() => "before it".to_string(),
            None => "the Recursor never released".to_string(),
        },
        after.is_some_and(|d| d < STRAIGHT_IN),
    );
    let mut errors = release_errors.to_vec();
    errors.extend(saw.refused.clone());
    if !errors.is_empty() {
        report.note(format!("Releases refused: {}.", errors.join("; ")));
    }
}

/// How soon a thread that may go on must be running: a wake-up's usual tens of
/// microseconds, with room for a busy machine.
const STRAIGHT_IN: Duration = Duration::from_millis(100);

/// What every level of the recursion shares.
struct Recursion<'a> {
    depth: usize,
    lock: &'a RLock,
    lab: &'a Lab,
    hold: f64,
    holding: &'a crossbeam_channel::Sender<()>,
    levels_held: &'a AtomicUsize,
    deepest: &'a AtomicUsize,
    /// How long each nested acquire (depth 2 and deeper) took, by the Recursor's clock.
    nested: &'a Mutex<Vec<Duration>>,
    /// When the outermost release returned, by the Recursor's clock.
    freed_at: &'a Mutex<Option<Instant>>,
}

impl Recursion<'_> {
    /// One level: acquire, work, go deeper, release. Release errors are collected, not
    /// swallowed.
    fn recurse(&self, level: usize, errors: &mut Vec<String>) {
        if level > self.depth {
            return;
        }
        info!("Acquiring 'shared-lock' (depth {level})…");
        let asked = crate::lab::now();
        let count = self.lock.acquire();
        if level > 1 {
            crate::sync::lock(self.nested).push(crate::lab::now().saturating_duration_since(asked));
        }
        let held = self.levels_held.fetch_add(1, SeqCst) + 1;
        self.deepest.fetch_max(held, SeqCst);
        info!("Acquired 'shared-lock' (depth {level}, held {count}×)");
        if level == 1 {
            let _ = self.holding.try_send(());
        }
        self.lab.sleep_secs(self.hold);
        self.recurse(level + 1, errors);
        if level < self.depth {
            // This level's own work after the inner call returns: the lock is still held.
            self.lab.sleep_secs(self.hold / 2.0);
        }
        // Our own count goes down before the release can let anyone in; the line is
        // written before the release takes effect, so it precedes the next owner's.
        self.levels_held.fetch_sub(1, SeqCst);
        let released = self.lock.release_with(|left| match left {
            0 => {
                // Before any waiter can wake: the moment the lock is free, by our clock.
                *crate::sync::lock(self.freed_at) = Some(crate::lab::now());
                info!("Released 'shared-lock' (depth {level}): lock is free");
            }
            left => info!("Released 'shared-lock' (depth {level}): still held {left}× by Recursor"),
        });
        if let Err(e) = released {
            warn!("{e}");
            errors.push(e.to_string());
        }
    }
}

/// Part 2: the same re-entry with a plain lock, detected by a bounded wait.
fn plain_lock_self_deadlock(args: &Args, lab: &Lab, report: &mut Report) {
    info!("Part 2: the same recursion with a plain (non-re-entrant) lock");
    let plain = Lock::new(lab.probe("plain-lock"));
    let bound = lab
        .scaled(Duration::from_millis(500))
        .max(Duration::from_millis(10));
    let mut outcome = "acquired again".to_string();
    let mut depth_reached = 0;
    let mut waited = Duration::ZERO;
    for level in 1..=args.depth.max(2) {
        info!(
            "Acquiring 'plain-lock' (depth {level}), waiting at most {}…",
            units::duration(bound)
        );
        let asked = crate::lab::now();
        let result = plain.acquire_timeout(bound);
        waited = crate::lab::now().saturating_duration_since(asked);
        match result {
            Ok(_) => {
                depth_reached = level;
                info!("Acquired 'plain-lock' (depth {level})");
            }
            Err(LockError::Timeout {
                owner,
                by_caller: true,
                lock,
                ..
            }) => {
                warn!(
                    "timed out: {owner} waited for itself. '{lock}' is a plain lock and does not \
                     know its owner, so {owner}'s own second acquire waits for {owner} to \
                     release it; Python's Lock would hang here forever (the lab's wait had a \
                     bound)"
                );
                outcome = format!(
                    "at depth {level}: timed out after {}; held by {owner}, the caller",
                    units::duration(waited)
                );
                break;
            }
            Err(e) => {
                outcome = e.to_string();
                break;
            }
        }
    }
    for _ in 0..depth_reached {
        let _ = plain.release();
    }
    info!("Released 'plain-lock'");
    report.check(
        "plain-lock-owner-second-acquire",
        format!(
            "plain lock: its owner's second acquire, bounded at {}",
            units::duration(bound)
        ),
        "at depth 2: a timeout with the lock held by the caller (a deadlock, caught)",
        &outcome,
        depth_reached == 1 && outcome.contains("timed out") && waited >= bound,
    );
}

/// A counter whose methods call each other under one re-entrant lock.
struct Counter {
    lock: RLock,
    /// Read and written only while `lock` is held.
    value: AtomicU64,
    /// The deepest nesting a thread saw itself at when `add` got the lock: 2 when it was
    /// called from inside `add_many`, which still held it (counted by the threads).
    deepest: AtomicUsize,
}

thread_local! {
    /// How many `Counter` methods this thread is inside, holding the lock: its own count.
    static INSIDE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Counter {
    fn add(&self, n: u64, narrate: bool) {
        let depth = self.lock.acquire();
        // This thread's own nesting, not the lock's count.
        let nesting = INSIDE.with(|c| c.get()) + 1;
        self.deepest.fetch_max(nesting, Relaxed);
        if narrate {
            info!("add({n}): holding 'counter-lock' (held {depth}×)");
        }
        let v = self.value.load(Relaxed);
        std::thread::yield_now(); // a gap that would lose updates without the lock
        self.value.store(v + n, Relaxed);
        let _ = self.lock.release();
    }

    fn add_many(&self, items: &[u64], narrate: bool) {
        let depth = self.lock.acquire();
        if narrate {
            info!("add_many({items:?}): holding 'counter-lock' (held {depth}×), calling add…");
        }
        INSIDE.with(|c| c.set(c.get() + 1));
        for &n in items {
            self.add(n, narrate); // re-enters the lock we already hold
        }
        INSIDE.with(|c| c.set(c.get() - 1));
        let _ = self.lock.release();
    }
}

/// Part 3: `add_many` calling `add`, from two threads at once.
fn add_many_calls_add(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!(
        "Part 3: add_many([1, 2, 3]) calls add; both take 'counter-lock'; 2 Adders × {} rounds \
         (the first told, the rest quiet)",
        args.rounds
    );
    let counter = Counter {
        lock: RLock::new(lab.probe("counter-lock")),
        value: AtomicU64::new(0),
        deepest: AtomicUsize::new(0),
    };
    let items = [1, 2, 3];
    lab.scope(|s| -> anyhow::Result<()> {
        let adders: Vec<_> = (1..=2)
            .map(|i| {
                s.spawn(format!("Adder-{i}"), || {
                    for round in 0..args.rounds {
                        counter.add_many(&items, round == 0);
                    }
                })
            })
            .collect::<anyhow::Result<_>>()?;
        adders.into_iter().try_for_each(lab::Handle::join)
    })?;
    let expected = 2 * args.rounds * items.iter().sum::<u64>();
    let value = counter.value.load(Relaxed);
    info!("Counter value {value} (expected {expected})");
    report.metric("counter.value", value);
    report.metric("counter.deepest", counter.deepest.load(Relaxed) as u64);
    let mut table = Table::new(["part", "evidence"]);
    table.row([
        "re-entry".to_string(),
        format!(
            "depth {} reached",
            report.metric_u64("recursor.max_count").unwrap_or(0)
        ),
    ]);
    table.row([
        "contention".to_string(),
        format!(
            "Contender waited {:.1} ms",
            report.metric_f64("contender.waited_ms").unwrap_or(0.0)
        ),
    ]);
    table.row([
        "add_many → add".to_string(),
        format!(
            "value {value} of {expected}, nesting depth {}",
            counter.deepest.load(Relaxed)
        ),
    ]);
    report.tables.push(table);
    report.check_eq(
        "add-many-calling-add-under-rlock",
        "add_many calling add under one RLock is exact",
        expected,
        value,
    );
    report.check_eq(
        "add-got-lock-thread-held",
        "add got the lock while its own thread held it in add_many (nesting, counted by the thread)",
        2,
        counter.deepest.load(Relaxed),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_the_rlock_demo_holds_its_checks() {
        let lab = Lab::quiet(0.02, 3);
        let args = Args {
            depth: 4,
            hold: 0.3,
            rounds: 20,
        };
        let report = run(&args, &lab).unwrap();
        assert!(report.ok, "{:?}", report.checks);
        assert_eq!(report.metric_u64("recursor.max_count"), Some(4));
        assert_eq!(report.metric_u64("counter.value"), Some(240));
        assert_eq!(report.metric_u64("contender.still_held_levels"), Some(0));
    }
}
