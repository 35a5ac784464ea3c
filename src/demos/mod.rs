//! The demos, one module each (file name = subcommand with `_` for `-`), and the dispatcher.

pub mod condition;
pub mod daemon;
pub mod pool;
pub mod producer_consumer;
pub mod race_condition;
pub mod rlock;
pub mod semaphore;
pub mod url_check;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::lab::{Lab, Report};

/// Runs the demo `command` names.
pub fn run(command: &Command, lab: &Lab) -> anyhow::Result<Report> {
    match command {
        Command::RaceCondition(args) => race_condition::run(args, lab),
        Command::Rlock(args) => rlock::run(args, lab),
        Command::Semaphore(args) => semaphore::run(args, lab),
        Command::Condition(args) => condition::run(args, lab),
        Command::ProducerConsumer(args) => producer_consumer::run(args, lab),
        Command::Daemon(args) => daemon::run(args, lab),
        Command::Pool(args) => pool::run(args, lab),
        Command::UrlCheck(args) => url_check::run(args, lab),
        Command::Serve(args) => crate::serve::run(args, lab),
        Command::List => anyhow::bail!("`list` is not a demo"),
    }
}

/// Every demo's name (not the `serve` tool), aliases and one-line summary, in lesson order. Read from the CLI
/// definition itself, so `list`, `--help` and the dispatcher cannot disagree.
pub fn lesson_order() -> Vec<(String, Vec<String>, String)> {
    Cli::command()
        .get_subcommands()
        .filter(|c| !matches!(c.get_name(), "list" | "help" | "serve"))
        .map(|c| {
            (
                c.get_name().to_string(),
                c.get_visible_aliases().map(str::to_string).collect(),
                c.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}
