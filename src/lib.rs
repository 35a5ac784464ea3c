//! threadlab: the classic threading patterns as live, self-checking demonstrations.
//!
//! Each demo runs real OS threads, narrates every step with the thread's name and the time
//! since the demo began, measures what happened, and ends with evidence: expected versus
//! observed, in a typed [`report::Report`] printed as a summary or as JSON.
//!
//! # Layout
//! - [`cli`]: global flags; the demos' subcommands come from the registry in [`demos`].
//! - [`lab`]: the runtime every demo shares: clock, pace, seed, signals and closed pipes
//!   (`lab::signals`), named threads, child-process scenarios (`lab::child`), the one wait
//!   protocol and hold guard (`lab::probe`), the recorder of thread lives and primitive
//!   waits/holds, the wait-for graph and its deadlock detector (`lab::waitgraph`), output
//!   (logger, progress bars), units.
//!   The scheduler (`lab::sched`) runs a demo's threads one at a time, in virtual time.
//! - [`schedule`]: `--schedule`, replay tokens, `--explore`, `--search`, `--step`.
//! - [`report`]: the typed report every demo returns, and its exporters (summary, JSON).
//! - [`pictures`]: the timeline model and its terminal drawing and accounting, the Chrome
//!   trace, the SVG, and the picture files manager.
//! - [`sync`]: primitives Python's `threading` has and std lacks, in plain view: `Semaphore`
//!   (plain and bounded), `RLock`, `Lock`, `Event`, `Timer` (one-shot and repeating),
//!   `Barrier` (timeout, abort, reset), `JoinableQueue`.
//! - [`pool`]: `ThreadPool` with the `ThreadPoolExecutor` surface: `submit` → `Future`, `map`,
//!   `as_completed`, named workers, panics captured in their Futures.
//! - [`check`]: URL checking as a library piece (bounded attempts, retries, error kinds, the
//!   capped list reader) under the `url-check` demo.
//! - [`serve`]: a small httpbin-like HTTP server on 127.0.0.1 (hyper + tokio) for offline
//!   url-check runs, tests and benchmarks.
//! - [`demos`]: one module per demo, and the registry that lists each demo once.
//! - [`explain`]: `threadlab explain`, a page rendered for the terminal or as a handout.
//! - [`tour`]: `threadlab tour`, the lessons in order with a title card each, for a class.
//! - [`py`]: `threadlab py`, a Python program's threading operations reported by a shim and
//!   played into the same runtime by stand-in threads (its wire format, intake, stand-ins).

// `std::thread::sleep` is denied in the demos only (clippy.toml): there every duration is
// the lab's, scaled by --pace, interruptible and recorded.
#![allow(clippy::disallowed_methods)]

pub mod check;
pub mod cli;
#[deny(clippy::disallowed_methods)]
pub mod demos;
pub mod explain;
pub mod lab;
pub mod pictures;
pub mod pool;
pub mod py;
pub mod report;
pub mod schedule;
pub mod serve;
pub mod sync;
pub mod tour;

use anyhow::Context;
use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::error::ErrorKind;

use cli::{Cli, Command};
use lab::{Lab, Output, Settings};
use report::export::{Exporter, Json, Summary};

/// Runs the command line `args` and returns the process exit code: 0 the demo showed what
/// it set out to show, 1 a usage or runtime error (one line on stderr), 2 url-check found
/// failing URLs, 101 a bug (a panic: one line on stderr), 130/143 interrupted by
/// SIGINT/SIGTERM. A closed output pipe ends the process quietly (see [`lab::signals`]).
pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
        }
    };
    lab::signals::install();
    install_panic_hook();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli))) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) if lab::signals::is_broken_pipe(&e) => lab::signals::pipe_closed(),
        // The panic hook has already said what happened, in one line.
        Ok(Err(e)) if e.downcast_ref::<lab::Panicked>().is_some() => 101,
        Ok(Err(e)) => {
            if let Some(code) = lab::signals::exit_code() {
                eprintln!(
                    "threadlab: interrupted by {}: {e:#}",
                    lab::signals::received().unwrap_or("a signal")
                );
                return code;
            }
            // One line: the error and its causes, joined.
            eprintln!("threadlab: error: {e:#}");
            1
        }
        Err(_) => 101,
    }
}

/// Parses the command line. Numeric flags accept a leading `-` so that `--workers -1` is
/// reported as a value out of range for that flag, not as an unknown argument.
fn parse(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let args = join_negative_non_finite(args.into_iter().map(Into::into).collect());
    let command = Cli::command()
        .allow_negative_numbers(true)
        .mut_subcommands(|c| c.allow_negative_numbers(true));
    let matches = command.try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// clap reads `-inf` or `-nan` after a flag as short flags (`-i`…), not as the flag's
/// value; joined as `--flag=-inf`, the flag's own parser refuses it by name.
fn join_negative_non_finite(args: Vec<OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::with_capacity(args.len());
    for arg in args {
        let text = arg.to_string_lossy().to_ascii_lowercase();
        let non_finite = text
            .strip_prefix('-')
            .is_some_and(|rest| ["inf", "infinity", "nan"].contains(&rest));
        if non_finite
            && let Some(prev) = out.last_mut()
            && prev.to_string_lossy().starts_with("--")
            && !prev.to_string_lossy().contains('=')
        {
            prev.push("=");
            prev.push(&arg);
            continue;
        }
        out.push(arg);
    }
    out
}

/// A panic prints one line on stderr, whatever the output mode, and the binary exits 101.
/// A panic that is caught on purpose (a pool task's: see [`lab::expecting_panics`]) is part
/// of the lesson instead, and is narrated.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = lab::panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if lab::panics_expected() {
            tracing::warn!("panicked: {msg}{at}");
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "threadlab: internal error: thread {} panicked: {msg}{at}",
                lab::thread_name()
            );
        }
    }));
}

/// What a command runs under the lab: a demo, or the `serve` tool (run again and again by
/// an exploration).
type Job<'a> = Box<schedule::drive::Job<'a>>;

/// A run under the lab's scheduler: its setting, its strategy, and its plan.
struct Scheduled {
    setting: schedule::drive::Setting,
    base: schedule::Base,
    plan: lab::sched::Plan,
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    // url-check bounds itself with per-request timeouts and a list can legitimately take
    // long; serve runs until Ctrl-C. The watchdog guards the other demos.
    let (job, guarded): (Job, bool) = match &cli.command {
        Command::List => return list(),
        Command::Tour(t) => return tour::run(t, &cli.global),
        Command::Explain(e) => return explain(e, cli.global.no_color),
        // A listing, not a run: no lab, no network.
        Command::Demo(demos::Demo::UrlCheck(a)) if a.dump => return demos::url_check::dump(a),
        Command::Demo(demo @ demos::Demo::UrlCheck(a)) => {
            if a.results_take_stdout() {
                lab::output::stdout_taken();
            }
            (Box::new(move |lab| demo.run(lab)), false)
        }
        Command::Demo(demo) => (
            Box::new(move |lab| demo.run(lab)),
            !matches!(demo, demos::Demo::UrlCheck(_)),
        ),
        Command::Serve(args) => (Box::new(move |lab| serve::run(args, lab)), false),
        // Bounded by its own --timeout.
        Command::Py(args) => (Box::new(move |lab| py::run(args, lab)), false),
    };
    let g = &cli.global;
    if let Some(n) = g.part {
        let parts = match &cli.command {
            Command::Demo(demo) => (demo.entry().name, demo.entry().parts),
            _ => (String::from("this command"), 0),
        };
        match parts {
            (name, 0) => anyhow::bail!("--part {n}: {name} is not in parts"),
            (name, k) if n > k => anyhow::bail!("--part {n}: {name} has parts 1 to {k}"),
            _ => {}
        }
    }
    // A Python program's run has no seed or pace of the lab's to replay.
    let banner = !matches!(cli.command, Command::Py(_));
    if !g.scheduled() {
        return run_lab(g, job, guarded, banner, None);
    }
    let Command::Demo(demo) = &cli.command else {
        anyhow::bail!(
            "{}: only a demo runs under the lab's scheduler",
            g.schedule_flag()
        );
    };
    match scheduled(g, demo, &job)? {
        Some(plan) => run_lab(g, job, guarded, banner, Some(plan)),
        None => Ok(0),
    }
}

/// What the scheduling flags ask of `demo`: the plan of the run to show, or `None` when
/// the work is done (an exploration printed its census; a search found nothing).
fn scheduled(
    g: &cli::GlobalArgs,
    demo: &demos::Demo,
    job: &Job,
) -> anyhow::Result<Option<Scheduled>> {
    use schedule::drive;
    let setting = drive::Setting::of(g, demo)?;
    let (base, token) = setting.read(g.schedule.as_ref())?;
    if g.step && !drive::can_step(g.json) {
        anyhow::bail!(
            "--step: needs a terminal to read each choice from and show it on (stdin, stderr \
             and the narrative's stdout); to replay a schedule without one, use --schedule TOKEN"
        );
    }
    if g.explore {
        let picture = [g.timeline, g.trace.is_some(), g.svg.is_some()];
        anyhow::ensure!(
            !picture.contains(&true),
            "--explore: a census of many runs has no picture: replay one of its tokens with \
             --schedule TOKEN and --timeline, --trace or --svg"
        );
        drive::explore(g, &setting, &**job)?;
        return Ok(None);
    }
    let token = match g.search {
        Some(n) => match drive::search(&setting, &**job, base, n)? {
            Some(found) => Some(found),
            None => return Ok(None),
        },
        None => token,
    };
    let base = token.as_ref().map_or(base, |t| t.base);
    let mut plan = token.as_ref().map_or_else(
        || lab::sched::Plan::from(base.strategy()),
        schedule::Token::plan,
    );
    if g.step {
        let upto = token.as_ref().and_then(|t| t.upto).unwrap_or(0);
        let args = std::env::args().collect();
        plan.picker = Some(drive::picker(setting.clone(), base, upto, args));
    }
    Ok(Some(Scheduled {
        setting,
        base,
        plan,
    }))
}

/// Runs `job` under a lab built from the global flags: pictures judged first, the watchdog,
/// then the report, the timeline and the pictures, in that order.
fn run_lab(
    g: &cli::GlobalArgs,
    job: Job,
    guarded: bool,
    banner: bool,
    scheduled: Option<Scheduled>,
) -> anyhow::Result<i32> {
    let mut output = Output::new(g.json, g.quiet, g.no_color, g.verbose);
    output.class = g.class;
    output.fold_checks = g.fold_checks();
    if g.pause && !g.json && !g.quiet && lab::pause::can_pause() {
        lab::pause::enable();
    } else if g.pause {
        eprintln!("threadlab: --pause stops only with the narrative on a terminal: ignored here");
    }
    // The picture files are judged and opened before the run: a path that cannot take a
    // picture is an error now, not after a long demo (see `pictures::files`).
    let picture_files = pictures::files::PictureFiles::open(&[
        ("--trace", g.trace.as_deref()),
        ("--svg", g.svg.as_deref()),
    ])?;
    // A scheduled run begins before the lab: the lab's clock is the run's virtual one.
    let (session, scheduled) = match scheduled {
        Some(s) => (
            Some(lab::sched::Session::begin(s.plan, "MainThread")),
            Some((s.setting, s.base)),
        ),
        None => (None, None),
    };
    let lab = new_lab(
        g,
        &output,
        banner,
        picture_files.any(),
        scheduled.as_ref().map(|s| s.1),
    );
    // A test hook: proves that a panic nobody expected still ends in one clear line.
    if std::env::var_os("THREADLAB_TEST_PANIC").is_some() {
        panic!("THREADLAB_TEST_PANIC is set");
    }
    let done = Arc::new(sync::Event::new());
    if guarded && g.watchdog > 0 {
        let limit = Duration::from_secs(g.watchdog);
        start_watchdog(Arc::clone(&done), limit, output.clone());
    }
    // The lab's accounting is taken before a scheduled run ends: in its virtual time.
    let result = job(&lab).map(|mut report| {
        lab.finish(&mut report);
        if !banner {
            // A Python program's run: the lab's seed and pace played no part in it.
            report.params.remove("seed");
            report.params.remove("pace");
        }
        report
    });
    let summary = session.map(lab::sched::Session::end);
    done.set();
    lab::signals::finished();
    // No run, no picture: dropping `picture_files` leaves every target as it was.
    let mut report = result?;
    if let (Some((setting, base)), Some(summary)) = (&scheduled, &summary) {
        report.schedule = Some(setting.report(*base, summary));
    }
    if let Some(signal) = lab::signals::received() {
        report.interrupt(signal);
    }
    // `--pause`: the evidence, one key away.
    lab::pause::stop("the run is over; the evidence next");
    if g.timeline {
        print_timeline(g.json, &output, &mut report)?;
    }
    let printed = print_report(g.json, &output, &report);
    // The picture files last: a file that cannot be written after all (a full disk) costs
    // the picture, never the report already printed; a report that could not be printed
    // (`-q --trace t.json | head -1`) costs the report, never the picture.
    let pictures = write_pictures(picture_files, &report);
    printed?;
    pictures?;
    say_failed_checks(&report);
    Ok(lab::signals::exit_code().unwrap_or_else(|| report.exit_code()))
}

/// The lab for this run, its logger installed and the seed said.
fn new_lab(
    g: &cli::GlobalArgs,
    output: &Output,
    banner: bool,
    picture_files: bool,
    schedule: Option<schedule::Base>,
) -> Lab {
    let pictures = g.timeline || picture_files;
    // A scheduled run's durations come from a fixed seed (0 unless given): its token
    // replays the thread order and the durations.
    let seed = match schedule {
        Some(_) => Some(g.seed.map_or(0, u64::from)),
        None => g.seed.map(u64::from),
    };
    let settings = Settings {
        pace: g.pace,
        seed,
        record: true,
        pictures,
        part: g.part,
    };
    let lab = Lab::new(settings, output.clone());
    output.install_logger(lab.start(), pictures.then(|| Arc::clone(lab.recorder())));
    match schedule {
        _ if !banner => {}
        Some(base) => tracing::info!(
            "seed {} · pace {} · schedule {base}: threads run one at a time",
            lab.seed(),
            lab.pace()
        ),
        None => tracing::info!(
            "seed {} (replays durations, not thread order) · pace {}",
            lab.seed(),
            lab.pace()
        ),
    }
    lab
}

/// A failed check is named on stderr too, in one line (stdout may be JSON or piped away).
fn say_failed_checks(report: &report::Report) {
    if report.ok || report.exit_code.is_some() || report.interrupted {
        return;
    }
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

/// `threadlab list`: the demos in lesson order, each with its summary and aliases.
fn list() -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    let width = report::export::screen_width();
    for demo in demos::registry() {
        let alias = if demo.aliases.is_empty() {
            String::new()
        } else {
            format!(" (alias {})", demo.aliases.join(", "))
        };
        let text = format!("{}{alias}", demo.about);
        for (i, line) in report::export::wrap(&text, width.saturating_sub(19))
            .iter()
            .enumerate()
        {
            let label = if i == 0 { demo.name.as_str() } else { "" };
            writeln!(out, "{label:<18} {line}")?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// `threadlab explain DEMO`: the demo's page, rendered for the terminal (or piped: 100
/// columns at most), or the HTML handout.
fn explain(args: &explain::Args, no_color: bool) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = std::io::stdout().is_terminal() && !no_color && !no_color_env;
    let text = explain::run(args, color)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// `--timeline`: the terminal picture (to stderr when JSON owns stdout), and its accounting
/// tables into the report.
fn print_timeline(json: bool, output: &Output, report: &mut report::Report) -> anyhow::Result<()> {
    let Some(timeline) = report.timeline.clone() else {
        return Ok(());
    };
    let terminal = pictures::timeline::Terminal {
        color: output.color,
        width: report::export::screen_width(),
    };
    if json {
        let _ = terminal.export(report, &mut std::io::stderr().lock());
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(b"\n")?;
        terminal.export(report, &mut out)?;
    }
    report
        .tables
        .extend(pictures::timeline::accounting(report, &timeline));
    Ok(())
}

/// The report on stdout: JSON, or the summary and the next lesson.
fn print_report(json: bool, output: &Output, report: &report::Report) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = if report.summary_to_stderr && !json {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    };
    if json {
        Json.export(report, &mut out)?;
    } else {
        Summary {
            color: output.color,
            width: report::export::screen_width(),
            fold: output
                .fold_checks
                .then(|| demos::find(&report.demo).map(|e| e.lesson))
                .flatten(),
        }
        .export(report, &mut out)?;
        if let Some(next) = demos::next_lesson(&report.demo) {
            let text = format!("threadlab {}: {}", next.name, next.about);
            let lines =
                report::export::wrap(&text, report::export::screen_width().saturating_sub(16));
            for (i, line) in lines.iter().enumerate() {
                let lead = if i == 0 {
                    " ⇒ next lesson: "
                } else {
                    "                "
                };
                writeln!(out, "{lead}{line}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Each picture asked for, through its exporter, into its file; then every file replaces its
/// target whole.
fn write_pictures(
    mut files: pictures::files::PictureFiles,
    report: &report::Report,
) -> anyhow::Result<()> {
    for (flag, exporter) in [
        ("--trace", &pictures::trace::Trace as &dyn Exporter),
        ("--svg", &pictures::svg::Svg),
    ] {
        if let Some((path, f)) = files.writer(flag) {
            let path = path.display().to_string();
            exporter
                .export(report, f)
                .with_context(|| format!("{flag} {path}: cannot write the file"))?;
        }
    }
    files.commit()
}

/// Ends the process with a clear error if the demo is still running after `limit`.
fn start_watchdog(done: Arc<sync::Event>, limit: Duration, output: Output) {
    let began = std::time::Instant::now();
    let _ = std::thread::Builder::new()
        .name("Watchdog".into())
        .spawn(move || {
            // The time `--pause` held the run does not count.
            loop {
                let remaining = (limit + lab::pause::paused()).saturating_sub(began.elapsed());
                if remaining.is_zero() {
                    break;
                }
                if done.wait_timeout(remaining) {
                    return;
                }
            }
            {
                output.error_line(&format!(
                    "threadlab: error: the demo ran longer than --watchdog {} s and was stopped",
                    limit.as_secs()
                ));
                pictures::files::discard_scratch();
                std::process::exit(1);
            }
        });
}
