//! The command line as a user meets it: help, list, global flags, output modes, errors.

mod common;
use common::*;

#[test]
fn help_lists_every_demo_with_a_summary() {
    let run = threadlab(&["--help"]);
    assert_eq!(run.code, 0);
    for demo in ["race-condition", "rlock", "semaphore", "condition", "list"] {
        assert!(run.stdout.contains(demo), "--help lacks {demo}");
    }
    assert!(run.stdout.contains("[alias: race]"));
}

#[test]
fn list_prints_the_demos_in_lesson_order() {
    let run = threadlab(&["list"]);
    assert_eq!(run.code, 0);
    // Continuation lines of a wrapped summary start with spaces.
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(
        run.stdout.lines().all(|l| l.chars().count() <= 100),
        "{}",
        run.stdout
    );
    assert_eq!(names, lesson_names());
    assert!(run.stdout.contains("alias basics") && run.stdout.contains("alias local"));
    assert!(run.stdout.contains("alias race"));
}

#[test]
fn demo_help_documents_flags_with_defaults() {
    let run = threadlab(&["race", "--help"]);
    assert_eq!(run.code, 0);
    for flag in [
        "--iterations",
        "--threads",
        "--strategy",
        "--window",
        "--trials",
        "--pace",
        "--seed",
        "--json",
        "--quiet",
        "--no-color",
    ] {
        assert!(run.stdout.contains(flag), "race --help lacks {flag}");
    }
    assert!(run.stdout.contains("[default: 100000]"));
}

#[test]
fn narrative_lines_carry_time_level_and_padded_thread_name() {
    let run = threadlab(&["semaphore", "--pace", "0.02", "--seed", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = regex_like_line(&run.stdout, "(MainThread) ");
    assert!(
        line.starts_with('+') && line.contains("s [INFO ] (MainThread) "),
        "{line}"
    );
    let worker = regex_like_line(&run.stdout, "(Worker-1  ) ");
    assert!(worker.contains("[INFO ] (Worker-1  ) "), "{worker}");
    // Whole lines only: every narrative line starts with a timestamp.
    for l in run.stdout.lines().take_while(|l| !l.is_empty()) {
        assert!(l.starts_with('+'), "interleaved or broken line: {l:?}");
    }
}

fn regex_like_line<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

#[test]
fn json_mode_puts_the_report_on_stdout_and_the_narrative_on_stderr() {
    let run = threadlab(&["race", "--iterations", "1000", "--json", "--seed", "9"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["demo"], "race-condition");
    assert_eq!(r["params"]["seed"], 9);
    assert_eq!(r["params"]["pace"], 1.0);
    assert!(r["wall_ms"].as_f64().unwrap() > 0.0);
    assert!(run.stderr.contains("(MainThread)"));
}

#[test]
fn quiet_mode_prints_only_the_summary() {
    let run = threadlab(&["rlock", "--pace", "0.02", "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("(MainThread)"));
    assert!(run.stdout.contains("✔"));
}

#[test]
fn the_seed_is_printed_and_stored_even_when_chosen_at_random() {
    let run = threadlab(&["semaphore", "--pace", "0.02", "--json"]);
    let r = run.json();
    let seed = r["params"]["seed"].as_u64().expect("seed in params");
    assert!(run.stderr.contains(&format!(
        "seed {seed} (replays durations, not thread order)"
    )));
}

#[test]
fn a_seed_replays_the_same_random_durations() {
    let holds = |seed: &str| {
        let run = threadlab(&["semaphore", "--pace", "0.01", "--json", "--seed", seed]);
        let r = run.json();
        (1..=7)
            .map(|i| r["metrics"][format!("Worker-{i}.hold_s")].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b, other) = (holds("5"), holds("5"), holds("6"));
    assert_eq!(a, b, "same seed, same draws");
    assert_ne!(a, other, "another seed, other draws");
    assert!(a.iter().all(|h| (0.5..=1.5).contains(h)));
}

#[test]
fn bad_arguments_exit_1_with_a_message_naming_the_flag() {
    assert_usage_error(&["race", "--threads", "0"], "--threads");
    assert_usage_error(&["race", "--iterations", "abc"], "--iterations");
    assert_usage_error(&["race", "--pace", "-1"], "--pace");
    assert_usage_error(&["race", "--pace", "0"], "--pace");
    assert_usage_error(&["race", "--window", "wide"], "--window");
    assert_usage_error(&["semaphore", "--permits", "0"], "--permits");
    assert_usage_error(&["condition", "--capacity", "0"], "--capacity");
    assert_usage_error(&["rlock", "--hold", "-3"], "--hold");
    assert_usage_error(&["no-such-demo"], "no-such-demo");
}

/// The registry is the one list of demos: each entry is its module and its page (nothing
/// else in `src/demos/`), its page opens with its name, and the README's lesson table
/// names the same demos, aliases and files, in the same order.
#[test]
fn the_registry_the_files_the_pages_and_the_readme_agree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let entries = lessons();
    let mut expected: Vec<String> = vec!["mod.rs".into(), "pages".into()];
    let mut pages: Vec<String> = Vec::new();
    for e in &entries {
        // A demo's module is a file, or a folder when it has parts of its own.
        let folder = root.join("src/demos").join(e.module).is_dir();
        expected.push(if folder {
            e.module.to_string()
        } else {
            format!("{}.rs", e.module)
        });
        pages.push(format!("{}.md", e.module));
        assert_eq!(
            e.module.replace('_', "-"),
            e.name,
            "module file = subcommand"
        );
        assert!(
            e.page.starts_with(&format!("{}: ", e.name)),
            "{}'s page opens with its name",
            e.name
        );
        // Piped, the page is rendered for 100 columns, without colour.
        assert_eq!(
            threadlab(&["explain", &e.name]).stdout,
            threadlab::explain::terminal(e.page, 100, false)
        );
    }
    let listing = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    expected.sort();
    pages.sort();
    assert_eq!(
        listing("src/demos"),
        expected,
        "src/demos holds the registry's modules"
    );
    assert_eq!(listing("src/demos/pages"), pages, "one page per demo");

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let rows: Vec<String> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| demo (alias)"))
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .map(str::to_string)
        .collect();
    assert_eq!(rows.len(), entries.len(), "one README row per demo");
    for (row, e) in rows.iter().zip(&entries) {
        let mut head = format!("| `{}`", e.name);
        for alias in &e.aliases {
            head.push_str(&format!(" (`{alias}`)"));
        }
        assert!(row.starts_with(&format!("{head} |")), "{row} ≠ {head}");
        assert!(
            row.contains(&format!("`src/demos/{}.rs`", e.module))
                || row.contains(&format!("`src/demos/{}/`", e.module)),
            "{row}"
        );
        // The last column says whether it takes --schedule, as the registry does.
        let last = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
        assert_eq!(last.starts_with("no: "), e.unscheduled.is_some(), "{row}");
    }
}

#[test]
fn bad_arguments_for_these_demos_exit_1_naming_the_flag() {
    // No list of URLs: the usage names the file and the offline way without one.
    assert_usage_error(&["url-check"], "<FILE>");
    assert_usage_error(&["url-check"], "threadlab url-check --demo");
    assert_usage_error(&["producer-consumer", "--consumers", "0"], "--consumers");
    assert_usage_error(&["producer-consumer", "--maxsize", "0"], "--maxsize");
    assert_usage_error(&["producer-consumer", "--shutdown", "never"], "--shutdown");
    assert_usage_error(&["pool", "--sweep", "0,x"], "--sweep");
    assert_usage_error(&["pool", "--workers", "0"], "--workers");
    assert_usage_error(&["daemon", "--mode", "zombie"], "--mode");
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
    // At pace 0.02 the limiter's one-second window has 3.3 ms of slack: too little to judge.
    holds_or_says_why(
        &["rate-limit"],
        Some("the limiter's rate in its busiest second"),
    );
    assert_usage_error(
        &["condition", "--bug", "if", "--consumers", "1"],
        "--consumers",
    );
    assert_usage_error(&["timer", "--work", "0.49", "--interval", "0.5"], "--work");
}
