//! How a run ends when the outside world ends it: SIGINT, SIGTERM and closed pipes.
//!
//! - **A first SIGINT or SIGTERM** marks the run interrupted. Every simulated sleep
//!   ([`sleep`], and so `Lab::sleep`) returns at once, demos stop at their next step, and the
//!   binary prints what it has, marked interrupted, and exits 130 (SIGINT) or 143 (SIGTERM).
//!   A backstop ends the process [`GRACE`] after the signal if the demo has not finished by
//!   then, so no run outlives a signal by more than that.
//! - **A second signal** exits at once, for a user who really means it.
//! - **A closed pipe** (`threadlab race | head -1`) ends the run quietly, as Unix tools do:
//!   [`pipe_closed`] restores SIGPIPE's default action and raises it, so the shell sees the
//!   usual "killed by SIGPIPE" (status 141) and nothing is printed.
//!
//! Signals are received on a thread of their own (`signal-hook`'s iterator), so what happens
//! next is ordinary code, not async-signal-safe code.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a demo has to stop after a signal before the backstop ends the process.
pub const GRACE: Duration = Duration::from_secs(1);

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static FINISHED: AtomicBool = AtomicBool::new(false);

fn wake() -> &'static (Mutex<bool>, Condvar) {
    static WAKE: OnceLock<(Mutex<bool>, Condvar)> = OnceLock::new();
    WAKE.get_or_init(|| (Mutex::new(false), Condvar::new()))
}

/// Starts listening for SIGINT and SIGTERM. Call once, from the binary; library callers and
/// unit tests never see a signal, so [`interrupted`] stays false for them.
pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("Signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if SIGNAL
                    .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    // The second signal: no more waiting.
                    crate::pictures::files::discard_scratch();
                    std::process::exit(128 + sig);
                }
                let (lock, cvar) = wake();
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
                cvar.notify_all();
                let _ = std::thread::Builder::new()
                    .name("Backstop".into())
                    .spawn(move || backstop(sig));
            }
        });
}

/// Ends the process if the run has not finished within [`GRACE`] of the signal.
fn backstop(sig: i32) {
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        if FINISHED.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if !FINISHED.load(Ordering::SeqCst) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\nthreadlab: interrupted by {}: stopped without a report (the demo did not stop within {} s)",
            signal_name(sig),
            GRACE.as_secs_f64()
        );
        crate::pictures::files::discard_scratch();
        std::process::exit(128 + sig);
    }
}

/// `q` at a `--pause` prompt: the run ends as after a first SIGINT (the evidence so far,
/// marked interrupted, exit 130), named "q" in the report.
pub fn quit() {
    QUIT.store(true, Ordering::SeqCst);
    if SIGNAL
        .compare_exchange(0, libc::SIGINT, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        let (lock, cvar) = wake();
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
        let _ = std::thread::Builder::new()
            .name("Backstop".into())
            .spawn(|| backstop(libc::SIGINT));
    }
}

static QUIT: AtomicBool = AtomicBool::new(false);

/// Tells the backstop the run has finished on its own (its report is being printed).
pub fn finished() {
    FINISHED.store(true, Ordering::SeqCst);
}

/// Whether a SIGINT or SIGTERM has arrived.
pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::Relaxed) != 0
}

/// The exit code an interrupted run ends with (130 for SIGINT, 143 for SIGTERM), or `None`.
pub fn exit_code() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(128 + sig),
    }
}

/// The signal's name, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The name of the signal that interrupted the run, if one did.
pub fn received() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        _ if QUIT.load(Ordering::SeqCst) => Some("q at a --pause prompt"),
        sig => Some(signal_name(sig)),
    }
}

/// Sleeps `d`, or less if a signal arrives. Returns false if interrupted.
pub(super) fn sleep(d: Duration) -> bool {
    if interrupted() {
        return false;
    }
    // Nothing to wait for (a scheduled run would otherwise let every other thread go first).
    if d.is_zero() {
        return true;
    }
    // Recorded as simulated work on a lab's thread (the timelines' "sleeping").
    let wait = super::Wait::new(super::For::Time, super::Bound::Timeout(d));
    // In a scheduled run, time is virtual: a wait nobody wakes, until its deadline.
    if let Some(turn) = super::sched::current() {
        let key = super::waitgraph::next_resource_id();
        let slept = || turn.block_on(key, Some(d.as_micros() as u64)).is_ok();
        return super::Probe::off("sleep").block(wait, slept);
    }
    super::Probe::off("sleep").block(wait, || sleep_unrecorded(d))
}

/// [`sleep`], not recorded.
fn sleep_unrecorded(d: Duration) -> bool {
    let (lock, cvar) = wake();
    let deadline = Instant::now() + d;
    let mut woken = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if *woken {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        woken = cvar
            .wait_timeout(woken, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Ends the process because its output pipe closed: quietly, the way `yes | head -1` ends
/// Receives from `rx`, waiting at most `d`; returns `None` at once when the run is
/// interrupted (SIGINT/SIGTERM), so a demo waiting on a thread's message stops promptly.
pub fn recv_timeout<T>(rx: &crossbeam_channel::Receiver<T>, d: Duration) -> Option<T> {
    if let Some(turn) = super::sched::current() {
        return super::scheduled_recv(&turn, rx, Some(d)).ok();
    }
    let deadline = Instant::now() + d;
    loop {
        if interrupted() {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(25))) {
            Ok(v) => return Some(v),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if left.is_zero() => return None,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// `yes` (killed by SIGPIPE, status 141 in the shell).
pub fn pipe_closed() -> ! {
    crate::pictures::files::discard_scratch();
    // SAFETY: restoring a signal's default action and raising it are async-signal-safe
    // libc calls with no memory effects on this process's Rust state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(141);
}

/// Whether an error chain is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// On Linux, asks the kernel to kill this process when its parent dies, so a child of a demo
/// never outlives the demo, however the parent ends (a watchdog exit, SIGKILL, a crash).
pub fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory effects.
    unsafe {
        let parent = libc::getppid();
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The parent may have died before the request was made: then we are orphaned already.
        if libc::getppid() != parent {
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uninterrupted_sleep_lasts_its_duration() {
        let t = Instant::now();
        assert!(sleep(Duration::from_millis(30)));
        assert!(t.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed");
        let e = anyhow::Error::from(io).context("writing the report");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
