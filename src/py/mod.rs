//! `threadlab py SCRIPT.py [ARGS…]`: a learner's own Python threading program, under the lab.
//!
//! The script runs on `python3` as it would alone, with a shim ([`shim.py`](SHIM), loaded as
//! `sitecustomize` from a private folder) that reports every threading operation over a
//! private socket. Those events go into the lab through its event intake ([`intake`]): one
//! stand-in lab thread per Python thread ([`standin`]) plays them through the same wait
//! protocol, wait-for graph, recorder, narrative and pictures as the demos' own threads. A
//! wait that closes a cycle, or that nobody left can end, is found the moment it forms and
//! named with the file and line of every acquire in it; then `--on-deadlock` decides.

pub mod intake;
pub mod standin;
pub mod wire;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tracing::{info, warn};

use crate::lab::waitgraph::{Cycle, Kind, Policy, Waited};
use crate::lab::{Lab, Report, Table, units};
use crate::sync::lock;

/// The shim, written to a private folder as `sitecustomize.py` for each run.
pub const SHIM: &str = include_str!("shim.py");

/// The programs in `demos/python/` that end by themselves under plain python3 (the others
/// deadlock): the tests compare their output, the bench their wall time.
pub const CLASSICS_THAT_END: [&str; 8] = [
    "thread_basics",
    "racy_counter",
    "bank_ordered",
    "producer_consumer",
    "event_shutdown",
    "barrier",
    "pool_as_completed",
    "no_threads",
];

/// Exit status when `--on-deadlock stop` ended the program.
pub const EXIT_STOPPED: i32 = 3;
/// Exit status when `--timeout` ended the program (as `timeout(1)`).
pub const EXIT_TIMED_OUT: i32 = 124;

/// `threadlab py`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// What a deadlock does to the program: raise threadlab.DeadlockError in the waiting
    /// thread whose wait closed it (raise), end the program with exit status 3 (stop), or
    /// only report it and let the program hang as it would (observe; --timeout ends it).
    #[arg(long, value_enum, default_value_t = OnDeadlock::Raise, value_name = "WHAT")]
    pub on_deadlock: OnDeadlock,
    /// End the program after this many seconds (0 = never); exit status 124.
    #[arg(long, default_value_t = 600.0, value_name = "SECS",
          value_parser = crate::cli::parse_secs_any)]
    pub timeout: f64,
    /// The Python interpreter to run (3.8 or newer).
    #[arg(long, default_value = "python3", value_name = "PATH")]
    pub python: String,
    /// The Python script.
    pub script: PathBuf,
    /// Its arguments, passed on as they are.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// What a deadlock does to the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDeadlock {
    /// The waiting call raises threadlab.DeadlockError in the victim thread.
    Raise,
    /// The program is ended; threadlab exits 3.
    Stop,
    /// Only told; the program hangs as it would.
    Observe,
}

/// One Python thread as the intake saw it.
#[derive(Debug, Clone)]
pub struct ThreadSeen {
    pub name: String,
    pub daemon: bool,
    pub started_ns: u64,
    pub ended_ns: Option<u64>,
    pub cpu: Option<Duration>,
}

/// What the intake saw of the program, for the report.
#[derive(Debug, Default)]
pub struct Seen {
    /// Version, GIL on, switch interval (s).
    pub interpreter: Option<(String, bool, f64)>,
    pub threads: Vec<ThreadSeen>,
    /// (name, kind, where it was made) of each primitive used.
    pub primitives: Vec<(String, String, String)>,
    pub notes: Vec<String>,
    /// Cycles closed by a wait with the program's own timeout: they end by themselves.
    pub timed_cycles: usize,
    /// The interpreter's version, when the shim found it older than 3.8.
    pub too_old: Option<String>,
    /// The shim connected (the program ran observed).
    pub connected: bool,
}

/// Where each thread took what it holds and where it waits: the file:line a deadlock names.
#[derive(Default)]
struct Sites {
    held: HashMap<(String, String), String>,
    waiting: HashMap<String, String>,
}

/// Judges refused waits by `--on-deadlock`, and answers the program.
pub struct Judge {
    /// The lab's start: the stand-ins' clocks count from it.
    pub start: Instant,
    policy: OnDeadlock,
    reply: Mutex<Option<UnixStream>>,
    stop: AtomicBool,
    sites: Mutex<Sites>,
    tids: Mutex<HashMap<String, u64>>,
}

impl Judge {
    fn new(start: Instant, policy: OnDeadlock) -> Self {
        Self {
            start,
            policy,
            reply: Mutex::new(None),
            stop: AtomicBool::new(false),
            sites: Mutex::new(Sites::default()),
            tids: Mutex::new(HashMap::new()),
        }
    }

    /// Thread `name` is the program's thread `tid`.
    pub fn thread(&self, name: &str, tid: u64) {
        lock(&self.tids).insert(name.to_string(), tid);
    }

    /// `thread` took `prim` at `site`.
    pub fn held(&self, thread: &str, prim: &str, site: &str) {
        lock(&self.sites)
            .held
            .insert((thread.to_string(), prim.to_string()), site.to_string());
    }

    /// `thread` waits at `site`.
    pub fn waits(&self, thread: &str, site: &str) {
        lock(&self.sites)
            .waiting
            .insert(thread.to_string(), site.to_string());
    }

    /// Tells the program's thread `tid` its wait is registered: it may block.
    pub fn answer_ok(&self, tid: u64) {
        if let Some(r) = lock(&self.reply).as_mut() {
            let _ = r.write_all(format!("{tid} ok\n").as_bytes());
        }
    }

    /// After a refused wait: the thread has its DeadlockError under `raise`; otherwise it
    /// waits on as it would (`stop`, `observe`), answered `ok`.
    pub fn answer_ok_unless_raised(&self, tid: u64) {
        if self.policy != OnDeadlock::Raise {
            self.answer_ok(tid);
        }
    }

    /// The deadlock with the file:line of each acquire and wait in it, one line per thread.
    pub fn sited(&self, cycle: &Cycle) -> Vec<String> {
        let sites = lock(&self.sites);
        let at = |t: &str| sites.waiting.get(t).map_or("?", String::as_str).to_string();
        let n = cycle.threads.len();
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let t = &cycle.threads[i];
                match (&cycle.locks[i], cycle.kind) {
                    (Waited::Join(j), _) => format!("{t} waits to join {j} at {}", at(t)),
                    (w, Kind::Stall) => format!("{t} waits for '{w}' at {}", at(t)),
                    (w, Kind::Cycle) => {
                        let held = cycle.locks[(i + n - 1) % n].to_string();
                        let took = sites
                            .held
                            .get(&(t.clone(), held.clone()))
                            .map_or("?", String::as_str);
                        format!(
                            "{t} holds '{held}' (taken at {took}) and waits for '{w}' at {}",
                            at(t)
                        )
                    }
                }
            })
            .collect();
        lines
    }

    /// A wait the detector refused (its victim tells it): told with its sites, then
    /// answered by the policy.
    pub fn refused(&self, victim_tid: u64, cycle: &Cycle) {
        let lines = self.sited(cycle);
        for l in &lines {
            warn!("  at: {l}");
        }
        let victim = cycle.victim.clone().unwrap_or_default();
        let tid = lock(&self.tids).get(&victim).copied().unwrap_or(victim_tid);
        match self.policy {
            OnDeadlock::Raise => {
                warn!("  threadlab.DeadlockError raised in {victim} (--on-deadlock raise)");
                let what = match cycle.kind {
                    Kind::Cycle => format!("a cycle of {} threads", cycle.threads.len()),
                    Kind::Stall => "a wait nobody is left to end".to_string(),
                };
                let mut lines = lines;
                if cycle.kind == Kind::Stall {
                    lines.extend(cycle.story().pop());
                }
                let why = format!("deadlock: {what}:\n  {}", lines.join("\n  "));
                if let Some(r) = lock(&self.reply).as_mut() {
                    let _ = r.write_all(wire::refusal(tid, &why).as_bytes());
                }
            }
            OnDeadlock::Stop => {
                warn!("  the program is stopped (--on-deadlock stop): exit status 3");
                self.stop.store(true, Ordering::SeqCst);
            }
            OnDeadlock::Observe => {
                warn!("  only told (--on-deadlock observe): the program waits on, as it would");
            }
        }
    }

    /// A cycle the detector only observed, told with its sites: closed by a wait with the
    /// program's own timeout (`timed`: it ends by itself), or under `--on-deadlock observe`.
    pub fn observed(&self, cycle: &Cycle, timed: bool) {
        for l in self.sited(cycle) {
            warn!("  at: {l}");
        }
        if timed {
            warn!("  the wait that closed it has a timeout of the program's own: no deadlock");
        } else {
            warn!("  only told (--on-deadlock observe): the program waits on, as it would");
        }
    }
}

/// How the program ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Exited(ExitStatus),
    TimedOut,
    Stopped,
}

/// Runs `threadlab py`.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    check_script(&args.script)?;
    let private = Private::new()?;
    let listener = UnixListener::bind(private.path.join("events"))
        .context("could not open the event socket")?;
    listener.set_nonblocking(true)?;
    let judge = Judge::new(lab.start(), args.on_deadlock);
    if args.on_deadlock == OnDeadlock::Observe {
        lab.wait_graph().set_policy(Policy::Observe);
    }
    // The lab's main thread only watches: the program's threads are the stand-ins, and
    // threadlab's own lines come from a thread of its own name.
    lab.wait_graph().step_aside();
    let policy = serde_json::to_value(args.on_deadlock)?;
    let policy = policy.as_str().unwrap_or("");
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("threadlab".into())
            .spawn_scoped(s, || {
                info!(
                    "py: {} on {}, --on-deadlock {policy}",
                    args.script.display(),
                    args.python
                );
                let child = spawn(args, lab, &private)?;
                let child = Arc::new(Mutex::new(KillOnDrop(child)));
                let done = Arc::new(Mutex::new(None::<End>));
                let watcher = watch(args, Arc::clone(&child), Arc::clone(&done), &judge);
                let w = s.spawn(watcher);
                let seen = accept(&listener, &done).map(|stream| play(lab, &judge, stream));
                let _ = w.join();
                let seen = seen.transpose()?.unwrap_or_default();
                if let Some(v) = &seen.too_old {
                    bail!(
                        "py: {} is Python {v}; threadlab py needs 3.8 or newer",
                        args.python
                    );
                }
                let mut seen = seen;
                if !seen.connected {
                    let why = format!(
                        "the program ran unobserved: threadlab's shim never reported (is {} \
                         Python 3.8 or newer?)",
                        args.python
                    );
                    warn!("py: {why}");
                    seen.notes.push(why);
                }
                let end = lock(&done).unwrap_or(End::Stopped);
                Ok(report(args, lab, &seen, end))
            })?
            .join()
            .unwrap_or_else(|_| bail!("py: threadlab's watcher failed"))
    })
}

/// A clear line for a script that cannot run.
fn check_script(script: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(script) {
        Err(_) => bail!("py: no such file: {}", script.display()),
        Ok(m) if m.is_dir() => bail!("py: {} is a folder, not a Python script", script.display()),
        Ok(_) => Ok(()),
    }
}

/// A private folder with the shim and the socket, removed when dropped.
struct Private {
    path: PathBuf,
}

impl Private {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("threadlab-py-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).context("could not make a private folder for the shim")?;
        let p = Self { path };
        std::fs::write(p.path.join("sitecustomize.py"), SHIM)?;
        Ok(p)
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Kills and reaps the program on every way out.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn(args: &Args, lab: &Lab, private: &Private) -> anyhow::Result<Child> {
    let mut cmd = Command::new(&args.python);
    cmd.arg(&args.script).args(&args.args);
    let mut path = OsString::from(&private.path);
    if let Some(old) = std::env::var_os("PYTHONPATH") {
        cmd.env("THREADLAB_PY_OLD_PYTHONPATH", &old);
        path.push(":");
        path.push(old);
    }
    cmd.env("PYTHONPATH", path)
        .env("THREADLAB_PY_SOCKET", private.path.join("events"))
        .env(
            "THREADLAB_PY_POLICY",
            serde_json::to_value(args.on_deadlock)?
                .as_str()
                .unwrap_or("raise"),
        );
    // With -v the narrative tells every event: the program's writes wait for the lines of
    // the events before them, so the screen keeps the order things happened in.
    if lab.output().verbose && !lab.output().json {
        cmd.env("THREADLAB_PY_SYNC", "1");
    }
    // With --json the report owns stdout: the program's output goes to stderr.
    if lab.output().json {
        cmd.stdout(std::io::stderr());
    }
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no Rust state; it
    // makes the kernel end the program if threadlab dies first, so none is left behind.
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "py: cannot run {} ({e}): install Python 3.8 or newer, or name it with --python",
            args.python
        )
    })
}

/// The watcher: waits for the program's end, and ends it on `--timeout`, on a deadlock
/// under `--on-deadlock stop`, or after passing on a SIGINT/SIGTERM (2 s of grace).
fn watch<'j>(
    args: &Args,
    child: Arc<Mutex<KillOnDrop>>,
    done: Arc<Mutex<Option<End>>>,
    judge: &'j Judge,
) -> impl FnOnce() + Send + 'j {
    let limit = (args.timeout > 0.0).then(|| Duration::from_secs_f64(args.timeout));
    move || {
        let began = Instant::now();
        let mut forwarded: Option<Instant> = None;
        let mut heard: Option<Instant> = None;
        loop {
            let mut c = lock(&child);
            if let Ok(Some(status)) = c.0.try_wait() {
                lock(&done).get_or_insert(End::Exited(status));
                return;
            }
            let kill = |c: &mut KillOnDrop, why: End| {
                let _ = c.0.kill();
                let _ = c.0.wait();
                *lock(&done) = Some(why);
            };
            if judge.stop.load(Ordering::SeqCst) {
                return kill(&mut c, End::Stopped);
            }
            if limit.is_some_and(|l| began.elapsed() >= l) {
                return kill(&mut c, End::TimedOut);
            }
            if let Some(sig) = crate::lab::signals::exit_code().map(|c| c - 128) {
                // A Ctrl-C at a terminal reaches the program too (one process group): it is
                // passed on only if the program is still running 0.2 s later (a signal sent
                // to threadlab alone), and the program is ended 2 s after that.
                let since = *heard.get_or_insert_with(Instant::now);
                match forwarded {
                    None if since.elapsed() > Duration::from_millis(200) => {
                        // SAFETY: kill(2) on our own child's pid.
                        unsafe { libc::kill(c.0.id() as i32, sig) };
                        forwarded = Some(Instant::now());
                    }
                    Some(at) if at.elapsed() > Duration::from_secs(2) => {
                        let _ = c.0.kill();
                    }
                    _ => {}
                }
            }
            drop(c);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The program's connection, once its shim connects; `None` if it ended first.
fn accept(listener: &UnixListener, done: &Mutex<Option<End>>) -> Option<UnixStream> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => return Some(stream),
            Err(_) if lock(done).is_some() => return None,
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Plays the program's events into the lab until it closes its end.
fn play(lab: &Lab, judge: &Judge, stream: UnixStream) -> anyhow::Result<Seen> {
    stream.set_nonblocking(false)?;
    *lock(&judge.reply) = Some(stream.try_clone()?);
    let zero = clock_zero(lab);
    lab.scope(|s| {
        let mut intake = intake::Intake::new(lab, s, judge, zero);
        let read = intake.run(BufReader::with_capacity(1 << 16, stream));
        intake.seen.connected = true;
        read.map(|()| std::mem::take(&mut intake.seen))
    })
}

/// The program's monotonic clock (ns) at the lab's start: Python's `time.monotonic_ns()`
/// and the lab's `Instant` both read the OS's monotonic clock.
fn clock_zero(lab: &Lab) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono = i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec);
    mono - lab.elapsed().as_nanos() as i128
}

/// The report: the program's exit, its interpreter, its threads' CPU against wall time,
/// and the deadlocks (added by the lab, with the threads and primitives).
fn report(args: &Args, lab: &Lab, seen: &Seen, end: End) -> Report {
    let mut report = Report::new("py");
    report.params.insert("script".into(), json!(args.script));
    let argv: Vec<String> = args
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    report.params.insert("args".into(), json!(argv));
    report
        .params
        .insert("on_deadlock".into(), json!(args.on_deadlock));
    report.params.insert("timeout".into(), json!(args.timeout));
    let code = match end {
        End::Exited(s) => s.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
        }),
        End::Stopped => EXIT_STOPPED,
        End::TimedOut => EXIT_TIMED_OUT,
    };
    match end {
        End::Exited(_) => info!("py: the program exited with status {code}"),
        End::Stopped => info!("py: the program was stopped at its deadlock (exit status 3)"),
        End::TimedOut => warn!(
            "py: the program ran past --timeout {}: ended (exit status 124)",
            units::duration(Duration::from_secs_f64(args.timeout))
        ),
    }
    report.extra.insert("script".into(), json!(args.script));
    report.extra.insert("exit_status".into(), json!(code));
    report.extra.insert(
        "ended".into(),
        json!(match end {
            End::Exited(_) => "exited",
            End::Stopped => "stopped",
            End::TimedOut => "timed out",
        }),
    );
    report.exit_code = Some(code);
    interpreter(&mut report, seen);
    cpu_table(&mut report, seen, lab);
    let formed = lab
        .wait_graph()
        .cycles()
        .len()
        .saturating_sub(seen.timed_cycles);
    report.check(
        "deadlocks",
        "deadlocks and stalls that formed (cycles of waits, waits nobody could end)",
        "0",
        formed,
        formed == 0,
    );
    let made: Vec<serde_json::Value> = seen
        .primitives
        .iter()
        .map(|(name, kind, made)| json!({"name": name, "kind": kind, "made_at": made}))
        .collect();
    report.extra.insert("python_primitives".into(), json!(made));
    report.notes.extend(seen.notes.iter().cloned());
    report
}

fn interpreter(report: &mut Report, seen: &Seen) {
    if let Some((version, gil, switch)) = &seen.interpreter {
        report.extra.insert(
            "interpreter".into(),
            json!({"version": version, "gil": gil, "switch_interval_s": switch}),
        );
        report.notes.push(format!(
            "Python {version}, the GIL {} (switch interval {})",
            if *gil {
                "on"
            } else {
                "off: a free-threaded build"
            },
            units::duration(Duration::from_secs_f64(*switch))
        ));
    }
}

/// Per thread, CPU time against wall time: CPU-bound threads under the GIL take turns,
/// so together they use about one core however many there are.
fn cpu_table(report: &mut Report, seen: &Seen, lab: &Lab) {
    let mut table = Table::new(["thread", "wall", "CPU", "CPU / wall"]);
    table.title = Some("CPU time against wall time, per Python thread".into());
    let mut rows = Vec::new();
    let (mut cpu_sum, mut busy) = (Duration::ZERO, 0);
    let end_of_run = lab.elapsed().as_nanos() as u64;
    for t in &seen.threads {
        let wall = Duration::from_nanos(
            t.ended_ns
                .unwrap_or(end_of_run)
                .saturating_sub(t.started_ns),
        );
        let share = t
            .cpu
            .map(|c| c.as_secs_f64() / wall.as_secs_f64().max(1e-9));
        if let Some(c) = t.cpu {
            cpu_sum += c;
            busy += usize::from(share.is_some_and(|s| s > 0.5) && wall > Duration::from_millis(50));
        }
        table.row([
            t.name.clone(),
            units::duration(wall),
            t.cpu.map_or("-".into(), units::duration),
            share.map_or("-".into(), |s| format!("{:.0} %", s * 100.0)),
        ]);
        rows.push(json!({
            "name": t.name, "daemon": t.daemon, "wall_ms": units::ms(wall),
            "cpu_ms": t.cpu.map(units::ms),
        }));
    }
    let run = lab.elapsed();
    let cores = cpu_sum.as_secs_f64() / run.as_secs_f64().max(1e-9);
    report.metric("cpu_cores_used", (cores * 100.0).round() / 100.0);
    if busy >= 2 {
        report.notes.push(format!(
            "{busy} threads were CPU-bound (over half their time computing); together they used \
             {cores:.2} cores over the run{}",
            if cores < 1.3 {
                ": they took turns holding the GIL"
            } else {
                ""
            }
        ));
    }
    report.extra.insert("python_threads".into(), json!(rows));
    if !seen.threads.is_empty() {
        report.tables.push(table);
    }
}
