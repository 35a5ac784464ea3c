#![doc = include_str!("pages/deadlock.md")]

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::waitgraph::{Cycle, DETECT_BOUND, Kind, Policy, SIGNAL_SLICE, Waited};
use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::queue::Got;
use crate::sync::rlock::LockError;
use crate::sync::rlock::LockGuard;
use crate::sync::{Barrier, JoinableQueue, Lock};

/// Flags of `threadlab deadlock`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Which runs to show: the deadlock and its recovery (none), the tutorials' fix (lock
    /// ordering), try-lock with timeout and back-off (timeout), or all three.
    #[arg(long, value_enum, default_value_t = Fix::All)]
    pub fix: Fix,
    /// Transfers in the ordering and timeout runs, in random directions (1..=100000).
    #[arg(long, default_value_t = 100, value_name = "K",
          value_parser = crate::cli::whole::<u64>(1, 100_000))]
    pub transfers: u64,
    /// Tellers making those transfers (2..=16).
    #[arg(long, default_value_t = 4, value_name = "T",
          value_parser = crate::cli::whole::<usize>(2, 16))]
    pub tellers: usize,
    /// Accounts they move money between (2..=26).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = crate::cli::whole::<usize>(2, 26))]
    pub accounts: usize,
    /// Seconds a teller holds the first account before asking for the second (scaled by
    /// --pace): the pause that lets the other teller take its own first account, so the
    /// cycle forms. The random transfers use a tenth.
    #[arg(long, default_value_t = 0.1, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub hold: f64,
}

/// Which runs `--fix` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fix {
    /// The deadlock, detected and broken.
    None,
    /// Lock the lower account id first: no cycle can form.
    Ordering,
    /// Try-lock with a timeout, back off, retry.
    Timeout,
    /// All three, in that order.
    All,
}

/// The most attempts a transfer makes before it gives up (each refused or timed-out
/// attempt backs off first). Never reached in practice; it keeps every run bounded.
const MOST_ATTEMPTS: u32 = 50;

/// A bank of named accounts, each behind its own lock.
struct Bank {
    accounts: Vec<(Lock, AtomicI64)>,
}

impl Bank {
    fn new(lab: &Lab, n: usize) -> Self {
        Self {
            accounts: (0..n)
                .map(|i| {
                    let name = format!("account-{}", (b'A' + i as u8) as char);
                    (Lock::new(lab.probe(&name)), AtomicI64::new(1000))
                })
                .collect(),
        }
    }
    fn name(&self, i: usize) -> &str {
        self.accounts[i].0.name()
    }
    fn total(&self) -> i64 {
        self.accounts.iter().map(|(_, b)| b.load(SeqCst)).sum()
    }
}

/// How a transfer takes its two locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Source, then destination (the tutorials' `transfer_money`).
    Naive,
    /// the fix: the lower account id first, whatever the direction.
    Ordered,
    /// Source, then try the destination for at most this long; on failure let go of both,
    /// back off and retry.
    Timeout(Duration),
}

/// What one transfer went through.
#[derive(Debug, Default)]
struct Done {
    /// Attempts refused by the deadlock detector (this teller was the victim).
    refused: u32,
    /// Attempts whose timed wait ran out.
    timed_out: u32,
    /// How long the last refusal took, by the teller's clock (the cycle is in the detector's
    /// record, checked against the tellers' claims).
    refusal: Option<Duration>,
}

/// Moves `amount` from `from` to `to`, retrying after a refusal or a timeout.
/// `between` runs while the first lock is held, before the second is asked for.
#[allow(clippy::too_many_arguments)]
fn transfer(
    bank: &Bank,
    lab: &Lab,
    from: usize,
    to: usize,
    amount: i64,
    how: How,
    hold: Duration,
    between: &dyn Fn(),
    rng: &mut impl Rng,
) -> anyhow::Result<Done> {
    let mut done = Done::default();
    // Bounded: even if nothing broke a deadlock, no wait lasts longer than this.
    let patience = Duration::from_secs(5);
    let (first, second) = match how {
        How::Ordered => (from.min(to), from.max(to)),
        _ => (from, to),
    };
    for attempt in 0..MOST_ATTEMPTS {
        if lab.interrupted() {
            anyhow::bail!("interrupted");
        }
        let g1: LockGuard<'_> = bank.accounts[first].0.guard(patience)?;
        lab::sleep(hold);
        between();
        let asked = crate::lab::now();
        let wait = match how {
            How::Timeout(t) => t,
            _ => patience,
        };
        match bank.accounts[second].0.guard(wait) {
            Ok(g2) => {
                bank.accounts[from].1.fetch_sub(amount, SeqCst);
                bank.accounts[to].1.fetch_add(amount, SeqCst);
                drop(g2);
                drop(g1);
                return Ok(done);
            }
            Err(LockError::Deadlock { .. }) => {
                let took = crate::lab::now().saturating_duration_since(asked);
                warn!(
                    "refused '{}': I am the deadlock's victim; letting go of '{}' and backing off",
                    bank.name(second),
                    bank.name(first)
                );
                warn!("(Python would wait here forever: the lab refused this wait)");
                done.refused += 1;
                done.refusal = Some(took);
            }
            Err(LockError::Timeout { .. }) if matches!(how, How::Timeout(_)) => {
                done.timed_out += 1;
            }
            Err(e) => return Err(e.into()),
        }
        drop(g1);
        // Back off a random moment, so the two do not collide the same way again, and
        // longer after each failure (exponential back-off: under heavy contention a fixed
        // back-off can lose the race again and again).
        // At least a millisecond: with `--hold 0` a zero back-off is no back-off at all.
        let backoff = f64::from(1u32 << attempt.min(4)) * rng.random_range(0.5..1.5);
        lab::sleep(hold.max(Duration::from_millis(1)).mul_f64(backoff));
    }
    anyhow::bail!(
        "transfer {} → {} gave up after {MOST_ATTEMPTS} attempts",
        bank.name(from),
        bank.name(to)
    )
}

/// The cycle the detector found, checked against what the tellers themselves said they held
/// and wanted.
fn judge_cycle(found: &[crate::lab::waitgraph::Cycle], claims: &[Claim], report: &mut Report) {
    let said_by: Vec<(String, String, String)> = claims
        .iter()
        .map(|c| (c.teller.clone(), c.holds.clone(), c.wants.clone()))
        .collect();
    let said: Vec<String> = claims
        .iter()
        .map(|c| format!("{} holds '{}' wants '{}'", c.teller, c.holds, c.wants))
        .collect();
    // Usually one cycle. On a busy machine the victim's retry can meet the same cycle again
    // (it takes its first account back before the other teller has run to take it): each
    // time it must be this cycle, found and broken again.
    let all_this_one = found.iter().all(|c| c.matches(&said_by));
    report.check(
        "cycle-detector-found-against-tellers",
        "the cycle the detector found, against what the tellers said they held and wanted",
        format!("this cycle (each time it formed): {}", said.join("; ")),
        match found {
            [] => "no cycle found".to_string(),
            [c] => c.story().join("; "),
            [c, ..] if all_this_one => format!(
                "{} times (the victim's retry met it again): {}",
                found.len(),
                c.story().join("; ")
            ),
            many => format!("{} cycles, not all this one", many.len()),
        },
        !found.is_empty() && all_this_one,
    );
}

/// "A, B", or "none".
fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("deadlock");
    report.params_from(args);
    let mut table = Table::new([
        "run",
        "transfers",
        "cycles",
        "victims",
        "timeouts",
        "money before → after",
        "time",
    ]);
    // The parts keep their numbers (as --part names them): a choice that skips some says so.
    if args.fix != Fix::All && lab.runs_every_part() {
        info!(
            "{}",
            match args.fix {
                Fix::None => "--fix none: Parts 1 and 4 (the deadlocks); Parts 2 and 3 (the fixes) \
                              are skipped",
                Fix::Ordering => "--fix ordering: Part 2 only; --fix all runs Parts 1 to 4",
                _ => "--fix timeout: Part 3 only; --fix all runs Parts 1 to 4",
            }
        );
    }
    if matches!(args.fix, Fix::None | Fix::All) && lab.runs_part(1) {
        two_tellers(args, lab, &mut report, &mut table)?;
    }
    for (part, fix, how) in [
        (2, Fix::Ordering, How::Ordered),
        (3, Fix::Timeout, How::Timeout(Duration::ZERO)),
    ] {
        if (args.fix == fix || args.fix == Fix::All) && lab.runs_part(part) && !lab.interrupted()
        {
            random_transfers(args, lab, how, &mut report, &mut table)?;
        }
    }
    if !table.rows.is_empty() {
        report.tables.push(table);
    }
    if matches!(args.fix, Fix::None | Fix::All) && lab.runs_part(4) && !lab.interrupted() {
        no_lock(args, lab, &mut report)?;
    }
    Ok(report)
}

/// What a teller says it holds and wants at the moment it asks for its second lock.
#[derive(Debug, Clone)]
struct Claim {
    teller: String,
    holds: String,
    wants: String,
}

/// Part 1: the tutorials' `transfer_money`: Teller-1 moves money A → B while Teller-2 moves
/// money B → A, each locking its source, then its destination. Both hold their source
/// before either asks for the other (a barrier makes sure), so the cycle always forms.
fn two_tellers(
    args: &Args,
    lab: &Lab,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<()> {
    info!("Part 1: Teller-1 moves 100 from account-A to account-B;");
    info!("        Teller-2 moves 50 from account-B to account-A");
    let seen = observe_two_tellers(args, lab)?;
    judge_two_tellers(&seen, lab, report, table);
    Ok(())
}

/// What Part 1 showed: each teller's claim and outcome, the bank's total before and after,
/// and how long it took.
struct TwoTellersSeen {
    results: Vec<(Claim, anyhow::Result<Done>)>,
    before: i64,
    after: i64,
    took: Duration,
}

fn observe_two_tellers(args: &Args, lab: &Lab) -> anyhow::Result<TwoTellersSeen> {
    let bank = Bank::new(lab, 2);
    let before = bank.total();
    let both_hold = Barrier::new("both-hold", 2, Duration::from_secs(5));
    let hold = lab.scaled(Duration::from_secs_f64(args.hold));
    let began = crate::lab::now();
    let results: Vec<(Claim, anyhow::Result<Done>)> =
        lab.scope(|s| -> anyhow::Result<_> {
            let tellers: Vec<_> = [(1, 0usize, 1usize, 100i64), (2, 1, 0, 50)]
                .into_iter()
                .map(|(t, from, to, amount)| {
                    let (bank, both_hold) = (&bank, &both_hold);
                    let name = format!("Teller-{t}");
                    s.spawn(name.clone(), move || {
                        let claim = Claim {
                            teller: name.clone(),
                            holds: bank.name(from).to_string(),
                            wants: bank.name(to).to_string(),
                        };
                        let mut rng = lab.rng(&name);
                        let said = std::sync::atomic::AtomicBool::new(false);
                        let between = || {
                            // Only the first attempt waits for the other (the retry must not).
                            if !said.swap(true, SeqCst) {
                                info!(
                                    "holding '{}'; now asking for '{}'",
                                    claim.holds, claim.wants
                                );
                                // Under the lab's schedule, the lab's choices instead.
                                if !crate::lab::sched::active() {
                                    let _ = both_hold.wait();
                                }
                            }
                        };
                        let done = transfer(
                            bank,
                            lab,
                            from,
                            to,
                            amount,
                            How::Naive,
                            hold,
                            &between,
                            &mut rng,
                        );
                        if done.is_ok() {
                            info!(
                                "transferred {amount} from '{}' to '{}'",
                                claim.holds, claim.wants
                            );
                        }
                        (claim, done)
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            tellers.into_iter().map(lab::Handle::join).collect()
        })?;
    Ok(TwoTellersSeen {
        results,
        before,
        after: bank.total(),
        took: crate::lab::now().saturating_duration_since(began),
    })
}

/// Part 1's table row and checks: the cycle against what the tellers said, the victims
/// against the tellers refused, how fast, and the money.
fn judge_two_tellers(seen: &TwoTellersSeen, lab: &Lab, report: &mut Report, table: &mut Table) {
    let (took, before, after) = (seen.took, seen.before, seen.after);
    let mut completed = 0;
    let mut refused = 0;
    let mut refusals = Vec::new();
    let claims: Vec<Claim> = seen.results.iter().map(|(c, _)| c.clone()).collect();
    for (claim, done) in &seen.results {
        match done {
            Ok(d) => {
                completed += 1;
                refused += d.refused;
                if let Some(took) = d.refusal {
                    refusals.push((claim.teller.clone(), took));
                }
            }
            Err(e) => warn!("{}: {e:#}", claim.teller),
        }
    }
    let found = lab.wait_graph().cycles();
    table.row([
        "none".to_string(),
        format!("{completed} of 2"),
        found.len().to_string(),
        refusals.len().to_string(),
        "0".to_string(),
        format!("{before} → {after}"),
        units::duration(took),
    ]);
    report.metric("none.cycles", found.len() as u64);
    report.metric("none.completed", completed as u64);
    judge_cycle(&found, &claims, report);
    let slowest = refusals.iter().map(|(_, t)| *t).max();
    // The detector's victims, against the tellers that say they were refused.
    let mut named: Vec<String> = found.iter().filter_map(|c| c.victim.clone()).collect();
    let mut refused_tellers: Vec<String> = refusals.iter().map(|(w, _)| w.clone()).collect();
    // As sets: a retry that met the same cycle again names the same victim twice (the
    // refusals are counted against the cycles in the next check).
    named.sort();
    named.dedup();
    refused_tellers.sort();
    refused_tellers.dedup();
    report.check(
        "victims-detector-named-against-tellers",
        "the victims the detector named, against the tellers that were refused (their own word)",
        "the same tellers",
        format!(
            "named {}; refused {}",
            list_or_none(&named),
            list_or_none(&refused_tellers)
        ),
        !named.is_empty() && named == refused_tellers,
    );
    report.check(
        "victim-wait-refused-how-long",
        "the victim's wait: refused, and how long after it asked (by the victim's clock)",
        format!(
            "one refusal per cycle ({}), within {}",
            found.len(),
            units::duration(DETECT_BOUND)
        ),
        match (&refusals[..], slowest) {
            ([(who, _)], Some(t)) if refused == 1 => {
                format!("{who} refused after {}", units::duration(t))
            }
            (_, Some(t)) => format!(
                "{refused} refusals, the slowest after {}",
                units::duration(t)
            ),
            _ => "no teller refused".to_string(),
        },
        refused as usize == found.len() && slowest.is_some_and(|t| t < DETECT_BOUND),
    );
    report.check(
        "transfers-completed-money-bank",
        "transfers completed, and the money in the bank",
        format!("2 of 2; {before} before and after"),
        format!("{completed} of 2; {after}"),
        completed == 2 && after == before,
    );
}

/// What a run of random transfers showed: the tellers' own counts, the detector's cycles,
/// the bank's total before and after.
#[derive(Clone, Copy)]
struct RandomSeen {
    made: u64,
    refused: u32,
    timed_out: u32,
    cycles: usize,
    before: i64,
    after: i64,
}

/// The random transfers' checks: no cycle with ordering; every cycle ended by a timed wait
/// without the detector; every transfer made and the money kept.
fn judge_random(args: &Args, how: How, key: &str, seen: &RandomSeen, report: &mut Report) {
    let RandomSeen {
        made,
        refused,
        timed_out,
        cycles,
        before,
        after,
    } = *seen;
    report.metric(format!("{key}.cycles"), cycles as u64);
    report.metric(format!("{key}.completed"), made);
    report.metric(format!("{key}.retries"), u64::from(refused + timed_out));
    if matches!(how, How::Ordered) {
        report.check(
            "ordering-cycles-detector-found-random",
            format!(
                "ordering: cycles the detector found in {} random transfers",
                args.transfers
            ),
            "0 (every teller locks the lower id first: no cycle can form)",
            cycles,
            cycles == 0,
        );
    } else {
        report.check(
            "timeout-waits-detector-refused",
            "timeout: waits the detector refused (it only counts cycles here)",
            format!("0; {cycles} cycles formed, each ended by a timed wait running out ({timed_out} in all)"),
            refused,
            refused == 0 && (cycles == 0 || timed_out > 0),
        );
    }
    report.check(
        format!("{key}.transfers-completed-money-bank"),
        format!("{key}: transfers completed, and the money in the bank"),
        format!(
            "{} of {}; {before} before and after",
            args.transfers, args.transfers
        ),
        format!("{made} of {}; {after}", args.transfers),
        made == args.transfers && after == before,
    );
}

/// What one teller of the random transfers did, by its own count.
struct Tally {
    made: u64,
    refused: u32,
    timed_out: u32,
}

/// A teller of the random transfers: seeded transfers until the shared count is reached.
fn random_teller(
    args: &Args,
    lab: &Lab,
    bank: &Bank,
    next: &AtomicU64,
    how: How,
    hold: Duration,
    mut rng: rand::rngs::StdRng,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        made: 0,
        refused: 0,
        timed_out: 0,
    };
    while next.fetch_add(1, SeqCst) < args.transfers {
        let from = rng.random_range(0..args.accounts);
        let to = (from + rng.random_range(1..args.accounts)) % args.accounts;
        let amount = rng.random_range(1..=50);
        let done = transfer(bank, lab, from, to, amount, how, hold, &|| {}, &mut rng)?;
        tally.made += 1;
        tally.refused += done.refused;
        tally.timed_out += done.timed_out;
    }
    Ok(tally)
}

/// Parts 2 and 3: K transfers in random directions by T tellers among N accounts, with the
/// locks taken in account order (no cycle can form) or with timed waits and back-off.
fn random_transfers(
    args: &Args,
    lab: &Lab,
    how: How,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<()> {
    let hold = lab.scaled(Duration::from_secs_f64(args.hold / 10.0));
    let how = match how {
        // Long enough for an honest transfer to finish, short next to the patience.
        How::Timeout(_) => How::Timeout(hold * 2 + Duration::from_millis(2)),
        other => other,
    };
    let (key, label) = match how {
        How::Ordered => ("ordering", "ordering: lower id first"),
        _ => ("timeout", "timeout: back off, retry"),
    };
    // The header says what the part does, before it runs: the strategy first.
    let (part, what) = if key == "ordering" {
        ("Part 2", "every teller locks the lower account id first")
    } else {
        ("Part 3", "a teller that waits too long lets go, backs off and retries")
    };
    info!(
        "{part}: {what}; {} transfers by {} tellers among {} accounts, in random directions",
        args.transfers, args.tellers, args.accounts
    );
    let graph = lab.wait_graph();
    if matches!(how, How::Timeout(_)) {
        // Timed waits end a cycle themselves: the detector only counts them.
        graph.set_policy(Policy::Observe);
    }
    let cycles_before = graph.cycles().len();
    let bank = Bank::new(lab, args.accounts);
    let before = bank.total();
    let next = AtomicU64::new(0);
    let began = crate::lab::now();
    let teller = |t| {
        let rng = lab.rng(&format!("Teller-{t}-{key}"));
        random_teller(args, lab, &bank, &next, how, hold, rng)
    };
    let outcomes: Vec<anyhow::Result<Tally>> = lab.workers("Teller", args.tellers, teller, || {})?;
    graph.set_policy(Policy::Break);
    let took = crate::lab::now().saturating_duration_since(began);
    let after = bank.total();
    let (mut made, mut refused, mut timed_out) = (0u64, 0u32, 0u32);
    for o in outcomes {
        match o {
            Ok(t) => {
                made += t.made;
                refused += t.refused;
                timed_out += t.timed_out;
            }
            Err(e) if lab.interrupted() => info!("{e:#}"),
            Err(e) => return Err(e),
        }
    }
    let cycles = graph.cycles().len() - cycles_before;
    info!(
        "{label}: {made} transfers, {cycles} cycles formed, {timed_out} timed waits ran out, in {}",
        units::duration(took)
    );
    table.row([
        label.to_string(),
        format!("{made} of {}", args.transfers),
        cycles.to_string(),
        refused.to_string(),
        timed_out.to_string(),
        format!("{before} → {after}"),
        units::duration(took),
    ]);
    let seen = RandomSeen {
        made,
        refused,
        timed_out,
        cycles,
        before,
        after,
    };
    judge_random(args, how, key, &seen, report);
    Ok(())
}

/// How the clerk's last `get` ended, by the clerk's own account.
#[derive(Debug)]
enum LastGet {
    /// The queue was closed and empty: the supplier said it was done.
    Closed,
    /// The detector refused the wait (nobody left to put or close), at this instant.
    Refused(Box<Cycle>, Instant),
    /// Nothing came and nothing refused the wait: its 5 s safety bound ran out.
    GaveUp,
}

/// Part 4: a deadlock without a lock. Clerk takes orders from a queue that Supplier fills;
/// Supplier fails halfway and leaves, without closing the queue (the bug) or with a guard
/// that closes it on every way out (the fix: Python's `try … finally: q.put(None)`). The
/// clerk's wait has no holder, so it closes no cycle; the detector finds it hopeless once
/// no other thread is left that could end it.
fn no_lock(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!("Part 4: no lock at all: Clerk takes orders from a queue that Supplier fills;");
    info!("        Supplier fails after 3 orders");
    let mut table = Table::new([
        "run",
        "put",
        "taken",
        "clerk's last get",
        "refused after Supplier left",
    ]);
    let mut runs = Vec::new();
    for fixed in [false, true] {
        let run = observe_no_lock(args, lab, fixed)?;
        table.row([
            if fixed {
                "fix: a guard closes it"
            } else {
                "bug: left without closing"
            }
            .to_string(),
            run.put.to_string(),
            run.taken.to_string(),
            match &run.last {
                LastGet::Closed => "closed: done".to_string(),
                LastGet::Refused(..) => "refused: a stall".to_string(),
                LastGet::GaveUp => "gave up after 5 s".to_string(),
            },
            run.after.map_or("-".to_string(), units::duration),
        ]);
        runs.push(run);
    }
    report.tables.push(table);
    judge_no_lock(&lab::thread_name(), &runs, report);
    Ok(())
}

/// What one run of Part 4 showed, by the supplier's and the clerk's own counts and clocks.
struct NoLockRun {
    /// With the fix (a guard closes the queue on every way out).
    fixed: bool,
    put: u32,
    taken: u32,
    last: LastGet,
    /// From the supplier's exit to the clerk's refused wait, by their two clocks.
    after: Option<Duration>,
}

fn observe_no_lock(args: &Args, lab: &Lab, fixed: bool) -> anyhow::Result<NoLockRun> {
    info!(
        "{}",
        if fixed {
            "the fix: Supplier holds a guard that closes the queue on every way out"
        } else {
            "the bug: Supplier closes the queue only when all goes well"
        }
    );
    let queue: JoinableQueue<u32> = JoinableQueue::new(4, lab.probe("orders"));
    let (put, left, taken, last) = lab.scope(|s| -> anyhow::Result<_> {
        let queue = &queue;
        let supplier = s.spawn("Supplier", move || supply(args, lab, queue, fixed))?;
        let clerk = s.spawn("Clerk", move || take_orders(queue))?;
        let (put, left) = supplier.join()??;
        let (taken, last) = clerk.join()?;
        Ok((put, left, taken, last))
    })?;
    let after = match &last {
        LastGet::Refused(_, at) => Some(at.saturating_duration_since(left)),
        _ => None,
    };
    Ok(NoLockRun {
        fixed,
        put,
        taken,
        last,
        after,
    })
}

/// The supplier: three orders, then a failure; returns the orders put and when it left.
fn supply(
    args: &Args,
    lab: &Lab,
    queue: &JoinableQueue<u32>,
    fixed: bool,
) -> anyhow::Result<(u32, Instant)> {
    // the fix: a guard that closes the queue however this function ends.
    let _closes = fixed.then(|| CloseOnDrop(queue));
    let mut put = 0;
    // A slow supplier is not a stuck one: the first order takes longer than the detector
    // looks (real time, whatever the pace), and no alarm is due.
    let first = SIGNAL_SLICE * 5;
    info!(
        "preparing order 1: {} (real time; slow is not stuck)",
        units::duration(first)
    );
    lab::sleep(first);
    for order in 1..=3 {
        if order > 1 {
            lab.sleep_secs(args.hold / 2.0);
        }
        // Said before the put: once it is in, the Clerk may take it and say so first.
        info!("put order {order}");
        queue.put(order)?;
        put += 1;
    }
    info!(
        "order 4 failed: leaving {}",
        if fixed {
            "(the guard closes the queue)"
        } else {
            "without closing the queue"
        }
    );
    Ok((put, crate::lab::now()))
}

/// The clerk: takes orders until the queue is closed, or its wait is refused (a stall).
fn take_orders(queue: &JoinableQueue<u32>) -> (u32, LastGet) {
    let mut taken = 0;
    let last = loop {
        // Bounded: if nothing refused a hopeless wait, it ends with an error.
        match queue.next_within(Duration::from_secs(5)) {
            Got::Item(order) => {
                taken += 1;
                info!("took order {order}");
            }
            Got::Closed => {
                info!("the queue is closed and empty: done");
                break LastGet::Closed;
            }
            Got::Timeout => {
                warn!("nothing for 5 s and nobody told me: giving up");
                break LastGet::GaveUp;
            }
            Got::Stalled(stall) => {
                let at = crate::lab::now();
                info!("my wait for 'orders' was refused: nobody can end it");
                info!("(Python's q.get() would wait forever: the lab refused it)");
                break LastGet::Refused(stall, at);
            }
        }
    };
    (taken, last)
}

/// Part 4's checks: the stall against what the threads did, how soon it was refused, and
/// the orders in both runs.
fn judge_no_lock(main: &str, runs: &[NoLockRun], report: &mut Report) {
    // The stall, checked against what the threads themselves did: the clerk waited on
    // 'orders', the main thread joined the clerk, the supplier had returned.
    let bug = runs.iter().find(|r| !r.fixed);
    let stall = bug.and_then(|r| match &r.last {
        LastGet::Refused(c, _) => Some(c.as_ref()),
        _ => None,
    });
    let (orders, join_clerk) = (Waited::Signal("orders".into()), Waited::Join("Clerk".into()));
    report.check(
        "no-lock-stall-detector-found",
        "no lock: the stall the detector found, against what the threads did",
        format!("Clerk waits for 'orders'; {main} waits to join Clerk; Supplier finished"),
        stall.map_or("no stall found".to_string(), |c| c.story().join("; ")),
        stall.is_some_and(|c| {
            c.kind == Kind::Stall
                && c.waits_for("Clerk") == Some(&orders)
                && c.waits_for(main) == Some(&join_clerk)
                && c.finished.last().map(String::as_str) == Some("Supplier")
        }),
    );
    let after = bug.and_then(|r| r.after);
    report.check(
        "no-lock-clerk-wait-refused",
        "no lock: the clerk's wait refused, after the supplier left (by their two clocks)",
        format!("within {}", units::duration(DETECT_BOUND)),
        after.map_or("never refused".to_string(), units::duration),
        after.is_some_and(|t| t < DETECT_BOUND),
    );
    if let Some(t) = after {
        report.metric("nolock.refused_after_ms", units::ms(t));
    }
    let fix = runs.iter().find(|r| r.fixed);
    report.check(
        "no-lock-orders-put-against",
        "no lock: orders put against taken; the fixed run's clerk hears the queue close",
        "3 put, 3 taken in both runs; fixed: closed, no stall",
        runs.iter()
            .map(|r| {
                format!(
                    "{}: {} put, {} taken, {}",
                    if r.fixed { "fixed" } else { "bug" },
                    r.put,
                    r.taken,
                    match r.last {
                        LastGet::Closed => "closed",
                        LastGet::Refused(..) => "refused",
                        LastGet::GaveUp => "gave up",
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        runs.len() == 2
            && runs.iter().all(|r| r.put == 3 && r.taken == 3)
            && fix.is_some_and(|r| matches!(r.last, LastGet::Closed)),
    );
}

/// Closes a queue when dropped: on return, on `?`, on a panic.
struct CloseOnDrop<'a>(&'a JoinableQueue<u32>);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadlock_is_found_and_broken_and_ordering_never_forms_one() {
        let args = Args {
            fix: Fix::All,
            transfers: 100,
            tellers: 4,
            accounts: 3,
            hold: 0.1,
        };
        for report in lab::holding_over_seeds(run, &args, 0.05, 0..3) {
            assert_eq!(report.metric_u64("none.cycles"), Some(1));
            assert_eq!(report.metric_u64("ordering.cycles"), Some(0));
            // Part 4: the bug's wait refused (timed by the two threads), the fix's never.
            assert!(report.metric_f64("nolock.refused_after_ms").is_some());
        }
    }
}
