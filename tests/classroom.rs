//! What the class sees: pages, help, paced durations in the text, the lessons visible at the
//! defaults, and summaries that fit 100 columns. Through the binary, at small paces.

mod common;
use common::*;

#[test]
fn every_demo_has_an_explain_page_with_every_part() {
    for demo in lesson_names() {
        let demo = demo.as_str();
        let run = threadlab(&["explain", demo]);
        assert_eq!(run.code, 0, "{demo}: {}", run.stderr);
        // Rendered: each heading on its line, underlined; no Markdown marks; 100 columns.
        for part in [
            "What to watch for",
            "Why it works",
            "The broken form",
            "Python and Rust",
        ] {
            let underlined = format!("\n{part}\n{}\n", "─".repeat(part.chars().count()));
            assert!(run.stdout.contains(&underlined), "{demo}: no {part:?}");
        }
        assert!(
            !run.stdout.contains("\n# ") && !run.stdout.contains("|---|"),
            "{demo}"
        );
        assert!(
            run.stdout.lines().all(|l| l.chars().count() <= 100),
            "{demo}"
        );
    }
    assert_eq!(threadlab(&["explain", "race"]).code, 0, "aliases work");
    assert_usage_error(&["explain", "nope"], "no demo 'nope'");
    // The handout: one printable HTML page per demo, the checked transcript in it.
    let one = threadlab(&["explain", "deadlock", "--html"]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(one.stdout.starts_with("<!DOCTYPE html>") && one.stdout.contains("<table>"));
    assert!(
        one.stdout
            .contains("$ threadlab deadlock --pace 0.5 --seed 3")
    );
    let all = threadlab(&["explain", "all", "--html"]);
    assert_eq!(
        all.stdout.matches("<section>").count(),
        lesson_names().len()
    );
}

#[test]
fn help_puts_the_demo_flags_first_and_the_global_flags_under_their_own_heading() {
    let run = threadlab(&["semaphore", "--help"]);
    let own = run.stdout.find("--permits").unwrap();
    let heading = run
        .stdout
        .find("Global flags:")
        .expect("a Global flags heading");
    let global = run.stdout.find("      --pace <F>").unwrap();
    assert!(own < heading && heading < global, "{}", run.stdout);
}

#[test]
fn verbose_shows_every_wait_and_release_and_quiet_by_default() {
    let args = [
        "semaphore",
        "--pace",
        "0.02",
        "--threads",
        "3",
        "--permits",
        "1",
    ];
    let plain = threadlab(&args);
    assert!(!plain.stdout.contains("[DEBUG]"));
    let mut verbose_args = args.to_vec();
    verbose_args.push("-v");
    let verbose = threadlab(&verbose_args);
    for step in [
        "waiting for 'permits'",
        "holding 'permits'",
        "released 'permits'",
    ] {
        assert!(verbose.stdout.contains(step), "-v shows {step:?}");
    }
    // Every release is announced before the wake-up it causes.
    let lines: Vec<&str> = verbose.stdout.lines().collect();
    let first_release = lines.iter().position(|l| l.contains("released 'permits'"));
    let first_wake = lines.iter().position(|l| l.contains("woke: done waiting"));
    assert!(first_release < first_wake, "{}", verbose.stdout);
}

#[test]
fn each_summary_names_the_next_lesson() {
    let run = threadlab(&["rlock", "--pace", "0.02"]);
    assert!(
        run.stdout.contains("next lesson: threadlab semaphore"),
        "{}",
        run.stdout
    );
    let json = threadlab(&["rlock", "--pace", "0.02", "--json"]);
    assert!(!json.stdout.contains("next lesson"), "JSON stays JSON");
}

#[test]
fn durations_in_the_text_are_the_ones_that_happened() {
    let daemon = threadlab(&[
        "daemon", "--mode", "graceful", "--pace", "0.5", "--work", "0.4",
    ]);
    assert!(
        daemon
            .stdout
            .contains("working for 200.0 ms [0.4 s at pace 1]"),
        "{}",
        daemon.stdout
    );
    let pool = threadlab(&["pool", "--pace", "0.1", "--scenario", "downloads"]);
    assert!(
        pool.stdout
            .contains("downloads of 50.0 ms [0.5 s at pace 1]"),
        "{}",
        pool.stdout
    );
    let sem = threadlab(&["semaphore", "--pace", "0.1", "--seed", "3"]);
    assert!(sem.stdout.contains("s at pace 1]"), "{}", sem.stdout);
    assert!(
        !sem.stdout.contains("held 0.") && !sem.stdout.contains(" 1.2 s"),
        "no unscaled hold shown: {}",
        sem.stdout
    );
}

#[test]
fn the_if_bug_is_runnable_and_caught_and_the_while_loop_never_misses() {
    for seed in ["1", "2", "3"] {
        let run = |extra: &[&str]| {
            let mut args = vec!["condition", "--pace", "0.02", "--json", "--seed", seed];
            args.extend_from_slice(extra);
            let run = threadlab(&args);
            assert_eq!(run.code, 0, "{}", run.stderr);
            run.json()
        };
        let bug = run(&["--bug", "if"]);
        assert_checks_hold(&bug);
        assert!(metric(&bug, "took_nothing") >= 1, "the bug shows");
        assert_eq!(metric(&bug, "consumed"), 7);
        let fixed = run(&[]);
        assert_eq!(metric(&fixed, "took_nothing"), 0);
    }
}

#[test]
fn after_an_extra_release_a_plain_semaphore_admits_one_worker_too_many() {
    for permits in ["1", "3"] {
        let r = report("semaphore", &["--bounded", "--permits", permits]);
        assert_checks_hold(&r);
        let p: u64 = permits.parse().unwrap();
        assert_eq!(metric(&r, "over_release.plain_most_holders"), p + 1);
        assert!(metric(&r, "over_release.bounded_most_holders") <= p);
    }
}

#[test]
fn at_the_defaults_the_producer_is_seen_waiting_for_room() {
    for seed in ["1", "2", "3", "4", "5", "6"] {
        // At pace 0.2: a busy machine's delays stay small next to the work.
        let run = threadlab(&["producer-consumer", "--pace", "0.2", "--seed", seed]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains("Queue full (3): waiting for room"),
            "seed {seed}"
        );
        // And when the task that waited went in, after the line that said it was added.
        let lines: Vec<&str> = run.stdout.lines().collect();
        let went = lines
            .iter()
            .position(|l| l.contains("' went in after "))
            .unwrap_or_else(|| panic!("seed {seed}: {}", run.stdout));
        let task = lines[went].split('\'').nth(1).unwrap();
        let adding = format!("Adding '{task}' to queue.");
        assert!(
            lines[..went].iter().any(|l| l.ends_with(&adding)),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("Results collected from the result queue: [0, 1, 4, 9")
        );
    }
}

#[test]
fn the_slow_motion_race_tells_every_step_in_order() {
    let run = threadlab(&[
        "race",
        "--iterations",
        "5",
        "--window",
        "sleep:20000",
        "--strategy",
        "unsynchronized",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let message = |l: &str| {
        l.split_once(") ")
            .map(|(_, m)| m.to_string())
            .unwrap_or_default()
    };
    let is_read = |m: &str| m.starts_with("read ") && !m.contains("wrote");
    let is_write = |m: &str| m.contains("wrote ");
    let msgs: Vec<String> = run.stdout.lines().map(message).collect();
    let reads = msgs.iter().filter(|m| is_read(m)).count();
    let writes = msgs.iter().filter(|m| is_write(m)).count();
    assert_eq!((reads, writes), (10, 10), "{}", run.stdout);
    // Each thread alternates: a read, then the write of what it read plus one.
    for thread in ["(Counter-1 )", "(Counter-2 )"] {
        let steps: Vec<String> = run
            .stdout
            .lines()
            .filter(|l| l.contains(thread))
            .map(message)
            .collect();
        for pair in steps.chunks(2) {
            assert!(is_read(&pair[0]) && is_write(&pair[1]), "{pair:?}");
        }
    }
}

/// Every line a demo prints (narrative, tables, checks, notes, the timeline) fits a
/// 100-column screen: the narrative wraps at spaces under its message, as on a terminal,
/// and no table is wider than the screen.
#[test]
fn every_line_fits_100_columns() {
    let lessons = common::lessons();
    let mut runs: Vec<Vec<&str>> = lessons
        .iter()
        .map(|e| {
            let mut a = vec![e.name.as_str()];
            a.extend(e.quick.iter().copied());
            a
        })
        .collect();
    runs.extend([
        vec!["cpu-vs-io", "--python"],
        vec!["race", "--python", "--iterations", "20000"],
        vec!["race", "--budget", "2"],
        vec!["semaphore", "--bounded"],
        vec!["condition", "--bug", "if"],
        vec!["daemon", "--mode", "both"],
        vec!["deadlock", "--timeline"],
        vec!["producer-consumer", "--timeline"],
    ]);
    for demo in runs {
        let mut args = demo.clone();
        args.extend(["--pace", "0.02"]);
        let run = common::threadlab_env(&args, &[("COLUMNS", "100")]);
        for line in run.stdout.lines() {
            assert!(
                line.chars().count() <= 100 || line.starts_with(" line") || line.contains("http"),
                "{demo:?}: {} columns: {line}",
                line.chars().count()
            );
        }
    }
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

/// The time a narrative line carries: `+0.021s …`.
fn stamp(line: &str) -> f64 {
    let t = line
        .trim()
        .strip_prefix('+')
        .and_then(|l| l.split('s').next());
    t.and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time on {line:?}"))
}

/// `--pause` in a terminal: the run stops at the cycle (the victim's next line is held back
/// while it waits), before each part, at the stall and before the evidence; the clock stops
/// meanwhile, so the held line's time is the demo's own, not the pause's.
#[test]
fn pause_stops_at_each_part_and_key_moment_with_the_screen_held_and_the_clock_stopped() {
    let bin = assert_cmd::cargo::cargo_bin("threadlab");
    let t = Tmux::start(&format!(
        "{} deadlock --pause --pace 0.05 --no-color; echo EXIT=$?; sleep 60",
        bin.display()
    ));
    let s = t.wait_for("⏸  a cycle closed", 1);
    t.idle(800);
    let held = t.screen();
    assert!(!held.contains("I am the deadlock's victim"), "{held}");
    let closed = held
        .lines()
        .find(|l| l.contains("the cycle: "))
        .map(stamp)
        .expect("the cycle's line");
    t.answer("");
    for (n, prompt) in [
        (2, "Part 1 is done; Part 2 next"),
        (3, "Part 2 is done; Part 3 next"),
        (4, "Part 3 is done; Part 4 next"),
    ] {
        let s = t.wait_for(prompt, 1);
        assert!(!s.contains(&format!("Part {n}:")), "{s}");
        if n == 2 {
            let refused = s
                .lines()
                .find(|l| l.contains("I am the deadlock's victim"))
                .map(stamp)
                .expect("the victim's line");
            assert!(
                refused - closed < 0.5,
                "the pause counted: {closed} → {refused}"
            );
        }
        t.answer("");
    }
    t.wait_for("⏸  a wait nobody is left to end", 1);
    t.answer("");
    t.wait_for("⏸  the run is over; the evidence next", 1);
    assert!(!t.screen().contains("deadlock: wall"), "{s}");
    t.answer("");
    let done = t.wait_for("EXIT=", 1);
    assert!(
        done.contains("EXIT=0") && done.contains("deadlock: wall"),
        "{done}"
    );
}

/// race `--pause`: the prompt at the first lost update stays on the screen (the progress
/// bar is off it while it waits), and the counters stop and go on together, so the race
/// after the pause is still a race: one counter running alone would lose nothing more.
#[test]
fn race_pause_keeps_its_prompt_on_screen_and_the_race_going_after_it() {
    let bin = assert_cmd::cargo::cargo_bin("threadlab");
    let t = Tmux::start(&format!(
        "{} race --pause --no-color --iterations 200000 --strategy unsynchronized; echo EXIT=$?; sleep 60",
        bin.display()
    ));
    t.wait_for("⏸  the first lost update", 1);
    t.idle(800);
    let held = t.screen();
    assert!(held.contains("⏸  the first lost update"), "{held}");
    t.answer("");
    t.wait_for("⏸  the run is over", 1);
    t.answer("");
    let done = t.wait_for("EXIT=", 1);
    let lost: u64 = done
        .lines()
        .find(|l| l.contains("unsynchronized: final"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split(" lost").next())
        .map(|n| n.chars().filter(char::is_ascii_digit).collect::<String>())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no final count: {done}"));
    assert!(
        lost >= 100,
        "{lost} lost after the pause: the counters did not race on\n{done}"
    );
}

/// `q` at a `--pause` prompt ends the run with the evidence so far, as a Ctrl-C would; off a
/// terminal `--pause` is ignored with a note and the run goes through.
#[test]
fn q_at_a_pause_ends_with_the_evidence_so_far_and_off_a_terminal_pause_is_ignored() {
    let bin = assert_cmd::cargo::cargo_bin("threadlab");
    let t = Tmux::start(&format!(
        "{} lock --pause --pace 0.05 --no-color; echo EXIT=$?; sleep 60",
        bin.display()
    ));
    t.wait_for("Part 1 is done; Part 2 next", 1);
    t.answer("q");
    let done = t.wait_for("EXIT=", 1);
    assert!(done.contains("EXIT=130"), "{done}");
    assert!(
        done.contains("Interrupted by q at a --pause prompt") && done.contains("lock: wall"),
        "{done}"
    );
    assert!(!done.contains("Part 2:"), "{done}");
    let run = threadlab(&["event", "--pause", "--pace", "0.02"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("--pause stops only"), "{}", run.stderr);
    assert!(run.stdout.contains("event: wall"), "{}", run.stdout);
    // A census or a search runs the demo many times: no pauses there.
    assert_usage_error(&["race", "--pause", "--explore"], "--pause");
}

/// `--class`: no level tag; the summary shows the checks the registry names as the lesson's
/// and folds the rest into one counted line; `--checks all` shows them all. Every lesson id
/// of every demo is one its run reports.
#[test]
fn class_drops_the_level_and_folds_the_summary_to_the_lessons_checks() {
    let run = threadlab(&["deadlock", "--class", "--pace", "0.02"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("[INFO") && !run.stdout.contains("[WARN"));
    assert!(
        run.stdout.contains("(MainThread) Part 1: "),
        "{}",
        run.stdout
    );
    let all = report("deadlock", &[]);
    let total = all["checks"].as_array().unwrap().len();
    let lesson = common::lessons()
        .into_iter()
        .find(|e| e.name == "deadlock")
        .unwrap()
        .lesson;
    let shown = run.stdout.lines().filter(|l| l.starts_with(" ✔ ")).count() - 1;
    assert_eq!(shown, lesson.len(), "{}", run.stdout);
    let folded = format!(
        "✔ {} more checks hold (--checks all shows them)",
        total - shown
    );
    assert!(run.stdout.contains(&folded), "{folded}\n{}", run.stdout);
    let every = threadlab(&["deadlock", "--class", "--checks", "all", "--pace", "0.02"]);
    assert!(
        !every.stdout.contains("more checks hold"),
        "{}",
        every.stdout
    );
    for c in all["checks"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        // A claim made once per run ("ordering: …", "timeout: …") is printed once for all.
        let claim = name.split_once(": ").map_or(name, |(_, claim)| claim);
        let head: String = claim.chars().take(40).collect();
        assert!(every.stdout.contains(&head), "{name}\n{}", every.stdout);
    }
    // Each lesson id is one the demo reports (whether it held or not on this machine: the
    // ids are the point here, and the demos' own tests judge the checks).
    for e in common::lessons() {
        // cpu-vs-io at 0.2: its work must outweigh starting the threads.
        let pace = if e.name == "cpu-vs-io" { "0.2" } else { "0.05" };
        let mut args: Vec<&str> = vec![&e.name, "--pace", pace, "--json"];
        args.extend(e.quick.iter().copied());
        if e.name == "cpu-vs-io" && python3_available() {
            args.push("--python");
        }
        let r = threadlab(&args).json();
        for id in e.lesson {
            if id.starts_with("python-") && !python3_available() {
                continue;
            }
            // A claim the setting ruled out (a busy machine's thread start outweighing the
            // work) is said in `not_shown` instead of checked.
            let full = format!("{}.{id}", e.name);
            let there = r["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == full.as_str());
            let ruled_out = r["not_shown"].as_array().is_some_and(|n| !n.is_empty());
            assert!(there || ruled_out, "{full} in {}", r["checks"]);
        }
    }
}

/// Where Python answers differently, the screen says what Python does at that moment: the
/// timer's cancel() (None either way), try-lock (a bool), the plain lock's owner (it waits for
/// itself), threading.local(), the condition's notify_all(), and shared-data's Python column.
#[test]
fn the_screen_says_python_s_words_where_they_differ() {
    for (args, said) in [
        (&["timer"][..], "Python's cancel() returns None either way"),
        (
            &["lock", "--part", "2"][..],
            "Python: acquire(blocking=False) → False",
        ),
        (&["rlock"][..], "Python's Lock would hang here forever"),
        (&["thread-local"][..], "Python's threading.local()"),
        (&["condition"][..], "(Python: cond.notify_all())"),
        (
            &["shared-data", "--size", "20000", "--updates", "20000"][..],
            "a dict + one Lock",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--pace", "0.02"]);
        let run = threadlab(&all);
        assert_eq!(run.code, 0, "{all:?}: {}", run.stderr);
        assert!(run.stdout.contains(said), "{all:?}: {said}\n{}", run.stdout);
    }
    // The words of the check, not the enum's: "in time", "too late".
    // Ticks every 100 ms and a 100 ms timer (at pace 0.02): a busy machine's stall of 20 ms
    // is no drift, and the halfway cancel() lands 50 ms before the deadline.
    let r = report(
        "timer",
        &[
            "--interval",
            "5",
            "--work",
            "1.5",
            "--ticks",
            "4",
            "--delay",
            "5",
        ],
    );
    let halfway = check_by_id(&r, "timer-cancelled-halfway-cancel-answer");
    assert!(
        halfway["observed"]
            .as_str()
            .unwrap()
            .starts_with("in time;"),
        "{halfway}"
    );
    let after = check_by_id(&r, "timer-cancelled-after-fired-cancel");
    assert!(
        after["observed"].as_str().unwrap().starts_with("too late;"),
        "{after}"
    );
}

/// `threadlab tour` in a terminal: a title card per lesson (its summary and what to watch
/// for), the demo with `--class` and `--pause`, `s` skips a lesson, and the tour ends after
/// the last one. Off a terminal, the lessons run one after another.
#[test]
fn the_tour_shows_a_card_per_lesson_and_runs_them_in_order_one_key_apart() {
    let bin = assert_cmd::cargo::cargo_bin("threadlab");
    let t = Tmux::start(&format!(
        "{} tour --only deadlock,semaphore,event --pace 0.05 --no-color; echo EXIT=$?; sleep 60",
        bin.display()
    ));
    let card = t.wait_for("Lesson 1 of 3: semaphore", 1);
    assert!(card.contains("What to watch for:"), "{card}");
    assert!(
        !card.contains("permits held)\n+"),
        "the lesson waits for Enter:\n{card}"
    );
    t.answer("");
    t.wait_for("⏸  the run is over; the evidence next", 1);
    t.answer("");
    t.wait_for("Lesson 2 of 3: deadlock", 1);
    t.answer("s");
    t.wait_for("Lesson 3 of 3: event", 1);
    assert!(
        !t.screen().contains("deadlock: wall"),
        "deadlock was skipped:\n{}",
        t.screen()
    );
    t.answer("");
    // Every pause of the lesson, then the end of the tour.
    let mut done = String::new();
    for _ in 0..20 {
        done = t.screen();
        if done.contains("EXIT=") {
            break;
        }
        t.answer("");
        t.idle(300);
    }
    assert!(
        done.contains("tour: 3 lessons done") && done.contains("EXIT=0"),
        "{done}"
    );
    assert!(
        done.contains("semaphore: wall") && done.contains("event: wall"),
        "{done}"
    );
    // (MainThread) with no level tag: the lessons run with --class.
    assert!(
        done.contains("(MainThread) Part 1: ") && !done.contains("[INFO"),
        "{done}"
    );

    let run = threadlab(&["tour", "--only", "event,semaphore", "--pace", "0.02"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("not on a terminal"), "{}", run.stderr);
    let (sem, ev) = (
        run.stdout.find("semaphore: wall").expect("semaphore ran"),
        run.stdout.find("event: wall").expect("event ran"),
    );
    assert!(sem < ev, "lesson order:\n{}", run.stdout);
    assert_usage_error(&["tour", "--only", "nope"], "'nope'");
}

/// `tour | head -1` ends quietly, as a demo does on a closed pipe (SIGPIPE, 141), never with
/// a panic; `explain all` without --html says what `all` goes with.
#[test]
fn the_tour_on_a_closed_pipe_ends_quietly() {
    let (stdout, stderr) = piped_to_head("tour --only race --pace 0.02");
    assert!(stdout.contains("rc=141"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_usage_error(&["explain", "all"], "`all` goes with --html");
}
