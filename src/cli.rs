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
#[command(next_help_heading = "Global flags")]
pub struct GlobalArgs {
    /// Scale every simulated duration (1.0 = the tutorials' timings; 0 < F <= 100).
    #[arg(long, global = true, default_value_t = 1.0, value_name = "F",
          value_parser = parse_pace, allow_negative_numbers = true)]
    pub pace: f64,
    /// Seed for every random duration (default: a random seed, printed). The same seed gives
    /// the same durations; the order in which the OS runs the threads still varies.
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
    /// Show every step of the instrumented primitives too: each wait, wake, hold and
    /// release, by the thread that made it.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// A classroom's density: no level tag, each thread's name in its own colour (the same
    /// in --timeline and --svg), and the summary folded to the checks that carry the lesson
    /// (every check still runs and sets the exit code; a failed one is always shown).
    #[arg(long, global = true)]
    pub class: bool,
    /// Which checks the summary shows: all, or the lesson's (the default with --class; the
    /// rest folded into one line).
    #[arg(long, global = true, value_name = "WHICH", value_enum)]
    pub checks: Option<Checks>,
    /// On a terminal, stop at each part of the demo and at the lesson's key moments (the
    /// first lost update, a cycle closing, a queue full, a barrier breaking): Enter goes on,
    /// q ends with the evidence so far. The lab's clock stops while it waits, so the times
    /// shown are the demo's own. Off a terminal it is ignored, with a note.
    #[arg(long, global = true, conflicts_with_all = ["explore", "search", "step"])]
    pub pause: bool,
    /// After the run, draw what every thread did: a lane per thread (running, sleeping,
    /// waiting for or holding each primitive), the moments that matter, and the time each
    /// thread and primitive spent in each state.
    #[arg(long, global = true)]
    pub timeline: bool,
    /// Write the run as a Chrome trace (Trace Event JSON) to FILE, for ui.perfetto.dev or
    /// chrome://tracing.
    #[arg(long, global = true, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,
    /// Write the timeline as an SVG picture to FILE, for slides.
    #[arg(long, global = true, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// Abort a demo that runs longer than this many seconds (0 = never). A hang is a bug;
    /// this turns one into a clear error.
    #[arg(long, global = true, default_value_t = 600, value_name = "SECS",
          value_parser = crate::cli::whole::<u64>(0, 604_800))]
    pub watchdog: u64,
    /// Run only part N of a demo in parts (lock 1-3, deadlock 1-4): one lesson's moment,
    /// small enough for --explore to count every schedule of.
    #[arg(long, global = true, value_name = "N",
          value_parser = crate::cli::whole::<u32>(1, 9))]
    pub part: Option<u32>,
    /// Who runs when: os (the operating system, the default), `random[:SEED]`,
    /// `pct[:SEED[:DEPTH]]`, `default`, or a replay token a scheduled run printed. Under any but os the
    /// demo's threads run one at a time, the lab choosing at every scheduling point, in
    /// virtual time: the same token gives the same run, line for line.
    #[arg(long, global = true, value_name = "SCHEDULE",
          value_parser = crate::schedule::Spec::parse)]
    pub schedule: Option<crate::schedule::Spec>,
    /// Be the scheduler (on a terminal): at each choice, pick the thread that runs next;
    /// Enter takes the strategy's choice, u undoes, t prints the token, q quits.
    #[arg(long, global = true, conflicts_with = "explore")]
    pub step: bool,
    /// Run every schedule of a small configuration and print the census: each outcome, how
    /// many schedules reach it, what the checks say of it, and a replay token.
    #[arg(long, global = true, conflicts_with = "schedule")]
    pub explore: bool,
    /// With --explore: only schedules that preempt a running thread at most K times
    /// (CHESS's bound: most concurrency bugs need at most 2).
    #[arg(long, global = true, value_name = "K", requires = "explore",
          value_parser = crate::cli::whole::<u32>(0, 64))]
    pub preemptions: Option<u32>,
    /// Run up to N schedules of the strategy (--schedule random or pct; random by default)
    /// and stop at the first that shows the lesson's failure or fails a check; print its
    /// token and replay it (one step at a time with --step).
    #[arg(long, global = true, value_name = "N", conflicts_with = "explore",
          value_parser = crate::cli::whole::<u32>(1, 1_000_000))]
    pub search: Option<u32>,
}

/// Which checks the summary shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Checks {
    /// Every check.
    All,
    /// The checks that carry the lesson; the rest folded into one line.
    Lesson,
}

impl GlobalArgs {
    /// Whether the summary folds the checks to the lesson's.
    pub fn fold_checks(&self) -> bool {
        match self.checks {
            Some(c) => c == Checks::Lesson,
            None => self.class,
        }
    }

    /// The text a replay token's hash covers besides the demo's own arguments.
    pub fn hashed(&self) -> String {
        self.part.map_or(String::new(), |p| format!("part {p}"))
    }

    /// Whether any flag asks for the lab's scheduler.
    pub fn scheduled(&self) -> bool {
        let schedule = !matches!(self.schedule, None | Some(crate::schedule::Spec::Os));
        schedule || self.step || self.explore || self.search.is_some()
    }

    /// The first scheduling flag given, for messages.
    pub fn schedule_flag(&self) -> &'static str {
        if self.explore {
            "--explore"
        } else if self.search.is_some() {
            "--search"
        } else if self.step {
            "--step"
        } else {
            "--schedule"
        }
    }
}

/// The demos (from the registry, in lesson order), then the tools.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run; a box would buy nothing
pub enum Command {
    /// A demo.
    #[command(flatten)]
    Demo(demos::Demo),
    /// A small httpbin-like HTTP server on 127.0.0.1 for offline url-check runs.
    Serve(crate::serve::Args),
    /// Run your own Python threading program under the lab: every wait and hold narrated
    /// (-v), deadlocks named the moment they form (with the file:line of each acquire),
    /// per-thread CPU against wall time, and the pictures (--timeline, --svg, --trace).
    Py(crate::py::Args),
    /// List the demos in lesson order.
    List,
    /// The lessons in order for a class: a title card per demo, then the demo with --class
    /// and --pause (on a terminal); the next one key away.
    Tour(crate::tour::Args),
    /// Explain a demo: what it teaches, what to watch for, the broken form, Python beside Rust.
    Explain(crate::explain::Args),
}

/// A value parser for a whole number from `lo` to `hi`, with a message that names the range
/// whatever was given (`-1`, `1e9`, `ten`, a number past the type's own limit).
pub fn whole<T>(lo: T, hi: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u128> + Copy + PartialOrd + std::fmt::Display + Send + Sync + 'static,
{
    move |s: &str| {
        let text = s.trim();
        let value = text.parse::<u128>().ok();
        match value.and_then(|v| T::try_from(v).ok()) {
            Some(v) if v >= lo && v <= hi => Ok(v),
            _ if value.is_some() || text.parse::<i128>().is_ok() => {
                Err(format!("{text} is out of range: must be from {lo} to {hi}"))
            }
            _ => Err(format!(
                "'{text}' is not a whole number (from {lo} to {hi})"
            )),
        }
    }
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

/// Parses a simulated period (a tick, an interval, a poll timeout): like [`parse_secs`],
/// and at least 0.01 s, so a loop on it never spins.
pub fn parse_period(s: &str) -> Result<f64, String> {
    let secs = parse_secs(s)?;
    if secs < 0.01 {
        return Err(format!("must be at least 0.01 seconds (got {s})"));
    }
    Ok(secs)
}

/// Most seconds a flag for a real (not simulated) duration takes: one year.
pub const MAX_REAL_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// Parses a number of seconds for a real duration (such as how long a server runs): a
/// finite number from 0 to [`MAX_REAL_SECS`].
pub fn parse_secs_any(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=MAX_REAL_SECS).contains(&v) => Ok(v),
        Ok(_) => Err(format!(
            "must be between 0 and {MAX_REAL_SECS} seconds (one year) (got {s})"
        )),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

/// Most entries in a list flag such as `--sweep`.
pub const MAX_LIST_LEN: usize = 64;

/// Parses a comma-separated list of counts, each from 1 to `max` (the bound of the
/// matching single-value flag), such as `--sweep 1,2,4,8`.
pub fn parse_counts_within(s: &str, max: usize) -> Result<Vec<usize>, String> {
    let counts: Result<Vec<usize>, String> = s
        .split(',')
        .map(|part| {
            let part = part.trim();
            match part.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                Ok(_) | Err(_) if part.trim_start_matches('-').parse::<u128>().is_ok() => Err(
                    format!("{part} is not in 1..={max} (each count must be from 1 to {max})"),
                ),
                _ => Err(format!("'{part}' is not a whole number")),
            }
        })
        .collect();
    let counts = counts?;
    if counts.is_empty() {
        return Err("expected a comma-separated list such as 1,2,4,8".into());
    }
    if counts.len() > MAX_LIST_LEN {
        return Err(format!("{} entries; at most {MAX_LIST_LEN}", counts.len()));
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
    fn whole_numbers_name_their_range_whatever_was_given() {
        let p = whole::<usize>(1, 512);
        assert_eq!(p("5"), Ok(5));
        for bad in ["-1", "0", "513", "18446744073709551616000"] {
            assert!(p(bad).unwrap_err().contains("from 1 to 512"), "{bad}");
        }
        assert!(p("ten").unwrap_err().contains("'ten'"));
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
    fn counts_reject_zero_words_and_values_past_the_bound() {
        assert_eq!(parse_counts_within("1, 2,4", 8), Ok(vec![1, 2, 4]));
        assert!(parse_counts_within("0,2", 8).unwrap_err().contains("1..=8"));
        assert!(parse_counts_within("1,x", 8).unwrap_err().contains("'x'"));
        assert!(
            parse_counts_within("18446744073709551615", 512)
                .unwrap_err()
                .contains("1..=512")
        );
        assert!(parse_counts_within("100000", 512).is_err());
        assert!(
            parse_counts_within("-1", 512)
                .unwrap_err()
                .contains("1..=512")
        );
        let long = vec!["1"; MAX_LIST_LEN + 1].join(",");
        assert!(parse_counts_within(&long, 8).is_err());
    }
}
