//! Evidence, second round: defects found from outside the project's own tests, each with the
//! test that failed before its fix; flags that rule a lesson out; pages that must agree with
//! the demos' defaults.
#![allow(clippy::disallowed_methods)] // std::thread::sleep is denied in src/demos only

mod common;
use common::*;

use std::time::{Duration, Instant};

/// A short semaphore run with these picture flags (and whatever else is asked).
fn semaphore_with(extra: &[&str]) -> Run {
    let mut args = vec!["semaphore", "--pace", "0.02", "-q"];
    args.extend_from_slice(extra);
    threadlab(&args)
}

/// A scratch folder of this test's own.
fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("threadlab-evidence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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
fn deadlock_with_no_hold_still_backs_off_and_finishes() {
    for seed in 1..=6 {
        let run = threadlab(&[
            "deadlock",
            "--hold",
            "0",
            "--pace",
            "0.02",
            "--seed",
            &seed.to_string(),
            "--json",
            "-q",
        ]);
        assert_eq!(run.code, 0, "seed {seed}: {}", run.stderr);
        assert_checks_hold(&run.json());
    }
}

#[test]
fn picture_paths_that_cannot_take_a_picture_are_refused_before_the_run() {
    // A device, stdout, a folder: one line naming the flag, nothing on stdout.
    for (flag, path) in [
        ("--trace", "/dev/full"),
        ("--svg", "/dev/stdout"),
        ("--trace", "/tmp"),
    ] {
        let run = threadlab(&["semaphore", "--pace", "0.02", "--json", flag, path]);
        assert_eq!(run.code, 1, "{flag} {path}");
        assert!(
            run.stdout.is_empty(),
            "{flag} {path}: the run went ahead:\n{}",
            run.stdout
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(flag) && run.stderr.contains("regular file")
                || run.stderr.contains("folder"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_fifo_with_no_reader_is_refused_at_once() {
    let d = scratch("fifo");
    let fifo = d.join("pipe");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .map(|s| s.success());
    if !matches!(ok, Ok(true)) {
        eprintln!("mkfifo unavailable: skipped");
        return;
    }
    let began = Instant::now();
    let run = semaphore_with(&["--trace", fifo.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--trace"), "{}", run.stderr);
    assert!(began.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_refused_picture_flag_leaves_the_other_file_as_it_was() {
    let d = scratch("keep");
    let keep = d.join("keep.json");
    std::fs::write(&keep, "the old picture").unwrap();
    let missing = d.join("missing").join("x.svg");
    let run = semaphore_with(&[
        "--trace",
        keep.to_str().unwrap(),
        "--svg",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--svg"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "the old picture");
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        1,
        "no scratch file left behind"
    );
}

#[test]
fn the_same_file_for_both_pictures_is_refused() {
    let d = scratch("same");
    let p = d.join("p.out");
    let p = p.to_str().unwrap();
    let run = semaphore_with(&["--trace", p, "--svg", p]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--trace and --svg"), "{}", run.stderr);
}

#[test]
fn pictures_are_written_whole_after_the_report() {
    let d = scratch("whole");
    let (t, s) = (d.join("t.json"), d.join("s.svg"));
    let run = threadlab(&[
        "semaphore",
        "--pace",
        "0.02",
        "--json",
        "--trace",
        t.to_str().unwrap(),
        "--svg",
        s.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json();
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&t).unwrap()).expect("whole trace");
    assert!(trace.to_string().contains("Worker"));
    assert!(
        std::fs::read_to_string(&s)
            .unwrap()
            .trim_end()
            .ends_with("</svg>")
    );
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
}

#[test]
fn non_finite_values_and_control_characters_name_their_flag() {
    for (demo, flag) in [
        ("timer", "--delay"),
        ("barrier", "--timeout"),
        ("lock", "--gap"),
    ] {
        assert_usage_error(&[demo, flag, "-inf"], flag);
        assert_usage_error(&[demo, flag, "-NaN"], flag);
    }
    assert_usage_error(
        &["url-check", "--demo", "--user-agent", "bad\u{7f}agent"],
        "--user-agent",
    );
}

#[test]
fn stated_ranges_are_the_limits_enforced() {
    let run = threadlab(&["shared-data", "--help"]);
    assert!(run.stdout.contains("1..=64000000"), "{}", run.stdout);
    assert_usage_error(&["shared-data", "--size", "64000001"], "--size");
    assert_usage_error(&["race", "--budget", "-1"], "3600 seconds");
}

/// Runs `args` at pace 0.02 over a few seeds: exit 0 every time, no ✘ (the flags may rule a
/// claim out, and then the report says so in `not_shown` and a note).
fn holds_or_says_why(args: &[&str], not_shown: Option<&str>) {
    for seed in ["1", "2", "3"] {
        let mut all = args.to_vec();
        all.extend(["--pace", "0.02", "--seed", seed, "--json", "-q"]);
        let run = threadlab(&all);
        assert_eq!(run.code, 0, "{all:?}: {}\n{}", run.stderr, run.stdout);
        let r = run.json();
        assert_checks_hold(&r);
        if let Some(what) = not_shown {
            let said = r["not_shown"].to_string();
            assert!(said.contains(what), "{all:?}: not_shown {said}");
            assert!(r["notes"].to_string().contains("This setting cannot show"));
        }
    }
}

#[test]
fn flags_that_rule_a_lesson_out_say_so_instead_of_failing_it() {
    holds_or_says_why(&["lock", "--gap", "0"], None);
    holds_or_says_why(&["lock", "--tellers", "2", "--transactions", "1"], None);
    holds_or_says_why(&["philosophers", "--eat", "0"], Some("seated at once"));
    holds_or_says_why(&["thread-local", "--query", "0"], Some("shared connection"));
    holds_or_says_why(&["worker-pool", "--task", "0"], Some("in flight"));
    holds_or_says_why(&["event", "--tick", "0.01"], Some("polling loop"));
    holds_or_says_why(&["rate-limit"], None);
    assert_usage_error(
        &["condition", "--bug", "if", "--consumers", "1"],
        "--consumers",
    );
    assert_usage_error(&["timer", "--work", "0.49", "--interval", "0.5"], "--work");
}

#[test]
fn cpu_vs_io_with_no_work_says_what_it_cannot_show() {
    for flag in ["--cpu", "--io"] {
        let run = threadlab_alone(&["cpu-vs-io", flag, "0", "--pace", "0.02", "--json", "-q"]);
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
        let r = report(demo, &[]);
        let check = check_by_id(&r, "signal-waits-signal-ended");
        assert_eq!(check["ok"], true, "{demo}: {check}");
        assert_eq!(r["metrics"]["waits.found_by_poll"], 0, "{demo}");
        assert!(
            r["metrics"]["waits.woken_by_signal"].as_u64().unwrap() > 0,
            "{demo}"
        );
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
    let r = report("timer", &[]);
    assert!(
        metric(&r, "tutorial.most_ticks_at_once") >= 2,
        "its ticks overlap"
    );
    assert!(r["metrics"]["tutorial.last_late_ms"].is_number());
}

#[test]
fn the_screen_says_what_python_does_where_the_lab_differs() {
    for (args, said) in [
        (
            &["deadlock", "--fix", "none"][..],
            "Python would wait here forever",
        ),
        (&["philosophers", "--fix", "none"][..], "Python's acquire()"),
        (&["exceptions"][..], "t.join() returns None"),
        (&["rlock"][..], "Python raises RuntimeError"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--pace", "0.02"]);
        let run = threadlab(&all);
        let screen = format!("{}{}", run.stdout, run.stderr);
        assert!(screen.contains(said), "{all:?}:\n{screen}");
    }
}

/// An explain page quotes a default as a number followed, within a few words, by the flag
/// in backticks and parentheses: "9 calls (`--calls`)". Every such number must be the
/// flag's default, as `--help` states it.
#[test]
fn numbers_the_explain_pages_quote_are_the_demos_defaults() {
    let pages = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demos/pages");
    let mut quoted = 0;
    for entry in std::fs::read_dir(pages).unwrap() {
        let path = entry.unwrap().path();
        let demo = path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .replace('_', "-");
        let text = std::fs::read_to_string(&path).unwrap().replace('\n', " ");
        let help = threadlab(&[&demo, "--help"]).stdout;
        for (number, flag) in quoted_defaults(&text) {
            quoted += 1;
            let default = flag_default(&help, &flag)
                .unwrap_or_else(|| panic!("{demo}: the page quotes {flag}, which has no default"));
            let (a, b): (f64, f64) = (number.parse().unwrap(), default.parse().unwrap());
            assert_eq!(
                a, b,
                "{demo}: the page says {number} for {flag}; its default is {default}"
            );
        }
    }
    assert!(quoted >= 8, "only {quoted} quoted defaults found");
}

/// (number, flag) for every "N word word (`--flag`)" in `text`.
fn quoted_defaults(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("(`--") {
        let flag: String = rest[at + 2..].chars().take_while(|c| *c != '`').collect();
        let before: Vec<&str> = rest[..at].split_whitespace().rev().take(4).collect();
        if let Some(n) = before.iter().find_map(|w| {
            let w = w.trim_end_matches(|c: char| c.is_alphabetic() || c == ',');
            (!w.is_empty() && w.parse::<f64>().is_ok()).then(|| w.to_string())
        }) {
            found.push((n, flag));
        }
        rest = &rest[at + 3..];
    }
    found
}

/// The `[default: X]` that `--help` gives for `flag`.
fn flag_default(help: &str, flag: &str) -> Option<String> {
    let at = help.find(&format!("{flag} "))?;
    let after = &help[at..];
    let end = after[2..].find("\n  -").map_or(after.len(), |e| e + 2);
    let entry = &after[..end];
    let d = entry.find("[default: ")?;
    Some(entry[d + 10..].chars().take_while(|c| *c != ']').collect())
}

/// Runs `threadlab ARGS` with its stdout a pipe whose reader is already gone.
fn with_closed_stdout(args: &[&str]) -> std::process::ExitStatus {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("threadlab"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{args:?} did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_closed_pipe_costs_the_report_not_the_picture_and_leaves_no_scratch_file() {
    // -q: the run completes; only the summary meets the closed pipe.
    let d = scratch("pipe-q");
    let t = d.join("t.json");
    with_closed_stdout(&[
        "semaphore",
        "--pace",
        "0.02",
        "-q",
        "--trace",
        t.to_str().unwrap(),
    ]);
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&t).expect("the picture was written"))
            .expect("a whole trace");
    assert!(trace.to_string().contains("Worker"));
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        1,
        "no scratch file left"
    );
    // The narrative meets the closed pipe mid-run: no picture, and no scratch file either.
    let d = scratch("pipe-narrative");
    let t = d.join("t.json");
    with_closed_stdout(&[
        "semaphore",
        "--pace",
        "0.02",
        "--trace",
        t.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        0,
        "no scratch file left"
    );
}
