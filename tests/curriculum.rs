//! The curriculum's lessons added with part 1 and 2 (threads, event, timer, barrier,
//! thread-local, deadlock, philosophers) through the
//! binary: each demo's invariants over several seeds, and its flags' extremes.

mod common;
use common::*;
use serde_json::Value;

const SEEDS: [&str; 3] = ["1", "2", "3"];

/// A run of `demo` at a small pace with `args` and `--seed SEED`, exit 0, every check holding.
fn holds(demo: &str, seed: &str, args: &[&str]) -> Value {
    holds_at(demo, "0.02", seed, args)
}

/// [`holds`] at another pace.
fn holds_at(demo: &str, pace: &str, seed: &str, args: &[&str]) -> Value {
    let mut all = vec![demo, "--pace", pace, "--json", "-q", "--seed", seed];
    all.extend_from_slice(args);
    let run = threadlab(&all);
    assert_eq!(
        run.code, 0,
        "{demo} seed {seed}: {}\n{}",
        run.stderr, run.stdout
    );
    let r = run.json();
    assert_checks_hold(&r);
    r
}

fn f(report: &Value, name: &str) -> f64 {
    report["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("metric {name} missing in {}", report["metrics"]))
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    check_by_id(report, id)
}

#[test]
fn threads_the_os_sees_each_thread_by_name_and_the_count_follows_starts_and_joins() {
    for seed in SEEDS {
        let r = holds("threads", seed, &["--workers", "5", "--numbers", "12345"]);
        // Worked out here too: the sum of squares of 1..=12345.
        let n: u64 = 12345;
        assert_eq!(metric(&r, "sum_of_squares"), n * (n + 1) * (2 * n + 1) / 6);
        assert_eq!(check(&r, "names-given-found-os-list")["observed"], "3 of 3");
        assert_eq!(
            check(&r, "moments-where-os-thread-count")["observed"],
            "7 of 7"
        );
        assert_eq!(
            check(&r, "results-written-before-process-ended")["observed"],
            "0, then 1"
        );
    }
    // The threads the demo named, by their real OS names, in the narrative.
    let run = threadlab(&["basics", "--pace", "0.02", "--seed", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("'Downloader-with-a-long-name' is 'Downloader-with' to the OS")
    );
    assert!(run.stdout.contains("Worker-1"), "{}", run.stdout);
}

#[test]
fn event_every_waiter_wakes_after_the_set_and_the_event_loop_stops_before_the_polling_one() {
    for seed in SEEDS {
        // --tick 5 at pace 0.02 is a 100 ms tick: well above a busy machine's wake-up noise.
        let r = holds("event", seed, &["--waiters", "6", "--tick", "5"]);
        assert_eq!(metric(&r, "woken"), 6);
        assert!(f(&r, "latest_wake_ms") < 100.0);
        let (event, poll) = (
            f(&r, "stop_latency.event_ms"),
            f(&r, "stop_latency.poll_ms"),
        );
        assert!(
            event < 25.0 && poll > event,
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
        assert!(f(&r, "one_shot.late_ms") >= 0.0);
        // The after-work timer's fourth tick starts three works (90 ms) late or more.
        assert!(f(&r, "after_work.last_late_ms") >= 90.0, "{}", r["metrics"]);
        assert!(f(&r, "fixed_rate.last_late_ms") < 45.0, "{}", r["metrics"]);
    }
}

#[test]
fn barrier_no_worker_leaves_a_phase_early_and_a_broken_barrier_frees_every_waiter() {
    for seed in SEEDS {
        let r = holds("barrier", seed, &["--parties", "5", "--phases", "3"]);
        assert_eq!(metric(&r, "phases_completed"), 3);
        assert_eq!(metric(&r, "actions"), 3);
        assert_eq!(
            check(&r, "waiters-barrier-party-never-reaches")["observed"],
            "2 of 2"
        );
    }
}

#[test]
fn thread_local_opens_one_connection_per_thread_and_closes_each_at_thread_exit() {
    for seed in SEEDS {
        let r = holds("thread-local", seed, &["--workers", "4", "--tasks", "3"]);
        // Counted by the database, on its side of the sockets.
        assert_eq!(metric(&r, "thread_local.opened"), 4);
        assert_eq!(metric(&r, "thread_local.closed"), 4);
        assert_eq!(metric(&r, "shared.opened"), 1);
        assert_eq!(metric(&r, "shared.most_in_flight"), 1);
        assert_eq!(metric(&r, "per_task.opened"), 12);
        assert!(metric(&r, "shared.not_mine") >= 1);
    }
    let run = threadlab(&["local", "--pace", "0.02", "--workers", "2", "--tasks", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout
            .matches("thread-local destructor closed connection")
            .count(),
        2,
        "{}",
        run.stdout
    );
}

#[test]
fn the_new_demos_refuse_what_they_cannot_honour_in_one_line() {
    assert_usage_error(&["timer", "--work", "1", "--interval", "0.5"], "--work");
    assert_usage_error(&["timer", "--interval", "0"], "--interval");
    assert_usage_error(&["timer", "--ticks", "1"], "--ticks");
    assert_usage_error(&["event", "--tick", "0"], "--tick");
    assert_usage_error(&["event", "--waiters", "65"], "--waiters");
    assert_usage_error(&["barrier", "--parties", "1"], "--parties");
    assert_usage_error(&["barrier", "--timeout", "-1"], "--timeout");
    assert_usage_error(&["thread-local", "--workers", "0"], "--workers");
    assert_usage_error(&["thread-local", "--tasks", "1e9"], "--tasks");
    assert_usage_error(&["threads", "--numbers", "0"], "--numbers");
    assert_usage_error(&["threads", "--child", "sometimes"], "--child");
    assert_usage_error(&["deadlock", "--fix", "prayer"], "--fix");
    assert_usage_error(&["deadlock", "--accounts", "1"], "--accounts");
    assert_usage_error(&["philosophers", "--philosophers", "1"], "--philosophers");
    assert_usage_error(&["philosophers", "--meals", "0"], "--meals");
    assert_usage_error(&["exceptions", "--items", "0"], "--items");
    assert_usage_error(&["cpu-vs-io", "--threads", "0,2"], "--threads");
    assert_usage_error(&["cpu-vs-io", "--rounds", "0"], "--rounds");
    assert_usage_error(&["cpu-vs-io", "--rounds", "99999999999"], "--rounds");
    assert_usage_error(&["cpu-vs-io", "--cpu", "30", "--rounds", "3"], "--rounds");
    assert_usage_error(&["gil", "--threads", "65"], "--threads");
    assert_usage_error(&["rate-limit", "--per-second", "0"], "--per-second");
    assert_usage_error(&["rate-limit", "--pool", "0"], "--pool");
    assert_usage_error(&["worker-pool", "--get-timeout", "0"], "--get-timeout");
    assert_usage_error(&["shared-data", "--shards", "0"], "--shards");
    assert_usage_error(
        &["shared-data", "--size", "100000000", "--threads", "64"],
        "--size",
    );
}

#[test]
fn the_largest_flags_still_end_on_their_own() {
    // The most threads each demo allows, at a small pace: bounded, every check holding.
    holds("event", "1", &["--waiters", "64", "--tick", "5"]);
    holds("barrier", "1", &["--parties", "64", "--phases", "2"]);
    holds("thread-local", "1", &["--workers", "32", "--tasks", "2"]);
    holds("threads", "1", &["--workers", "64"]);
    holds(
        "philosophers",
        "1",
        &["--philosophers", "16", "--meals", "2"],
    );
    holds(
        "deadlock",
        "1",
        &["--tellers", "16", "--accounts", "26", "--transfers", "300"],
    );
}

#[test]
fn deadlock_is_found_naming_both_tellers_and_never_hangs_over_many_runs() {
    for seed in ["1", "2", "3", "4", "5", "6"] {
        let r = holds("deadlock", seed, &["--transfers", "60", "--watchdog", "60"]);
        // One cycle, or (on a busy machine) the same one again after the victim's retry.
        assert!(metric(&r, "none.cycles") >= 1);
        assert_eq!(metric(&r, "none.completed"), 2);
        assert_eq!(metric(&r, "ordering.cycles"), 0);
        assert_eq!(metric(&r, "ordering.completed"), 60);
        assert_eq!(metric(&r, "timeout.completed"), 60);
        // The JSON carries the cycle the runtime found, with its victim.
        let first = &r["deadlocks"][0];
        let mut threads: Vec<&str> = first["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        threads.sort();
        assert_eq!(threads, ["Teller-1", "Teller-2"]);
        assert!(first["victim"].is_string());
        assert_eq!(first["kind"], "cycle");
        // Part 4's deadlock without a lock: one stall, the clerk refused, every order taken.
        let stalls: Vec<&serde_json::Value> = r["deadlocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "stall")
            .collect();
        assert_eq!(stalls.len(), 1, "seed {seed}");
        assert_eq!(stalls[0]["victim"], "Clerk");
        assert_eq!(
            stalls[0]["threads"],
            serde_json::json!(["Clerk", "MainThread"])
        );
        assert_eq!(
            stalls[0]["locks"],
            serde_json::json!(["orders", "join(Clerk)"])
        );
        assert!(r["metrics"]["nolock.refused_after_ms"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn philosophers_all_eat_neighbours_never_share_a_fork_and_only_the_naive_table_deadlocks() {
    for seed in ["1", "2", "3", "4", "5", "6"] {
        let r = holds(
            "philosophers",
            seed,
            &["--philosophers", "5", "--meals", "3", "--watchdog", "60"],
        );
        for key in ["none", "ordering", "waiter"] {
            assert_eq!(metric(&r, &format!("{key}.meals")), 15, "{key}");
            assert_eq!(metric(&r, &format!("{key}.overlaps")), 0, "{key}");
        }
        assert!(metric(&r, "none.cycles") >= 1);
        assert_eq!(metric(&r, "ordering.cycles"), 0);
        assert_eq!(metric(&r, "waiter.cycles"), 0);
    }
    // Two philosophers: the smallest circle.
    let r = holds(
        "philosophers",
        "1",
        &["--philosophers", "2", "--fix", "none"],
    );
    assert!(metric(&r, "none.cycles") >= 1);
}

#[test]
fn exceptions_a_panic_reaches_join_and_the_hook_and_every_failure_is_reported() {
    for seed in SEEDS {
        let r = holds("exceptions", seed, &["--items", "50", "--workers", "4"]);
        assert_eq!(metric(&r, "items.reported"), 50);
        assert!(metric(&r, "items.failed") >= 1);
    }
    let run = threadlab(&["exceptions", "--pace", "0.02", "--seed", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("excepthook: thread Faulty failed"),
        "{}",
        run.stdout
    );
    // Expected panics are narrated, never the internal-error line.
    assert!(!run.stderr.contains("internal error"), "{}", run.stderr);
}

fn python3_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn cpu_vs_io_waits_overlap_on_threads_and_python_shows_its_gil_when_there() {
    // Pace 0.2: 80 ms of CPU work and 20 ms waits, above a busy machine's noise.
    let mut args = vec![
        "cpu-vs-io",
        "--pace",
        "0.2",
        "--json",
        "-q",
        "--threads",
        "1,2,4",
    ];
    let python = python3_available();
    if python {
        args.push("--python");
    }
    // Alone: another test's threads on the two cores would spoil the CPU-bound timings.
    let run = threadlab_alone(&args);
    let r = assert_cpu_vs_io_verdict(&run);
    assert!(f(&r, "io.4.speedup") > 2.0, "{}", r["metrics"]);
    assert!(f(&r, "cpu.4.speedup") < 3.0 * 1.25, "{}", r["metrics"]);
    if python {
        assert!(r["metrics"]["python.io.4.speedup"].as_f64().unwrap() > 2.0);
        assert!(r["python"]["version"].is_string());
    }
}

#[test]
fn race_python_runs_the_tutorials_counter_beside_threadlabs_when_python3_is_there() {
    let run = threadlab(&["race", "--python", "--iterations", "20000", "--json", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    if python3_available() {
        assert!(
            r["metrics"]["python.tutorial.lost"].is_u64(),
            "{}",
            r["metrics"]
        );
        assert!(
            r["notes"]
                .to_string()
                .contains("switches threads only every")
        );
    } else {
        assert!(r["notes"].to_string().contains("python3 was not found"));
    }
}

#[test]
fn rate_limit_the_semaphore_caps_concurrency_not_rate_and_the_limiter_caps_the_rate() {
    for seed in SEEDS {
        // Pace 0.1: a 100 ms "second", 50 ms calls; the window's slack is half the limiter's
        // interval (16.7 ms at 3 a second).
        let r = holds_at("rate-limit", "0.1", seed, &["--calls", "12"]);
        assert!(metric(&r, "semaphore.most_in_flight") <= 3);
        assert!(metric(&r, "semaphore.busiest") > 3);
        assert!(metric(&r, "rate_limiter.busiest") <= 3);
        assert!(metric(&r, "pool.most_checked_out") <= 3);
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
        assert!(f(&r, "fixed.stop_latency_ms") < f(&r, "tutorial.stop_latency_ms"));
    }
}

#[test]
fn shared_data_every_way_of_sharing_matches_one_thread() {
    for seed in SEEDS {
        let r = holds(
            "shared-data",
            seed,
            &[
                "--threads",
                "3",
                "--size",
                "20000",
                "--updates",
                "20000",
                "--shards",
                "4",
            ],
        );
        assert_eq!(r["checks"].as_array().unwrap().len(), 8);
    }
}

#[test]
fn every_report_accounts_for_its_primitives_waits_holds_and_most_at_once() {
    // semaphore: the runtime's accounting agrees with what the workers counted themselves.
    let r = holds("semaphore", "1", &[]);
    let permits = r["primitives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "permits")
        .unwrap_or_else(|| panic!("no 'permits' in {}", r["primitives"]));
    assert_eq!(permits["most_holding"], r["metrics"]["max_holders"]);
    assert!(permits["most_holding"].as_u64().unwrap() <= 3);
    assert!(permits["waits"].as_u64().unwrap() >= 1);
    assert!(
        permits["longest_wait_ms"].as_f64().unwrap() <= permits["total_wait_ms"].as_f64().unwrap()
    );
    // philosophers: every fork held, never by two at once.
    let r = holds("philosophers", "1", &["--fix", "ordering"]);
    let forks: Vec<&Value> = r["primitives"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("fork-"))
        .collect();
    assert_eq!(forks.len(), 5);
    for f in forks {
        assert_eq!(f["most_holding"], 1, "{f}");
        assert!(f["holds"].as_u64().unwrap() >= 6, "{f}");
    }
}
