//! One helper every integration test drives the binary through.
#![allow(dead_code)]

use assert_cmd::Command;
use serde_json::Value;

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

/// Runs `threadlab ARGS` with no stdin and returns its code and output.
pub fn threadlab(args: &[&str]) -> Run {
    threadlab_with_stdin(args, "")
}

/// Runs `threadlab ARGS` with `stdin` as standard input.
pub fn threadlab_with_stdin(args: &[&str], stdin: &str) -> Run {
    let out = Command::cargo_bin("threadlab")
        .expect("binary built")
        .args(args)
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

/// A metric as u64.
pub fn metric(report: &Value, name: &str) -> u64 {
    report["metrics"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("metric {name} missing in {}", report["metrics"]))
}

/// Every check in the report holds.
pub fn assert_checks_hold(report: &Value) {
    for c in report["checks"].as_array().expect("checks") {
        assert_eq!(c["ok"], true, "check failed: {c}");
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
