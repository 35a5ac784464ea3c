//! threadlab: the classic threading patterns as live, self-checking demonstrations.
//!
//! Each demo runs real OS threads, narrates every step with the thread's name and the time
//! since the demo began, measures what happened, and ends with evidence: expected versus
//! observed, in a typed [`lab::Report`] printed as a summary or as JSON.
//!
//! # Layout
//! - [`cli`]: global flags and one subcommand per demo.
//! - [`lab`]: the runtime every demo shares: clock, pace, seed, named threads, the recorder
//!   of thread lives and primitive waits/holds, output (logger, progress bars), the report and
//!   its exporters, units.
//! - [`sync`]: primitives Python's `threading` has and std lacks, in plain view: `Semaphore`
//!   (plain and bounded), `RLock`, `Lock`, `Event`, `JoinableQueue`.
//! - [`pool`]: `ThreadPool` with the `ThreadPoolExecutor` surface: `submit` → `Future`, `map`,
//!   `as_completed`, named workers, panics captured in their Futures.
//! - [`serve`]: a small httpbin-like HTTP server on 127.0.0.1 (hyper + tokio) for offline
//!   url-check runs, tests and benchmarks.
//! - [`demos`]: one module per demo and the dispatcher.

pub mod cli;
pub mod demos;
pub mod lab;
pub mod pool;
pub mod serve;
pub mod sync;

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;

use cli::{Cli, Command};
use lab::export::{Exporter, Json, Summary};
use lab::{Lab, Output, Settings};

/// Runs the command line `args` and returns the process exit code: 0 the demo showed what
/// it set out to show, 1 a usage or runtime error (one line on stderr), 2 url-check found
/// failing URLs, 130 interrupted.
pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, joined.
            eprintln!("threadlab: error: {e:#}");
            1
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    if let Command::List = cli.command {
        let mut out = std::io::stdout().lock();
        for (name, aliases, about) in demos::lesson_order() {
            let alias = if aliases.is_empty() {
                String::new()
            } else {
                format!(" (alias {})", aliases.join(", "))
            };
            writeln!(out, "{:<18} {about}{alias}", name)?;
        }
        return Ok(0);
    }
    let output = Output::new(g.json, g.quiet, g.no_color, g.verbose);
    let lab = Lab::new(
        Settings {
            pace: g.pace,
            seed: g.seed.map(u64::from),
            record: true,
        },
        output.clone(),
    );
    output.install_logger(lab.start());
    // A panic becomes one narrative line (a pool catches task panics and keeps going).
    std::panic::set_hook(Box::new(|info| {
        let msg = lab::panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!("panicked: {msg}{at}");
    }));
    tracing::info!(
        "seed {} · pace {} (replay this run with --seed {})",
        lab.seed(),
        lab.pace(),
        lab.seed()
    );

    let done = Arc::new(sync::Event::new());
    // url-check bounds itself with per-request timeouts and a list can legitimately take
    // long; serve runs until Ctrl-C. The watchdog guards the demos.
    let guarded = !matches!(cli.command, Command::UrlCheck(_) | Command::Serve(_));
    if guarded && g.watchdog > 0 {
        start_watchdog(Arc::clone(&done), Duration::from_secs(g.watchdog));
    }
    let result = demos::run(&cli.command, &lab);
    done.set();
    let mut report = result?;
    lab.finish(&mut report);

    let mut out = std::io::stdout().lock();
    if g.json {
        Json.export(&report, &mut out)?;
    } else {
        Summary {
            color: output.color,
        }
        .export(&report, &mut out)?;
    }
    out.flush()?;
    if !report.ok && report.exit_code.is_none() {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        eprintln!(
            "threadlab: {}: check failed: {}",
            report.demo,
            failed.join("; ")
        );
    }
    Ok(report.exit_code())
}

/// Ends the process with a clear error if the demo is still running after `limit`.
fn start_watchdog(done: Arc<sync::Event>, limit: Duration) {
    let _ = std::thread::Builder::new()
        .name("Watchdog".into())
        .spawn(move || {
            if !done.wait_timeout(limit) {
                eprintln!(
                    "threadlab: error: the demo ran longer than --watchdog {} s and was stopped",
                    limit.as_secs()
                );
                std::process::exit(1);
            }
        });
}
