//! url-check through the binary against servers on 127.0.0.1 started by the tests themselves:
//! threadlab's own server in this process, and a raw TCP server that drips its headers.
//! No test touches any other address.
#![allow(clippy::disallowed_methods)] // std::thread::sleep is denied in src/demos only

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use threadlab::serve::Server;

fn server() -> Server {
    Server::start("127.0.0.1:0".parse().unwrap(), false).expect("loopback server")
}

/// Writes `lines` to a file unique to this test and returns its path.
fn list_file(name: &str, lines: &[u8]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("threadlab-test-{}-{name}.txt", std::process::id()));
    std::fs::write(&path, lines).unwrap();
    path
}

fn url_check(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["url-check", "--json", "--quiet"];
    all.extend_from_slice(args);
    let run = threadlab(&all);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let code = run.code;
    (code, run.json(), run.stderr)
}

fn results(r: &Value) -> &Vec<Value> {
    r["results"].as_array().expect("results")
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_line_yields_one_result_in_input_order_with_its_status_or_error_kind() {
    let s = server();
    let b = s.base_url();
    let port = closed_port();
    let mut input = format!(
        "{b}/get\n\n# a comment\n{b}/status/404\n{b}/status/500\n{b}/redirect/3\n{b}/redirect-loop\n\
         http://127.0.0.1:{port}/\nftp://127.0.0.1/file\nnot a url\n{b}/get\n"
    )
    .into_bytes();
    input.extend_from_slice(b"\xff\xfe broken\n");
    let path = list_file("kinds", &input);
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(code, 2, "failing URLs exit 2");
    let rs = results(&r);
    let lines: Vec<u64> = rs.iter().map(|x| x["line"].as_u64().unwrap()).collect();
    assert_eq!(
        lines,
        vec![1, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        "one result per line, in input order"
    );
    let kind = |i: usize| rs[i]["kind"].as_str().map(str::to_string);
    assert_eq!(rs[0]["status"], 200);
    assert_eq!(rs[0]["ok"], true);
    assert!(rs[0]["thread"].as_str().unwrap().starts_with("Checker_"));
    assert_eq!(
        (rs[1]["status"].clone(), kind(1)),
        (Value::from(404), Some("status".into()))
    );
    assert_eq!(rs[2]["status"], 500);
    assert_eq!(
        (rs[3]["status"].clone(), rs[3]["ok"].clone()),
        (Value::from(200), Value::from(true)),
        "redirects followed"
    );
    assert_eq!(kind(4).as_deref(), Some("redirect loop"));
    assert!(
        rs[4]["error"].as_str().unwrap().contains("/redirect-loop"),
        "the loop is named"
    );
    assert_eq!(kind(5).as_deref(), Some("connection refused"));
    assert_eq!(rs[6]["error"], "unsupported scheme 'ftp'");
    assert_eq!(kind(7).as_deref(), Some("invalid URL"));
    assert_eq!(rs[8]["status"], 200, "a duplicate line is reported again");
    assert_eq!(kind(9).as_deref(), Some("invalid line"));
    let summary = &r["summary"];
    assert_eq!(summary["total"], 10);
    assert_eq!(summary["ok"], 3);
    assert_eq!(summary["failed"], 7);
    assert_eq!(summary["skipped_lines"], 2);
    assert!(summary["wall_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn https_to_a_plain_http_port_is_a_tls_error() {
    let s = server();
    let url = format!("https://{}/get\n", s.addr());
    let path = list_file("tls", url.as_bytes());
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--timeout", "5"]);
    assert_eq!(code, 2);
    assert_eq!(results(&r)[0]["kind"], "TLS error", "{}", results(&r)[0]);
}

#[test]
fn all_accepted_exits_0_and_accept_ranges_change_what_counts() {
    let s = server();
    let b = s.base_url();
    let path = list_file("accept", format!("{b}/get\n{b}/status/404\n").as_bytes());
    let (code, _, _) = url_check(&[path.to_str().unwrap()]);
    assert_eq!(code, 2);
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--accept", "200..=299,404"]);
    assert_eq!(code, 0);
    assert_eq!(r["summary"]["ok"], 2);
}

#[test]
fn max_redirects_is_enforced() {
    let s = server();
    let path = list_file(
        "redirects",
        format!("{}/redirect/5\n", s.base_url()).as_bytes(),
    );
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--max-redirects", "2"]);
    assert_eq!(code, 2);
    assert_eq!(results(&r)[0]["kind"], "too many redirects");
    let (code, _, _) = url_check(&[path.to_str().unwrap(), "--max-redirects", "5"]);
    assert_eq!(code, 0);
}

/// A server that sends a status line and then one header byte every 100 ms, for 5 s at most.
fn drip_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 1024];
                        let _ = stream.read(&mut buf);
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Drip: ");
                        for _ in 0..50 {
                            if stream.write_all(b"x").is_err() {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

#[test]
fn timeouts_hold_against_slow_and_dripping_servers() {
    let s = server();
    let drip = drip_server();
    let input = format!("{}/delay/5\nhttp://127.0.0.1:{drip}/\n", s.base_url());
    let path = list_file("timeouts", input.as_bytes());
    let started = Instant::now();
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--timeout", "0.5"]);
    assert_eq!(code, 2);
    for res in results(&r) {
        assert_eq!(res["kind"], "timeout", "{res}");
        // Generous bound (8x the timeout): what matters is it did not wait 5 s.
        assert!(res["elapsed_ms"].as_f64().unwrap() < 4000.0, "{res}");
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_huge_body_is_checked_without_downloading_it() {
    let s = server();
    let path = list_file(
        "huge",
        format!("{}/bytes/20000000000\n", s.base_url()).as_bytes(),
    );
    let (code, r, _) = url_check(&[path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let res = &results(&r)[0];
    assert_eq!(res["status"], 200);
    // 20 GB would take far longer than this to read even on loopback.
    assert!(res["elapsed_ms"].as_f64().unwrap() < 3000.0, "{res}");
    assert!(r["summary"]["peak_rss_mb"].as_f64().unwrap() < 200.0);
}

#[test]
fn retries_recover_a_flaky_endpoint_and_count_attempts() {
    let s = server();
    let b = s.base_url();
    let path = list_file("retry", format!("{b}/unstable/retry-a/2\n").as_bytes());
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--retries", "2"]);
    assert_eq!(code, 0);
    assert_eq!(results(&r)[0]["attempts"], 3);
    let path = list_file("noretry", format!("{b}/unstable/retry-b/2\n").as_bytes());
    let (code, r, _) = url_check(&[path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(results(&r)[0]["status"], 503);
    assert_eq!(results(&r)[0]["attempts"], 1);
}

#[test]
fn stdin_is_read_with_a_dash_and_compare_adds_the_speedup() {
    let s = server();
    let b = s.base_url();
    let input = format!("{b}/delay/0.2\n{b}/delay/0.2\n{b}/delay/0.2\n{b}/delay/0.2\n");
    let run = threadlab_with_stdin(
        &[
            "url-check",
            "-",
            "--json",
            "-q",
            "--compare",
            "--workers",
            "4",
        ],
        &input,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["demo"], "url-check");
    assert_eq!(r["summary"]["total"], 4);
    let speedup = r["summary"]["speedup"].as_f64().unwrap();
    assert!(r["summary"]["sequential_ms"].as_f64().unwrap() > 0.0);
    assert!(
        speedup > 1.5,
        "4 parallel 0.2 s waits beat 4 sequential ones ({speedup}x)"
    );
}

#[test]
fn a_thousand_lines_give_a_thousand_results() {
    let s = server();
    let input: String = (0..1000)
        .map(|i| format!("{}/status/{}\n", s.base_url(), 200 + i % 2))
        .collect();
    let path = list_file("thousand", input.as_bytes());
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--workers", "16"]);
    assert_eq!(code, 0);
    assert_eq!(results(&r).len(), 1000);
    assert_eq!(r["summary"]["ok"], 1000);
}

#[test]
fn the_server_answers_128_slow_requests_at_once() {
    let s = server();
    let input: String = (0..128)
        .map(|_| format!("{}/delay/1\n", s.base_url()))
        .collect();
    let path = list_file("slow128", input.as_bytes());
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--workers", "128"]);
    assert_eq!(code, 0);
    // Serialised, 128 one-second delays would take 128 s.
    assert!(r["summary"]["wall_ms"].as_f64().unwrap() < 20_000.0);
    assert!(s.served() >= 128);
}

#[test]
fn demo_mode_runs_offline_and_behaves_as_designed() {
    let r = report("url-check", &["--demo"]);
    assert_checks_hold(&r);
    assert_eq!(r["summary"]["total"], 8);
    assert_eq!(
        r["summary"]["failed"], 2,
        "a 404 and a closed port, by design"
    );
    assert!(r["summary"]["speedup"].as_f64().is_some());
}

#[test]
fn sweep_reports_each_worker_count() {
    let s = server();
    let input: String = (0..8)
        .map(|_| format!("{}/delay/0.1\n", s.base_url()))
        .collect();
    let path = list_file("sweep", input.as_bytes());
    let (code, r, _) = url_check(&[path.to_str().unwrap(), "--sweep", "1,4"]);
    assert_eq!(code, 0);
    assert!(
        r["metrics"]["sweep.1.ms"].as_f64().unwrap() > r["metrics"]["sweep.4.ms"].as_f64().unwrap()
    );
}

/// Runs url-check on `list` with `args`, sends SIGINT once a stderr line holds `ready`,
/// and returns the exit code and the JSON report.
fn interrupted_run(list: &std::path::Path, args: &[&str], ready: &str) -> (Option<i32>, Value) {
    let mut all = vec!["url-check", list.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let mut run = Spawned::start(&all);
    run.wait_for(ready, Duration::from_secs(30));
    run.signal(libc::SIGINT);
    let (status, stdout, stderr, _) = run.finish(Duration::from_secs(30));
    (
        status.code(),
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}")),
    )
}

#[test]
fn ctrl_c_stops_handing_out_urls_and_prints_a_partial_report() {
    let s = server();
    let input: String = (0..20)
        .map(|_| format!("{}/delay/1\n", s.base_url()))
        .collect();
    let path = list_file("interrupt", input.as_bytes());
    let (code, r) = interrupted_run(&path, &["--workers", "2"], "Checking");
    assert_eq!(code, Some(130));
    let rs = results(&r);
    assert_eq!(rs.len(), 20, "every line is still reported");
    let unchecked = rs.iter().filter(|x| x["kind"] == "not checked").count();
    assert!(
        unchecked >= 10,
        "most lines were never handed out ({unchecked})"
    );
    assert_eq!(r["summary"]["interrupted"], true);
}

#[test]
fn ctrl_c_during_the_sequential_comparison_measures_no_speedup() {
    let s = server();
    let input: String = (0..4)
        .map(|_| format!("{}/delay/1\n", s.base_url()))
        .collect();
    let path = list_file("interrupt-compare", input.as_bytes());
    // Concurrent: about 1 s on 4 workers; then interrupted as the sequential pass starts.
    let (code, r) = interrupted_run(
        &path,
        &["--workers", "4", "--compare"],
        "sequentially on the main thread",
    );
    assert_eq!(code, Some(130));
    assert_eq!(r["summary"]["ok"], 4, "the concurrent run had finished");
    assert!(
        r["summary"].get("speedup").is_none(),
        "a partial time is no comparison: {}",
        r["summary"]
    );
    assert!(r["summary"].get("sequential_ms").is_none());
}

#[test]
fn bad_url_check_input_exits_1_naming_the_culprit() {
    assert_usage_error(&["url-check", "x.txt", "--workers", "0"], "--workers");
    assert_usage_error(&["url-check", "x.txt", "--workers", "513"], "--workers");
    assert_usage_error(&["url-check", "x.txt", "--timeout", "0"], "--timeout");
    assert_usage_error(&["url-check", "x.txt", "--accept", "abc"], "--accept");
    assert_usage_error(&["url-check", "/no/such/file.txt"], "/no/such/file.txt");
    let empty = list_file("empty", b"# nothing\n\n");
    assert_usage_error(&["url-check", empty.to_str().unwrap()], "no URLs found");
    assert_usage_error(&["url-check"], "FILE");
}

#[test]
fn serve_prints_its_address_and_stops_on_its_own() {
    let run = threadlab(&["serve", "--port", "0", "--for", "0.3", "-q"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("listening on http://127.0.0.1:"),
        "{}",
        run.stderr
    );
}

/// `--dump` lists a docs tree's links with their places, in file and document order, from
/// Markdown read as Markdown (no code spans, no fenced code; references where used; images
/// and autolinks), hidden folders skipped; and a plain list line by line. No network.
#[test]
fn dump_lists_each_link_with_its_file_line_and_column() {
    let run = threadlab(&["url-check", "--dump", "tests/docs"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "tests/docs/README.md:3:12: tests/docs/guide/intro.md",
            "tests/docs/README.md:3:47: https://project.example/",
            "tests/docs/README.md:11:1: tests/docs/img/logo.png",
            "tests/docs/README.md:11:23: https://project.example/",
            "tests/docs/guide/intro.md:1:6: https://reference.example/api",
        ]
    );
    assert!(
        run.stderr
            .contains("5 links in 2 files (4 distinct targets)"),
        "{}",
        run.stderr
    );
    let list = list_file(
        "dump-list.txt",
        b"# urls\nhttps://a.example/\n\n  https://b.example/\n",
    );
    let run = threadlab(&["url-check", "--dump", list.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = list.display().to_string();
    assert_eq!(
        run.stdout,
        format!("{path}:2:1: https://a.example/\n{path}:4:3: https://b.example/\n")
    );
    // Running text, read as text: its http(s) URLs, the sentence's punctuation left out.
    let prose = list_file(
        "dump-prose.txt",
        b"Our site is https://a.example/home. Write to me@b.example.\n",
    );
    let run = threadlab(&[
        "url-check",
        "--dump",
        "--format-in",
        "text",
        prose.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{}:1:13: https://a.example/home\n", prose.display())
    );
    assert_usage_error(&["url-check", "--dump", "--demo"], "--dump");
    // A missing input is its own row, and the exit status says something is broken.
    let run = threadlab(&[
        "url-check",
        "--dump",
        "tests/no-such-docs",
        "tests/docs/guide",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "tests/no-such-docs: tests/no-such-docs  (broken: no such file or folder)\n\
         tests/docs/guide/intro.md:1:6: https://reference.example/api\n"
    );
}
