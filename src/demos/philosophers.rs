#![doc = include_str!("pages/philosophers.md")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::rlock::LockError;
use crate::sync::{Barrier, Lock, Semaphore, lock};

/// Flags of `threadlab philosophers`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Philosophers at the table, and forks between them (2..=16).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = crate::cli::whole::<usize>(2, 16))]
    pub philosophers: usize,
    /// Meals each philosopher eats (1..=100).
    #[arg(long, default_value_t = 3, value_name = "M",
          value_parser = crate::cli::whole::<u32>(1, 100))]
    pub meals: u32,
    /// Seconds a meal takes (scaled by --pace); thinking takes up to as long, seeded.
    #[arg(long, default_value_t = 0.1, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub eat: f64,
    /// Which tables to set: the naive one (every philosopher takes the left fork, then the
    /// right), resource ordering, a waiter, or all three.
    #[arg(long, value_enum, default_value_t = Table3::All)]
    pub fix: Table3,
}

/// Which tables `--fix` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table3 {
    /// Left fork, then right: a deadlock, caught and broken by the runtime.
    None,
    /// The last philosopher takes the right fork first: no cycle can form.
    Ordering,
    /// A waiter (a semaphore of N − 1 seats): at most N − 1 reach for forks at once.
    Waiter,
    /// All three, in that order.
    All,
}

/// The most attempts at one meal (each refused attempt puts the fork down and thinks first).
const MOST_ATTEMPTS: u32 = 100;

/// What one philosopher did, by its own count and clock.
#[derive(Debug, Default)]
struct Diary {
    meals: u32,
    /// From hungry to eating, the longest.
    longest_wait: Duration,
    /// Times the deadlock detector refused this philosopher's fork (it was the victim).
    refused: u32,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("philosophers");
    report.params_from(args);
    let mut table = Table::new([
        "table",
        "meals",
        "cycles",
        "victims",
        "longest wait (who)",
        "hungriest ÷ median",
        "time",
    ]);
    for (fix, key) in [
        (Table3::None, "none"),
        (Table3::Ordering, "ordering"),
        (Table3::Waiter, "waiter"),
    ] {
        if (args.fix == fix || args.fix == Table3::All) && !lab.interrupted() {
            dine(args, lab, fix, key, &mut report, &mut table)?;
        }
    }
    report.tables.push(table);
    Ok(report)
}

/// One table: N philosophers eat M meals each; then its checks.
fn dine(
    args: &Args,
    lab: &Lab,
    fix: Table3,
    key: &str,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<()> {
    let n = args.philosophers;
    // The header says what the table does, before it runs; the parts keep their numbers
    // whichever --fix chooses them.
    let label = match fix {
        Table3::None => "Part 1: no fix (none): each takes the left fork, then the right".to_string(),
        Table3::Ordering => {
            format!("Part 2: ordering: Philosopher-{n} takes the right fork first")
        }
        _ => format!("Part 3: a waiter: {} seats for {n}", n - 1),
    };
    info!("{label}; {n} philosophers, {} meals each", args.meals);
    let seen = observe_table(args, lab, fix, key)?;
    judge_table(args, fix, key, &seen, report, table);
    Ok(())
}

/// What every philosopher at one table shares: the forks, the waiter's seats, the gate and
/// the table-set barrier, and the counts the philosophers keep themselves.
struct TableShared<'a> {
    args: &'a Args,
    lab: &'a Lab,
    fix: Table3,
    key: &'a str,
    forks: Vec<Lock>,
    seats: Semaphore,
    /// Everyone is hungry at once: they start together behind this gate.
    gate: crate::sync::Event,
    /// At every table each waits here, holding its first fork, until all do (bounded), so
    /// the first meal's circle forms wherever it can: at the naive table all N hold a first
    /// fork and the circle closes; at a fixed table one cannot get a first fork (the fix at
    /// work), the wait runs out and the others go on. Only the fix prevents the circle.
    table_set: Barrier,
    eat: Duration,
    patience: Duration,
    /// (philosopher, start, end) of every meal, as each philosopher timed it.
    meals: Mutex<Vec<(usize, Instant, Instant)>>,
    /// Seated philosophers (waiter table), and first forks held: now and the most at once.
    seated: AtomicUsize,
    most_seated: AtomicUsize,
    holding_first: AtomicUsize,
    most_first: AtomicUsize,
    /// Python's behaviour, and the table-set wait running out, are said once a table.
    python_said: AtomicBool,
    set_said: AtomicBool,
}

/// What one table showed, by the philosophers' own counts and clocks and the detector's
/// record.
struct TableSeen {
    diaries: Vec<Diary>,
    /// Cycles the detector found at this table.
    found: Vec<crate::lab::waitgraph::Cycle>,
    meals: Vec<(usize, Instant, Instant)>,
    most_first: usize,
    most_seated: usize,
    took: Duration,
}

fn observe_table(args: &Args, lab: &Lab, fix: Table3, key: &str) -> anyhow::Result<TableSeen> {
    let n = args.philosophers;
    let eat = lab.scaled(Duration::from_secs_f64(args.eat));
    // Long enough that every philosopher who can take a first fork has (a busy machine may
    // start one late); at a fixed table the wait always runs out: the fix at work.
    let set_wait = lab
        .scaled(Duration::from_secs(1))
        .max(Duration::from_millis(200));
    let t = TableShared {
        args,
        lab,
        fix,
        key,
        forks: (1..=n)
            .map(|i| Lock::new(lab.probe(&format!("fork-{i}"))))
            .collect(),
        seats: Semaphore::new(n - 1).with_probe(lab.probe("seats")),
        gate: crate::sync::Event::new(),
        table_set: Barrier::new("first-forks", n, set_wait),
        eat,
        patience: Duration::from_secs(5) + eat * n as u32,
        meals: Mutex::new(Vec::new()),
        seated: AtomicUsize::new(0),
        most_seated: AtomicUsize::new(0),
        holding_first: AtomicUsize::new(0),
        most_first: AtomicUsize::new(0),
        python_said: AtomicBool::new(false),
        set_said: AtomicBool::new(false),
    };
    let cycles_before = lab.wait_graph().cycles().len();
    let began = crate::lab::now();
    let outcomes = lab.workers("Philosopher", n, |i| philosopher(&t, i - 1), || t.gate.set());
    let outcomes: Vec<anyhow::Result<Diary>> = outcomes?;
    let took = crate::lab::now().saturating_duration_since(began);
    let mut diaries = Vec::new();
    for (i, d) in outcomes.into_iter().enumerate() {
        match d {
            Ok(d) => diaries.push(d),
            Err(e) => {
                // Its meals so far are lost with it: the meal count shows the gap.
                if lab.interrupted() {
                    info!("Philosopher-{}: {e:#}", i + 1);
                } else {
                    warn!("Philosopher-{} left the table: {e:#}", i + 1);
                }
                diaries.push(Diary::default());
            }
        }
    }
    Ok(TableSeen {
        diaries,
        found: lab
            .wait_graph()
            .cycles()
            .into_iter()
            .skip(cycles_before)
            .collect(),
        meals: t.meals.into_inner().unwrap_or_else(|e| e.into_inner()),
        most_first: t.most_first.load(SeqCst),
        most_seated: t.most_seated.load(SeqCst),
        took,
    })
}

/// Philosopher `i`: `--meals` meals, each from hungry to fed, by its own clock.
fn philosopher(t: &TableShared, i: usize) -> anyhow::Result<Diary> {
    let n = t.args.philosophers;
    let mut rng = t.lab.rng(&format!("Philosopher-{}-{}", i + 1, t.key));
    let (left, right) = (i, (i + 1) % n);
    let forks = if t.fix == Table3::Ordering && i == n - 1 {
        // the fix: the last one breaks the circle.
        (right, left)
    } else {
        (left, right)
    };
    let mut diary = Diary::default();
    t.gate.wait_timeout(Duration::from_secs(10));
    for meal in 1..=t.args.meals {
        let hungry = crate::lab::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            anyhow::ensure!(attempts <= MOST_ATTEMPTS, "never got both forks");
            anyhow::ensure!(!t.lab.interrupted(), "interrupted");
            if try_to_eat(t, i, forks, (meal, attempts), &mut diary, hungry)? {
                break;
            }
            // At least a millisecond: with `--eat 0` a zero pause is no back-off, and the
            // same circle forms again at once.
            let pause = t.eat.max(Duration::from_millis(1));
            lab::sleep(pause.mul_f64(rng.random_range(0.2..1.0)));
        }
        // Think before the next meal.
        lab::sleep(t.eat.mul_f64(rng.random_range(0.0..1.0)));
    }
    Ok(diary)
}

/// One attempt at a meal: a seat (waiter table), the first fork, the table set (first meal),
/// the second fork. Returns whether the philosopher ate; a refused second fork (the deadlock's
/// victim) puts everything down.
fn try_to_eat(
    t: &TableShared,
    i: usize,
    (first, second): (usize, usize),
    (meal, attempts): (u32, u32),
    diary: &mut Diary,
    hungry: Instant,
) -> anyhow::Result<bool> {
    let seat = t.fix == Table3::Waiter;
    if seat {
        // the fix: at most N − 1 reach for forks.
        anyhow::ensure!(
            t.seats.acquire_timeout(t.patience).is_some(),
            "the waiter never seated me"
        );
        let now = t.seated.fetch_add(1, SeqCst) + 1;
        t.most_seated.fetch_max(now, SeqCst);
    }
    let f1 = t.forks[first].guard(t.patience)?;
    let now = t.holding_first.fetch_add(1, SeqCst) + 1;
    t.most_first.fetch_max(now, SeqCst);
    // Under the lab's schedule the lab's choices set the table, not the barrier.
    let arranged = meal == 1 && attempts == 1 && !crate::lab::sched::active();
    if arranged && t.table_set.wait().is_err() && !t.set_said.swap(true, SeqCst) {
        info!(
            "the table is set: {} hold a first fork; no circle can close",
            t.holding_first.load(SeqCst)
        );
    }
    let ate = match t.forks[second].guard(t.patience) {
        Ok(f2) => {
            let start = crate::lab::now();
            diary.longest_wait = diary.longest_wait.max(start - hungry);
            info!(
                "eating meal {meal} with fork-{} and fork-{}",
                first + 1,
                second + 1
            );
            lab::sleep(t.eat);
            lock(&t.meals).push((i, start, crate::lab::now()));
            diary.meals += 1;
            drop(f2);
            true
        }
        Err(LockError::Deadlock { .. }) => {
            warn!("puts fork-{} down and thinks again", first + 1);
            if !t.python_said.swap(true, SeqCst) {
                warn!("(Python's acquire() would wait forever: the lab refused this wait)");
            }
            diary.refused += 1;
            false
        }
        Err(e) => return Err(e.into()),
    };
    t.holding_first.fetch_sub(1, SeqCst);
    drop(f1);
    if seat {
        t.seated.fetch_sub(1, SeqCst);
        let _ = t.seats.release();
    }
    Ok(ate)
}

/// One table's checks, from what the philosophers and the detector saw.
fn judge_table(
    args: &Args,
    fix: Table3,
    key: &str,
    seen: &TableSeen,
    report: &mut Report,
    table: &mut Table,
) {
    let n = args.philosophers;
    let victims: u32 = seen.diaries.iter().map(|d| d.refused).sum();
    let eaten: Vec<u32> = seen.diaries.iter().map(|d| d.meals).collect();
    let (hungriest, longest, ratio) = fairness(&seen.diaries);
    table.row([
        key.to_string(),
        format!(
            "{}–{} each",
            eaten.iter().min().unwrap_or(&0),
            eaten.iter().max().unwrap_or(&0)
        ),
        seen.found.len().to_string(),
        victims.to_string(),
        format!("{} (P-{hungriest})", units::duration(longest)),
        format!("{ratio:.1}×"),
        units::duration(seen.took),
    ]);
    report.metric(format!("{key}.cycles"), seen.found.len() as u64);
    report.metric(format!("{key}.meals"), u64::from(eaten.iter().sum::<u32>()));
    report.metric(format!("{key}.fairness"), ratio);
    judge_first_forks(n, fix, key, seen.most_first, report);
    judge_meals(args, key, &eaten, &seen.meals, report);
    judge_cycles(n, fix, key, &seen.found, victims, report);
    if fix == Table3::Waiter && args.eat == 0.0 {
        report.cannot_show(
            "the waiter's N − 1 philosophers seated at once",
            "with --eat 0 nobody stays at the table long enough for the others to sit down too",
        );
    } else if fix == Table3::Waiter {
        report.metric("waiter.most_seated", seen.most_seated as u64);
        report.check(
            "waiter-most-philosophers-seated-once",
            "waiter: most philosophers seated at once (counted by themselves)",
            format!("{} (N − 1: one chair stays empty)", n - 1),
            seen.most_seated,
            seen.most_seated == n - 1,
        );
    }
    if ratio >= 5.0 {
        report.note(format!(
            "{key}: Philosopher-{hungriest} waited {} at worst, {ratio:.1}× the median: starving.",
            units::duration(longest)
        ));
    }
}

/// (the hungriest philosopher, its longest wait, that wait ÷ the median of the longest waits).
fn fairness(diaries: &[Diary]) -> (usize, Duration, f64) {
    let mut waits: Vec<(usize, Duration)> = diaries
        .iter()
        .enumerate()
        .map(|(i, d)| (i + 1, d.longest_wait))
        .collect();
    waits.sort_by_key(|(_, w)| *w);
    let median = waits.get(waits.len() / 2).map(|w| w.1).unwrap_or_default();
    let (hungriest, longest) = waits.last().copied().unwrap_or_default();
    let ratio = if median.is_zero() {
        0.0
    } else {
        longest.as_secs_f64() / median.as_secs_f64()
    };
    (hungriest, longest, ratio)
}

/// All N hold a first fork at the naive table (the circle); N − 1 with either fix.
fn judge_first_forks(n: usize, fix: Table3, key: &str, most_first: usize, report: &mut Report) {
    report.metric(
        format!("{key}.most_holding_a_first_fork"),
        most_first as u64,
    );
    let circle = if fix == Table3::None {
        format!("{n} (all: every first fork taken, the circle complete)")
    } else {
        format!("{} (N − 1: the fix leaves one without a first fork)", n - 1)
    };
    report.check(
        format!("{key}.most-philosophers-holding-first-fork"),
        format!(
            "{key}: most philosophers holding their first fork at once, all asked to (counted by themselves)"
        ),
        circle,
        most_first,
        most_first == if fix == Table3::None { n } else { n - 1 },
    );
}

/// Every meal eaten, and no two neighbours eating at once (their own clocks).
fn judge_meals(
    args: &Args,
    key: &str,
    eaten: &[u32],
    meals: &[(usize, Instant, Instant)],
    report: &mut Report,
) {
    let n = args.philosophers;
    let mut overlaps = 0;
    for (k, a) in meals.iter().enumerate() {
        for b in &meals[k + 1..] {
            let neighbours = (a.0 + 1) % n == b.0 || (b.0 + 1) % n == a.0;
            if neighbours && a.1 < b.2 && b.1 < a.2 {
                overlaps += 1;
            }
        }
    }
    report.metric(format!("{key}.overlaps"), overlaps as u64);
    let all = u64::from(args.meals) * n as u64;
    report.check(
        format!("{key}.meals-eaten-counted-philosophers"),
        format!("{key}: meals eaten, counted by the philosophers"),
        format!("{all} ({} each)", args.meals),
        format!(
            "{} ({}–{} each)",
            eaten.iter().sum::<u32>(),
            eaten.iter().min().unwrap_or(&0),
            eaten.iter().max().unwrap_or(&0)
        ),
        eaten.len() == n && eaten.iter().all(|&m| m == args.meals),
    );
    report.check(
        format!("{key}.meals-two-neighbours-overlapped"),
        format!("{key}: meals of two neighbours that overlapped (by their own clocks)"),
        "0 (a fork is in one hand at a time)",
        overlaps,
        overlaps == 0,
    );
}

/// The naive table's cycle, against what each philosopher held and wanted; none elsewhere.
fn judge_cycles(
    n: usize,
    fix: Table3,
    key: &str,
    found: &[crate::lab::waitgraph::Cycle],
    victims: u32,
    report: &mut Report,
) {
    if fix != Table3::None {
        report.check(
            format!("{key}.cycles-detector-found"),
            format!("{key}: cycles the detector found"),
            "0 (no circle of waiting can form)",
            found.len(),
            found.is_empty(),
        );
        return;
    }
    // The first meal's cycle: everyone holds the left fork and wants the right.
    let claims: Vec<(String, String, String)> = (0..n)
        .map(|i| {
            (
                format!("Philosopher-{}", i + 1),
                format!("fork-{}", i + 1),
                format!("fork-{}", (i + 1) % n + 1),
            )
        })
        .collect();
    let whole = found.iter().any(|c| c.matches(&claims));
    report.check(
        "naive-cycle-through-philosopher-fork",
        "none: a cycle through every philosopher and fork, as each said it held its left and wanted its right",
        format!("found (all {n}); every later one broken too"),
        format!(
            "{}; cycles {}, refused {victims}",
            if whole { "found" } else { "not found" },
            found.len()
        ),
        whole && victims as usize == found.len(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_feeds_everyone_and_only_the_naive_one_deadlocks() {
        let args = Args {
            philosophers: 5,
            meals: 3,
            eat: 0.1,
            fix: Table3::All,
        };
        for report in lab::holding_over_seeds(run, &args, 0.05, 0..3) {
            assert!(report.metric_u64("none.cycles").unwrap() >= 1);
            assert_eq!(report.metric_u64("waiter.cycles"), Some(0));
        }
    }
}
