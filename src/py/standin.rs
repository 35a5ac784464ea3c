//! Stand-ins: one lab thread per thread of the reporting program, named as it is, playing
//! its events through the same wait protocol, holds, signals and clock as the demos' own
//! threads. The wait-for graph, the recorder, the narrative and the pictures see the
//! stand-in; none of them has a second, "reported" implementation.
//!
//! The event intake hands each stand-in its events in the order the program made them and
//! waits for each to be played (or, for a wait, registered) before it reads on: the records
//! keep the program's causal order across threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::lab::waitgraph::Cycle;
use crate::lab::{Bound, For, Hold, Outcome, Probe, Wait};
use crate::sync::lock;

/// One step for a stand-in to play, at `at` (ns from the lab's start).
pub enum Play {
    /// Takes a hold of the primitive.
    Hold(u64, Probe),
    /// Gives one hold of primitive `pid` back.
    Release(u64),
    /// Signals the primitive.
    Signal(Probe, &'static str),
    /// Begins a wait: registered, then blocked until the intake ends it.
    Wait(Probe, WaitFor, Option<Duration>),
    /// The program's thread ended.
    Exit,
}

/// What a played wait is for.
#[derive(Clone, Copy)]
pub enum WaitFor {
    Lock,
    Signal(&'static str),
    Join(std::thread::ThreadId),
}

/// A stand-in's answer to the intake.
pub enum Ack {
    /// The batch was played (a wait in it is registered).
    Played,
    /// The wait was refused at once: it would close a cycle (told by the victim itself).
    Refused,
    /// A wait the intake ended is over, and recorded.
    WaitOver,
}

/// Where the intake and a waiting stand-in meet.
#[derive(Default)]
pub struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
struct GateState {
    /// The stand-in is in a registered wait.
    waiting: bool,
    /// The program's wait ended with what it waited for (or otherwise, not by time).
    got: bool,
    /// The intake waits for the wait to be over ([`Ack::WaitOver`]).
    awaited: bool,
}

impl Gate {
    /// Ends the stand-in's wait, if it is in one: `got`, or (false) by its timeout, whose
    /// end the intake has already put on the stand-in's clock. Returns whether it was
    /// waiting (the intake then waits for [`Ack::WaitOver`]).
    pub fn end_wait(&self, got: bool) -> bool {
        let mut s = lock(&self.state);
        if !s.waiting {
            return false;
        }
        s.got |= got;
        s.awaited = true;
        drop(s);
        self.cv.notify_all();
        true
    }

    /// Whether the stand-in is in a wait.
    pub fn waiting(&self) -> bool {
        lock(&self.state).waiting
    }
}

/// What a stand-in shares with the intake.
pub struct Shared {
    /// The time of the event being played, ns from the lab's start.
    pub clock: Arc<AtomicU64>,
    pub gate: Arc<Gate>,
}

/// A stand-in's body: plays what it receives until [`Play::Exit`] or the intake goes.
/// `refused` hears of every wait the detector refused (the victim tells it): at once (a
/// cycle), or after it was registered (a stall, found while the program's thread waited).
pub fn play(
    plays: Receiver<Vec<(u64, Play)>>,
    acks: Sender<Ack>,
    shared: Shared,
    refused: &(dyn Fn(&Cycle) + Sync),
) {
    let mut holds: HashMap<u64, Vec<Hold<'static>>> = HashMap::new();
    for batch in plays.iter() {
        let mut answer = Ack::Played;
        for (at, step) in batch {
            shared.clock.fetch_max(at, Ordering::AcqRel);
            match step {
                Play::Hold(pid, probe) => holds.entry(pid).or_default().push(probe.hold().owned()),
                Play::Release(pid) => {
                    // The oldest hold goes (a semaphore's permit may come back from another).
                    if let Some(hs) = holds.get_mut(&pid).filter(|h| !h.is_empty()) {
                        drop(hs.remove(0));
                    }
                }
                Play::Signal(probe, what) => probe.signal(what),
                Play::Wait(probe, what, timeout) => {
                    answer = wait(&probe, what, timeout, &shared.gate, &acks, refused);
                }
                Play::Exit => {
                    holds.clear();
                    let _ = acks.send(Ack::Played);
                    return;
                }
            }
        }
        if let Some(a) = answer_of(answer) {
            let _ = acks.send(a);
        }
    }
}

/// A wait's answer was sent already (the wait told the intake it was registered).
fn answer_of(a: Ack) -> Option<Ack> {
    match a {
        Ack::WaitOver => None,
        other => Some(other),
    }
}

/// Plays one wait: registered (the intake is told, and reads on), then blocked until the
/// intake ends it or the detector refuses it. Returns the batch's answer still to send
/// (`WaitOver` when it was sent already).
fn wait(
    probe: &Probe,
    what: WaitFor,
    timeout: Option<Duration>,
    gate: &Gate,
    acks: &Sender<Ack>,
    refused: &(dyn Fn(&Cycle) + Sync),
) -> Ack {
    let what = match what {
        // A wait with the program's own timeout ends by itself: never refused.
        WaitFor::Lock => For::Held {
            refusable: timeout.is_none(),
        },
        WaitFor::Signal(by) => For::Signal {
            by: std::slice::from_ref(by_static(by)),
            bare: false,
        },
        WaitFor::Join(t) => For::Join(t),
    };
    let bound = timeout.map_or(Bound::Forever, Bound::Timeout);
    let registered = AtomicBool::new(false);
    // Called with the gate's lock held (the wait's own): it only notes and answers.
    let told = || {
        registered.store(true, Ordering::Release);
        let _ = acks.send(Ack::Played);
    };
    let wait = Wait::new(what, bound).when_registered(&told);
    let mut guard = lock(&gate.state);
    guard.waiting = true;
    let (mut s, outcome) = probe.wait(&gate.state, guard, &gate.cv, wait, |s| !s.got);
    let was_registered = registered.load(Ordering::Acquire);
    let awaited = s.awaited;
    *s = GateState::default();
    drop(s);
    if let Outcome::Refused(cycle) = outcome {
        refused(&cycle);
        if !was_registered {
            return Ack::Refused;
        }
    }
    if awaited {
        let _ = acks.send(Ack::WaitOver);
    }
    Ack::WaitOver
}

/// A signal's name as a `&'static &'static str`, for a wait's `by` slice.
fn by_static(by: &'static str) -> &'static &'static str {
    let names = &super::wire::SIGNALS;
    names
        .iter()
        .find(|n| **n == by)
        .unwrap_or(&names[names.len() - 1])
}
