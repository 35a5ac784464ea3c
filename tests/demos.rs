//! Every demo through the binary at `--pace 0.02 --json`: its checks and invariants.

mod common;
use common::*;

#[test]
fn race_mutex_atomic_and_local_sum_are_exact_and_unsynchronized_never_overcounts() {
    let r = report(
        "race",
        &["--iterations", "20000", "--trials", "3", "--budget", "2"],
    );
    for s in ["mutex", "atomic", "local-sum"] {
        // Exact: the final count is every increment the threads made (all 40 000 unless the
        // time budget cut a loaded machine's run short).
        assert_eq!(
            metric(&r, &format!("{s}.final")),
            metric(&r, &format!("{s}.expected")),
            "{s}"
        );
        assert!(metric(&r, &format!("{s}.final")) <= 40_000);
        assert_eq!(metric(&r, &format!("{s}.lost")), 0, "{s}");
    }
    let lost = r["distribution"]["lost"].as_array().unwrap();
    assert_eq!(lost.len(), 3);
    for l in lost {
        assert!(l.as_u64().unwrap() <= 40_000);
    }
    assert!(metric(&r, "unsynchronized.final") <= 40_000);
    assert_eq!(
        r["threads"].as_array().unwrap().len(),
        8,
        "2 threads × 4 strategies"
    );
}

#[test]
fn race_with_a_wide_window_loses_updates_and_says_so() {
    let r = report(
        "race",
        &[
            "--iterations",
            "20000",
            "--strategy",
            "unsynchronized",
            "--window",
            "spin:500",
            "--budget",
            "2",
        ],
    );
    assert!(metric(&r, "unsynchronized.lost") > 0);
    assert_checks_hold(&r);
}

#[test]
fn rlock_contender_waits_for_the_last_release_and_the_plain_lock_is_caught() {
    let r = report("rlock", &["--depth", "4"]);
    assert_checks_hold(&r);
    assert_eq!(metric(&r, "recursor.max_count"), 4);
    assert_eq!(metric(&r, "contender.still_held_levels"), 0);
    assert_eq!(metric(&r, "counter.value"), 60);
}

#[test]
fn semaphore_holders_never_exceed_permits() {
    for (threads, permits) in [("7", "3"), ("10", "1"), ("3", "5")] {
        let r = report("semaphore", &["--threads", threads, "--permits", permits]);
        let permits: u64 = permits.parse().unwrap();
        assert!(metric(&r, "max_holders") <= permits);
        assert!(metric(&r, "max_holders") >= 1);
        assert_eq!(
            r["threads"].as_array().unwrap().len(),
            threads.parse::<usize>().unwrap()
        );
    }
}

#[test]
fn semaphore_bounded_refuses_over_release_and_plain_grows() {
    let r = report("semaphore", &["--bounded"]);
    assert_eq!(r["metrics"]["over_release.bounded_refused"], true);
    assert_eq!(metric(&r, "over_release.plain_most_holders"), 4);
    assert!(metric(&r, "over_release.bounded_most_holders") <= 3);
}

#[test]
fn condition_consumes_every_item_once_within_capacity() {
    let r = report(
        "condition",
        &["--items", "25", "--consumers", "3", "--capacity", "2"],
    );
    assert_checks_hold(&r);
    assert!(metric(&r, "high_water") <= 2);
    assert_eq!(metric(&r, "produced"), 25);
    assert_eq!(metric(&r, "consumed"), 25);
    let per_consumer: u64 = (1..=3)
        .map(|i| metric(&r, &format!("Consumer-{i}.items")))
        .sum();
    assert_eq!(per_consumer, 25);
}

#[test]
fn race_at_the_default_window_loses_updates_in_at_least_19_of_20_trials() {
    let r = report(
        "race",
        &[
            "--iterations",
            "100000",
            "--trials",
            "20",
            "--strategy",
            "unsynchronized",
            "--budget",
            "1",
        ],
    );
    assert!(
        metric(&r, "unsynchronized.losing_trials") >= 19,
        "{}",
        r["metrics"]
    );
}

/// The `+1.234s` times of every narrative line, in output order.
fn narrative_times(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix('+')?.split_once("s [")?.0.parse().ok())
        .collect()
}

#[test]
fn the_lock_hand_off_is_narrated_in_causal_order_and_times_never_go_back() {
    for seed in 0..20 {
        let run = threadlab(&["rlock", "--pace", "0.02", "--seed", &seed.to_string()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        let freed = lines
            .iter()
            .position(|l| {
                l.contains("(Recursor  )") && l.contains("'shared-lock' (depth 1): lock is free")
            })
            .unwrap_or_else(|| panic!("no final release:\n{}", run.stdout));
        let taken = lines
            .iter()
            .position(|l| l.contains("(Contender )") && l.contains("Acquired 'shared-lock'"))
            .unwrap_or_else(|| panic!("no contender acquire:\n{}", run.stdout));
        assert!(
            freed < taken,
            "seed {seed}: the acquire was shown before the release that enabled it:\n{}",
            run.stdout
        );
        let times = narrative_times(&run.stdout);
        assert!(times.len() > 10);
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "seed {seed}: times went backwards:\n{}",
            run.stdout
        );
    }
    // Many threads writing at once: the pool's downloads.
    let run = threadlab(&["pool", "--pace", "0.02", "--tasks", "60", "--workers", "12"]);
    let times = narrative_times(&run.stdout);
    assert!(times.len() > 100);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{}", run.stdout);
}

#[test]
fn lock_the_locked_account_balances_and_the_unlocked_one_does_not() {
    for seed in ["1", "2", "3"] {
        let run = threadlab(&["lock", "--pace", "0.02", "--json", "--seed", seed]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let r = run.json();
        assert_checks_hold(&r);
        assert_eq!(metric(&r, "locked.final"), metric(&r, "locked.books"));
        assert!(r["metrics"]["locked.lowest"].as_i64().unwrap() >= 0);
    }
}
