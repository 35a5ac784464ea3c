//! The demos, one module each (file name = subcommand with `_` for `-`), and the dispatcher.

pub mod barrier;
pub mod condition;
pub mod cpu_vs_io;
pub mod daemon;
pub mod deadlock;
pub mod event;
pub mod exceptions;
pub mod lock;
pub mod philosophers;
pub mod pool;
pub mod producer_consumer;
pub mod race_condition;
pub mod rate_limit;
pub mod rlock;
pub mod semaphore;
pub mod shared_data;
pub mod thread_local;
pub mod threads;
pub mod timer;
pub mod url_check;
pub mod worker_pool;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::lab::{Lab, Report};

/// Runs the demo `command` names.
pub fn run(command: &Command, lab: &Lab) -> anyhow::Result<Report> {
    match command {
        Command::Threads(args) => threads::run(args, lab),
        Command::Lock(args) => lock::run(args, lab),
        Command::RaceCondition(args) => race_condition::run(args, lab),
        Command::Rlock(args) => rlock::run(args, lab),
        Command::Semaphore(args) => semaphore::run(args, lab),
        Command::Deadlock(args) => deadlock::run(args, lab),
        Command::Philosophers(args) => philosophers::run(args, lab),
        Command::RateLimit(args) => rate_limit::run(args, lab),
        Command::Condition(args) => condition::run(args, lab),
        Command::Event(args) => event::run(args, lab),
        Command::Timer(args) => timer::run(args, lab),
        Command::Barrier(args) => barrier::run(args, lab),
        Command::ProducerConsumer(args) => producer_consumer::run(args, lab),
        Command::ThreadLocal(args) => thread_local::run(args, lab),
        Command::SharedData(args) => shared_data::run(args, lab),
        Command::Daemon(args) => daemon::run(args, lab),
        Command::Exceptions(args) => exceptions::run(args, lab),
        Command::CpuVsIo(args) => cpu_vs_io::run(args, lab),
        Command::WorkerPool(args) => worker_pool::run(args, lab),
        Command::Pool(args) => pool::run(args, lab),
        Command::UrlCheck(args) => url_check::run(args, lab),
        Command::Serve(args) => crate::serve::run(args, lab),
        Command::List | Command::Explain(_) => anyhow::bail!("not a demo"),
    }
}

/// Every demo's name (not the `serve` tool), aliases and one-line summary, in lesson order. Read from the CLI
/// definition itself, so `list`, `--help` and the dispatcher cannot disagree.
pub fn lesson_order() -> Vec<(String, Vec<String>, String)> {
    Cli::command()
        .get_subcommands()
        .filter(|c| !matches!(c.get_name(), "list" | "help" | "serve" | "explain"))
        .map(|c| {
            (
                c.get_name().to_string(),
                c.get_visible_aliases().map(str::to_string).collect(),
                c.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

/// A demo's concept page (the same text is its module documentation): what it teaches, what
/// to watch for, why it works, the broken form, and the Python API beside Rust's.
pub fn page(name: &str) -> Option<&'static str> {
    let canonical = lesson_order()
        .into_iter()
        .find(|(n, aliases, _)| n == name || aliases.iter().any(|a| a == name))?
        .0;
    Some(match canonical.as_str() {
        "threads" => include_str!("pages/threads.md"),
        "lock" => include_str!("pages/lock.md"),
        "race-condition" => include_str!("pages/race_condition.md"),
        "rlock" => include_str!("pages/rlock.md"),
        "semaphore" => include_str!("pages/semaphore.md"),
        "deadlock" => include_str!("pages/deadlock.md"),
        "philosophers" => include_str!("pages/philosophers.md"),
        "rate-limit" => include_str!("pages/rate_limit.md"),
        "condition" => include_str!("pages/condition.md"),
        "event" => include_str!("pages/event.md"),
        "timer" => include_str!("pages/timer.md"),
        "barrier" => include_str!("pages/barrier.md"),
        "producer-consumer" => include_str!("pages/producer_consumer.md"),
        "thread-local" => include_str!("pages/thread_local.md"),
        "shared-data" => include_str!("pages/shared_data.md"),
        "daemon" => include_str!("pages/daemon.md"),
        "exceptions" => include_str!("pages/exceptions.md"),
        "cpu-vs-io" => include_str!("pages/cpu_vs_io.md"),
        "worker-pool" => include_str!("pages/worker_pool.md"),
        "pool" => include_str!("pages/pool.md"),
        "url-check" => include_str!("pages/url_check.md"),
        _ => return None,
    })
}

/// The lesson after `demo` in lesson order, with its one-line summary.
pub fn next_lesson(demo: &str) -> Option<(String, String)> {
    let order = lesson_order();
    let at = order.iter().position(|(n, _, _)| n == demo)?;
    order
        .get(at + 1)
        .map(|(n, _, about)| (n.clone(), about.clone()))
}
