//! Running the tutorials' own Python snippets beside a demo (`--python`), bounded.
//!
//! A snippet is kept in the repo (`demos/python/*.py`), compiled into the binary, and fed
//! to `python3 -` on stdin with its arguments. It prints one JSON object per line; each is
//! handed to the caller as it arrives. No python3, a snippet that fails, or one that runs
//! past its bound: the caller gets `None` and a warning says why.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracing::warn;

/// Runs `script` on python3 with `args`; calls `on_line` for each JSON line it prints.
/// Returns how many lines it handed over, or `None` if python3 could not run it to the end
/// within `bound` (the child is then killed). Interrupted runs stop at once.
pub fn run_json_lines(
    script: &str,
    args: &[String],
    bound: Duration,
    mut on_line: impl FnMut(&serde_json::Value),
) -> Option<usize> {
    let child = Command::new("python3")
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            warn!("--python: could not run python3: {e}");
            return None;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let stdout = child.stdout.take()?;
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let began = Instant::now();
    let mut lines = 0;
    while let Some(line) = super::signals::recv_timeout(&rx, bound.saturating_sub(began.elapsed()))
    {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            on_line(&v);
            lines += 1;
        }
    }
    // The loop ended on end of output (the snippet is done), its bound, or a signal. In the
    // last two, python3 may still be running: kill it before waiting, so nothing here waits
    // longer than the bound, or past a SIGTERM that reached this process only.
    let cut_short = began.elapsed() >= bound || super::signals::interrupted();
    if cut_short {
        let _ = child.kill();
    }
    let status = child.wait();
    let finished = !cut_short && matches!(status, Ok(s) if s.success());
    let _ = reader.join();
    if finished {
        Some(lines)
    } else {
        warn!(
            "--python: python3 did not finish within {} (or failed)",
            super::units::duration(bound)
        );
        None
    }
}
