//! The lab's scheduler from the outside: replay tokens, explorations' censuses, searches,
//! refusals, and stepping (in tmux).
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Run, Tmux, lessons, threadlab};
use serde_json::Value;
use threadlab::schedule::examples;

/// The demos that take `--schedule`, with flags for a small run.
fn scheduled_demos() -> Vec<(String, Vec<&'static str>)> {
    lessons()
        .into_iter()
        .filter(|e| e.unscheduled.is_none())
        .map(|e| {
            let quick = match e.name.as_str() {
                "race-condition" => vec!["--iterations", "50"],
                _ => e.quick.to_vec(),
            };
            (e.name, quick)
        })
        .collect()
}

/// The screen of a run: narrative and report, with what the OS chooses and no schedule can
/// (thread ids, native ids) redacted.
fn screen(run: &Run) -> String {
    let mut text = format!("{}\n--- stderr ---\n{}", run.stdout, run.stderr);
    for key in ["native id ", "ThreadId(", "\"native_id\": "] {
        text = redact_number_after(&text, key);
    }
    text
}

/// `text` with the digits after each `key` replaced by `N`.
fn redact_number_after(text: &str, key: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(key) {
        out.push_str(&rest[..at + key.len()]);
        let tail = &rest[at + key.len()..];
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        out.push('N');
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// The token a scheduled run printed (its JSON `schedule.token`).
fn token_of(run: &Run) -> String {
    run.json()["schedule"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no schedule.token:\n{}", run.stdout))
        .to_string()
}

fn with(args: &[&str], more: &[&str]) -> Vec<String> {
    args.iter().chain(more).map(|s| s.to_string()).collect()
}

fn run_owned(args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    threadlab(&args)
}

/// Every demo that takes `--schedule`: 50 random schedules, each replayed from its token,
/// give the same narrative and report, byte for byte (OS thread ids aside).
#[test]
fn every_random_schedule_replays_from_its_token_line_for_line() {
    let demos = scheduled_demos();
    let jobs: Vec<(String, Vec<&str>, u32)> = demos
        .iter()
        .flat_map(|(d, q)| (0..50).map(move |s| (d.clone(), q.clone(), s)))
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((demo, quick, seed)) = jobs.get(i) else {
                        break;
                    };
                    let base = with(&[demo.as_str()], quick);
                    let schedule = format!("random:{seed}");
                    let first = run_owned(&with(
                        &base.iter().map(String::as_str).collect::<Vec<_>>(),
                        &["--json", "--schedule", &schedule],
                    ));
                    let token = token_of(&first);
                    let again = run_owned(&with(
                        &base.iter().map(String::as_str).collect::<Vec<_>>(),
                        &["--json", "--schedule", &token],
                    ));
                    if screen(&first) != screen(&again) || first.code != again.code {
                        failures.lock().unwrap().push(format!(
                            "{demo} {schedule} → {token}:\n{}\n=== replay ===\n{}",
                            screen(&first),
                            screen(&again)
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} differ; the first:\n{}",
        failures.len(),
        failures[0]
    );
}

/// `--explore --json`'s census: outcome → schedules.
fn census(args: &[&str]) -> (Value, Vec<(String, u64, bool, String)>) {
    let mut all = args.to_vec();
    all.extend(["--explore", "--json"]);
    let run = threadlab(&all);
    assert_eq!(run.code, 0, "{all:?}: {}", run.stderr);
    let doc = run.json()["census"].clone();
    let rows = doc["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| {
            (
                o["outcome"].as_str().unwrap().to_string(),
                o["schedules"].as_u64().unwrap(),
                o["bug"].as_bool().unwrap(),
                o["token"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (doc, rows)
}

/// C(n, k).
fn binomial(n: u64, k: u64) -> u64 {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

/// Two threads, k increments each, a scheduling point at each read and each write: every
/// interleaving of the 4k steps runs once, C(4k, 2k) schedules; exactly those that never
/// split an increment, C(2k, k), lose nothing; lost updates exist for every k.
#[test]
fn exploring_race_counts_every_interleaving_against_the_combinatorics() {
    for k in 1..=3u64 {
        let iterations = k.to_string();
        let (doc, rows) = census(&[
            "race",
            "--iterations",
            &iterations,
            "--strategy",
            "unsynchronized",
        ]);
        assert_eq!(doc["schedules"], binomial(4 * k, 2 * k), "k = {k}");
        let total: u64 = rows.iter().map(|r| r.1).sum();
        assert_eq!(total, binomial(4 * k, 2 * k));
        let exact = format!("final {}", 2 * k);
        let none_lost = rows
            .iter()
            .find(|r| r.0 == exact)
            .expect("a schedule loses nothing");
        assert_eq!(none_lost.1, binomial(2 * k, k), "k = {k}");
        assert!(!none_lost.2, "no loss is no bug");
        assert!(
            rows.iter().any(|r| r.2 && r.0.contains("lost")),
            "k = {k}: {rows:?}"
        );
    }
    // k = 1 by hand: both reads before both writes (r1 r2 w1 w2, r1 r2 w2 w1, and the two
    // with r2 first) lose one update; the two orders with no overlap do not.
    let (_, rows) = census(&["race", "--iterations", "1", "--strategy", "unsynchronized"]);
    let got: Vec<(&str, u64)> = rows.iter().map(|r| (r.0.as_str(), r.1)).collect();
    assert_eq!(got, [("final 1 (1 lost)", 4), ("final 2", 2)]);
}

/// Each outcome's token replays that outcome.
#[test]
fn a_census_token_replays_its_outcome() {
    let args = examples::RACE;
    let (_, rows) = census(args);
    for (outcome, _, _, token) in rows {
        let mut all = args.to_vec();
        all.extend(["--json", "--schedule", &token]);
        let run = threadlab(&all);
        assert_eq!(run.json()["outcome"]["text"], outcome.as_str(), "{token}");
    }
}

/// The two tellers with no hold: some schedules close the cycle, and the detector finds
/// it; with lock ordering, no schedule does.
#[test]
fn exploring_the_tellers_finds_the_cycle_in_some_schedules_and_none_with_ordering() {
    let (_, rows) = census(examples::TELLERS);
    assert!(
        rows.iter().any(|r| r.2 && r.0.starts_with("cycle: ")),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| !r.2 && r.0 == "no deadlock"),
        "{rows:?}"
    );
    let (_, ordered) = census(&[
        "deadlock",
        "--part",
        "2",
        "--fix",
        "ordering",
        "--transfers",
        "2",
        "--accounts",
        "2",
        "--hold",
        "0",
        "--preemptions",
        "2",
    ]);
    assert!(!ordered.is_empty());
    assert!(
        ordered.iter().all(|r| !r.2 && r.0 == "no deadlock"),
        "{ordered:?}"
    );
}

/// condition's `if` bug loses in some schedules; `while` in none.
#[test]
fn exploring_condition_finds_the_if_bug_and_never_with_while() {
    let small = examples::CONDITION;
    let mut bug = small.to_vec();
    bug.extend(["--bug", "if"]);
    let (_, rows) = census(&bug);
    assert!(rows.iter().any(|r| r.2), "{rows:?}");
    assert!(rows.iter().any(|r| !r.2), "{rows:?}");
    let (_, rows) = census(small);
    assert!(rows.iter().all(|r| !r.2), "{rows:?}");
}

/// `--search` finds race's lost update and condition's `if` bug within 100 schedules, by
/// random and by PCT, and the token it prints replays the bug.
#[test]
fn search_finds_the_bug_and_its_token_replays_it() {
    let race = ["race", "--iterations", "3", "--strategy", "unsynchronized"];
    let condition: Vec<&str> = examples::CONDITION
        .iter()
        .copied()
        .chain(["--bug", "if"])
        .collect();
    for args in [&race[..], &condition[..]] {
        for strategy in ["random:1", "pct:1"] {
            let mut all = args.to_vec();
            all.extend(["--search", "100", "--schedule", strategy, "--json"]);
            let run = threadlab(&all);
            assert!(
                run.stderr.contains("--search: schedule "),
                "{all:?}: {}",
                run.stderr
            );
            let found = run.json();
            assert_eq!(found["outcome"]["bug"], true, "{all:?}");
            let token = found["schedule"]["token"].as_str().unwrap().to_string();
            let mut again = args.to_vec();
            again.extend(["--json", "--schedule", &token]);
            let replay = threadlab(&again).json();
            assert_eq!(replay["outcome"], found["outcome"], "{all:?} → {token}");
        }
    }
}

/// A scheduled run's JSON names its schedule; its times are virtual: the same on a replay.
#[test]
fn the_json_says_the_schedule_and_pictures_come_in_virtual_time() {
    let path = std::env::temp_dir().join(format!("threadlab-sched-{}.json", std::process::id()));
    let trace = path.to_str().unwrap();
    let run = threadlab(&[
        "deadlock",
        "--part",
        "1",
        "--hold",
        "2",
        "--schedule",
        "random:5",
        "--json",
        "--trace",
        trace,
    ]);
    let doc = run.json();
    let s = &doc["schedule"];
    assert_eq!(s["strategy"], "random:5");
    assert!(s["token"].as_str().unwrap().starts_with("deadlock."));
    assert!(s["points"].as_u64().unwrap() > 0);
    assert!(s["preemptions"].is_u64());
    // The tellers hold for --hold (2 s) of virtual time before they ask: the trace and the
    // report say so, though the run took milliseconds of real time.
    let picture: Value = serde_json::from_str(&std::fs::read_to_string(trace).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let last = picture["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["ts"].as_f64())
        .fold(0.0, f64::max);
    assert!(last >= 2e6, "the trace ends at {last} µs");
    assert!(doc["wall_ms"].as_f64().unwrap() >= 2000.0);
}

/// A child process watched under a schedule runs on the default schedule (its lines
/// replay); the moment the OS reports its exit is real time, said instead of timed.
#[test]
fn a_watched_child_replays_and_its_real_time_exit_is_not_passed_off_as_virtual() {
    for (args, unshown) in [
        (
            &["daemon", "--mode", "both"][..],
            "daemon: how soon after its main thread the OS ended the program",
        ),
        (&["threads"][..], "how long each child process lived"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--schedule", "random:1", "--json"]);
        let run = threadlab(&all);
        assert_eq!(run.code, 0, "{all:?}: {}", run.stderr);
        let report = run.json();
        let not_shown: Vec<&str> = report["not_shown"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(not_shown.contains(&unshown), "{all:?}: {not_shown:?}");
        assert!(
            run.stderr.contains("in the OS's real time"),
            "{}",
            run.stderr
        );
    }
}

/// Bad input: one line naming the flag, exit 1, nothing else printed.
#[test]
fn bad_scheduling_flags_get_one_line_naming_the_flag() {
    let race = threadlab(&[
        "race",
        "--iterations",
        "2",
        "--schedule",
        "random:4",
        "--json",
    ]);
    let token = token_of(&race);
    let other_args = threadlab(&["race", "--iterations", "3", "--schedule", &token]);
    let deadlock = threadlab(&["deadlock", "--schedule", &token]);
    for (args, said) in [
        (vec!["race", "--schedule", "fifo"], "--schedule"),
        (vec!["race", "--schedule", "random:x"], "--schedule"),
        (
            vec!["race", "--schedule", "race-condition.zz.q"],
            "--schedule",
        ),
        (
            vec!["cpu-vs-io", "--schedule", "random"],
            "--schedule: cpu-vs-io",
        ),
        (
            vec!["url-check", "--demo", "--explore"],
            "--explore: url-check",
        ),
        (
            vec!["shared-data", "--search", "10"],
            "--search: shared-data",
        ),
        (vec!["race", "--search", "0"], "--search"),
        (vec!["race", "--search", "99999999999"], "--search"),
        (vec!["race", "--step"], "--step: needs a terminal"),
        (vec!["race", "--preemptions", "2"], "--preemptions"),
        (vec!["race", "--explore"], "--explore: about"),
        (
            vec!["race", "--iterations", "1", "--explore", "--timeline"],
            "--explore: a census",
        ),
        (
            vec!["race", "--part", "1"],
            "--part 1: race-condition is not in parts",
        ),
        (vec!["deadlock", "--part", "5"], "--part"),
    ] {
        let run = threadlab(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(said), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
    for (run, said) in [
        (other_args, "other arguments"),
        (
            deadlock,
            "this token is for `race-condition`, not `deadlock`",
        ),
    ] {
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("--schedule: ") && run.stderr.contains(said),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
}

/// Ctrl-C ends an exploration at once: the census so far, said to be partial, exit 130.
#[test]
fn ctrl_c_ends_an_exploration_with_its_partial_census() {
    let mut run = common::Spawned::start(&[
        "philosophers",
        "--philosophers",
        "3",
        "--meals",
        "2",
        "--fix",
        "none",
        "--preemptions",
        "2",
        "--explore",
    ]);
    run.wait_for("--explore: about", std::time::Duration::from_secs(60));
    run.signal(libc::SIGINT);
    let (status, stdout, stderr, _) = run.finish(std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stdout.starts_with("philosophers: "), "{stdout}");
    assert!(
        stderr.contains("--explore: the census above is partial"),
        "{stderr}"
    );
}

/// A scheduled run never hangs: a thread that blocks outside the lab's primitives ends the
/// run with an error naming it (the bound shortened for the test).
#[test]
fn a_thread_stuck_outside_the_scheduler_is_named_and_the_run_ends() {
    let out = assert_cmd::Command::cargo_bin("threadlab")
        .unwrap()
        .args(["race", "--iterations", "2", "--schedule", "random:1", "-q"])
        .env("THREADLAB_STUCK_SECS", "1")
        .env("THREADLAB_TEST_STUCK", "Counter-1")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--schedule: thread Counter-1 ran 1 s without reaching a scheduling point"),
        "{stderr}"
    );
}

/// The README's transcript of the stepping session: its lines, bar the elisions.
fn readme_step_session() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let shown: Vec<String> = readme
        .lines()
        .skip_while(|l| {
            !l.starts_with("$ threadlab race --iterations 1 --strategy unsynchronized --step")
        })
        .skip(1)
        .take_while(|l| *l != "```")
        .filter(|l| l.trim() != "…" && !l.trim().is_empty())
        .map(|l| l.trim_end().to_string())
        .collect();
    assert!(shown.len() > 10, "the README shows the session");
    shown
}

/// `--step` in a terminal (tmux): the student picks who runs at each step and makes the
/// lost update; `t` shows the token so far, `u` undoes a step (the run starts again and
/// replays the steps before it). The README's transcript of the session is on the screen.
#[test]
fn stepping_in_a_terminal_lets_the_student_make_the_lost_update() {
    let bin = assert_cmd::cargo::cargo_bin("threadlab");
    let t = Tmux::start(&format!(
        "{} race --iterations 1 --strategy unsynchronized --step --no-color; sleep 60",
        bin.display()
    ));
    let s = t.wait_for("── step 1 ── who runs next?", 1);
    assert!(
        s.contains("[1] Counter-1: start") && s.contains("[2] Counter-2: start"),
        "{s}"
    );
    t.answer("1"); // Counter-1 reads 0
    let s = t.wait_for("── step 2 ──", 1);
    assert!(s.contains("[1] Counter-1: write 1 (read 0)"), "{s}");
    t.answer("2"); // Counter-2 reads 0 too
    let s = t.wait_for("── step 3 ──", 1);
    assert!(s.contains("[2] Counter-2: write 1 (read 0)"), "{s}");
    t.answer("t");
    t.wait_for("token: race-condition.", 1);
    t.answer("u"); // back to step 2, replaying step 1
    t.wait_for("── undo: replaying the first 1 choices ──", 1);
    t.wait_for("── step 2 ──", 2);
    t.answer("2");
    t.wait_for("── step 3 ──", 2);
    t.answer("1"); // Counter-1 writes 1; then Counter-2, alone, writes 1 over it
    let done = t.wait_for("⇒ next lesson", 1);
    let lost = "read 0, wrote 1, but 1 was there (both read 0): 1 increment lost";
    assert!(done.contains(lost), "{done}");
    assert!(
        done.contains("✔ unsynchronized counter: updates lost"),
        "{done}"
    );
    let on_screen: Vec<&str> = done.lines().map(str::trim_end).collect();
    for line in readme_step_session() {
        assert!(
            on_screen.contains(&line.as_str()),
            "README line not on the screen: {line}\n{done}"
        );
    }
    // The token replays the student's schedule.
    let token = done
        .lines()
        .find_map(|l| l.trim().strip_prefix("--schedule "))
        .expect("the token");
    let replay = threadlab(&[
        "race",
        "--iterations",
        "1",
        "--strategy",
        "unsynchronized",
        "--json",
        "--schedule",
        token,
    ]);
    assert_eq!(replay.json()["outcome"]["text"], "final 1 (1 lost)");
}
