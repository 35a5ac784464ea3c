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
