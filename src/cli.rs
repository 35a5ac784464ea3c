//! The command line: global flags shared by every demo, and one subcommand per demo.
//! Lesson order is declaration order; `threadlab list` prints it.

use clap::{Args, Parser, Subcommand};

use crate::demos;

/// Classic threading patterns as live, self-checking demonstrations on real OS threads.
#[derive(Debug, Parser)]
#[command(name = "threadlab", version, propagate_version = true)]
#[command(after_help = "Run `threadlab list` for the demos in lesson order.")]
pub struct Cli {
    /// Flags every demo takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The demo to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every demo takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Scale every simulated duration (1.0 = the tutorials' timings; 0 < F <= 100).
    #[arg(long, global = true, default_value_t = 1.0, value_name = "F",
          value_parser = parse_pace, allow_negative_numbers = true)]
    pub pace: f64,
    /// Seed for every random duration (default: a random seed, printed so the run can be replayed).
    #[arg(long, global = true, value_name = "N")]
    pub seed: Option<u32>,
    /// Print one JSON report on stdout; the narrative goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// No narrative: only the summary (or the JSON report).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// No colour (also honoured: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Show debug-level narrative lines too.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Abort a demo that runs longer than this many seconds (0 = never). A hang is a bug;
    /// this turns one into a clear error.
    #[arg(long, global = true, default_value_t = 600, value_name = "SECS")]
    pub watchdog: u64,
}

/// One variant per demo, in lesson order.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lost updates from an unsynchronized counter, counted, then fixed (mutex, atomic, local sum).
    #[command(name = "race-condition", visible_alias = "race")]
    RaceCondition(demos::race_condition::Args),
    /// A re-entrant lock: the owner may enter again; a plain lock would deadlock on itself.
    Rlock(demos::rlock::Args),
    /// Bounded access: never more holders than permits; a bounded semaphore refuses over-release.
    Semaphore(demos::semaphore::Args),
    /// A bounded buffer guarded by a condition variable: wait in a loop, wake, shut down cleanly.
    Condition(demos::condition::Args),
    /// A bounded queue between producers and consumers, with sentinel, timeout and close shutdowns.
    ProducerConsumer(demos::producer_consumer::Args),
    /// What happens to a background thread at exit: cut off (daemon) or stopped and joined (graceful).
    Daemon(demos::daemon::Args),
    /// A thread pool with futures: speedup, completion vs input order, failures caught, sizing sweep.
    Pool(demos::pool::Args),
    /// Check many URLs concurrently on a thread pool, with a sequential comparison (offline: --demo).
    #[command(name = "url-check", visible_alias = "url-checker")]
    UrlCheck(demos::url_check::Args),
    /// A small httpbin-like HTTP server on 127.0.0.1 for offline url-check runs.
    Serve(crate::serve::Args),
    /// List the demos in lesson order.
    List,
}

/// Parses `--pace`: a finite number in (0, 100].
fn parse_pace(s: &str) -> Result<f64, String> {
    let pace: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if pace.is_finite() && pace > 0.0 && pace <= 100.0 {
        Ok(pace)
    } else {
        Err(format!(
            "pace must be greater than 0 and at most 100 (got {s})"
        ))
    }
}

/// Parses a simulated duration in seconds: a finite number from 0 to 60.
pub fn parse_secs(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if secs.is_finite() && (0.0..=60.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("must be between 0 and 60 seconds (got {s})"))
    }
}

/// Parses a number of seconds: any finite number from 0 up (for durations that are not
/// simulated work, such as how long a server runs).
pub fn parse_secs_any(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

/// Parses a comma-separated list of positive counts, such as `--sweep 1,2,4,8`.
pub fn parse_counts(s: &str) -> Result<Vec<usize>, String> {
    let counts: Result<Vec<usize>, String> = s
        .split(',')
        .map(|part| {
            let part = part.trim();
            match part.parse::<usize>() {
                Ok(0) => Err("0 is not allowed (each count must be at least 1)".to_string()),
                Ok(n) => Ok(n),
                Err(_) => Err(format!("'{part}' is not a whole number")),
            }
        })
        .collect();
    let counts = counts?;
    if counts.is_empty() {
        return Err("expected a comma-separated list such as 1,2,4,8".into());
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn pace_accepts_only_the_documented_range() {
        assert_eq!(parse_pace("0.02"), Ok(0.02));
        assert_eq!(parse_pace("100"), Ok(100.0));
        assert!(parse_pace("0").is_err());
        assert!(parse_pace("-1").is_err());
        assert!(parse_pace("101").is_err());
        assert!(parse_pace("NaN").is_err());
    }

    #[test]
    fn counts_reject_zero_and_words() {
        assert_eq!(parse_counts("1, 2,4"), Ok(vec![1, 2, 4]));
        assert!(parse_counts("0,2").is_err());
        assert!(parse_counts("1,x").unwrap_err().contains("'x'"));
    }
}
