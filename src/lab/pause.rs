//! `--pause`: a pace the room can follow. On a terminal, the demo stops before each of its
//! parts, at the lesson's key moments (the first lost update, a cycle closing, a queue full,
//! a barrier breaking) and before its evidence, with a one-line prompt: Enter goes on, `q`
//! ends the run with the evidence so far (as a Ctrl-C would).
//!
//! While it waits, the screen is held (no other thread's line is written: each waits for the
//! one writer) and **the lab's clock stops**: [`paused`] is subtracted from every time the lab
//! reads, so a duration that spans a pause shows what the demo did, not how long the class
//! talked. A thread that never logs or waits goes on in real time meanwhile; its sleeps end
//! on the real clock.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static PAUSED_NS: AtomicU64 = AtomicU64::new(0);
/// A prompt is waiting for its answer.
static WAITING: AtomicBool = AtomicBool::new(false);
/// The key moments already stopped at: each kind stops the run once.
static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Whether `--pause` can stop here: stdin and stdout on a terminal (the prompt and the
/// narrative the class reads).
pub fn can_pause() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Turns the pauses on for this process.
pub fn enable() {
    ON.store(true, Ordering::SeqCst);
}

/// Whether `--pause` is on.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The time spent paused so far: the lab's clock leaves it out.
pub fn paused() -> Duration {
    Duration::from_nanos(PAUSED_NS.load(Ordering::Relaxed))
}

/// A key moment of the lesson: stops once per `kind` per run, with `what` in the prompt.
/// The screen is held while it waits.
pub fn moment(kind: &'static str, what: &str) {
    if !on() {
        return;
    }
    {
        let mut seen = crate::sync::lock(&SEEN);
        if seen.contains(&kind) {
            return;
        }
        seen.push(kind);
    }
    super::output::hold_screen(|| stop(what));
}

/// Stops with `what` in the prompt until Enter (goes on) or `q` (ends the run as a Ctrl-C
/// would: the evidence so far). The caller holds the screen. The clock stops meanwhile.
pub(crate) fn stop(what: &str) {
    if !on() || super::signals::interrupted() {
        return;
    }
    let began = Instant::now();
    WAITING.store(true, Ordering::SeqCst);
    // The bars' steady tick would draw over the prompt: they are off the screen meanwhile.
    let answer = super::output::bars_hidden(|| {
        let _ = std::io::stdout().flush();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "   ⏸  {what} · Enter goes on · q ends here ");
        let _ = err.flush();
        drop(err);
        read_answer()
    });
    WAITING.store(false, Ordering::SeqCst);
    PAUSED_NS.fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
    match answer.as_deref().map(str::trim) {
        Some("q") | Some("Q") | None => super::signals::quit(),
        _ => {}
    }
}

/// For a thread that neither logs nor waits (race's counters): while a prompt waits, wait
/// with it, so the threads stop together and go on together.
pub fn hold_point() {
    while WAITING.load(Ordering::Relaxed) && !super::signals::interrupted() {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A line from stdin, or `None` at its end or when Ctrl-C (or a SIGTERM) asked the run to
/// stop (looked at every 100 ms while waiting). `--step` and `--pause` read answers here.
pub fn read_answer() -> Option<String> {
    loop {
        if super::signals::interrupted() {
            return None;
        }
        let mut fds = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut fds, 1, 100) };
        if ready > 0 {
            let mut line = String::new();
            return match std::io::stdin().lock().read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line),
            };
        }
    }
}

/// The part a main-thread narrative line begins ("Part 2: …", "Part 1, again …"): the one
/// reading of a part header, shared by `--pause` and the pictures' part bands.
pub fn part_number(message: &str) -> Option<u32> {
    let rest = message.strip_prefix("Part ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u32 = digits.parse().ok()?;
    let after = &rest[digits.len()..];
    (after.starts_with(':') || after.starts_with(',')).then_some(n)
}

/// The part a header line announces when the run stops before it: Part 2 or later.
pub(crate) fn part_header(message: &str) -> Option<u32> {
    part_number(message).filter(|&n| n >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_header_is_a_main_thread_line_naming_part_2_or_later() {
        assert_eq!(part_header("Part 2: timed waits on 'signal'"), Some(2));
        assert_eq!(part_header("Part 12, connections"), Some(12));
        assert_eq!(part_header("Part 1: the life of one thread"), None);
        assert_eq!(part_number("Part 1, again with a lock: …"), Some(1));
        assert_eq!(part_header("Partial results"), None);
        assert_eq!(part_header("Part two"), None);
    }
}
