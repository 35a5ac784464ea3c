//! Threads themselves through the binary: their life and names, thread-local data, shared
//! data, daemon threads, failures in threads, and CPU against I/O.

mod common;
use common::*;

#[test]
fn threads_the_os_sees_each_thread_by_name_and_the_count_follows_starts_and_joins() {
    for seed in SEEDS {
        let r = holds("threads", seed, &["--workers", "5", "--numbers", "12345"]);
        // Worked out here too: the sum of squares of 1..=12345.
        let n: u64 = 12345;
        assert_eq!(metric(&r, "sum_of_squares"), n * (n + 1) * (2 * n + 1) / 6);
        assert_eq!(
            check_by_id(&r, "names-given-found-os-list")["observed"],
            "3 of 3"
        );
        assert_eq!(
            check_by_id(&r, "moments-where-os-thread-count")["observed"],
            "7 of 7"
        );
        assert_eq!(
            check_by_id(&r, "results-written-before-process-ended")["observed"],
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
fn daemon_mode_cuts_the_monitor_off_and_graceful_mode_cleans_up() {
    // A tick of 50 ms (not 10 ms at the tests' pace): the graceful check times a wake-up
    // against one tick, and a loaded 2-core machine can be late by 10 ms.
    let r = report(
        "daemon",
        &["--mode", "both", "--tick", "2.5", "--work", "10"],
    );
    assert_checks_hold(&r);
    assert_eq!(r["metrics"]["daemon.cleanup_ran"], false);
    assert_eq!(r["metrics"]["graceful.cleanup_ran"], true);
    assert!(metric(&r, "daemon.ticks") >= 1);
    assert!(metric(&r, "graceful.ticks") >= 1);
}

#[test]
fn daemon_child_lines_are_relayed_and_the_cleanup_line_never_comes() {
    let run = threadlab(&["daemon", "--pace", "0.02", "--no-color"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("(Relay     ) child │"));
    assert!(run.stdout.contains("Monitor: tick 1"));
    assert!(
        !run.stdout.contains("Monitor: cleanup done"),
        "the daemon's cleanup must never run:\n{}",
        run.stdout
    );
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
    assert!(metric_f(&r, "io.4.speedup") > 2.0, "{}", r["metrics"]);
    assert!(
        metric_f(&r, "cpu.4.speedup") < 3.0 * 1.25,
        "{}",
        r["metrics"]
    );
    if python {
        assert!(r["metrics"]["python.io.4.speedup"].as_f64().unwrap() > 2.0);
        assert!(r["python"]["version"].is_string());
    }
}

#[test]
fn cpu_vs_io_with_no_work_says_what_it_cannot_show() {
    for flag in ["--cpu", "--io"] {
        // At pace 0.2, as every cpu-vs-io test: its CPU-bound timings stay above a busy
        // machine's noise (at 0.02 the whole CPU-bound run is 6 ms).
        let run = threadlab_alone(&["cpu-vs-io", flag, "0", "--pace", "0.2", "--json", "-q"]);
        let r = run.json();
        assert!(
            r["not_shown"].to_string().contains("speedup"),
            "{flag} 0: {}",
            r["not_shown"]
        );
        // The claims it could still make are judged by the machine's measured load.
        assert_cpu_vs_io_verdict(&run);
    }
}
