//! A demo's scenario run in a child process of threadlab and watched from outside: its
//! narrative relayed line by line, its exit reported by the OS. Used where the lesson is
//! what happens when a process ends (daemon threads cut off, a thread nobody joined).

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tracing::info;

use super::Lab;

/// How a watched child ended.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status, as the OS reported it.
    pub status: ExitStatus,
    /// When the OS reported it.
    pub at: Instant,
}

/// Runs `threadlab DEMO ARGS…` (with this lab's pace and seed) in a child process, relays
/// each narrative line as `child │ THREAD: message`, hands each raw line and the instant it
/// arrived to `on_line`, and waits for the child's exit, at most `deadline`: a child still
/// running then is killed and the run fails with `what` in the message. On SIGINT/SIGTERM
/// the child is killed and reaped.
pub fn run_relayed(
    lab: &Lab,
    args: &[&str],
    deadline: Duration,
    what: &str,
    mut on_line: impl FnMut(&str, Instant) + Send,
) -> anyhow::Result<Exited> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(args)
        .args(["--no-color", "--watchdog", "0"])
        .args([
            "--pace",
            &lab.pace().to_string(),
            "--seed",
            &lab.seed().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    // Killed and reaped on every way out of this function, errors included.
    let mut child = KillOnDrop(child);
    let spawned = Instant::now();
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no child stdout"))?;
    std::thread::scope(|s| -> anyhow::Result<_> {
        let relay = lab.spawn(s, "Relay", move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                on_line(&line, Instant::now());
                // The child runs with this run's seed and pace: its own banner would repeat ours.
                if line.contains("(replays durations")
                    || line.contains(": threads run one at a time")
                {
                    continue;
                }
                // One prefix: this line's own, then the child's thread and message.
                let shown = line
                    .split_once("] (")
                    .and_then(|(_, rest)| rest.split_once(") "))
                    .map(|(name, msg)| format!("{}: {msg}", name.trim_end()))
                    .unwrap_or_else(|| line.clone());
                info!("child │ {shown}");
            }
        })?;
        // Wait for the child, bounded: a child that never exits is killed and reported.
        let status = loop {
            if let Some(status) = child.0.try_wait()? {
                break status;
            }
            if spawned.elapsed() > deadline {
                child.kill();
                anyhow::bail!("the child process did not exit within {deadline:?}: {what}");
            }
            if lab.interrupted() {
                child.kill();
                break child.0.wait()?;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let at = Instant::now();
        super::join(relay)?;
        Ok(Exited { status, at })
    })
}

/// A child process that is killed and reaped when this value is dropped.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
