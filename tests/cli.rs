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
        expected.push(format!("{}.rs", e.module));
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
        assert_eq!(
            threadlab(&["explain", &e.name]).stdout,
            e.page.replace("\\|", "|")
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
            row.contains(&format!("`src/demos/{}.rs`", e.module)),
            "{row}"
        );
    }
}
