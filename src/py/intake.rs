//! The runtime's event intake: events another program reports (one line each, see
//! [`super::wire`]) played into the lab, in the order the program made them, by stand-ins
//! ([`super::standin`]).

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use tracing::debug;

use super::standin::{self, Ack, Gate, Play, Shared, WaitFor};
use super::wire::{self, Ended, Kind, Line, Op};
use super::{Judge, Seen, ThreadSeen};
use crate::lab::waitgraph::Cycle;
use crate::lab::{Handle, Lab, LabScope, Probe};

/// A stand-in as the intake knows it.
struct StandIn<'scope> {
    name: String,
    daemon: bool,
    plays: Sender<Vec<(u64, Play)>>,
    clock: Arc<AtomicU64>,
    gate: Arc<Gate>,
    handle: Option<Handle<'scope, ()>>,
    id: std::thread::ThreadId,
    /// The current wait: its start (ns) and the program's timeout.
    wait: Option<(u64, Option<Duration>)>,
    /// Index into [`Seen::threads`].
    seen: usize,
}

/// The intake: the stand-ins, the primitives, and what the report needs.
pub struct Intake<'a, 'scope, 'env> {
    lab: &'env Lab,
    s: &'a LabScope<'scope, 'env>,
    judge: &'env Judge,
    threads: HashMap<u64, StandIn<'scope>>,
    prims: HashMap<u64, Probe>,
    names_used: HashMap<String, u64>,
    /// Holders of each primitive (program thread idents), oldest first.
    holders: HashMap<u64, Vec<u64>>,
    acks: (Sender<Ack>, Receiver<Ack>),
    /// Batched plays for one stand-in, not yet sent.
    pending: Option<(u64, Vec<(u64, Play)>)>,
    /// Program clock → lab offset: `offset = at_ns - zero`, never going back.
    zero: i128,
    last: u64,
    main_tid: Option<u64>,
    main_ended: bool,
    /// Cycles of the wait-for graph already told with their sites.
    cycles_told: usize,
    pub seen: Seen,
}

impl<'a, 'scope, 'env> Intake<'a, 'scope, 'env> {
    /// An intake playing into `s`'s lab; `zero` maps the program's monotonic clock (ns) to
    /// the lab's offsets.
    pub fn new(
        lab: &'env Lab,
        s: &'a LabScope<'scope, 'env>,
        judge: &'env Judge,
        zero: i128,
    ) -> Self {
        Self {
            lab,
            s,
            judge,
            threads: HashMap::new(),
            prims: HashMap::new(),
            names_used: HashMap::new(),
            holders: HashMap::new(),
            acks: crossbeam_channel::unbounded(),
            pending: None,
            zero,
            last: 0,
            main_tid: None,
            main_ended: false,
            cycles_told: 0,
            seen: Seen::default(),
        }
    }

    /// Reads and plays every event until the program closes its end.
    pub fn run(&mut self, mut reader: impl BufRead) -> anyhow::Result<()> {
        let mut line = String::new();
        loop {
            // Nothing more to read at once: what is batched is played before blocking.
            if reader.fill_buf().map(|b| b.is_empty()).unwrap_or(true) {
                self.send_pending();
            }
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            match wire::parse(line.trim_end_matches('\n')) {
                Some(ev) => self.event(ev)?,
                None => debug!("py: an unreadable line from the shim: {}", line.trim_end()),
            }
        }
        self.send_pending();
        self.program_over();
        Ok(())
    }

    fn at(&mut self, at_ns: u64) -> u64 {
        let off = (i128::from(at_ns) - self.zero).max(0) as u64;
        self.last = self.last.max(off);
        self.last
    }

    fn event(&mut self, ev: Line) -> anyhow::Result<()> {
        let at = self.at(ev.at_ns);
        // The main thread ended its program (the interpreter's shutdown runs on after): what
        // it does then is the interpreter's (joining a pool's workers), not the program's.
        if self.main_ended && Some(ev.tid) == self.main_tid {
            if matches!(ev.op, Op::Waits { .. }) {
                self.judge.answer_ok(ev.tid);
            }
            return Ok(());
        }
        let tid = ev.tid;
        match ev.op {
            Op::Interpreter {
                gil,
                switch_s,
                version,
            } => {
                self.seen.interpreter = Some((version, gil, switch_s));
            }
            Op::Started { daemon, name } => self.start(tid, at, daemon, name)?,
            Op::Ended { cpu } => self.end(tid, at, Some(cpu)),
            Op::Named {
                pid,
                kind,
                made,
                name,
            } => self.name(pid, kind, made, name),
            Op::Holds { pid, site } => {
                self.judge
                    .held(&self.thread_name(tid), &self.prim_name(pid), &site);
                self.holders.entry(pid).or_default().push(tid);
                let probe = self.probe(pid);
                self.queue(tid, at, Play::Hold(pid, probe))?;
            }
            Op::Releases { pid } => {
                // The holder that gives it back: this thread if it holds one, else the
                // oldest (a semaphore's permit released by another thread).
                let hs = self.holders.entry(pid).or_default();
                let holder = match hs.iter().position(|h| *h == tid) {
                    Some(i) => Some(hs.remove(i)),
                    None if !hs.is_empty() => Some(hs.remove(0)),
                    None => None,
                };
                if let Some(h) = holder {
                    self.queue(h, at, Play::Release(pid))?;
                }
            }
            Op::Signals { pid, what } => {
                let probe = self.probe(pid);
                self.queue(tid, at, Play::Signal(probe, what))?;
            }
            Op::Waits {
                pid,
                kind,
                timeout,
                site,
            } => self.wait(tid, at, pid, kind, timeout, site)?,
            Op::Looked => {
                self.send_pending();
                if let Some(t) = self.threads.get(&tid) {
                    // The waiting stand-in's clock follows its thread's looks: a wait refused
                    // later (a stall) ends at the program's time, not at its start.
                    t.clock.fetch_max(at, std::sync::atomic::Ordering::AcqRel);
                    self.lab.wait_graph().looked_again(t.id);
                }
            }
            Op::Done(how) => self.done(tid, at, how),
            Op::TooOld(version) => self.seen.too_old = Some(version),
            Op::Sync => {
                // Every event before the write is played (and its line printed) first.
                self.send_pending();
                self.judge.answer_ok(tid);
            }
            Op::Note(text) => {
                if !self.seen.notes.contains(&text) {
                    self.seen.notes.push(text);
                }
            }
        }
        Ok(())
    }

    /// A thread of the program started: its stand-in, named as it is.
    fn start(&mut self, tid: u64, at: u64, daemon: bool, name: String) -> anyhow::Result<()> {
        self.send_pending();
        if self.threads.contains_key(&tid) {
            // An ident the OS reused after its thread ended unreported: that one is over.
            self.end(tid, at, None);
        }
        if self.main_tid.is_none() {
            self.main_tid = Some(tid);
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let clock = Arc::new(AtomicU64::new(at));
        let gate = Arc::new(Gate::default());
        let shared = Shared {
            clock: Arc::clone(&clock),
            gate: Arc::clone(&gate),
        };
        let acks = self.acks.0.clone();
        let judge = self.judge;
        let lab = self.lab;
        let base = judge.start;
        let victim = tid;
        let handle = self.s.spawn(name.clone(), move || {
            crate::lab::sched::use_reported_clock(base, Arc::clone(&shared.clock));
            lab.wait_graph().stands_in();
            debug!("started{}", if daemon { " (daemon)" } else { "" });
            standin::play(rx, acks, shared, &|cycle: &Cycle| {
                judge.refused(victim, cycle)
            });
        })?;
        let id = handle.thread().id();
        // Played before the next event: its "started" line keeps its place in time.
        if tx.send(Vec::new()).is_ok() {
            self.answer();
        }
        self.seen.threads.push(ThreadSeen {
            name: name.clone(),
            daemon,
            started_ns: at,
            ended_ns: None,
            cpu: None,
        });
        self.judge.thread(&name, tid);
        self.threads.insert(
            tid,
            StandIn {
                name,
                daemon,
                plays: tx,
                clock,
                gate,
                handle: Some(handle),
                id,
                wait: None,
                seen: self.seen.threads.len() - 1,
            },
        );
        Ok(())
    }

    /// A thread of the program ended (`cpu` its CPU time, when it said so).
    fn end(&mut self, tid: u64, at: u64, cpu: Option<Duration>) {
        self.send_pending();
        let Some(mut t) = self.threads.remove(&tid) else {
            return;
        };
        if t.gate.end_wait(true) {
            self.answer();
        }
        self.seen.threads[t.seen].ended_ns = Some(at);
        self.seen.threads[t.seen].cpu = cpu;
        t.clock.fetch_max(at, std::sync::atomic::Ordering::AcqRel);
        let _ = t.plays.send(vec![(at, Play::Exit)]);
        self.answer();
        if let Some(h) = t.handle.take() {
            let _ = h.join();
        }
        for hs in self.holders.values_mut() {
            hs.retain(|h| *h != tid);
        }
        if Some(tid) == self.main_tid {
            self.main_ended = true;
        }
        if self.main_ended && self.threads.values().all(|t| t.daemon) {
            // Only daemon threads are left: the program is ending, and cuts them off.
            let daemons: Vec<u64> = self.threads.keys().copied().collect();
            for d in daemons {
                self.end(d, at, None);
            }
        }
    }

    /// The program closed its end (it exited, or was ended): every stand-in left ends.
    fn program_over(&mut self) {
        let left: Vec<u64> = self.threads.keys().copied().collect();
        let at = self.last;
        for tid in left {
            self.end(tid, at, None);
        }
    }

    fn name(&mut self, pid: u64, kind: String, made: String, name: String) {
        // Two primitives of one name (a local `lock` in two functions) stay apart.
        let name = match self.names_used.get(&name) {
            Some(other) if *other != pid => format!("{name}#{pid}"),
            _ => name,
        };
        self.names_used.insert(name.clone(), pid);
        self.seen.primitives.push((name.clone(), kind, made));
        let probe = self.lab.probe(&name);
        self.prims.insert(pid, probe);
    }

    fn probe(&mut self, pid: u64) -> Probe {
        if !self.prims.contains_key(&pid) {
            self.name(pid, "?".into(), "?".into(), format!("primitive-{pid}"));
        }
        self.prims[&pid].clone()
    }

    fn prim_name(&mut self, pid: u64) -> String {
        self.probe(pid).name().to_string()
    }

    fn thread_name(&self, tid: u64) -> String {
        self.threads
            .get(&tid)
            .map_or_else(|| format!("thread-{tid}"), |t| t.name.clone())
    }

    /// Queues a play for `tid`'s stand-in, sending what another stand-in had batched first.
    fn queue(&mut self, tid: u64, at: u64, play: Play) -> anyhow::Result<()> {
        if !self.threads.contains_key(&tid) {
            self.start(tid, at, false, format!("thread-{tid}"))?;
        }
        if self.threads[&tid].gate.waiting() {
            // An event from a thread the intake believes blocked: its wait is over.
            self.done(tid, at, Ended::Ok);
        }
        match &mut self.pending {
            Some((t, plays)) if *t == tid => plays.push((at, play)),
            _ => {
                self.send_pending();
                self.pending = Some((tid, vec![(at, play)]));
            }
        }
        Ok(())
    }

    /// Plays what is batched, and waits until it is played.
    fn send_pending(&mut self) {
        let Some((tid, plays)) = self.pending.take() else {
            return;
        };
        if let Some(t) = self.threads.get(&tid)
            && t.plays.send(plays).is_ok()
        {
            self.answer();
        }
    }

    /// The next stand-in's answer (the one the intake just handed something to): at most
    /// 30 s, and none at once when the run is interrupted.
    fn answer(&self) -> Option<Ack> {
        crate::lab::signals::recv_timeout(&self.acks.1, Duration::from_secs(30))
    }

    fn wait(
        &mut self,
        tid: u64,
        at: u64,
        pid: u64,
        kind: Kind,
        timeout: Option<Duration>,
        site: String,
    ) -> anyhow::Result<()> {
        let what = match kind {
            Kind::Lock => WaitFor::Lock,
            Kind::Signal(by) => WaitFor::Signal(by),
            Kind::Join => match self.threads.get(&pid) {
                Some(target) => WaitFor::Join(target.id),
                // Joining a thread already over (it said so just before it stopped), or one
                // the shim never saw: no wait to register; the program goes on at once.
                None => {
                    self.send_pending();
                    self.judge.answer_ok(tid);
                    return Ok(());
                }
            },
        };
        let probe = match kind {
            Kind::Join => Probe::off("join"),
            _ => self.probe(pid),
        };
        let me = self.thread_name(tid);
        self.judge.waits(&me, &site);
        self.queue(tid, at, Play::Wait(probe, what, timeout))?;
        self.send_pending_wait(tid, at, timeout);
        Ok(())
    }

    /// Sends a batch ending in a wait: answered once the wait is registered, or refused.
    fn send_pending_wait(&mut self, tid: u64, at: u64, timeout: Option<Duration>) {
        // Whatever happens, the program's thread hears back (it waits for the answer).
        let Some((t, plays)) = self.pending.take() else {
            return self.judge.answer_ok(tid);
        };
        let Some(st) = self.threads.get(&t) else {
            return self.judge.answer_ok(tid);
        };
        if st.plays.send(plays).is_err() {
            return self.judge.answer_ok(tid);
        }
        // A wait refused at once was judged by its stand-in (the victim tells it, and under
        // `raise` answers the program); any other wait is answered `ok`: the program's thread
        // blocks only once its wait is registered.
        match self.answer() {
            Some(Ack::Refused) => self.judge.answer_ok_unless_raised(tid),
            Some(_) => {
                if let Some(st) = self.threads.get_mut(&t) {
                    st.wait = Some((at, timeout));
                }
                self.judge.answer_ok(tid);
            }
            None => self.judge.answer_ok(tid),
        }
        // A cycle only observed is told here with its sites: one a wait with the program's
        // own timeout closed (it ends by itself, and is no deadlock), or any under
        // `--on-deadlock observe`.
        let cycles = self.lab.wait_graph().cycles();
        for c in cycles.iter().skip(self.cycles_told) {
            if c.victim.is_none() {
                self.judge.observed(c, timeout.is_some());
                self.seen.timed_cycles += usize::from(timeout.is_some());
            }
        }
        self.cycles_told = cycles.len();
    }

    /// The program's wait ended: the stand-in's ends the same way, at the same time.
    fn done(&mut self, tid: u64, at: u64, how: Ended) {
        self.send_pending();
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        let Some((began, timeout)) = t.wait.take() else {
            return;
        };
        let got = match (how, timeout) {
            (Ended::Timeout, Some(d)) => {
                // Its own timeout: on the stand-in's clock it ran out too.
                let end = at.max(began + d.as_nanos() as u64);
                t.clock.fetch_max(end, std::sync::atomic::Ordering::AcqRel);
                false
            }
            _ => {
                t.clock.fetch_max(at, std::sync::atomic::Ordering::AcqRel);
                true
            }
        };
        if t.gate.end_wait(got) {
            self.answer();
        }
    }
}
