//! producer-consumer, daemon and pool through the binary at `--pace 0.02 --json`.

mod common;
use common::*;

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
fn daemon_mode_cuts_the_monitor_off_and_graceful_mode_cleans_up() {
    let r = report("daemon", &["--mode", "both"]);
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

#[test]
fn bad_arguments_for_these_demos_exit_1_naming_the_flag() {
    assert_usage_error(&["producer-consumer", "--consumers", "0"], "--consumers");
    assert_usage_error(&["producer-consumer", "--maxsize", "0"], "--maxsize");
    assert_usage_error(&["producer-consumer", "--shutdown", "never"], "--shutdown");
    assert_usage_error(&["pool", "--sweep", "0,x"], "--sweep");
    assert_usage_error(&["pool", "--workers", "0"], "--workers");
    assert_usage_error(&["daemon", "--mode", "zombie"], "--mode");
}
