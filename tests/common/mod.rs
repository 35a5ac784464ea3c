//! One helper every integration test drives the binary through.
#![allow(dead_code, clippy::disallowed_methods)]

use assert_cmd::Command;
use serde_json::Value;

/// Every demo, in lesson order, from the registry (what `threadlab list` must print).
pub fn lessons() -> Vec<threadlab::demos::Entry> {
    threadlab::demos::registry()
}

/// Every demo's name, in lesson order.
pub fn lesson_names() -> Vec<String> {
    lessons().into_iter().map(|e| e.name).collect()
}

/// What a run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON report on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The machine, shared by the tests of one binary (the harness runs them on as many threads
/// as there are cores). Every run of the binary holds it shared; a run whose checks measure
/// how fast the cores compute (cpu-vs-io) holds it alone, so no other test's threads take
/// the cores it is timing. Invariant checks need no such care; speedups do.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn machine_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

/// Runs `threadlab ARGS` with no stdin and returns its code and output.
pub fn threadlab(args: &[&str]) -> Run {
    threadlab_with_stdin(args, "")
}

/// Runs `threadlab ARGS` while no other run of this test binary is under way (for checks
/// that time the cores: a CPU-bound speedup).
pub fn threadlab_alone(args: &[&str]) -> Run {
    let _alone = MACHINE.write().unwrap_or_else(|e| e.into_inner());
    run_binary(args, "")
}

/// Runs `threadlab ARGS` with `stdin` as standard input.
pub fn threadlab_with_stdin(args: &[&str], stdin: &str) -> Run {
    let _shared = machine_shared();
    run_binary(args, stdin)
}

/// Runs `threadlab ARGS` with the environment variables `env` set.
pub fn threadlab_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let _shared = machine_shared();
    run_binary_env(args, "", env)
}

fn run_binary(args: &[&str], stdin: &str) -> Run {
    run_binary_env(args, stdin, &[])
}

fn run_binary_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let out = Command::cargo_bin("threadlab")
        .expect("binary built")
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .write_stdin(stdin.to_string())
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("binary ran");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a demo with `--pace 0.02 --json` plus `args`, asserting exit 0, and returns its report.
pub fn report(demo: &str, args: &[&str]) -> Value {
    let mut all = vec![demo, "--pace", "0.02", "--json", "--seed", "42"];
    all.extend_from_slice(args);
    let run = threadlab(&all);
    assert_eq!(run.code, 0, "exit code; stderr:\n{}", run.stderr);
    run.json()
}

/// cpu-vs-io's verdict: exit 0, and every check holds, except that a CPU-bound speedup may
/// be marked inconclusive (no ✘) where the demo's own measures name the reason: other
/// programs kept cores busy (its metric `cpu.other_programs_cores`, the kernel's count), or
/// the threads computed at once yet each went slower (cores sharing hardware). Returns the
/// report.
pub fn assert_cpu_vs_io_verdict(run: &Run) -> Value {
    let r = run.json();
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    for c in r["checks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        if c["ok"] == true {
            assert!(c.get("inconclusive").is_none(), "{c}");
            continue;
        }
        let why = c["inconclusive"].as_str().unwrap_or_else(|| panic!("{c}"));
        assert!(
            id.contains("cpu-bound"),
            "only a CPU-bound speedup may be doubted: {c}"
        );
        assert!(
            why.contains("other programs kept") || why.contains("did compute at once"),
            "{c}"
        );
    }
    r
}

/// The check of `report` whose id is `id` (without the demo's prefix): tests match checks by
/// id, never by their sentence.
pub fn check_by_id<'a>(report: &'a Value, id: &str) -> &'a Value {
    let full = format!("{}.{id}", report["demo"].as_str().unwrap_or_default());
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == full.as_str())
        .unwrap_or_else(|| panic!("no check {full} in {}", report["checks"]))
}

/// Every check of `report` has an id: `DEMO.CHECK`, kebab-case, unique in the report.
pub fn assert_check_ids(report: &Value) {
    let demo = report["demo"].as_str().unwrap();
    let mut seen = std::collections::HashSet::new();
    for c in report["checks"].as_array().unwrap() {
        let id = c["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{demo}: a check with no id: {c}"));
        let local = id
            .strip_prefix(&format!("{demo}."))
            .unwrap_or_else(|| panic!("{id}"));
        assert!(
            !local.is_empty()
                && local.split('.').all(|part| !part.is_empty()
                    && !part.starts_with('-')
                    && !part.ends_with('-')
                    && part
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')),
            "{id} is not kebab-case"
        );
        assert!(
            seen.insert(id.to_string()),
            "{demo}: two checks share the id {id}"
        );
    }
}

/// A metric as u64.
pub fn metric(report: &Value, name: &str) -> u64 {
    report["metrics"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("metric {name} missing in {}", report["metrics"]))
}

/// Every check in the report holds, bar one a busy machine left unshown: marked inconclusive
/// (no ✘) because the main thread's own clock saw its sleep overrun the instant the check
/// needed (the timer's halfway cancel(), the event's stop request).
pub fn assert_checks_hold(report: &Value) {
    for c in report["checks"].as_array().expect("checks") {
        let overran = c["inconclusive"]
            .as_str()
            .is_some_and(|why| why.contains("overran") || why.contains("after its aim"));
        assert!(c["ok"] == true || overran, "check failed: {c}");
    }
    assert_eq!(report["ok"], true);
}

/// A usage error: exit 1, no panic, and the message names `culprit`.
pub fn assert_usage_error(args: &[&str], culprit: &str) {
    let run = threadlab(args);
    assert_eq!(
        run.code, 1,
        "{args:?} should exit 1; stderr:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(culprit),
        "{args:?}: stderr should name {culprit}:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{args:?} panicked:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("RUST_BACKTRACE"),
        "{args:?}:\n{}",
        run.stderr
    );
}

/// A run of the binary in the background: its stderr is read line by line as it comes, so a
/// test can wait for a readiness line before it acts (a signal, a closed pipe).
pub struct Spawned {
    pub child: std::process::Child,
    _shared: std::sync::RwLockReadGuard<'static, ()>,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
    started: std::time::Instant,
}

impl Spawned {
    /// Starts `threadlab ARGS` with stdout and stderr piped, stdin empty, NO_COLOR set.
    pub fn start(args: &[&str]) -> Spawned {
        use std::io::BufRead;
        let shared = machine_shared();
        let exe = assert_cmd::cargo::cargo_bin("threadlab");
        let mut child = std::process::Command::new(exe)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary started");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned {
            child,
            _shared: shared,
            lines,
            seen: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    /// Waits (at most `limit`) for a stderr line containing `needle`; panics if none came.
    pub fn wait_for(&mut self, needle: &str, limit: std::time::Duration) {
        let until = std::time::Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line with {needle:?} within {limit:?}; stderr so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Sends `signal` (libc::SIGINT, libc::SIGTERM, …) to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits (at most `limit`, else kills it and panics) for the process to end; returns
    /// its status, stdout, the rest of stderr, and how long it ran from its start.
    pub fn finish(
        mut self,
        limit: std::time::Duration,
    ) -> (
        std::process::ExitStatus,
        String,
        String,
        std::time::Duration,
    ) {
        use std::io::Read;
        let until = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running after {limit:?}; stderr:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let took = self.started.elapsed();
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        while let Ok(line) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.seen.push(line);
        }
        (status, stdout, self.seen.join("\n"), took)
    }
}

pub const SEEDS: [&str; 3] = ["1", "2", "3"];

/// A run of `demo` at a small pace with `args` and `--seed SEED`, exit 0, every check holding.
pub fn holds(demo: &str, seed: &str, args: &[&str]) -> Value {
    holds_at(demo, "0.02", seed, args)
}

/// [`holds`] at another pace.
pub fn holds_at(demo: &str, pace: &str, seed: &str, args: &[&str]) -> Value {
    let mut all = vec![demo, "--pace", pace, "--json", "-q", "--seed", seed];
    all.extend_from_slice(args);
    let run = threadlab(&all);
    assert_eq!(
        run.code, 0,
        "{demo} seed {seed}: {}\n{}",
        run.stderr, run.stdout
    );
    let r = run.json();
    assert_checks_hold(&r);
    r
}

pub fn metric_f(report: &Value, name: &str) -> f64 {
    report["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("metric {name} missing in {}", report["metrics"]))
}

pub fn python3_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tmux session of 100 × 50 running one command, for what needs a terminal.
pub struct Tmux(String);

impl Tmux {
    pub fn start(command: &str) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let session = Tmux(format!("threadlab-{}-{n}", std::process::id()));
        let new = [
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "50",
            "-s",
            &session.0,
            command,
        ];
        let started = session.tmux(&new);
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        session
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed (.ci/run installs it)")
    }

    /// The screen and its history.
    pub fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-S", "-500", "-t", &self.0])
            .stdout;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Waits until `text` is on the screen (with its history) `n` times; the screen then.
    pub fn wait_for(&self, text: &str, n: usize) -> String {
        for _ in 0..400 {
            let s = self.screen();
            if s.matches(text).count() >= n {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("never saw {text:?} {n} time(s):\n{}", self.screen());
    }

    /// Lets `ms` milliseconds pass with the terminal left alone.
    pub fn idle(&self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    /// Types `keys`, then Enter.
    pub fn answer(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", &self.0, keys, "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-session", "-t", &self.0]);
    }
}

/// `threadlab ARGS | head -1`, as a shell runs it: the shell's stdout (with `rc=N`, the
/// status threadlab ended with) and stderr.
pub fn piped_to_head(args: &str) -> (String, String) {
    let bin = assert_cmd::cargo::cargo_bin("threadlab");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} {args} | head -1; echo \"rc=${{PIPESTATUS[0]}}\"",
            bin.display()
        ))
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
