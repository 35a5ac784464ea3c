#![doc = include_str!("pages/lock.md")]

use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::Lock;
use crate::sync::rlock::LockError;

/// Flags of `threadlab lock`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Tellers: threads making transactions on one account (2..=64).
    #[arg(long, default_value_t = 4, value_name = "T",
          value_parser = crate::cli::whole::<usize>(2, 64))]
    pub tellers: usize,
    /// Transactions per teller (1..=10000).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 10_000))]
    pub transactions: usize,
    /// The account's opening balance.
    #[arg(long, default_value_t = 100, value_name = "AMOUNT",
          value_parser = crate::cli::whole::<i64>(0, 1_000_000_000))]
    pub balance: i64,
    /// Seconds between reading the balance and writing the new one (the tutorial's
    /// `time.sleep(0.1)`; scaled by --pace).
    #[arg(long, default_value_t = 0.1, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub gap: f64,
}

/// What one teller did, by its own ledger.
#[derive(Debug, Default, Clone)]
struct Ledger {
    deposited: i64,
    withdrawn: i64,
    declined: u64,
    /// Transactions given up because the lock did not come free in time.
    locked_out: u64,
    /// Writes that replaced a balance other than the one this teller had read: another
    /// teller's update, lost (seen by the writer itself: the write is a swap).
    overwritten: u64,
    /// The lowest balance this teller ever wrote.
    lowest: i64,
}

/// One bank account and the way the tellers update it.
struct Account {
    balance: AtomicI64,
    lock: Lock,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("lock");
    report.params_from(args);
    let mut table = Table::new([
        "account",
        "final",
        "tellers' ledgers say",
        "difference",
        "lowest",
        "declined",
        "updates overwritten",
    ]);
    for locked in [false, true] {
        if lab.interrupted() || !lab.runs_part(1) {
            break;
        }
        bank(args, lab, locked, &mut report, &mut table)?;
    }
    if !table.rows.is_empty() {
        report.tables.push(table);
    }
    if !lab.interrupted() && lab.runs_part(2) {
        try_and_timed(lab, &mut report)?;
    }
    if !lab.interrupted() && lab.runs_part(3) {
        guard_and_panic(lab, &mut report);
    }
    Ok(report)
}

/// Part 1, once without the lock and once with it: observe the tellers, then judge.
fn bank(
    args: &Args,
    lab: &Lab,
    locked: bool,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<()> {
    let label = if locked {
        "with a lock"
    } else {
        "without a lock"
    };
    info!(
        "{}: {} tellers × {} transactions on an account of {}",
        if locked {
            "Part 1, again with a lock"
        } else {
            "Part 1: without a lock"
        },
        args.tellers,
        args.transactions,
        args.balance
    );
    info!(
        "each: read the balance, wait {}, write it",
        lab.simulated(args.gap)
    );
    if !locked && crate::lab::sched::active() {
        info!("first deposits; who reads and writes when: the lab's schedule");
    } else if !locked {
        info!("first deposits: every teller reads before any writes (forced)");
    }
    let seen = observe_bank(args, lab, locked)?;
    judge_bank(args, locked, label, &seen, report, table);
    Ok(())
}

/// What one run of the bank showed: the account's final balance, and each teller's ledger.
struct BankSeen {
    final_balance: i64,
    ledgers: Vec<Ledger>,
    /// How long a teller waited for the lock before giving a transaction up.
    patience: Duration,
}

/// What the tellers share.
struct Counter<'a> {
    args: &'a Args,
    lab: &'a Lab,
    locked: bool,
    account: &'a Account,
    start: &'a crate::sync::Event,
    all_read: &'a crate::sync::Barrier,
    patience: Duration,
}

fn observe_bank(args: &Args, lab: &Lab, locked: bool) -> anyhow::Result<BankSeen> {
    let account = Account {
        balance: AtomicI64::new(args.balance),
        lock: Lock::new(lab.probe("account")),
    };
    // Bounded: even a lock that never frees cannot hold a teller forever. Twice the time
    // all the transactions take one after another is plenty.
    let patience = lab.scaled(Duration::from_secs_f64(
        args.gap * (args.tellers * args.transactions) as f64,
    )) * 2
        + Duration::from_secs(2);
    // Every teller starts together, so their transactions overlap as the lesson needs; the
    // gate is an Event with a bounded wait, so a failed spawn cannot strand anyone.
    let start = crate::sync::Event::new();
    // Without the lock, every teller's first transaction reads before any teller writes:
    // the unlucky interleaving, made certain (as deadlock's tellers both hold before they
    // ask), so the class sees a lost update whatever the machine's timing or --gap.
    // Bounded: a teller that never comes breaks it, and the others go on.
    let all_read = crate::sync::Barrier::new("all-read", args.tellers, patience);
    let c = Counter {
        args,
        lab,
        locked,
        account: &account,
        start: &start,
        all_read: &all_read,
        patience,
    };
    let ledgers = lab.workers("Teller", args.tellers, |t| teller(&c, t), || start.set())?;
    let ledgers = ledgers.into_iter().collect::<anyhow::Result<Vec<Ledger>>>()?;
    Ok(BankSeen {
        final_balance: account.balance.load(SeqCst),
        ledgers,
        patience,
    })
}

/// Teller `t`: `--transactions` seeded deposits and withdrawals, each in its own ledger.
fn teller(c: &Counter, t: usize) -> anyhow::Result<Ledger> {
    c.start.wait_timeout(Duration::from_secs(10));
    let mut rng = c.lab.rng(&format!("Teller-{t}-{}", c.locked));
    let mut ledger = Ledger {
        lowest: i64::MAX,
        ..Ledger::default()
    };
    for k in 0..c.args.transactions {
        // The forced first transactions are deposits: a declined withdrawal writes nothing,
        // and the lost update must happen whatever --balance is.
        let deposit = rng.random_bool(0.5) || (!c.locked && k == 0);
        let amount = rng.random_range(10..=100);
        if c.locked {
            // the fix: read, decide and write while no other teller can.
            match c.account.lock.guard(c.patience) {
                Ok(_held) => transact(
                    c.account,
                    c.lab,
                    c.args.gap,
                    (deposit, amount),
                    &|| {},
                    &mut ledger,
                ),
                Err(e) => {
                    warn!("{e}: transaction given up");
                    ledger.locked_out += 1;
                }
            }
        } else {
            // Under the lab's schedule the lab, not the barrier, decides who reads first.
            let together = || {
                if k == 0 && !crate::lab::sched::active() {
                    let _ = c.all_read.wait();
                }
            };
            transact(
                c.account,
                c.lab,
                c.args.gap,
                (deposit, amount),
                &together,
                &mut ledger,
            );
        }
    }
    Ok(ledger)
}

/// Part 1's table row, metrics and checks, from the account and the tellers' ledgers.
fn judge_bank(
    args: &Args,
    locked: bool,
    label: &str,
    seen: &BankSeen,
    report: &mut Report,
    table: &mut Table,
) {
    let ledgers = &seen.ledgers;
    let final_balance = seen.final_balance;
    let deposited: i64 = ledgers.iter().map(|l| l.deposited).sum();
    let withdrawn: i64 = ledgers.iter().map(|l| l.withdrawn).sum();
    let declined: u64 = ledgers.iter().map(|l| l.declined).sum();
    let overwritten: u64 = ledgers.iter().map(|l| l.overwritten).sum();
    let lowest = ledgers
        .iter()
        .map(|l| l.lowest)
        .min()
        .unwrap_or(args.balance);
    let books = args.balance + deposited - withdrawn;
    let key = if locked { "locked" } else { "unlocked" };
    table.row([
        label.to_string(),
        final_balance.to_string(),
        books.to_string(),
        format!("{:+}", final_balance - books),
        lowest.min(final_balance).to_string(),
        declined.to_string(),
        overwritten.to_string(),
    ]);
    report.metric(format!("{key}.final"), final_balance);
    report.metric(format!("{key}.overwritten"), overwritten);
    report.metric(format!("{key}.books"), books);
    report.metric(format!("{key}.lowest"), lowest);
    report.metric(format!("{key}.declined"), declined);
    if locked {
        let locked_out: u64 = ledgers.iter().map(|l| l.locked_out).sum();
        report.check(
            "lock-transactions-given-up-because",
            "with a lock: transactions given up because the lock never came free",
            format!("0 (each waited at most {})", units::duration(seen.patience)),
            locked_out,
            locked_out == 0,
        );
        report.check(
            "lock-writes-replaced-another-teller",
            "with a lock: writes that replaced another teller's update (counted by the writers)",
            "0",
            overwritten,
            overwritten == 0,
        );
        report.check(
            "lock-final-balance-against-tellers",
            "with a lock: final balance against the tellers' own ledgers",
            format!(
                "{books} (opening {} + deposits − withdrawals)",
                args.balance
            ),
            final_balance,
            final_balance == books,
        );
        report.check(
            "lock-lowest-balance-any-teller",
            "with a lock: the lowest balance any teller wrote",
            ">= 0 (a withdrawal is declined rather than overdraw)",
            lowest,
            lowest >= 0,
        );
    } else {
        judge_unlocked(final_balance, books, overwritten, report);
    }
}

/// Without the lock: the updates lost, as the writers counted them.
fn judge_unlocked(final_balance: i64, books: i64, overwritten: u64, report: &mut Report) {
    if final_balance != books {
        let (n, way) = if final_balance < books {
            (books - final_balance, "went missing")
        } else {
            (final_balance - books, "appeared from nowhere")
        };
        info!("the account says {final_balance}, the ledgers {books}: {n} {way}");
    } else if overwritten > 0 {
        report.note(format!(
            "This time the unlocked account happened to balance: {overwritten} updates were \
             lost, but what they added and took away cancelled out."
        ));
    }
    let outcome = match overwritten {
        0 => String::from("without a lock: no update lost"),
        n => format!("without a lock: {n} update(s) lost, {:+} in the balance", final_balance - books),
    };
    report.outcome(outcome, overwritten > 0);
    // Lost updates are counted by the tellers as they write; the balance usually shows them
    // too, though losses can cancel out (a lost deposit of 50 and a lost withdrawal of 50),
    // so the count is the evidence.
    report.check(
        "without-lock-writes-replaced-another",
        "without a lock: writes that replaced another teller's update (counted by the writers)",
        "≥ 1: updates lost between a read and its write (the bug)",
        format!("{overwritten}; the account says {final_balance}, the ledgers {books}"),
        overwritten > 0,
    );
}

/// One transaction: read the balance, (`after_read`), wait the gap, then write the new
/// balance, as the tutorial's `BankAccount` does. Decisions use the balance as read.
fn transact(
    account: &Account,
    lab: &Lab,
    gap: f64,
    (deposit, amount): (bool, i64),
    after_read: &dyn Fn(),
    ledger: &mut Ledger,
) {
    // In a scheduled run the lab chooses who runs before the read and before the write.
    let balance = || account.balance.load(SeqCst);
    crate::lab::sched::point_doing(|| format!("read the balance ({})", balance()));
    let read = balance();
    after_read();
    lab.sleep_secs(gap);
    let written = if deposit {
        read + amount
    } else if read >= amount {
        read - amount
    } else {
        ledger.declined += 1;
        info!("withdraw {amount}: insufficient funds ({read}); declined");
        return;
    };
    crate::lab::sched::point_doing(|| format!("write {written} (read {read})"));
    // A swap, so the teller sees what it replaced: anything but what it read was another
    // teller's update, now lost.
    if account.balance.swap(written, SeqCst) != read {
        ledger.overwritten += 1;
    }
    if deposit {
        ledger.deposited += amount;
        info!("deposit {amount}: {read} → {written}");
    } else {
        ledger.withdrawn += amount;
        info!("withdraw {amount}: {read} → {written}");
    }
    ledger.lowest = ledger.lowest.min(written);
}

/// Part 2: `acquire(blocking=False)` and `acquire(timeout=…)` against a holder.
fn try_and_timed(lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!("Part 2: try-lock and timed acquire while a Holder has the lock");
    let seen = try_while_held(lab)?;
    judge_tries(&seen, report);
    Ok(())
}

/// What the main thread saw asking for a lock the Holder keeps, by its own clock.
struct TriesSeen {
    /// acquire(blocking=False).
    tried: Try,
    /// acquire(timeout=short), a quarter of the hold.
    short: Try,
    /// acquire(timeout=long), four holds.
    long: Try,
}

/// One acquire: its timeout, how it ended, and how long it took.
#[derive(Clone, Copy)]
struct Try {
    timeout: Duration,
    got: bool,
    timed_out: bool,
    took: Duration,
}

/// One acquire with `timeout`, narrated (released again at once if it got the lock).
fn timed_acquire(lock: &Lock, timeout: Duration) -> Try {
    let t = crate::lab::now();
    let result = lock.acquire_timeout(timeout);
    let took = crate::lab::now().saturating_duration_since(t);
    let (got, timed_out) = (result.is_ok(), matches!(result, Err(LockError::Timeout { .. })));
    if got {
        let _ = lock.release();
    }
    let answer = match (got, timed_out) {
        (true, _) => "got it",
        (_, true) if !timeout.is_zero() => "timed out",
        _ => "refused",
    };
    let call = if timeout.is_zero() {
        "try-lock".to_string()
    } else {
        format!("acquire(timeout={})", units::duration(timeout))
    };
    // What Python's call answers: a bool, never the reason.
    let python = match (timeout.is_zero(), got) {
        (true, false) => "; Python: acquire(blocking=False) → False",
        (true, true) => "; Python: acquire(blocking=False) → True",
        (false, false) => "; Python: acquire(timeout=…) → False",
        (false, true) => "; Python: acquire(timeout=…) → True",
    };
    info!("{call}: {answer} after {}{python}", units::duration(took));
    Try {
        timeout,
        got,
        timed_out,
        took,
    }
}

/// A Holder takes 'vault'; the main thread tries it, then waits a quarter of the hold, then
/// four holds.
fn try_while_held(lab: &Lab) -> anyhow::Result<TriesSeen> {
    let lock = Lock::new(lab.probe("vault"));
    let hold = lab
        .scaled(Duration::from_millis(600))
        .max(Duration::from_millis(60));
    let (held_tx, held_rx) = crossbeam_channel::bounded::<()>(1);
    lab.scope(|s| -> anyhow::Result<_> {
        let holder = s.spawn("Holder", || -> anyhow::Result<()> {
            let _g = lock.guard(Duration::from_secs(30))?;
            let _ = held_tx.send(());
            info!("holding 'vault' for {}", units::duration(hold));
            lab::sleep(hold);
            Ok(())
        })?;
        lab::recv_timeout("held", &held_rx, Duration::from_secs(30))
            .map_err(|_| anyhow::anyhow!("the Holder never took the lock"))?;
        // acquire(blocking=False) answers at once; acquire(timeout=short) gives up;
        // acquire(timeout=long): the Holder lets go first.
        let tried = timed_acquire(&lock, Duration::ZERO);
        let short = timed_acquire(&lock, hold / 4);
        let long = timed_acquire(&lock, hold * 4);
        holder.join()??;
        Ok(TriesSeen { tried, short, long })
    })
}

/// Try-lock answers at once; a short timeout gives up no sooner than asked; a long one gets
/// the lock once the Holder lets go.
fn judge_tries(seen: &TriesSeen, report: &mut Report) {
    let Try { got, took, .. } = seen.tried;
    report.check(
        "try-lock-held-answer-how",
        "try-lock while held: the answer, and how long it took",
        "refused at once (< 50 ms)",
        format!(
            "{} after {}",
            if got { "got it" } else { "refused" },
            units::duration(took)
        ),
        !got && took < Duration::from_millis(50),
    );
    let Try {
        timeout,
        timed_out,
        took,
        ..
    } = seen.short;
    report.check(
        "acquire-timeout-while-held",
        format!("acquire(timeout={}) while held", units::duration(timeout)),
        format!("timed out after >= {}", units::duration(timeout)),
        format!(
            "{} after {}",
            if timed_out { "timed out" } else { "got it" },
            units::duration(took)
        ),
        timed_out && took >= timeout,
    );
    let Try {
        timeout, got, took, ..
    } = seen.long;
    report.check(
        "acquire-timeout-holder-releases-first",
        format!(
            "acquire(timeout={}): the Holder releases first",
            units::duration(timeout)
        ),
        format!("acquired before {}", units::duration(timeout)),
        format!(
            "{} after {}",
            if got { "acquired" } else { "timed out" },
            units::duration(took)
        ),
        got && took < timeout,
    );
}

/// Part 3: a panic inside the critical section, with a guard (threadlab's `Lock` and std's
/// `Mutex`), and what std's poisoning says about it.
fn guard_and_panic(lab: &Lab, report: &mut Report) {
    info!("Part 3: a teller panics while holding the lock");
    let lock = Lock::new(lab.probe("ledger"));
    let std_mutex = std::sync::Mutex::new(0u64);
    let panicked = lab.scope(|s| {
        s.spawn("Clumsy", || {
            lab::expecting_panics(|| {
                let _guard = lock.guard(Duration::from_secs(5));
                let mut n = std_mutex.lock().unwrap_or_else(|e| e.into_inner());
                *n += 1;
                panic!("the teller fell over mid-transaction");
            })
        })
        .is_ok_and(|h| h.join().is_err())
    });
    // Another thread now: can it get both locks?
    let (ours, poisoned, value) = lab.scope(|s| {
        let next = s.spawn("Next", || {
            let ours = lock.acquire_timeout(Duration::from_millis(500)).is_ok();
            if ours {
                let _ = lock.release();
            }
            let (poisoned, value) = match std_mutex.lock() {
                Ok(g) => (false, *g),
                Err(poison) => (true, *poison.into_inner()),
            };
            (ours, poisoned, value)
        });
        next.ok()
            .and_then(|h| h.join().ok())
            .unwrap_or((false, false, 0))
    });
    if ours {
        info!(
            "after the panic another thread got 'ledger' at once: the guard released it as the panic unwound"
        );
    } else {
        warn!("after the panic 'ledger' was still held");
    }
    info!(
        "std::sync::Mutex after the panic: {} (value {value})",
        if poisoned {
            "poisoned: lock() returns Err, and into_inner() still gives the data"
        } else {
            "not poisoned"
        }
    );
    report.check(
        "holder-panicked-guard-another-thread",
        "a holder that panicked with a guard: another thread acquires the lock afterwards",
        "acquired within 500 ms (the guard's Drop released it)",
        if ours { "acquired" } else { "still held" },
        panicked && ours,
    );
    report.check(
        "std-sync-mutex-whose-holder",
        "std::sync::Mutex whose holder panicked",
        "poisoned (lock() → Err(PoisonError); the data is still there)",
        if poisoned {
            format!("poisoned, value {value}")
        } else {
            "not poisoned".to_string()
        },
        poisoned && value == 1,
    );
    report.note(
        "Python releases a lock in `finally:` or `with lock:`; Rust's guard does it in Drop, on \
         every way out of the scope, a panic included. std's Mutex also marks itself poisoned so \
         the next user knows the data may be half-updated; threadlab's Lock does not poison.",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locked_account_matches_the_ledgers_and_every_part_holds() {
        let args = Args {
            tellers: 4,
            transactions: 5,
            balance: 100,
            gap: 0.1,
        };
        for report in lab::holding_over_seeds(run, &args, 0.02, 0..3) {
            assert_eq!(
                report.metrics["locked.final"],
                report.metrics["locked.books"]
            );
        }
    }
}
