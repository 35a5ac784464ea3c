//! Every bound against a hostile world: servers that drip, reset, never answer or answer
//! garbage (started here, on 127.0.0.1), closed pipes, signals, absurd flag values.
//! Time bounds here are generous multiples of the documented ones: what they catch is a
//! run that waits for the server instead of its own deadline.
#![allow(clippy::disallowed_methods)] // std::thread::sleep is denied in src/demos only

mod common;
use common::*;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use threadlab::serve::Server;
use threadlab_tools::hostile::{Behaviour, Hostile};

fn list_file(name: &str, lines: &[u8]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("threadlab-rel-{}-{name}.txt", std::process::id()));
    std::fs::write(&path, lines).unwrap();
    path
}

/// url-check on `input` with `args` (JSON, quiet), bounded by `limit`: (exit, report, stderr).
fn check(name: &str, input: &str, args: &[&str], limit: Duration) -> (i32, Value, String) {
    let path = list_file(name, input.as_bytes());
    let mut all = vec!["url-check", path.to_str().unwrap(), "--json", "-q"];
    all.extend_from_slice(args);
    let (status, stdout, stderr, _) = Spawned::start(&all).finish(limit);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (status.code().unwrap_or(-1), report, stderr)
}

fn first(r: &Value) -> &Value {
    &r["results"][0]
}

#[test]
fn a_dripping_body_cannot_outlast_the_timeout() {
    // Headers at once, then one body byte every 500 ms: reading it would take hours.
    let drip = Hostile::start(Behaviour::DripBody {
        every: Duration::from_millis(500),
    })
    .unwrap();
    for method in ["get", "head"] {
        let (code, r, _) = check(
            "drip-body",
            &format!("{}\n", drip.url("/x")),
            &["--timeout", "1", "--method", method],
            Duration::from_secs(20),
        );
        assert_eq!(code, 0, "{r}");
        let res = first(&r);
        assert_eq!(res["status"], 200, "the status is in the headers: {res}");
        assert!(res["elapsed_ms"].as_f64().unwrap() <= 1500.0, "{res}");
    }
}

#[test]
fn dripping_headers_and_silence_end_at_the_timeout() {
    let drip = Hostile::start(Behaviour::DripHeaders {
        every: Duration::from_millis(100),
    })
    .unwrap();
    let silent = Hostile::start(Behaviour::Silent).unwrap();
    let input = format!("{}\n{}\n", drip.url("/"), silent.url("/"));
    let (code, r, _) = check(
        "drip-head",
        &input,
        &["--timeout", "1"],
        Duration::from_secs(20),
    );
    assert_eq!(code, 2);
    for res in r["results"].as_array().unwrap() {
        assert_eq!(res["kind"], "timeout", "{res}");
        let ms = res["elapsed_ms"].as_f64().unwrap();
        assert!(
            (1000.0..3000.0).contains(&ms),
            "bounded by the timeout: {res}"
        );
    }
}

#[test]
fn ctrl_c_ends_in_flight_checks_within_a_second() {
    let silent = Hostile::start(Behaviour::Silent).unwrap();
    let path = list_file("silent", format!("{}\n", silent.url("/")).as_bytes());
    let mut run = Spawned::start(&[
        "url-check",
        path.to_str().unwrap(),
        "--json",
        "--timeout",
        "60",
    ]);
    run.wait_for("Checking", Duration::from_secs(20));
    let sent = std::time::Instant::now();
    run.signal(libc::SIGINT);
    let (status, stdout, _, _) = run.finish(Duration::from_secs(10));
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(first(&r)["kind"], "not checked");
    assert_eq!(r["interrupted"], true);
}

#[test]
fn every_failure_has_a_documented_kind_and_resets_are_retried() {
    let reset = Hostile::start(Behaviour::Reset).unwrap();
    let (code, r, _) = check(
        "reset",
        &format!("{}\n", reset.url("/")),
        &["--retries", "2", "--timeout", "5"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2);
    assert_eq!(first(&r)["kind"], "connection error", "{}", first(&r));
    assert_eq!(
        first(&r)["attempts"],
        3,
        "a reset is retried: {}",
        first(&r)
    );

    let servers = [
        (Behaviour::Garbage, "protocol error"),
        (Behaviour::BadStatusLine, "protocol error"),
        (Behaviour::HugeHeaders, "protocol error"),
        (
            Behaviour::RedirectTo("javascript:alert(1)".into()),
            "bad redirect",
        ),
        (
            Behaviour::RedirectTo("file:///etc/passwd".into()),
            "bad redirect",
        ),
    ];
    for (behaviour, kind) in servers {
        let s = Hostile::start(behaviour.clone()).unwrap();
        let (code, r, _) = check(
            "kinds",
            &format!("{}\n", s.url("/")),
            &["--retries", "1", "--timeout", "5"],
            Duration::from_secs(30),
        );
        assert_eq!(code, 2, "{behaviour:?}");
        assert_eq!(first(&r)["kind"], kind, "{behaviour:?}: {}", first(&r));
        assert_eq!(first(&r)["attempts"], 1, "{behaviour:?} is not retried");
    }
    // An endless chunked body: the status comes, the body is never read.
    let endless = Hostile::start(Behaviour::EndlessChunked).unwrap();
    let (code, r, _) = check(
        "endless",
        &format!("{}\n", endless.url("/")),
        &["--timeout", "2"],
        Duration::from_secs(20),
    );
    assert_eq!((code, first(&r)["status"].clone()), (0, Value::from(200)));
}

#[test]
fn retry_after_is_honoured() {
    let s = Server::start("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let url = format!("{}/unstable/ra/1?retry-after=1\n", s.base_url());
    let (code, r, _) = check(
        "retry-after",
        &url,
        &["--retries", "1"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(first(&r)["attempts"], 2);
    assert!(
        first(&r)["elapsed_ms"].as_f64().unwrap() >= 1000.0,
        "{}",
        first(&r)
    );
}

#[test]
fn input_text_never_reaches_the_terminal_raw_and_credentials_are_masked() {
    let s = Server::start("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let base = s.base_url();
    let with_secret = base.replace("http://", "http://alice:s3cr3t@");
    let input =
        format!("\u{feff}{base}/get\n{base}/get\u{1b}]0;pwned\u{7}\u{1b}[2J\n{with_secret}/get\n");
    let path = list_file("escape", input.as_bytes());
    let run = threadlab(&["url-check", path.to_str().unwrap()]);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "raw escape in:\n{}",
        run.stdout
    );
    assert!(!run.stderr.contains('\u{1b}'));
    assert!(!run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"));
    let (_, r, _) = check("escape-json", &input, &[], Duration::from_secs(20));
    let rs = r["results"].as_array().unwrap();
    assert_eq!(
        rs[0]["ok"], true,
        "a leading byte-order mark is ignored: {}",
        rs[0]
    );
    assert!(rs[2]["url"].as_str().unwrap().contains("***"), "{}", rs[2]);
    assert!(!r.to_string().contains("s3cr3t"));
}

#[test]
fn input_is_capped_and_memory_stays_flat() {
    // /dev/zero has no end and no newline: the cap stops it with one clear line.
    let (status, _, stderr, took) =
        Spawned::start(&["url-check", "/dev/zero", "-q"]).finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/dev/zero: more than 64 MiB"), "{stderr}");
    assert!(took < Duration::from_secs(15));
    // A 10 MB line is one result, shortened in its message.
    let s = Server::start("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let mut input = format!("{}/get?", s.base_url());
    input.push_str(&"x".repeat(10_000_000));
    input.push_str(&format!("\n{}/get\n", s.base_url()));
    let (code, r, _) = check("long", &input, &[], Duration::from_secs(30));
    assert_eq!(code, 2);
    let rs = r["results"].as_array().unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0]["kind"], "line too long");
    assert!(rs[0]["url"].as_str().unwrap().len() < 200);
    assert!(rs[0]["error"].as_str().unwrap().len() < 200);
    assert_eq!(rs[1]["ok"], true);
    assert!(r["summary"]["peak_rss_mb"].as_f64().unwrap() < 100.0);
}

#[test]
fn demo_with_one_worker_notes_that_there_is_nothing_to_overlap() {
    let run = threadlab(&[
        "url-check",
        "--demo",
        "--workers",
        "1",
        "--pace",
        "0.05",
        "--json",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true)
    );
    assert!(
        r["notes"].to_string().contains("one worker"),
        "{}",
        r["notes"]
    );
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    for args in [
        vec!["race", "--iterations", "20000"],
        vec!["race", "--trials", "50", "--iterations", "20000"],
        vec!["pool", "--pace", "0.02"],
    ] {
        let mut run = Spawned::start(&args);
        let mut out = std::io::BufReader::new(run.child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        drop(out); // the reader goes away, as `| head -1` does
        let (status, _, stderr, took) = run.finish(Duration::from_secs(30));
        assert!(
            status.signal() == Some(libc::SIGPIPE) || status.code() == Some(141),
            "{args:?}: {status:?}; stderr:\n{stderr}"
        );
        assert!(stderr.is_empty(), "{args:?} printed on stderr:\n{stderr}");
        assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
    }
}

#[test]
fn every_demo_stops_on_sigint_or_sigterm_with_a_partial_report() {
    // Each demo at its registry's long run (url-check's own tests cover it), SIGINT and
    // SIGTERM in turn.
    let long = lessons()
        .into_iter()
        .filter_map(|e| Some((e.name, e.long?)));
    for (i, (name, flags)) in long.enumerate() {
        let (signal, code) = [(libc::SIGINT, 130), (libc::SIGTERM, 143)][i % 2];
        let mut demo = vec![name.as_str()];
        demo.extend_from_slice(flags);
        let mut args = demo.clone();
        args.push("--json");
        let mut run = Spawned::start(&args);
        run.wait_for("seed", Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100)); // into the demo proper
        let sent = std::time::Instant::now();
        run.signal(signal);
        let (status, stdout, stderr, _) = run.finish(Duration::from_secs(10));
        assert!(
            sent.elapsed() < Duration::from_millis(1500),
            "{demo:?} took {:?}",
            sent.elapsed()
        );
        assert_eq!(status.code(), Some(code), "{demo:?}; stderr:\n{stderr}");
        let r: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{demo:?}: {e}: {stdout}\n{stderr}"));
        assert_eq!(r["interrupted"], true, "{demo:?}");
    }
}

/// Processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn the_daemon_demo_child_never_outlives_its_parent() {
    // A seed unique to this test marks its child's command line.
    let seed = "3141592";
    let (status, _, stderr, _) = Spawned::start(&[
        "daemon",
        "--work",
        "30",
        "--watchdog",
        "1",
        "-q",
        "--seed",
        seed,
    ])
    .finish(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--watchdog"), "{stderr}");
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_with(&format!("--seed {seed} --work"));
    assert!(left.is_empty(), "orphaned: {left:?}");
    // Killed outright, the parent still takes the child with it (the kernel does).
    let mut run = Spawned::start(&["daemon", "--work", "30", "--seed", "2718281", "--json"]);
    run.wait_for("child process", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    run.signal(libc::SIGKILL);
    let _ = run.finish(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_with("--seed 2718281 --work");
    assert!(left.is_empty(), "orphaned: {left:?}");
}

#[test]
fn a_panic_is_one_line_on_stderr_even_when_quiet_and_exits_101() {
    let out = assert_cmd::Command::cargo_bin("threadlab")
        .unwrap()
        .args(["race", "--iterations", "10", "-q"])
        .env("THREADLAB_TEST_PANIC", "1")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("internal error") && stderr.contains("THREADLAB_TEST_PANIC"));
}

#[test]
fn flag_values_that_cannot_be_honoured_are_one_line_errors_naming_the_flag() {
    assert_usage_error(&["serve", "--for", "1e20", "-q"], "--for");
    assert_usage_error(&["serve", "--for", "1e19"], "--for");
    assert_usage_error(&["url-check", "x", "--workers", "-1"], "from 1 to 512");
    assert_usage_error(&["race", "--iterations", "-5"], "--iterations");
    assert_usage_error(&["pool", "--sweep", "18446744073709551615"], "--sweep");
    assert_usage_error(&["pool", "--sweep", "100000"], "1..=512");
    assert_usage_error(&["race", "--watchdog", "99999999999"], "--watchdog");
}

#[test]
fn serve_closes_stalled_connections_and_stays_responsive() {
    use std::io::{Read, Write};
    let s = Server::start_with(
        "127.0.0.1:0".parse().unwrap(),
        false,
        Duration::from_millis(500),
    )
    .unwrap();
    let mut idle = std::net::TcpStream::connect(s.addr()).unwrap();
    let mut half = std::net::TcpStream::connect(s.addr()).unwrap();
    half.write_all(b"GET /get HTTP/1.1\r\nHost: x\r\n").unwrap();
    for stream in [&mut idle, &mut half] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 64];
        // Closed by the server: end of stream (or a reset), well before our 10 s.
        let n = stream.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let (code, r, _) = check(
        "serve-alive",
        &format!("{}/get\n", s.base_url()),
        &[],
        Duration::from_secs(20),
    );
    assert_eq!((code, first(&r)["status"].clone()), (0, Value::from(200)));
}

#[test]
fn serve_backs_off_when_accept_fails_instead_of_spinning() {
    // A server with 64 file descriptors, then 200 connections held open: accept fails
    // with EMFILE. A spinning loop burns a whole core; backing off costs next to nothing.
    use std::os::unix::process::CommandExt;
    let exe = assert_cmd::cargo::cargo_bin("threadlab");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["serve", "--port", "0", "-q", "--for", "60"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let held: Vec<_> = (0..100)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    assert!(held.len() > 64, "only {} connections", held.len());
    assert!(child.try_wait().unwrap().is_none(), "the server died");
    let cpu = |pid: u32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    };
    let before = cpu(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu(child.id()) - before;
    assert!(child.try_wait().unwrap().is_none(), "the server died");
    let _ = child.kill();
    let _ = child.wait();
    drop(held);
    assert!(
        used < 0.6,
        "the server used {used:.2} s of CPU in 2 s: it is spinning"
    );
}

#[test]
fn serve_finishes_in_flight_requests_on_ctrl_c_then_exits_130() {
    let mut run = Spawned::start(&["serve", "--port", "0"]);
    run.wait_for("listening on", Duration::from_secs(20));
    let addr = run
        .seen
        .iter()
        .find_map(|l| l.split("http://").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .to_string();
    let (sent_tx, sent) = std::sync::mpsc::channel();
    let request = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /delay/0.5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        sent_tx.send(()).unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    });
    sent.recv_timeout(Duration::from_secs(5)).unwrap();
    // The request is on the wire; give the server a moment to read it.
    std::thread::sleep(Duration::from_millis(100));
    run.signal(libc::SIGINT);
    let (status, _, stderr, _) = run.finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{stderr}");
    let reply = request.join().unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "in-flight request cut off: {reply:?}"
    );
}

#[test]
fn a_closed_pipe_ends_url_check_before_the_list_is_done() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let s = Server::start("127.0.0.1:0".parse().unwrap(), false).unwrap();
    // 2 workers, 40 URLs of 1 s: 20 s if it ran to the end.
    let input: String = (0..40)
        .map(|i| format!("{}/delay/1?n={i}\n", s.base_url()))
        .collect();
    let path = list_file("pipe", input.as_bytes());
    let mut run = Spawned::start(&[
        "url-check",
        path.to_str().unwrap(),
        "--json",
        "-q",
        "--workers",
        "2",
    ]);
    let mut out = std::io::BufReader::new(run.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    drop(out);
    let (status, _, stderr, took) = run.finish(Duration::from_secs(30));
    assert!(
        status.signal() == Some(libc::SIGPIPE) || status.code() == Some(141),
        "{status:?}; stderr:\n{stderr}"
    );
    assert!(took < Duration::from_secs(12), "ran on for {took:?}");
}

#[test]
fn the_largest_flags_still_end_on_their_own() {
    // The most threads each demo allows, at a small pace: bounded, every check holding.
    holds("event", "1", &["--waiters", "64", "--tick", "5"]);
    holds("barrier", "1", &["--parties", "64", "--phases", "2"]);
    holds("thread-local", "1", &["--workers", "32", "--tasks", "2"]);
    holds("threads", "1", &["--workers", "64"]);
    holds(
        "philosophers",
        "1",
        &["--philosophers", "16", "--meals", "2"],
    );
    holds(
        "deadlock",
        "1",
        &["--tellers", "16", "--accounts", "26", "--transfers", "300"],
    );
}
