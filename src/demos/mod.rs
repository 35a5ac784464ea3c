//! The demos: one module each, and the registry that lists each demo once.
//!
//! Adding a demo is its module (`src/demos/NAME.rs`, with `Args` and `run`), its page
//! (`src/demos/pages/NAME.md`, which is also the module's documentation) and one entry in
//! [`registry!`] below. The subcommand, `threadlab list`, `threadlab explain`, the
//! next-lesson footer, the dispatcher and every test that walks the demos are derived from
//! that entry.

use clap::Subcommand;

use crate::lab::{Lab, Report};

/// One demo as the tools and tests see it. Its name, aliases and summary are the
/// subcommand's own (the entry's `#[command]` attributes and doc comment).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The subcommand, e.g. `race-condition`.
    pub name: String,
    /// Its visible aliases, e.g. `race`.
    pub aliases: Vec<String>,
    /// The one-line summary `list` prints.
    pub about: String,
    /// The module's file name under `src/demos/` (without `.rs`).
    pub module: &'static str,
    /// The explain page.
    pub page: &'static str,
    /// Flags for a quick, complete run (the tests add `--pace 0.02`).
    pub quick: &'static [&'static str],
    /// Flags for a run long enough to be interrupted (the signal tests), or `None` when the
    /// demo's own tests cover interruption.
    pub long: Option<&'static [&'static str]>,
    /// Why the demo refuses `--schedule` (its point is real parallel time or real I/O), or
    /// `None`: it runs under the lab's scheduler.
    pub unscheduled: Option<&'static str>,
    /// How many parts `--part N` chooses among (0: the demo is not in parts).
    pub parts: u32,
    /// The checks that carry the lesson (ids without the demo's prefix): `--class` shows
    /// these and folds the rest into one line (every check still runs and still sets the
    /// exit code; a ✘ is always shown; `--checks all` shows them all).
    pub lesson: &'static [&'static str],
}

struct Static {
    module: &'static str,
    page: &'static str,
    quick: &'static [&'static str],
    long: Option<&'static [&'static str]>,
    lesson: &'static [&'static str],
    unscheduled: Option<&'static str>,
    parts: Option<u32>,
}

/// `None`, or `Some` of the one expression given.
macro_rules! optional {
    () => {
        None
    };
    ($e:expr) => {
        Some($e)
    };
}

/// Declares every demo once, in lesson order: its subcommand (doc comment = summary,
/// `#[command]` attributes = name and aliases), its module, and the flags the tests use.
macro_rules! registry {
    ($( $(#[$meta:meta])* $variant:ident => $module:ident, quick: $quick:expr, long: $long:expr,
        lesson: $lesson:expr $(, unscheduled: $why:expr)? $(, parts: $parts:expr)?; )*) => {
        $( pub mod $module; )*

        /// One variant per demo, in lesson order. (Parsed once per run: url-check's many
        /// flags make its variant the largest, which costs nothing worth a box.)
        #[derive(Debug, Subcommand)]
        #[allow(clippy::large_enum_variant)]
        pub enum Demo {
            $( $(#[$meta])* $variant($module::Args), )*
        }

        impl Demo {
            /// Runs this demo.
            pub fn run(&self, lab: &Lab) -> anyhow::Result<Report> {
                match self {
                    $( Demo::$variant(args) => $module::run(args, lab), )*
                }
            }

            /// This demo's registry entry.
            pub fn entry(&self) -> Entry {
                let at = match self {
                    $( Demo::$variant(_) => stringify!($module), )*
                };
                registry().into_iter().find(|e| e.module == at).expect("every demo is registered")
            }

            /// Its arguments as JSON (what a replay token's hash covers).
            pub fn args_json(&self) -> String {
                match self {
                    $( Demo::$variant(args) => serde_json::to_string(args).unwrap_or_default(), )*
                }
            }
        }

        const STATICS: &[Static] = &[
            $( Static {
                module: stringify!($module),
                page: include_str!(concat!("pages/", stringify!($module), ".md")),
                quick: $quick,
                long: $long,
                lesson: $lesson,
                unscheduled: optional!($($why)?),
                parts: optional!($($parts)?),
            }, )*
        ];
    };
}

registry! {
    /// The life of a thread: start, names, ids, alive or not, join with a timeout, results back.
    #[command(visible_alias = "basics")]
    Threads => threads, quick: &[], long: Some(&["--work", "30"]),
        lesson: &["join-timeout-works", "join-value-thread-returned-os", "results-written-before-process-ended"];
    /// Mutual exclusion: a bank account loses money without a lock; try-lock, timeouts, guards.
    Lock => lock, quick: &[], long: Some(&["--gap", "30"]),
        lesson: &["without-lock-writes-replaced-another", "lock-final-balance-against-tellers", "try-lock-held-answer-how"], parts: 3;
    /// Lost updates from an unsynchronized counter, counted, then fixed (mutex, atomic, local sum).
    #[command(name = "race-condition", visible_alias = "race")]
    RaceCondition => race_condition, quick: &["--iterations", "20000"],
        long: Some(&["--trials", "100000", "--iterations", "20000"]),
        lesson: &["unsynchronized-counter-updates-lost", "mutex.counter-final-value", "atomic.counter-final-value"];
    /// A re-entrant lock: the owner may enter again; a plain lock would deadlock on itself.
    Rlock => rlock, quick: &[], long: Some(&["--hold", "30"]),
        lesson: &["recursor-nested-acquires-timed-itself", "plain-lock-owner-second-acquire", "add-many-calling-add-under-rlock"];
    /// Bounded access: never more holders than permits; a bounded semaphore refuses over-release.
    Semaphore => semaphore, quick: &[], long: Some(&[]),
        lesson: &["simultaneous-holders-never-exceeded-permits", "simultaneous-holders-reached-permit-count"];
    /// Two tellers lock two accounts in opposite orders: the cycle found at once, broken, then fixed.
    Deadlock => deadlock, quick: &[], long: Some(&["--hold", "30"]),
        lesson: &["cycle-detector-found-against-tellers", "ordering-cycles-detector-found-random", "no-lock-stall-detector-found"], parts: 4;
    /// The dining philosophers: a circular deadlock caught at once; ordering and a waiter prevent it.
    Philosophers => philosophers, quick: &[], long: Some(&["--eat", "30"]),
        lesson: &["naive-cycle-through-philosopher-fork", "ordering.cycles-detector-found", "waiter.cycles-detector-found", "waiter-most-philosophers-seated-once"];
    /// A semaphore limits how many at once, not how many per second; a real rate limiter; a pool.
    #[command(name = "rate-limit")]
    RateLimit => rate_limit, quick: &[], long: Some(&["--call", "30"]),
        lesson: &["semaphore-calls-started-busiest-second", "ratelimiter-calls-started-busiest-second", "connections-checked-out-once"];
    /// A bounded buffer guarded by a condition variable: wait in a loop, wake, shut down cleanly.
    Condition => condition, quick: &[], long: Some(&[]),
        lesson: &["items-certainly-buffer-once-most", "items-consumed-distinct-items-among", "times-consumer-got-nothing-open"];
    /// One thread signals many: set wakes every waiter; timed waits; a shutdown loop that stops at once.
    Event => event, quick: &[], long: Some(&["--delay", "30"]),
        lesson: &["waiters-woken-set", "wait-timeout-nobody-setting", "event-loop-time-stop-request", "polling-loop-time-stop-request"];
    /// Run something later, or cancel it in time; a repeating timer that drifts, and one that does not.
    Timer => timer, quick: &[], long: Some(&["--delay", "30"]),
        lesson: &["shot-timer-action-after-start", "timer-cancelled-halfway-cancel-answer", "tutorial-repeatingtimer-tick-lateness", "fixed-rate-schedule-tick-lateness"];
    /// Nobody goes on until everyone arrives: phases, an action per phase, timeouts, abort, reset.
    Barrier => barrier, quick: &[], long: Some(&["--work", "30"]),
        lesson: &["departures-before-phase-last-arrival", "waiters-barrier-party-never-reaches", "abort-waiters-got-broken-barrier"];
    /// A bounded queue between producers and consumers, with sentinel, timeout and close shutdowns.
    ProducerConsumer => producer_consumer, quick: &[], long: Some(&[]),
        lesson: &["item-consumed-exactly-once", "tasks-certainly-queue-once-most", "consumers-left-shutdown-signal"];
    /// Each thread its own: a thread-local value, and a database connection per thread.
    #[command(name = "thread-local", visible_alias = "local")]
    ThreadLocal => thread_local, quick: &[], long: Some(&["--query", "30"]),
        lesson: &["threads-whose-thread-local-user", "threads-whose-shared-user-read", "per-thread-connections-database-saw"];
    /// What needs no lock: immutable data, a counter per thread, a sharded map; each cost measured.
    #[command(name = "shared-data")]
    SharedData => shared_data, quick: &["--size", "20000", "--updates", "20000"],
        long: Some(&["--size", "16000000", "--updates", "16000000"]),
        lesson: &["arc-u64-no-lock.result-against-thread", "a-counter-per-thread-summed.result-against-thread"],
        unscheduled: "its point is the throughput of threads running in parallel, in real time";
    /// What happens to a background thread at exit: cut off (daemon) or stopped and joined (graceful).
    Daemon => daemon, quick: &[], long: Some(&["--work", "30"]),
        lesson: &["daemon.monitor-ticked-main-worked", "daemon-cleanup-done-lines-relayed"];
    /// When a thread fails: join returns the panic, a hook names the thread, workers report errors.
    Exceptions => exceptions, quick: &[], long: Some(&["--work", "30"]),
        lesson: &["join-thread-panicked", "panics-hook-reported-faulty-name", "failures-reported-against-bad-items"];
    /// Threads speed up waiting, not computing beyond the cores; --python shows the GIL beside Rust.
    #[command(name = "cpu-vs-io", visible_alias = "gil")]
    CpuVsIo => cpu_vs_io, quick: &["--threads", "1,2"], long: Some(&["--io", "30"]),
        lesson: &["io-bound-speedup-threads", "cpu-bound-speedup-threads", "python-cpu-bound-speedup-threads"],
        unscheduled: "its point is real parallel time on the machine's cores";
    /// The tutorials' hand-built pool as written: the late stop, get_results() without join(); the fix.
    #[command(name = "worker-pool")]
    WorkerPool => worker_pool, quick: &[], long: Some(&["--task", "30"]),
        lesson: &["tutorial-get-results-without-task-queue-join", "tutorial-workers-ended-shutdown-returned", "fixed-results-collected-task-once"];
    /// A thread pool with futures: speedup, completion vs input order, failures caught, sizing sweep.
    Pool => pool, quick: &[], long: Some(&[]),
        lesson: &["downloads-speedup-over", "order-as-completed-yielded-tasks-order", "failure-error-panic-caught-futures"];
    /// Check many URLs concurrently on a thread pool, with a sequential comparison (offline: --demo).
    #[command(name = "url-check", visible_alias = "url-checker",
              override_usage = "threadlab url-check [OPTIONS] <FILE>\n       threadlab url-check --demo [OPTIONS]   (offline: no file, no network)")]
    UrlCheck => url_check, quick: &["--demo"], long: None,
        lesson: &["input-line-has-exactly-result", "speedup-concurrent-run-over-sequential"],
        unscheduled: "its point is real network I/O, which no scheduler can replay";
}

/// Every demo, in lesson order.
pub fn registry() -> Vec<Entry> {
    let commands = Demo::augment_subcommands(clap::Command::new("threadlab"));
    commands
        .get_subcommands()
        .zip(STATICS)
        .map(|(c, s)| Entry {
            name: c.get_name().to_string(),
            aliases: c.get_visible_aliases().map(str::to_string).collect(),
            about: c.get_about().map(|a| a.to_string()).unwrap_or_default(),
            module: s.module,
            page: s.page,
            quick: s.quick,
            long: s.long,
            unscheduled: s.unscheduled,
            parts: s.parts.unwrap_or(0),
            lesson: s.lesson,
        })
        .collect()
}

/// The demo named `name` (or one of its aliases).
pub fn find(name: &str) -> Option<Entry> {
    registry()
        .into_iter()
        .find(|e| e.name == name || e.aliases.iter().any(|a| a == name))
}

/// The lesson after `demo` in lesson order.
pub fn next_lesson(demo: &str) -> Option<Entry> {
    let order = registry();
    let at = order.iter().position(|e| e.name == demo)?;
    order.get(at + 1).cloned()
}
