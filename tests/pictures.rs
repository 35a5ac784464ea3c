//! The pictures (`--timeline`, `--trace`, `--svg`): each format checked against its rules,
//! and against what the demo is known to do (a semaphore never has more holders than
//! permits; consumers wait only while the buffer is empty; the deadlock's cycle is marked).

#![allow(clippy::disallowed_methods)] // the tests wait for real

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A fresh path under the target directory for a picture file.
fn out_file(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pictures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Runs `demo` at pace 0.02 (cpu-vs-io 0.2) with `args`, writing a trace and an SVG; returns both and the
/// JSON report.
fn pictures(demo: &str, args: &[&str]) -> (Value, String, Value) {
    let trace = out_file(&format!("{demo}.json"));
    let svg = out_file(&format!("{demo}.svg"));
    let (t, s) = (trace.to_str().unwrap(), svg.to_str().unwrap());
    // cpu-vs-io measures speedups: at pace 0.2 its work stays above a busy machine's noise
    // (as in the curriculum tests).
    let pace = if demo == "cpu-vs-io" { "0.2" } else { "0.02" };
    let mut all = vec![
        demo, "--pace", pace, "--seed", "42", "--json", "--trace", t, "--svg", s,
    ];
    all.extend_from_slice(args);
    let report = if demo == "cpu-vs-io" {
        // Timed alone, and judged by the load it measured (see `assert_cpu_vs_io_verdict`).
        assert_cpu_vs_io_verdict(&threadlab_alone(&all))
    } else {
        let run = threadlab(&all);
        assert_eq!(run.code, 0, "{demo}: exit code; stderr:\n{}", run.stderr);
        run.json()
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap())
        .unwrap_or_else(|e| panic!("{demo}: the trace is not JSON: {e}"));
    (doc, std::fs::read_to_string(&svg).unwrap(), report)
}

/// The rules of the Trace Event format this file must keep; panics naming the first broken.
fn assert_valid_trace(demo: &str, doc: &Value) {
    let events = doc["traceEvents"]
        .as_array()
        .expect("traceEvents is an array");
    assert!(!events.is_empty(), "{demo}: no events");
    let mut named: HashSet<(u64, u64)> = HashSet::new();
    let mut processes: HashSet<u64> = HashSet::new();
    for e in events.iter().filter(|e| e["ph"] == "M") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        match e["name"].as_str() {
            Some("thread_name") => {
                assert!(
                    e["args"]["name"].as_str().is_some_and(|n| !n.is_empty()),
                    "{e}"
                );
                named.insert(key);
            }
            Some("process_name") => {
                processes.insert(key.0);
            }
            _ => {}
        }
    }
    let mut last_ts: HashMap<(u64, u64), f64> = HashMap::new();
    let mut stacks: HashMap<(u64, u64), Vec<f64>> = HashMap::new();
    let mut flows: HashMap<u64, (usize, usize)> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] != "M") {
        let ph = e["ph"].as_str().expect("every event has a phase");
        assert!(
            ["X", "i", "C", "s", "f"].contains(&ph),
            "{demo}: unexpected phase {e}"
        );
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        assert!(
            processes.contains(&key.0),
            "{demo}: process {} not named",
            key.0
        );
        assert!(
            named.contains(&key),
            "{demo}: tid {key:?} has no thread_name: {e}"
        );
        let ts = e["ts"].as_f64().expect("ts in microseconds");
        assert!(ts >= 0.0, "{demo}: {e}");
        let last = last_ts.entry(key).or_insert(0.0);
        assert!(ts >= *last, "{demo}: ts goes backwards on {key:?}: {e}");
        *last = ts;
        match ph {
            "X" => {
                let dur = e["dur"].as_f64().expect("a complete slice has a duration");
                assert!(dur >= 0.0, "{demo}: {e}");
                assert!(e["name"].as_str().is_some(), "{demo}: {e}");
                // Properly nested on its lane: it ends inside every slice it starts in.
                let stack = stacks.entry(key).or_default();
                while stack.last().is_some_and(|end| *end <= ts) {
                    stack.pop();
                }
                if let Some(end) = stack.last() {
                    assert!(
                        ts + dur <= *end + 0.002,
                        "{demo}: slice overlaps its parent: {e}"
                    );
                }
                stack.push(ts + dur);
            }
            "C" => assert!(e["args"]["value"].as_f64().is_some(), "{demo}: {e}"),
            "s" | "f" => {
                let id = e["id"].as_u64().expect("a flow has an id");
                let ends = flows.entry(id).or_default();
                if ph == "s" {
                    ends.0 += 1;
                } else {
                    assert_eq!(e["bp"], "e", "{demo}: {e}");
                    ends.1 += 1;
                }
            }
            _ => {}
        }
    }
    for (id, (s, f)) in flows {
        assert_eq!(
            (s, f),
            (1, 1),
            "{demo}: flow {id} must have one start and one end"
        );
    }
}

/// The SVG parses as XML and has a lane (with its name) for each of `threads`.
fn assert_svg_lanes(demo: &str, svg: &str, threads: &[&str]) -> Vec<(String, Vec<String>)> {
    let doc = roxmltree::Document::parse(svg)
        .unwrap_or_else(|e| panic!("{demo}: the SVG is not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let lanes: Vec<(String, Vec<String>)> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("lane"))
        .map(|g| {
            let name = g.attribute("data-thread").unwrap_or_default().to_string();
            let titles = g
                .descendants()
                .filter(|n| n.tag_name().name() == "title")
                .filter_map(|n| n.text().map(str::to_string))
                .collect();
            (name, titles)
        })
        .collect();
    for t in threads {
        assert!(lanes.iter().any(|(n, _)| n == t), "{demo}: no lane for {t}");
    }
    lanes
}

/// X slices on thread lanes named `name`, as (thread, start, end) in µs.
fn slices<'a>(doc: &'a Value, name: &str) -> Vec<(&'a str, f64, f64)> {
    let events = doc["traceEvents"].as_array().unwrap();
    let lane = |pid: &Value, tid: &Value| {
        events
            .iter()
            .find(|m| {
                m["ph"] == "M" && m["name"] == "thread_name" && m["pid"] == *pid && m["tid"] == *tid
            })
            .and_then(|m| m["args"]["name"].as_str())
            .unwrap_or("?")
    };
    events
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == 1 && e["name"] == name)
        .map(|e| {
            let ts = e["ts"].as_f64().unwrap();
            (
                lane(&e["pid"], &e["tid"]),
                ts,
                ts + e["dur"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The value of counter `track` just before or at `ts` (None before its first sample).
fn counter_at(doc: &Value, track: &str, ts: f64) -> Option<f64> {
    doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["ph"] == "C" && e["name"] == track && e["ts"].as_f64().unwrap() <= ts)
        .map(|e| e["args"]["value"].as_f64().unwrap())
}

#[test]
fn semaphore_pictures_never_show_more_holders_than_permits() {
    let (doc, svg, report) = pictures("semaphore", &["--threads", "7", "--permits", "3"]);
    assert_valid_trace("semaphore", &doc);
    let holds = slices(&doc, "hold 'permits'");
    assert!(holds.len() >= 7, "every worker held a permit: {holds:?}");
    let mut edges: Vec<(f64, i32)> = holds
        .iter()
        .flat_map(|(_, a, b)| [(*a, 1), (*b, -1)])
        .collect();
    edges.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    assert!(
        most <= 3,
        "at most 3 holders at once, the trace shows {most}"
    );
    assert_eq!(most, 3, "and the 3 permits were all in use at some point");
    // The counter track of permits available stays within 0..=3, and the arrows join each
    // release to the acquire it enabled.
    let available: Vec<f64> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "permits: available")
        .map(|e| e["args"]["value"].as_f64().unwrap())
        .collect();
    assert!(!available.is_empty() && available.iter().all(|v| (0.0..=3.0).contains(v)));
    let flows = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "s")
        .count();
    assert!(
        flows >= 4,
        "7 workers, 3 permits: at least 4 hand-overs, saw {flows}"
    );
    let workers: Vec<String> = (1..=7).map(|i| format!("Worker-{i}")).collect();
    let names: Vec<&str> = workers.iter().map(String::as_str).collect();
    let lanes = assert_svg_lanes("semaphore", &svg, &names);
    let holding = lanes
        .iter()
        .filter(|(name, t)| {
            name.starts_with("Worker") && t.iter().any(|t| t == "holding 'permits'")
        })
        .count();
    assert_eq!(holding, 7, "every worker's lane shows its hold");
    assert_eq!(report["ok"], true);
}

#[test]
fn condition_pictures_show_consumers_waiting_only_while_the_buffer_is_empty() {
    let (doc, svg, _) = pictures("condition", &[]);
    assert_valid_trace("condition", &doc);
    let waits: Vec<_> = slices(&doc, "wait 'buffer'")
        .into_iter()
        .filter(|(t, _, _)| t.starts_with("Consumer"))
        .collect();
    assert!(!waits.is_empty(), "the consumers waited");
    for (who, start, _) in &waits {
        let depth = counter_at(&doc, "buffer: depth", *start).unwrap_or(0.0);
        assert_eq!(
            depth, 0.0,
            "{who} began waiting at {start} µs with {depth} items in the buffer"
        );
    }
    // Each consumer wait that ended with an item is joined to the put that woke it.
    let flows: Vec<&Value> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "s" && e["name"] == "'buffer': signal → wake")
        .collect();
    assert!(!flows.is_empty());
    // … by the producer: a consumer is never drawn as woken by another consumer's take.
    let names: HashMap<u64, &str> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .filter_map(|e| Some((e["tid"].as_u64()?, e["args"]["name"].as_str()?)))
        .collect();
    let ends: HashMap<u64, u64> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "f")
        .filter_map(|e| Some((e["id"].as_u64()?, e["tid"].as_u64()?)))
        .collect();
    for start in &flows {
        let from = names[&start["tid"].as_u64().unwrap()];
        let to = names[&ends[&start["id"].as_u64().unwrap()]];
        if to.starts_with("Consumer") {
            assert_eq!(from, "Producer", "{to} woken by {from}: {start}");
        }
    }
    assert_svg_lanes("condition", &svg, &["Producer", "Consumer-1", "Consumer-2"]);
}

#[test]
fn deadlock_pictures_mark_the_cycle_and_the_stall() {
    let (doc, _, report) = pictures("deadlock", &["--fix", "none"]);
    assert_valid_trace("deadlock", &doc);
    let marks: Vec<&str> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "i" && e["cat"] == "mark")
        .filter_map(|e| e["name"].as_str())
        .collect();
    let cycle = marks
        .iter()
        .find(|m| m.starts_with("deadlock:"))
        .expect("the cycle is marked");
    assert!(
        cycle.contains("Teller-1") && cycle.contains("Teller-2"),
        "{cycle}"
    );
    assert!(
        cycle.contains("'account-A'") && cycle.contains("'account-B'"),
        "{cycle}"
    );
    assert!(
        marks
            .iter()
            .any(|m| m.starts_with("stall:") && m.contains("Clerk")),
        "{marks:?}"
    );
    // The narrative is there too, as instants on the threads that spoke.
    let narrative = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "i" && e["cat"] == "narrative")
        .count();
    assert!(narrative > 10, "narrative instants: {narrative}");
    assert_eq!(report["ok"], true);
}

#[test]
fn the_terminal_timeline_fits_100_columns_and_reads_without_colour() {
    let run = threadlab(&[
        "semaphore",
        "--pace",
        "0.02",
        "--seed",
        "3",
        "--timeline",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    assert!(!out.contains('\x1b'), "no colour with NO_COLOR:\n{out}");
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    for w in 1..=7 {
        let lane = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("Worker-{w} │")))
            .unwrap_or_else(|| panic!("no lane for Worker-{w}:\n{out}"));
        assert!(lane.contains('A'), "Worker-{w} held a permit:\n{out}");
    }
    // At no column do more than 3 lanes show a hold (the cells are coarse, so this holds
    // with a hand-over inside a cell counted once).
    let lanes: Vec<Vec<char>> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Worker-") && l.contains('│'))
        .map(|l| l.split('│').nth(1).unwrap_or("").chars().collect())
        .collect();
    let cols = lanes.iter().map(Vec::len).min().unwrap();
    let most = (0..cols)
        .map(|c| lanes.iter().filter(|l| l[c] == 'A').count())
        .max()
        .unwrap();
    assert!(most <= 3 + 1, "holders per column: {most}");
    assert!(
        out.contains("aA 'permits'"),
        "the legend names the primitive:\n{out}"
    );
    assert!(
        out.contains("time per thread"),
        "the accounting table:\n{out}"
    );
    assert!(out.contains("per primitive"), "{out}");
}

#[test]
fn every_demo_draws_valid_pictures() {
    for entry in lessons() {
        let demo = entry.name.as_str();
        let (doc, svg, report) = pictures(demo, entry.quick);
        assert_check_ids(&report);
        assert_valid_trace(demo, &doc);
        assert_svg_lanes(demo, &svg, &["MainThread"]);
        // (cpu-vs-io was judged by the load it measured, in `pictures`.)
        if demo != "cpu-vs-io" {
            assert_eq!(report["ok"], true, "{demo}");
        }
    }
}

#[test]
fn a_picture_file_that_cannot_be_written_is_one_clear_error_before_the_run() {
    for flag in ["--trace", "--svg"] {
        let run = threadlab(&["semaphore", flag, "/nonexistent-dir/x"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(flag) && run.stderr.contains("/nonexistent-dir/x"),
            "{}",
            run.stderr
        );
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing ran: {}", run.stdout);
    }
}

#[test]
fn a_run_that_fails_leaves_no_empty_picture_behind() {
    let trace = out_file("failed.json");
    let svg = out_file("failed.svg");
    let run = threadlab(&[
        "url-check",
        "/nonexistent-dir/urls.txt",
        "--trace",
        trace.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent-dir/urls.txt"),
        "{}",
        run.stderr
    );
    assert!(!trace.exists() && !svg.exists(), "no empty files left");
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

/// The moments the pictures must show (issue: "pictures that show the moment"): deadlock's
/// cycle as its two waits with an arrow from each to the other, its parts as labelled bands
/// whose threads never share a lane across parts, each mark at its own instant, race's reads
/// and writes as ticks with the lost update between two writes, and a queue's depth as a
/// strip.
#[test]
fn the_svg_shows_the_cycle_the_parts_the_race_and_the_marks_at_their_instants() {
    let (_, svg, report) = pictures("deadlock", &[]);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let class = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .collect::<Vec<_>>()
    };
    // Part 1's cycle: a wait each, an arrow each (the first cycle drawn is Part 1's).
    let cycle = class("cycle")[0];
    let waits = cycle
        .children()
        .filter(|n| n.attribute("class") == Some("cycle-wait"))
        .count();
    let arrows = cycle
        .children()
        .filter(|n| n.attribute("marker-end").is_some())
        .count();
    assert_eq!((waits, arrows), (2, 2), "{svg}");
    // Four parts, labelled; Teller-1 has a lane in each of the three parts it ran in.
    let parts: Vec<String> = class("part")
        .iter()
        .filter_map(|g| g.descendants().find(|n| n.tag_name().name() == "text"))
        .filter_map(|t| t.text().map(str::to_string))
        .collect();
    assert_eq!(parts, ["Part 1", "Part 2", "Part 3", "Part 4"]);
    let teller_lanes = class("lane")
        .iter()
        .filter(|g| g.attribute("data-thread") == Some("Teller-1"))
        .count();
    assert_eq!(teller_lanes, 3);
    assert!(!class("gauge").is_empty(), "the orders queue's depth");
    // Each mark's badge sits on the line through its instant.
    for m in class("mark") {
        let line = m
            .children()
            .find(|n| n.tag_name().name() == "line")
            .unwrap();
        let badge = m
            .children()
            .find(|n| n.tag_name().name() == "text")
            .unwrap();
        assert_eq!(line.attribute("x1"), badge.attribute("x"), "{svg}");
    }
    assert_eq!(report["ok"], true);

    let (_, svg, _) = pictures(
        "race",
        &[
            "--iterations",
            "3",
            "--window",
            "sleep:20000",
            "--strategy",
            "unsynchronized",
        ],
    );
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let count = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .count()
    };
    // 2 threads × 3 increments, each a read and a write.
    assert_eq!(count("step"), 12, "{svg}");
    assert!(
        count("lost") >= 1,
        "a lost update between two writes:\n{svg}"
    );

    // A put blocked on a full queue, a get on an empty one and queue.join() look and say
    // what they are (at the defaults the producer waits for room).
    let (_, svg, _) = pictures("producer-consumer", &[]);
    for said in [
        "waiting to put into 'queue': full, until a get",
        "waiting to get from 'queue': empty, until a put",
        "waiting in 'queue'.join() until every task_done()",
    ] {
        assert!(svg.contains(said), "{said}\n{svg}");
    }
}

/// In the terminal timeline, the waits that closed a cycle show at their moment however
/// short (refused at once, they took no time).
#[test]
fn the_terminal_timeline_shows_the_waits_of_the_cycle() {
    let run = threadlab(&[
        "deadlock",
        "--part",
        "1",
        "--pace",
        "0.1",
        "--timeline",
        "--no-color",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lane = |who: &str| {
        run.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{who} │")))
            .unwrap_or_else(|| panic!("no lane {who}:\n{}", run.stdout))
            .to_string()
    };
    // At the cycle's moment, one column: Teller-1 waits for b (while holding A), Teller-2
    // waits for a (while holding B), both shown however short the refused wait was.
    let cells =
        |who: &str| -> Vec<char> { lane(who).split('│').nth(1).unwrap_or("").chars().collect() };
    let (one, two) = (cells("Teller-1"), cells("Teller-2"));
    let together = (0..one.len().min(two.len())).any(|c| one[c] == 'b' && two[c] == 'a');
    assert!(together, "{}\n{}", lane("Teller-1"), lane("Teller-2"));
    assert!(lane("Teller-1").contains('A') && lane("Teller-2").contains('B'));
}
