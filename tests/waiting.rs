//! Waiting for each other through the binary: condition, event, timer, barrier,
//! producer-consumer, worker-pool and pool. Every item accounted for, every waiter freed,
//! every signal wait ended by its signal.

mod common;
use common::*;

use std::time::{Duration, Instant};

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
fn event_every_waiter_wakes_after_the_set_and_the_event_loop_stops_before_the_polling_one() {
    for seed in SEEDS {
        // --tick 5 at pace 0.02 is a 100 ms tick: well above a busy machine's wake-up noise.
        let r = holds("event", seed, &["--waiters", "6", "--tick", "5"]);
        assert_eq!(metric(&r, "woken"), 6);
        assert!(metric_f(&r, "latest_wake_ms") < 100.0);
        let (event, poll) = (
            metric_f(&r, "stop_latency.event_ms"),
            metric_f(&r, "stop_latency.poll_ms"),
        );
        assert!(event < 25.0, "event {event} ms");
        // (Unless the stop request itself came too late to show it, by the main thread's
        // clock: then the check says so, and `holds` has read why.)
        let polling = check_by_id(&r, "polling-loop-time-stop-request");
        assert!(
            poll > event || polling["inconclusive"].is_string(),
            "event {event} ms, poll {poll} ms"
        );
    }
}

#[test]
fn timer_never_fires_early_or_after_cancel_and_only_the_after_work_schedule_drifts() {
    for seed in SEEDS {
        // At pace 0.02: ticks every 100 ms with 30 ms of work.
        let r = holds(
            "timer",
            seed,
            &["--interval", "5", "--work", "1.5", "--ticks", "4"],
        );
        assert!(metric_f(&r, "one_shot.late_ms") >= 0.0);
        // The after-work timer's fourth tick starts three works (90 ms) late or more.
        assert!(
            metric_f(&r, "after_work.last_late_ms") >= 90.0,
            "{}",
            r["metrics"]
        );
        assert!(
            metric_f(&r, "fixed_rate.last_late_ms") < 45.0,
            "{}",
            r["metrics"]
        );
    }
}

#[test]
fn barrier_no_worker_leaves_a_phase_early_and_a_broken_barrier_frees_every_waiter() {
    for seed in SEEDS {
        let r = holds("barrier", seed, &["--parties", "5", "--phases", "3"]);
        assert_eq!(metric(&r, "phases_completed"), 3);
        assert_eq!(metric(&r, "actions"), 3);
        assert_eq!(
            check_by_id(&r, "waiters-barrier-party-never-reaches")["observed"],
            "2 of 2"
        );
    }
}

#[test]
fn a_barrier_whose_timeout_is_zero_ends_and_breaks_for_both() {
    for timeout in ["0", "-0", "1e-9"] {
        let began = Instant::now();
        let run = threadlab(&[
            "barrier",
            "--timeout",
            timeout,
            "--pace",
            "0.02",
            "--json",
            "-q",
        ]);
        assert_eq!(run.code, 0, "--timeout {timeout}: {}", run.stderr);
        assert!(began.elapsed() < Duration::from_secs(60));
        let r = run.json();
        assert_checks_hold(&r);
    }
}

#[test]
fn producer_consumer_accounts_for_every_item_under_every_shutdown_style() {
    for style in ["sentinel", "timeout", "close"] {
        let r = report(
            "producer-consumer",
            &[
                "--shutdown",
                style,
                "--items",
                "40",
                "--producers",
                "2",
                "--consumers",
                "3",
                "--maxsize",
                "3",
            ],
        );
        assert_checks_hold(&r);
        assert_eq!(metric(&r, "produced"), 40, "{style}");
        assert_eq!(metric(&r, "consumed"), 40, "{style}");
        assert_eq!(metric(&r, "results"), 40, "{style}");
        assert_eq!(metric(&r, "duplicates"), 0, "{style}");
        assert_eq!(metric(&r, "missing"), 0, "{style}");
        assert!(metric(&r, "high_water") <= 3, "{style}");
        let per: u64 = (1..=3)
            .map(|i| metric(&r, &format!("Worker-{i}.items")))
            .sum();
        assert_eq!(per, 40, "{style}");
    }
}

#[test]
fn worker_pool_the_tutorials_pool_as_written_stops_late_the_fix_collects_all_at_once() {
    for seed in SEEDS {
        // Pace 0.1: 20 ms tasks, a 100 ms get timeout.
        let r = holds_at(
            "worker-pool",
            "0.1",
            seed,
            &["--workers", "4", "--tasks", "12"],
        );
        // As written: every result after task_queue.join(); fewer without the join.
        assert_eq!(metric(&r, "tutorial.collected"), 12);
        assert!(metric(&r, "tutorial.collected_without_join") < 12);
        assert_eq!(metric(&r, "fixed.collected"), 12);
        assert!(metric_f(&r, "fixed.stop_latency_ms") < metric_f(&r, "tutorial.stop_latency_ms"));
    }
}

#[test]
fn the_tutorials_pool_and_timer_as_written() {
    let r = report("worker-pool", &[]);
    assert_eq!(
        metric(&r, "tutorial.collected"),
        9,
        "after join(): all of them"
    );
    assert!(metric(&r, "tutorial.collected_without_join") < 9);
    // Ticks every 100 ms (at pace 0.02): a busy machine's stall of 20 ms is no drift.
    let r = report(
        "timer",
        &["--interval", "5", "--work", "1.5", "--ticks", "4"],
    );
    assert!(
        metric(&r, "tutorial.most_ticks_at_once") >= 2,
        "its ticks overlap"
    );
    assert!(r["metrics"]["tutorial.last_late_ms"].is_number());
}

#[test]
fn pool_scenarios_resolve_every_future_and_catch_failures() {
    let r = report("pool", &["--sweep", "1,4"]);
    assert_checks_hold(&r);
    assert_eq!(metric(&r, "failure.failed"), 1);
    assert_eq!(metric(&r, "failure.panicked"), 1);
    assert_eq!(metric(&r, "failure.ok"), 4);
    assert_eq!(r["order"]["map"].as_array().unwrap().len(), 5);
    let names: Vec<&str> = r["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Downloader_0"));
    // Generous ratio only: 4 workers on 100 sleeping tasks beat 1 worker.
    let one = r["metrics"]["sweep.1.ms"].as_f64().unwrap();
    let four = r["metrics"]["sweep.4.ms"].as_f64().unwrap();
    assert!(four < one, "4 workers ({four} ms) should beat 1 ({one} ms)");
}

/// The demos whose lesson is a signal: every wait for it ended by it, none by a poll.
#[test]
fn signal_waits_end_by_their_signal_in_every_signal_demo() {
    for demo in [
        "producer-consumer",
        "condition",
        "event",
        "barrier",
        "timer",
        "deadlock",
    ] {
        // The timer's ticks every 100 ms (at pace 0.02): a busy machine's stall is no drift.
        let slow_ticks: &[&str] = if demo == "timer" {
            &["--interval", "5", "--work", "1.5", "--ticks", "4"]
        } else {
            &[]
        };
        let r = report(demo, slow_ticks);
        let check = check_by_id(&r, "signal-waits-signal-ended");
        assert_eq!(check["ok"], true, "{demo}: {check}");
        assert_eq!(r["metrics"]["waits.found_by_poll"], 0, "{demo}");
        assert!(
            r["metrics"]["waits.woken_by_signal"].as_u64().unwrap() > 0,
            "{demo}"
        );
    }
}
