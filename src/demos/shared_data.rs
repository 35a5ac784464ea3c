#![doc = include_str!("pages/shared_data.md")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tracing::info;

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::lock;

/// Flags of `threadlab shared-data`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Threads sharing the data (1..=64).
    #[arg(long, default_value_t = 4, value_name = "T",
          value_parser = crate::cli::whole::<usize>(1, 64))]
    pub threads: usize,
    /// Numbers in the read-only table each thread sums (1..=64000000, and --size ×
    /// --threads at most 64000000: every thread copies the table).
    #[arg(long, default_value_t = 2_000_000, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 64_000_000))]
    pub size: usize,
    /// Word-count updates each thread makes to the shared map (1..=64000000, and --updates
    /// × --threads at most 64000000: every thread's words are kept).
    #[arg(long, default_value_t = 1_000_000, value_name = "K",
          value_parser = crate::cli::whole::<usize>(1, 64_000_000))]
    pub updates: usize,
    /// Shards of the sharded map (1..=1024).
    #[arg(long, default_value_t = 16, value_name = "S",
          value_parser = crate::cli::whole::<usize>(1, 1024))]
    pub shards: usize,
}

/// The most numbers (or words) the demo keeps at once across threads: 64 M (512 MB of
/// table copies at the most).
const MOST_CELLS: u64 = 64_000_000;

/// Words the map counts (a fixed vocabulary, drawn from with a seeded generator).
const VOCABULARY: usize = 1000;

/// Runs the demo. Real work, not simulated: --pace has no effect here.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    // Bounded memory: the table is copied once per thread, and every thread's words are kept.
    let cells = (args.size as u64) * (args.threads as u64);
    anyhow::ensure!(
        cells <= MOST_CELLS,
        "--size {} × --threads {} is {cells} numbers copied at once; at most {MOST_CELLS}",
        args.size,
        args.threads
    );
    let words = (args.updates as u64) * (args.threads as u64);
    anyhow::ensure!(
        words <= MOST_CELLS,
        "--updates {} × --threads {} is {words} words kept at once; at most {MOST_CELLS}",
        args.updates,
        args.threads
    );
    let mut report = Report::new("shared-data");
    report.params_from(args);
    let mut table = Table::new(["sharing, in Rust", "in Python", "result", "time", "cost"]);
    read_only(args, lab, &mut report, &mut table)?;
    if !lab.interrupted() {
        counters(args, lab, &mut report, &mut table)?;
    }
    if !lab.interrupted() {
        maps(args, lab, &mut report, &mut table)?;
    }
    report.tables.push(table);
    report.note(
        "Real work here, not simulated: --pace has no effect. Times are one run's on this \
         machine; the results must match whatever the machine.",
    );
    Ok(report)
}

/// Whether to stop at step `i`: a signal is looked for every 65 536 steps, so even the
/// largest sizes stop promptly on SIGINT/SIGTERM and the work is not slowed.
fn stop_now(i: usize) -> bool {
    i % 65_536 == 0 && lab::signals::interrupted()
}

/// Sums `data` chunk by chunk with `f`, stopping early (with a partial sum) on a signal.
fn in_chunks(data: &[u64], f: impl Fn(&[u64]) -> u64) -> u64 {
    data.chunks(65_536)
        .enumerate()
        .take_while(|(i, _)| !(*i > 0 && lab::signals::interrupted()))
        .map(|(_, c)| f(c))
        .sum()
}

/// Runs `work(i)` on T named threads and returns their results and the wall time.
fn on_threads<T: Send>(
    lab: &Lab,
    role: &str,
    threads: usize,
    work: &(dyn Fn(usize) -> T + Sync),
) -> anyhow::Result<(Vec<T>, Duration)> {
    let began = Instant::now();
    let out = lab.workers(role, threads, |i| work(i - 1), || {})?;
    Ok((out, began.elapsed()))
}

/// A value alone on its cache lines (128 bytes: two lines, as the prefetcher pairs them).
#[repr(align(128))]
struct Padded<T>(T);

/// Locks `m`, counting in `taken` each time the lock was found held by another thread:
/// the writers measure the contention themselves.
fn counted_lock<'a, T>(m: &'a Mutex<T>, taken: &mut u64) -> std::sync::MutexGuard<'a, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            *taken += 1;
            lock(m)
        }
    }
}

/// What each way of sharing is in Python, for the table's second column.
fn in_python(key: &str) -> &'static str {
    match key {
        "arc" => "a tuple, no lock",
        "mutex" => "list + Lock per read",
        "copy" => "list(data) each",
        "atomic" => "none: += races",
        "mutex_counter" => "an int + a Lock",
        "per_thread" => "a local int, summed",
        "global_map" => "a dict + one Lock",
        _ => "dicts, a Lock each",
    }
}

/// `n` in millions with what was counted: "8.0 M locks".
fn millions(n: u64, what: &str) -> String {
    format!("{:.1} M {what}", n as f64 / 1e6)
}

/// One table row and its check: every way must give the one-thread answer.
#[allow(clippy::too_many_arguments)]
fn row(
    report: &mut Report,
    table: &mut Table,
    label: &str,
    key: &str,
    (result, reference): (u64, u64),
    same: bool,
    took: Duration,
    cost: String,
) {
    table.row([
        label.to_string(),
        in_python(key).to_string(),
        format!("{} {}", units::count(result), if same { "✔" } else { "✘" }),
        units::duration(took),
        cost,
    ]);
    report.metric(format!("{key}.ms"), units::ms(took));
    report.check(
        format!("{label}.result-against-thread"),
        format!("{label}: the result against one thread's"),
        units::count(reference),
        format!(
            "{}{}",
            units::count(result),
            if same || result != reference {
                ""
            } else {
                " (but not the same counts)"
            }
        ),
        same,
    );
}

/// Part 1: a read-only table summed by every thread: shared as `Arc<[u64]>` with no lock,
/// behind a `Mutex` (a lock per read), and copied into each thread.
fn read_only(args: &Args, lab: &Lab, report: &mut Report, table: &mut Table) -> anyhow::Result<()> {
    let mut rng = lab.rng("table");
    let data: Vec<u64> = (0..args.size)
        .take_while(|i| !stop_now(*i))
        .map(|_| rng.random_range(0..1000))
        .collect();
    // The reference: one thread, no sharing at all. T threads each sum it all.
    let reference = in_chunks(&data, |c| c.iter().sum::<u64>()) * args.threads as u64;
    info!(
        "Part 1: {} threads each sum a read-only table of {} numbers",
        args.threads,
        units::count(args.size as u64)
    );
    let shared: Arc<[u64]> = Arc::from(data.clone());
    let (sums, took) = on_threads(lab, "Reader", args.threads, &|_| {
        // No lock, no copy: immutable data can be read by any number of threads at once.
        let mine = Arc::clone(&shared);
        in_chunks(&mine, |c| c.iter().sum::<u64>())
    })?;
    row(
        report,
        table,
        "Arc<[u64]>, no lock",
        "arc",
        (sums.iter().sum(), reference),
        sums.iter().sum::<u64>() == reference,
        took,
        "none".into(),
    );
    let locked = Mutex::new(data.clone());
    let (sums, took) = on_threads(lab, "Reader", args.threads, &|_| {
        // A lock around each read: correct, and every read waits its turn.
        (0..args.size)
            .take_while(|i| !stop_now(*i))
            .map(|i| lock(&locked)[i])
            .sum::<u64>()
    })?;
    row(
        report,
        table,
        "Mutex<Vec<u64>>, a lock per read",
        "mutex",
        (sums.iter().sum(), reference),
        sums.iter().sum::<u64>() == reference,
        took,
        millions((args.size * args.threads) as u64, "locks"),
    );
    let (sums, took) = on_threads(lab, "Reader", args.threads, &|_| {
        let copy = data.clone();
        in_chunks(&copy, |c| c.iter().sum::<u64>())
    })?;
    row(
        report,
        table,
        "a copy per thread",
        "copy",
        (sums.iter().sum(), reference),
        sums.iter().sum::<u64>() == reference,
        took,
        format!("{} MB copied", (args.size * 8 * args.threads) as f64 / 1e6),
    );
    Ok(())
}

/// Part 2: counting: one shared atomic, one mutex, or a counter per thread summed at the end.
fn counters(args: &Args, lab: &Lab, report: &mut Report, table: &mut Table) -> anyhow::Result<()> {
    let n = args.updates;
    let reference = (n * args.threads) as u64;
    info!(
        "Part 2: {} threads each count to {}",
        args.threads,
        units::count(n as u64)
    );
    let atomic = AtomicU64::new(0);
    let (_, took) = on_threads(lab, "Counter", args.threads, &|_| {
        for i in 0..n {
            if stop_now(i) {
                break;
            }
            atomic.fetch_add(1, Relaxed);
        }
    })?;
    row(
        report,
        table,
        "one AtomicU64",
        "atomic",
        (atomic.load(Relaxed), reference),
        atomic.load(Relaxed) == reference,
        took,
        millions(reference, "adds"),
    );
    let mutex = Mutex::new(0u64);
    let (_, took) = on_threads(lab, "Counter", args.threads, &|_| {
        for i in 0..n {
            if stop_now(i) {
                break;
            }
            *lock(&mutex) += 1;
        }
    })?;
    let total = *lock(&mutex);
    row(
        report,
        table,
        "one Mutex<u64>",
        "mutex_counter",
        (total, reference),
        total == reference,
        took,
        millions(reference, "locks"),
    );
    let (parts, took) = on_threads(lab, "Counter", args.threads, &|_| {
        // the fix: nothing shared while counting; one value handed back at the end.
        let mut mine = 0u64;
        for i in 0..n {
            if stop_now(i) {
                break;
            }
            mine = std::hint::black_box(mine + 1);
        }
        mine
    })?;
    let total: u64 = parts.iter().sum();
    row(
        report,
        table,
        "a counter per thread, summed",
        "per_thread",
        (total, reference),
        total == reference,
        took,
        "none".into(),
    );
    Ok(())
}

/// The word a thread's k-th update counts (seeded per thread, so a one-thread replay gives
/// the same words).
fn words(lab: &Lab, thread: usize, n: usize) -> Vec<u16> {
    let mut rng = lab.rng(&format!("words-{thread}"));
    (0..n)
        .map(|_| rng.random_range(0..VOCABULARY as u16))
        .collect()
}

/// A fingerprint of a word count: order-independent, so two maps with the same counts agree.
fn fingerprint(counts: &HashMap<u16, u64>) -> u64 {
    counts
        .iter()
        .map(|(w, c)| u64::from(*w).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(31))
        .fold(0, u64::wrapping_add)
}

/// What one way of sharing the word count saw: the merged counts, how many updates found
/// their lock held by another writer (the writers count it themselves), and the time.
struct MapRun {
    counts: HashMap<u16, u64>,
    found_taken: u64,
    took: Duration,
}

/// Part 3: a word count shared by T threads: one map behind one lock, against S shards each
/// behind its own lock.
fn maps(args: &Args, lab: &Lab, report: &mut Report, table: &mut Table) -> anyhow::Result<()> {
    info!(
        "Part 3: {} threads each make {} word-count updates: one locked map, or {} shards",
        args.threads,
        units::count(args.updates as u64),
        args.shards
    );
    let inputs: Vec<Vec<u16>> = (0..args.threads)
        .map(|t| words(lab, t, args.updates))
        .collect();
    // The reference: one thread counts every word.
    let mut alone: HashMap<u16, u64> = HashMap::new();
    for w in inputs.iter().flatten() {
        *alone.entry(*w).or_default() += 1;
    }
    let one = sharded_count(lab, &inputs, 1)?;
    let many = sharded_count(lab, &inputs, args.shards)?;
    judge_maps(args, report, table, &alone, [&one, &many]);
    Ok(())
}

/// The writers count `inputs` into `shards` maps, each behind its own lock (one shard: the
/// one locked map), a word's shard chosen by the word.
fn sharded_count(lab: &Lab, inputs: &[Vec<u16>], shards: usize) -> anyhow::Result<MapRun> {
    // Each shard on its own cache lines: two shards' locks sharing a line would make the
    // cores fight over it (false sharing) even when they lock different shards.
    let maps: Vec<Padded<Mutex<HashMap<u16, u64>>>> = (0..shards)
        .map(|_| Padded(Mutex::new(HashMap::new())))
        .collect();
    let (taken, took) = on_threads(lab, "Writer", inputs.len(), &|t| {
        let mut taken = 0u64;
        for (i, w) in inputs[t].iter().enumerate() {
            if stop_now(i) {
                break;
            }
            // Only the shard holding this word is locked: other words go on in parallel.
            let shard = &maps[usize::from(*w) % shards].0;
            *counted_lock(shard, &mut taken).entry(*w).or_default() += 1;
        }
        taken
    })?;
    let mut counts: HashMap<u16, u64> = HashMap::new();
    for shard in &maps {
        for (w, c) in lock(&shard.0).iter() {
            *counts.entry(*w).or_default() += c;
        }
    }
    Ok(MapRun {
        counts,
        found_taken: taken.iter().sum(),
        took,
    })
}

/// Each map's row and check, then what the writers measured: how often an update found its
/// lock taken, and how the rates compare on this machine's cores.
fn judge_maps(
    args: &Args,
    report: &mut Report,
    table: &mut Table,
    alone: &HashMap<u16, u64>,
    [one, many]: [&MapRun; 2],
) {
    let updates = (args.updates * args.threads) as u64;
    let rate = |m: &MapRun| updates as f64 / m.took.as_secs_f64().max(1e-9);
    let label = format!("{} shards, a lock each", args.shards);
    for (m, label, key) in [
        (one, "one HashMap, one lock", "global_map"),
        (many, label.as_str(), "sharded_map"),
    ] {
        let cost = format!("{:.1} M updates/s", rate(m) / 1e6);
        let total = m.counts.values().sum();
        let same = fingerprint(&m.counts) == fingerprint(alone);
        row(report, table, label, key, (total, updates), same, m.took, cost);
        report.metric(format!("{key}.found_taken"), m.found_taken);
    }
    let pct = |m: &MapRun| 100.0 * m.found_taken as f64 / updates.max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ratio = rate(many) / rate(one).max(1e-9);
    let here = if ratio >= 1.1 { "here" } else { "here it did not pay:" };
    report.note(format!(
        "Sharding pays when writers on different cores would otherwise queue for one lock: \
         {here} the {} shards ran at {ratio:.1}× the one lock's rate with {} threads on {cores} \
         cores ({:.1} % of the one lock's updates found it taken, {:.1} % of the shards'). With \
         one core, or one writer, nothing runs in parallel and the one lock costs no more; \
         under Python's GIL one thread runs at a time, so sharding saves only the waits.",
        args.shards,
        args.threads,
        pct(one),
        pct(many),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_sharing_gives_the_one_thread_result() {
        let lab = Lab::quiet(1.0, 5);
        let args = Args {
            threads: 3,
            size: 10_000,
            updates: 5_000,
            shards: 8,
        };
        let report = run(&args, &lab).unwrap();
        assert!(report.ok, "{:?}", report.checks);
        assert_eq!(report.checks.len(), 8);
    }
}
