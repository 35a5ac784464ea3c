#![doc = include_str!("pages/thread_local.md")]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::Sender;
use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::lock;

/// Flags of `threadlab thread-local`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Worker threads (1..=32).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 32))]
    pub workers: usize,
    /// Tasks each worker runs, each one query on a database connection (1..=100).
    #[arg(long, default_value_t = 3, value_name = "M",
          value_parser = crate::cli::whole::<usize>(1, 100))]
    pub tasks: usize,
    /// Seconds one query takes at the database (scaled by --pace).
    #[arg(long, default_value_t = 0.2, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub query: f64,
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("thread-local");
    report.params_from(args);
    each_its_own(args, lab, &mut report)?;
    if crate::lab::sched::current().is_some() {
        // A real server on a socket answers in real time, outside the lab's schedule.
        report.cannot_show(
            "Part 2, connections to a database",
            "under --schedule only Part 1 runs (the database is a real server on a socket, \
             whose time no schedule can replay)",
        );
        return Ok(report);
    }
    let mut table = Table::new([
        "connection",
        "opened (db counts)",
        "queries on each",
        "most at once",
        "time",
    ]);
    let mut times = Vec::new();
    if !lab.interrupted() {
        info!(
            "Part 2: a database on 127.0.0.1 that counts what it sees; three ways to hold a connection"
        );
    }
    for strategy in [Strategy::ThreadLocal, Strategy::Shared, Strategy::PerTask] {
        if lab.interrupted() {
            break;
        }
        times.push(connections(args, lab, strategy, &mut report, &mut table)?);
    }
    report.tables.push(table);
    if args.workers > 1 && args.query == 0.0 {
        report.cannot_show(
            "a shared connection making the queries wait their turn",
            "with --query 0 a query takes no time at the database",
        );
    } else if let [local, shared, _] = times[..]
        && args.workers > 1
    {
        report.check(
            "shared-connection-behind-lock-against",
            "one shared connection behind a lock against one per thread: time taken",
            "slower (every query waits its turn)",
            format!(
                "{} against {}",
                units::duration(shared),
                units::duration(local)
            ),
            shared > local,
        );
    }
    Ok(report)
}

thread_local! {
    /// Python's `local = threading.local(); local.user = …`: one slot per thread.
    static USER: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The tutorials' connection per thread, opened on first use, closed at thread exit.
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// Part 1: each thread writes its name into a thread-local and into a shared variable,
/// works a moment, and reads both back.
fn each_its_own(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!(
        "Part 1: {} workers each set user = their name in a thread-local (Rust's thread_local!, \
         Python's threading.local()) and in a shared variable (a global)",
        args.workers
    );
    let shared: Mutex<Option<String>> = Mutex::new(None);
    // Everyone writes at once, so the shared variable is overwritten while they work; and
    // nobody reads back before everyone has written (a barrier: on a busy machine a thread
    // may otherwise start so late that the writes never overlap).
    let gate = crate::sync::Event::new();
    let all_written =
        crate::sync::Barrier::new("all written", args.workers, Duration::from_secs(10));
    // (saw a value before setting its own, local read-back was another's, shared was another's)
    let seen: Vec<(bool, bool, bool)> = lab.workers(
        "Worker",
        args.workers,
        |w| {
                    let name = format!("Worker-{w}");
                    gate.wait_timeout(Duration::from_secs(10));
                    let before = USER.with(|u| u.borrow().clone());
                    USER.with(|u| *u.borrow_mut() = Some(name.clone()));
                    *lock(&shared) = Some(name.clone());
                    // Broken only if a worker never got here: the read-back still runs.
                    let _ = all_written.wait();
                    let secs = args.query * lab.rng(&name).random_range(0.5..=1.5);
                    lab.sleep_secs(secs);
                    let local = USER.with(|u| u.borrow().clone()).unwrap_or_default();
                    let global = lock(&shared).clone().unwrap_or_default();
                    info!(
                        "read back: thread-local user = {local}; shared user = {global}{}",
                        if global == name { "" } else { " (not mine)" }
                    );
                    (before.is_some(), local != name, global != name)
        },
        || gate.set(),
    )?;
    let before = seen.iter().filter(|s| s.0).count();
    let local_wrong = seen.iter().filter(|s| s.1).count();
    let shared_wrong = seen.iter().filter(|s| s.2).count();
    report.metric("shared.not_mine", shared_wrong as u64);
    report.check(
        "threads-found-user-already-set",
        "threads that found a user already set before setting their own (thread-local)",
        "0 (another thread's value is invisible)",
        before,
        before == 0,
    );
    report.check(
        "threads-whose-thread-local-user",
        "threads whose thread-local user read back as another's",
        "0",
        local_wrong,
        local_wrong == 0,
    );
    if args.workers > 1 {
        report.check(
            "threads-whose-shared-user-read",
            "threads whose shared user read back as another's (the bug)",
            format!(
                "{} (all but the last to write: everyone wrote before anyone read)",
                args.workers - 1
            ),
            shared_wrong,
            shared_wrong == args.workers - 1,
        );
    }
    Ok(())
}

/// How the workers get a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// One per thread, in a `thread_local!`, opened on first use.
    ThreadLocal,
    /// One for everybody, behind a lock.
    Shared,
    /// A new one for every task.
    PerTask,
}

impl Strategy {
    fn label(self) -> &'static str {
        match self {
            Strategy::ThreadLocal => "one per thread (thread_local!)",
            Strategy::Shared => "one shared, behind a lock",
            Strategy::PerTask => "a new one per task",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Strategy::ThreadLocal => "thread_local",
            Strategy::Shared => "shared",
            Strategy::PerTask => "per_task",
        }
    }
}

/// A worker's `--tasks` queries, each on a connection held the strategy's way.
fn worker_queries(
    args: &Args,
    lab: &Lab,
    strategy: Strategy,
    shared: Option<&Mutex<Connection>>,
    db: &Database,
    closed_tx: &crossbeam_channel::Sender<Closed>,
    query: Duration,
) -> anyhow::Result<()> {
    for task in 1..=args.tasks {
        if lab.interrupted() {
            break;
        }
        match strategy {
            Strategy::ThreadLocal => CONNECTION.with(|slot| {
                let mut slot = slot.borrow_mut();
                if slot.is_none() {
                    let c = Connection::open(db.addr, query, Some(closed_tx.clone()))?;
                    info!("task {task}: opened connection #{} for this thread", c.id);
                    *slot = Some(c);
                }
                let c = slot.as_mut().expect("opened above");
                c.query(task)?;
                info!(
                    "task {task}: query on connection #{} (use {})",
                    c.id, c.uses
                );
                anyhow::Ok(())
            })?,
            Strategy::Shared => {
                let asked = crate::lab::now();
                let mut c = lock(shared.expect("shared strategy"));
                let waited = crate::lab::now().saturating_duration_since(asked);
                c.query(task)?;
                info!(
                    "task {task}: query on shared connection #{} after waiting {} for it",
                    c.id,
                    units::duration(waited)
                );
            }
            Strategy::PerTask => {
                let mut c = Connection::open(db.addr, query, None)?;
                c.query(task)?;
                info!("task {task}: query on new connection #{}", c.id);
            }
        }
    }
    Ok(())
}

/// Each strategy's check, from the database's own counts (and, for the thread-local one, the
/// destructors that ran).
fn judge_connections(
    args: &Args,
    strategy: Strategy,
    stats: &Stats,
    uses: &str,
    destructors: usize,
    report: &mut Report,
) {
    let per_conn = &stats.queries_per_connection;
    let total = args.workers * args.tasks;
    match strategy {
        Strategy::ThreadLocal => {
            let each_m =
                per_conn.len() == args.workers && per_conn.iter().all(|&q| q == args.tasks as u64);
            report.check(
                "per-thread-connections-database-saw",
                "one per thread: connections the database saw opened, and queries on each",
                format!("{} opened, {} queries each", args.workers, args.tasks),
                format!("{} opened, {uses}", stats.accepted),
                stats.accepted == args.workers && each_m,
            );
            report.check(
                "per-thread-closed-thread-local",
                "one per thread: closed by a thread-local destructor at thread exit (destructors run; closes the database saw)",
                format!("{0}; {0}", args.workers),
                format!("{}; {}", destructors, stats.closed),
                destructors == args.workers && stats.closed == args.workers,
            );
        }
        Strategy::Shared => {
            report.check(
                "shared-behind-lock-connections-opened",
                "one shared behind a lock: connections opened, most queries at once",
                format!("1 opened, {total} queries on it, 1 at a time"),
                format!(
                    "{} opened, {} queries on it, {} at a time",
                    stats.accepted,
                    per_conn.iter().sum::<u64>(),
                    stats.most_in_flight
                ),
                stats.accepted == 1 && *per_conn == [total as u64] && stats.most_in_flight == 1,
            );
        }
        Strategy::PerTask => {
            report.check_eq(
                "new-per-task-connections-database",
                "a new one per task: connections the database saw opened",
                total.to_string(),
                stats.accepted.to_string(),
            );
        }
    }
}

/// Part 2: N workers × M queries through each strategy, against a database on 127.0.0.1
/// that counts what it sees: connections opened and closed, queries per connection, most
/// queries in flight at once.
fn connections(
    args: &Args,
    lab: &Lab,
    strategy: Strategy,
    report: &mut Report,
    table: &mut Table,
) -> anyhow::Result<Duration> {
    let query = lab.scaled(Duration::from_secs_f64(args.query));
    // What each way is in Python, said as the run starts.
    let python = match strategy {
        Strategy::ThreadLocal => "Python: a connection kept in a threading.local()",
        Strategy::Shared => "Python: one connection and a Lock around each query",
        Strategy::PerTask => "Python: connect() inside each task",
    };
    info!(
        "{}: {} workers × {} queries of {} ({python})",
        strategy.label(),
        args.workers,
        args.tasks,
        lab.simulated(args.query)
    );
    let db = Database::start(query)?;
    let (closed_tx, closed_rx) = crossbeam_channel::unbounded::<Closed>();
    let shared = if strategy == Strategy::Shared {
        Some(Mutex::new(Connection::open(db.addr, query, None)?))
    } else {
        None
    };
    let began = crate::lab::now();
    // Leaving a worker's thread runs CONNECTION's destructor: Connection::drop.
    let work = |_| {
        let closed_tx = closed_tx.clone();
        worker_queries(args, lab, strategy, shared.as_ref(), &db, &closed_tx, query)
    };
    let outcomes: Vec<anyhow::Result<()>> = lab.workers("Worker", args.workers, work, || {})?;
    let took = crate::lab::now().saturating_duration_since(began);
    drop(closed_tx);
    for outcome in outcomes {
        outcome?;
    }
    drop(shared);
    // The database notices each close on its own side; give it a moment, bounded.
    let stats = db.stop(Duration::from_secs(2));
    let destructors: Vec<Closed> = closed_rx.try_iter().collect();
    for c in &destructors {
        info!(
            "{}'s thread-local destructor closed connection #{} after {} queries, at thread exit",
            c.thread, c.id, c.uses
        );
    }
    let per_conn = &stats.queries_per_connection;
    let uses = match (per_conn.iter().min(), per_conn.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => format!("{lo} each"),
        (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
        _ => "—".to_string(),
    };
    table.row([
        strategy.label().to_string(),
        stats.accepted.to_string(),
        uses.clone(),
        stats.most_in_flight.to_string(),
        units::duration(took),
    ]);
    let key = strategy.key();
    report.metric(format!("{key}.opened"), stats.accepted as u64);
    report.metric(format!("{key}.closed"), stats.closed as u64);
    report.metric(format!("{key}.most_in_flight"), stats.most_in_flight as u64);
    report.metric(format!("{key}.ms"), units::ms(took));
    judge_connections(args, strategy, &stats, &uses, destructors.len(), report);
    Ok(took)
}

/// What a thread-local connection's destructor reports as its thread exits.
#[derive(Debug)]
struct Closed {
    thread: String,
    id: u64,
    uses: u64,
}

/// A client connection to the database: one line out, one line back per query.
struct Connection {
    id: u64,
    uses: u64,
    stream: BufReader<TcpStream>,
    /// Where a thread-local connection reports its own destruction.
    on_drop: Option<(Sender<Closed>, String)>,
}

impl Connection {
    /// Connects and reads the database's greeting, which names the connection.
    fn open(
        addr: SocketAddr,
        query: Duration,
        on_drop: Option<Sender<Closed>>,
    ) -> anyhow::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .with_context(|| format!("could not connect to the database at {addr}"))?;
        // Bounded: a database that stops answering fails the query instead of hanging it.
        stream.set_read_timeout(Some(query + Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        let mut c = Self {
            id: 0,
            uses: 0,
            stream: BufReader::new(stream),
            on_drop: on_drop.map(|tx| {
                let me = std::thread::current();
                (tx, me.name().unwrap_or("a worker").to_string())
            }),
        };
        c.id = c.read_reply()?;
        Ok(c)
    }

    /// One query: the database takes its time and answers with the connection's id.
    fn query(&mut self, task: usize) -> anyhow::Result<()> {
        // One write per line (with Nagle off): a query is one packet, not a wait for an ACK.
        self.stream
            .get_mut()
            .write_all(format!("task {task}\n").as_bytes())?;
        let id = self.read_reply()?;
        anyhow::ensure!(
            id == self.id,
            "the database answered for connection #{id}, not #{}",
            self.id
        );
        self.uses += 1;
        Ok(())
    }

    fn read_reply(&mut self) -> anyhow::Result<u64> {
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .context("the database did not answer")?;
        line.trim()
            .strip_prefix("ok ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("the database said {:?}", line.trim()))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // For the thread-local one this runs as its thread exits. Only a message here: the
        // thread's other thread-locals (the logger's among them) may already be gone.
        if let Some((tx, thread)) = self.on_drop.take() {
            let _ = tx.send(Closed {
                thread,
                id: self.id,
                uses: self.uses,
            });
        }
    }
}

/// What the database saw.
#[derive(Debug, Default)]
struct Stats {
    accepted: usize,
    closed: usize,
    most_in_flight: usize,
    queries_per_connection: Vec<u64>,
}

/// The counters the database's threads share.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicUsize,
    closed: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    queries: Mutex<Vec<Arc<AtomicU64>>>,
}

/// A stand-in database on 127.0.0.1: greets each connection with its number, answers each
/// line after `query`, and counts everything from its side of the socket.
struct Database {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Database {
    fn start(query: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .context("could not start the database on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st) = (Arc::clone(&counters), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("Database".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if st.load(SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else {
                        crate::lab::pause(Duration::from_millis(10));
                        continue;
                    };
                    let id = c.accepted.fetch_add(1, SeqCst) as u64 + 1;
                    let queries = Arc::new(AtomicU64::new(0));
                    lock(&c.queries).push(Arc::clone(&queries));
                    let c = Arc::clone(&c);
                    let spawned = std::thread::Builder::new()
                        .name(format!("Db-{id}"))
                        .spawn(move || serve(stream, id, query, &c, &queries));
                    if spawned.is_err() {
                        warn!("the database could not serve connection #{id}");
                    }
                }
            })
            .context("could not start the database thread")?;
        Ok(Self {
            addr,
            counters,
            stop,
        })
    }

    /// Waits up to `grace` for every connection to be closed, then stops accepting.
    fn stop(self, grace: Duration) -> Stats {
        let deadline = crate::lab::now() + grace;
        let c = &self.counters;
        while c.closed.load(SeqCst) < c.accepted.load(SeqCst) && crate::lab::now() < deadline {
            crate::lab::pause(Duration::from_millis(1));
        }
        self.stop.store(true, SeqCst);
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        Stats {
            accepted: c.accepted.load(SeqCst),
            closed: c.closed.load(SeqCst),
            most_in_flight: c.most_in_flight.load(SeqCst),
            queries_per_connection: lock(&c.queries).iter().map(|q| q.load(SeqCst)).collect(),
        }
    }
}

/// One database connection: greet, then answer each line after the query time.
fn serve(stream: TcpStream, id: u64, query: Duration, c: &Counters, queries: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let Ok(mut out) = stream.try_clone() else {
        c.closed.fetch_add(1, SeqCst);
        return;
    };
    let reply = format!("ok {id}\n");
    let _ = out.write_all(reply.as_bytes());
    let mut lines = BufReader::new(stream).lines();
    while let Some(Ok(_)) = lines.next() {
        let now = c.in_flight.fetch_add(1, SeqCst) + 1;
        c.most_in_flight.fetch_max(now, SeqCst);
        lab::sleep(query);
        c.in_flight.fetch_sub(1, SeqCst);
        queries.fetch_add(1, SeqCst);
        if out.write_all(reply.as_bytes()).is_err() {
            break;
        }
    }
    c.closed.fetch_add(1, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_per_thread_each_reused_and_closed_at_thread_exit() {
        let args = Args {
            workers: 3,
            tasks: 4,
            query: 0.2,
        };
        for report in lab::holding_over_seeds(run, &args, 0.05, 0..3) {
            assert_eq!(report.metric_u64("thread_local.opened"), Some(3));
            assert_eq!(report.metric_u64("per_task.opened"), Some(12));
        }
    }
}
