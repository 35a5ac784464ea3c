//! Every transcript the repo shows (a fenced block that begins `$ threadlab …` in the README
//! or an explain page, where the fence is ```` ```text ````) is checked against the binary: the command is run as written, and
//! with times, counts and seeds redacted, the transcript must show exactly the checks the
//! binary makes (no stale one, none missing) and only main-thread narrative lines the binary
//! still prints. Worker threads' lines interleave differently on every run, so they are not
//! compared; the main thread's narrative and the checks are the lesson's skeleton.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::Path;

/// One shown transcript: where it is, the command, and the text shown under it.
struct Transcript {
    at: String,
    args: Vec<String>,
    shown: String,
    /// A line `…` marks an excerpt: what it shows must still be printed, but it need not
    /// show everything.
    excerpt: bool,
}

fn transcripts() -> Vec<Transcript> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut pages: Vec<_> = std::fs::read_dir(root.join("src/demos/pages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    files.extend(pages);
    // `threadlab py`'s page, beside its module.
    files.push(root.join("src/py/page.md"));
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut lines = text.lines().enumerate().peekable();
        while let Some((n, line)) = lines.next() {
            // A bare fence (README) or a text one (an explain page is also rustdoc).
            if line != "```" && line != "```text" {
                continue;
            }
            let Some((_, first)) = lines.peek().copied() else {
                break;
            };
            let Some(cmd) = first.strip_prefix("$ threadlab ") else {
                continue;
            };
            // A stepping session needs a terminal: tests/schedule.rs plays it in tmux.
            if cmd.split_whitespace().any(|a| a == "--step") {
                continue;
            }
            lines.next();
            let mut shown = String::new();
            for (_, l) in lines.by_ref() {
                if l == "```" {
                    break;
                }
                shown.push_str(l);
                shown.push('\n');
            }
            found.push(Transcript {
                at: format!("{name}:{}", n + 2),
                args: cmd.split_whitespace().map(String::from).collect(),
                excerpt: shown.lines().any(|l| l.trim() == "…"),
                shown,
            });
        }
    }
    found
}

/// Times, counts, seeds and names' numbers out: "+1.234s", "131 442", "2.47x", "Worker-3".
fn redact(line: &str) -> String {
    // The elapsed time that leads a narrative line: "+1.234s ".
    let line = match line.strip_prefix('+').and_then(|l| l.split_once("s ")) {
        Some((t, rest)) if t.chars().all(|c| c.is_ascii_digit() || c == '.') => rest,
        _ => line,
    };
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            // One number, with its decimals and thousands groups ("131 442", "1.5").
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() || d == '.' || d == ',' {
                    chars.next();
                } else if d == ' ' {
                    let mut ahead = chars.clone();
                    ahead.next();
                    let group: String = ahead.clone().take(3).collect();
                    let after = ahead.clone().nth(3);
                    if group.len() == 3
                        && group.chars().all(|g| g.is_ascii_digit())
                        && !after.is_some_and(|a| a.is_ascii_digit())
                    {
                        chars.next();
                    } else {
                        break;
                    }
                } else {
                    break;
                }
            }
            out.push('#');
        } else {
            out.push(c);
        }
    }
    // Units and forms a number takes: all one.
    for unit in [
        " µs", " ms", " ns", " s", "µs", "ms", "s", "x", "×", " %", "%",
    ] {
        out = out.replace(&format!("#{unit}"), "#");
    }
    out.trim_end().to_string()
}

/// The checks of a summary: each name (with its wrapped continuation), redacted.
fn checks(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        // A check passed, failed, or made but inconclusive (a busy machine's timing: " ? ").
        let head = [" ✔ ", " ✘ ", " ? "]
            .into_iter()
            .find_map(|mark| line.strip_prefix(mark));
        if let Some(head) = head {
            if let Some(done) = current.take() {
                names.insert(redact(&done));
            }
            // A short check ends on its line: "name  (expected …, observed …)".
            let name = head.split("  (expected").next().unwrap_or("");
            current = Some(name.to_string());
        } else if let Some(name) = current.as_mut() {
            let cont = line.strip_prefix("   ").filter(|l| !l.starts_with(' '));
            match cont {
                Some(more) => {
                    name.push(' ');
                    name.push_str(more);
                }
                None => {
                    names.insert(redact(name));
                    current = None;
                }
            }
        }
    }
    if let Some(done) = current {
        names.insert(redact(&done));
    }
    names
}

/// The main thread's narrative lines, redacted, without the time.
fn main_lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            l.split_once(") ")
                .filter(|(head, _)| head.contains("(MainThread"))
        })
        .map(|(_, msg)| redact(msg))
        .collect()
}

#[test]
fn every_transcript_shown_is_what_the_binary_prints() {
    let all = transcripts();
    assert!(all.len() >= 20, "only {} transcripts found", all.len());
    // Two at a time (the machine has two cores); each run's output, in the transcripts' order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outputs = std::sync::Mutex::new(vec![String::new(); all.len()]);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(t) = all.get(i) else { break };
                    let args: Vec<&str> = t.args.iter().map(String::as_str).collect();
                    // cpu-vs-io times the cores: alone, as its own tests do.
                    let run = if args.first() == Some(&"cpu-vs-io") {
                        threadlab_alone(&args)
                    } else {
                        threadlab(&args)
                    };
                    outputs.lock().unwrap()[i] = format!("{}{}", run.stdout, run.stderr);
                }
            });
        }
    });
    let outputs = outputs.into_inner().unwrap();
    let mut problems = Vec::new();
    for (t, printed) in all.iter().zip(&outputs) {
        let (shown, made) = (checks(&t.shown), checks(printed));
        for c in shown.difference(&made) {
            problems.push(format!(
                "{}: shows a check the binary no longer makes: {c}",
                t.at
            ));
        }
        for c in made.difference(&shown).filter(|_| !t.excerpt) {
            problems.push(format!("{}: the binary makes a check not shown: {c}", t.at));
        }
        let said = main_lines(printed);
        for l in main_lines(&t.shown).difference(&said) {
            problems.push(format!(
                "{}: shows a line the binary no longer prints: {l}",
                t.at
            ));
        }
        if scheduled(&t.args) {
            problems.extend(same_screen(t, printed));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A run under the lab's scheduler is the same on every run: every line of it is
/// compared, not only the main thread's, with only real-time rates taken out.
fn scheduled(args: &[String]) -> bool {
    args.iter()
        .any(|a| ["--schedule", "--explore", "--search"].contains(&a.as_str()))
}

/// A scheduled transcript's lines against the binary's, each steadied (see [`steady`]):
/// every line shown is printed, and (unless an excerpt) every line printed is shown.
fn same_screen(t: &Transcript, printed: &str) -> Vec<String> {
    let lines = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && l.trim() != "…")
            .map(steady)
            .collect()
    };
    let (shown, made) = (lines(&t.shown), lines(printed));
    let mut problems: Vec<String> = shown
        .difference(&made)
        .map(|l| format!("{}: a scheduled run no longer prints: {l}", t.at))
        .collect();
    if !t.excerpt {
        problems.extend(
            made.difference(&shown)
                .map(|l| format!("{}: a scheduled run prints a line not shown: {l}", t.at)),
        );
    }
    problems
}

/// A line with what real time decides taken out: a rate ("4574 schedules/s") and how long
/// a search took ("found in 4.1 ms").
fn steady(line: &str) -> String {
    let mut l = line.trim_end().to_string();
    if let Some(at) = l.find(" schedules/s") {
        let start = l[..at].rfind(' ').map_or(0, |i| i + 1);
        l = format!("{}#{}", &l[..start], &l[at..]);
    }
    if let Some(at) = l.find("found in ") {
        l = format!("{}found in #", &l[..at]);
    }
    l
}

#[test]
fn redaction_keeps_words_and_drops_figures() {
    assert_eq!(
        steady("race: 6 schedules explored, 2 outcomes, 4574 schedules/s"),
        "race: 6 schedules explored, 2 outcomes, # schedules/s"
    );
    assert_eq!(
        redact("+1.234s [INFO ] (MainThread) lost 68 558 of 200 000 (34.3 %) in 3.1 ms, 2.47x"),
        "[INFO ] (MainThread) lost # of # (#) in #, #"
    );
    assert_eq!(redact("Worker-3 waited 61.2 ms"), "Worker-# waited #");
    let summary = " ✔ a check that wraps\n   onto a second line\n     expected: 1\n ✔ short  (expected 1, observed 1)\n";
    let names: Vec<String> = checks(summary).into_iter().collect();
    assert_eq!(names, ["a check that wraps onto a second line", "short"]);
    // An inconclusive check is still a check the binary makes.
    let doubted = " ? speedup with 2 threads\n     expected: < 1.30x\n     observed: 1.41x\n     inconclusive: the machine was busy\n";
    let names: Vec<String> = checks(doubted).into_iter().collect();
    assert_eq!(names, ["speedup with # threads"]);
}
