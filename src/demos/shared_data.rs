#![doc = include_str!("pages/shared_data.md")]

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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
    let mut table = Table::new(["sharing", "result", "same as one thread", "time", "cost"]);
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
        units::count(result),
        if same { "✔" } else { "✘" }.to_string(),
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
        format!(
            "{} lock/unlocks",
            units::count((args.size * args.threads) as u64)
        ),
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
        format!("{} contended adds", units::count(reference)),
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
        format!("{} lock/unlocks", units::count(reference)),
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

/// Part 3: a word count shared by T threads: one map behind one lock, against S shards each
/// behind its own lock.
fn maps(args: &Args, lab: &Lab, report: &mut Report, table: &mut Table) -> anyhow::Result<()> {
    let n = args.updates;
    info!(
        "Part 3: {} threads each make {} word-count updates: one locked map, or {} shards",
        args.threads,
        units::count(n as u64),
        args.shards
    );
    let inputs: Vec<Vec<u16>> = (0..args.threads).map(|t| words(lab, t, n)).collect();
    // The reference: one thread counts every word.
    let mut alone: HashMap<u16, u64> = HashMap::new();
    for w in inputs.iter().flatten() {
        *alone.entry(*w).or_default() += 1;
    }
    let reference = fingerprint(&alone);
    let words_total = (n * args.threads) as u64;
    let total = |m: &HashMap<u16, u64>| m.values().sum::<u64>();
    let ops = (n * args.threads) as f64;
    let global: Mutex<HashMap<u16, u64>> = Mutex::new(HashMap::new());
    let (_, took) = on_threads(lab, "Writer", args.threads, &|t| {
        for (i, w) in inputs[t].iter().enumerate() {
            if stop_now(i) {
                break;
            }
            *lock(&global).entry(*w).or_default() += 1;
        }
    })?;
    let (counted, same) = {
        let g = lock(&global);
        (total(&g), fingerprint(&g) == reference)
    };
    row(
        report,
        table,
        "one HashMap, one lock",
        "global_map",
        (counted, words_total),
        same,
        took,
        format!(
            "{:.1} M updates/s",
            ops / took.as_secs_f64().max(1e-9) / 1e6
        ),
    );
    let shards: Vec<Mutex<HashMap<u16, u64>>> = (0..args.shards)
        .map(|_| Mutex::new(HashMap::new()))
        .collect();
    let shard_of = |w: u16| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        w.hash(&mut h);
        (h.finish() % args.shards as u64) as usize
    };
    let (_, took) = on_threads(lab, "Writer", args.threads, &|t| {
        for (i, w) in inputs[t].iter().enumerate() {
            if stop_now(i) {
                break;
            }
            // Only the shard holding this word is locked: other words go on in parallel.
            *lock(&shards[shard_of(*w)]).entry(*w).or_default() += 1;
        }
    })?;
    let mut merged: HashMap<u16, u64> = HashMap::new();
    for shard in &shards {
        for (w, c) in lock(shard).iter() {
            *merged.entry(*w).or_default() += c;
        }
    }
    row(
        report,
        table,
        &format!("{} shards, a lock each", args.shards),
        "sharded_map",
        (total(&merged), words_total),
        fingerprint(&merged) == reference,
        took,
        format!(
            "{:.1} M updates/s",
            ops / took.as_secs_f64().max(1e-9) / 1e6
        ),
    );
    Ok(())
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
