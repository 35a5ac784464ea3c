//! Primitives Python's `threading` has and Rust's std lacks, built in plain view on
//! `Mutex` + `Condvar`, each instrumented with a [`Probe`](crate::lab::Probe).
//!
//! Every wait here re-checks its condition in a loop (`Condvar::wait_while`): a condvar may
//! wake spuriously, and another thread may take what we were woken for before we run.

pub mod barrier;
pub mod event;
pub mod mutex;
pub mod queue;
pub mod rate;

pub mod rlock;
pub mod semaphore;
pub mod timer;

pub use barrier::{Barrier, BrokenBarrier};
pub use event::Event;
pub use mutex::Mutex;
pub use queue::JoinableQueue;
pub use rate::RateLimiter;

pub use rlock::{Lock, RLock};
pub use semaphore::{ReleaseError, Semaphore};
pub use timer::{Cancel, Repeating, Schedule, Timer};

use std::sync::MutexGuard;

/// Locks a primitive's internal mutex. The primitives never panic while holding it, so a
/// poisoned state is still consistent: recover it rather than spread the panic.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// For unit tests of the primitives: ends the whole test binary with a message naming the
/// test if it is still running after `secs` seconds, so that a broken primitive (a lost
/// wake-up) fails a test in seconds instead of hanging it. Dropping the guard disarms it.
#[cfg(test)]
pub(crate) fn bounded_test(secs: u64) -> impl Drop {
    struct Disarm(Option<crossbeam_channel::Sender<()>>);
    impl Drop for Disarm {
        fn drop(&mut self) {
            self.0.take();
        }
    }
    let name = std::thread::current()
        .name()
        .unwrap_or("a unit test")
        .to_string();
    let (tx, rx) = crossbeam_channel::bounded::<()>(0);
    std::thread::spawn(move || {
        if let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
            rx.recv_timeout(std::time::Duration::from_secs(secs))
        {
            // Straight to stderr: the harness captures eprintln!, and exit would lose it.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "test {name} still waiting after {secs} s: a wait nobody ended (a lost \
                 wake-up?); ending the test binary"
            );
            std::process::exit(101);
        }
    });
    Disarm(Some(tx))
}
