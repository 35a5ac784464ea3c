//! Output: the one logger, the one progress-bar factory, and where each goes.
//!
//! Every narrative line is `+0.512s [INFO ] (Worker-A  ) message`: time since the demo
//! started, level, the OS thread's own name (set with `thread::Builder::name`) padded to 10,
//! then the message. The formatter builds the line, and the writer stamps the time and hands
//! it to the terminal in one `write_all` while holding one process-wide lock, with any
//! progress bar suspended. So lines from many threads never interleave with each other or
//! with a bar, and **the times on screen never go backwards**: a line's time is taken in the
//! order lines are written, not in the order threads happened to format them.
//!
//! Causal order is the other half: a primitive that wakes another thread announces its
//! event *before* the wake-up can take effect (see `RLock::release_with`), so the woken
//! thread's line always comes second.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Where the narrative goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrative {
    /// Human mode: narrative and summary on stdout.
    Stdout,
    /// `--json`: the report owns stdout, the narrative moves to stderr.
    Stderr,
    /// `--quiet`: no narrative.
    Off,
}

/// How this run writes: the narrative's target, colour, and whether bars may show.
#[derive(Debug, Clone)]
pub struct Output {
    /// Where log lines go.
    pub narrative: Narrative,
    /// ANSI colour on levels and checks.
    pub color: bool,
    /// Debug-level lines too.
    pub verbose: bool,
    /// `--json`: stdout carries the JSON report and nothing else.
    pub json: bool,
    /// On a terminal: its width, to which long narrative lines wrap with a hanging indent.
    pub wrap: Option<usize>,
    /// `--class`: no level tag, each thread's name in its own colour.
    pub class: bool,
    /// The summary folds the checks to the lesson's (`--class`, `--checks lesson`).
    pub fold_checks: bool,
    progress_visible: bool,
    bars: Arc<Mutex<Option<MultiProgress>>>,
}

impl Output {
    /// Decides targets from the global flags and the environment (TTY, `NO_COLOR`).
    pub fn new(json: bool, quiet: bool, no_color: bool, verbose: bool) -> Self {
        let taken = STDOUT_TAKEN.load(std::sync::atomic::Ordering::Relaxed);
        let narrative = match (quiet, json || taken) {
            (true, _) => Narrative::Off,
            (false, true) => Narrative::Stderr,
            (false, false) => Narrative::Stdout,
        };
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let tty = match narrative {
            Narrative::Stdout => io::stdout().is_terminal(),
            Narrative::Stderr => io::stderr().is_terminal(),
            // `-q`: no narrative, but the summary (and a --timeline) still go to stdout.
            Narrative::Off => !json && io::stdout().is_terminal(),
        };
        Self {
            narrative,
            color: tty && !no_color && !no_color_env,
            verbose,
            json,
            wrap: if tty {
                let term = match narrative {
                    Narrative::Stderr => console::Term::stderr(),
                    _ => console::Term::stdout(),
                };
                Some(
                    term.size_checked()
                        .map_or(100, |(_, cols)| usize::from(cols))
                        .max(40),
                )
            } else {
                columns_asked()
            },
            class: false,
            fold_checks: false,
            progress_visible: !quiet && !json && io::stderr().is_terminal(),
            bars: Arc::new(Mutex::new(None)),
        }
    }

    /// Output that writes nothing: for tests and library callers.
    pub fn silent() -> Self {
        Self {
            narrative: Narrative::Off,
            color: false,
            verbose: false,
            json: false,
            wrap: None,
            class: false,
            fold_checks: false,
            progress_visible: false,
            bars: Arc::new(Mutex::new(None)),
        }
    }

    /// Installs the process-wide logger with the line format above. Call once, from the binary.
    ///
    /// With `capture`, every narrative line (info and above) is also recorded there, as the
    /// pictures' instants, even when the narrative itself is off (`--quiet`).
    pub fn install_logger(&self, start: Instant, capture: Option<Arc<super::Recorder>>) {
        if self.narrative == Narrative::Off && capture.is_none() {
            return;
        }
        let max = if self.verbose {
            Level::DEBUG
        } else {
            Level::INFO
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(max)
            .event_format(LineFormat {
                color: self.color,
                class: self.class,
            })
            .with_writer(LineSink {
                narrative: self.narrative,
                bars: Arc::clone(&self.bars),
                start,
                wrap: self.wrap,
            })
            .finish();
        // Only our own crate speaks in the narrative; dependencies' logs stay out of it.
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = subscriber
            .with(tracing_subscriber::filter::filter_fn(|m| {
                m.target().starts_with("threadlab")
            }))
            .with(capture.map(Capture));
        let _ = tracing::subscriber::set_global_default(subscriber);
    }

    /// Writes `message` to stderr on a line of its own: progress bars cleared, no narrative
    /// line half-written (it waits up to 100 ms for the writer in progress).
    pub fn error_line(&self, message: &str) {
        let until = Instant::now() + Duration::from_millis(100);
        let _order = loop {
            match WRITE_ORDER.try_lock() {
                Ok(g) => break Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => break Some(e.into_inner()),
                Err(_) if Instant::now() > until => break None,
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let write = || {
            let _ = io::stdout().flush();
            let _ = writeln!(io::stderr(), "{message}");
        };
        match bars {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }

    /// A progress bar over `len` steps, or a hidden one when not on a terminal, `--quiet` or
    /// `--json`. Log lines written while it shows appear above it, whole.
    pub fn progress(&self, len: u64, label: &str) -> ProgressBar {
        // A scheduled run is in virtual time, one thread at a time: no real-time bar.
        if !self.progress_visible || super::sched::active() {
            return ProgressBar::hidden();
        }
        let mut slot = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let multi = slot.get_or_insert_with(|| {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10))
        });
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30.cyan/blue}] {pos}/{len} {per_sec:1} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ");
        *SHOWN_BARS.lock().unwrap_or_else(|e| e.into_inner()) = Some(multi.clone());
        let bar = multi.add(ProgressBar::new(len).with_style(style));
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

/// The thread colours, in the order threads are first named: MainThread plain, the rest
/// from one palette of eight, as 256-colour codes for the terminal and hex for the SVG.
const PALETTE: [(u8, &str); 8] = [
    (33, "#0087ff"),
    (166, "#d75f00"),
    (34, "#00af00"),
    (163, "#d700af"),
    (37, "#00afaf"),
    (136, "#af8700"),
    (99, "#875fff"),
    (160, "#d70000"),
];

/// The threads named so far, in order: a thread's colour is its place here.
static NAMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The palette entry of thread `name` (None for MainThread): the same for the whole
/// process, so the narrative, the timeline and the SVG agree.
fn thread_colour(name: &str) -> Option<(u8, &'static str)> {
    if name == "MainThread" {
        return None;
    }
    let mut named = NAMED.lock().unwrap_or_else(|e| e.into_inner());
    let at = match named.iter().position(|n| n == name) {
        Some(at) => at,
        None => {
            named.push(name.to_string());
            named.len() - 1
        }
    };
    Some(PALETTE[at % PALETTE.len()])
}

/// The terminal style of thread `name`'s label under `--class`.
pub fn thread_style(name: &str) -> console::Style {
    match thread_colour(name) {
        Some((code, _)) => console::Style::new().color256(code).bold(),
        None => console::Style::new().bold(),
    }
}

/// The SVG colour of thread `name`'s label under `--class` (MainThread: black).
pub fn thread_hex(name: &str) -> &'static str {
    thread_colour(name).map_or("#000000", |(_, hex)| hex)
}

/// Off a terminal, the narrative is one line per event (for `grep` and logs) unless the
/// environment asks for a width with `COLUMNS` (as a shell sets it for a pager): then it
/// wraps there, as on a terminal of that width.
pub fn columns_asked() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .map(|c| c.clamp(40, 400))
}

/// The width of the thread column: 10, as in the tutorials' `%(threadName)-10s`. A longer
/// name (`Philosopher-3`) runs past it, as in Python's logs: the column never widens
/// mid-run, so the lines printed before and after a thread starts stay alike.
const NAME_WIDTH: usize = 10;

/// A thread is spawned with `name`: it takes the next colour of the palette.
pub fn thread_spawned(name: &str) {
    let _ = thread_colour(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_hang_under_the_message() {
        let line = format!("+0.000s [INFO ] (MainThread) {}\n", "word ".repeat(30));
        let out = hang(&line, 60);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{out}");
        assert!(lines[1].starts_with(&" ".repeat(29)));
        assert_eq!(
            hang("+0.000s [INFO ] (T) short\n", 60),
            "+0.000s [INFO ] (T) short\n"
        );
    }
}

/// The name the narrative shows for the current thread: `MainThread` for the main thread.
pub fn thread_name() -> String {
    match std::thread::current().name() {
        Some("main") => "MainThread".to_string(),
        Some(name) => name.to_string(),
        None => format!("{:?}", std::thread::current().id()),
    }
}

/// Records each narrative line (info and above) in the recorder, for the pictures.
struct Capture(Arc<super::Recorder>);

impl<S: Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() > Level::INFO {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    use std::fmt::Write as _;
                    let _ = write!(self.0, "{value:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0
            .moment(super::record::MomentKind::Narrative, None, m.0);
    }
}

/// Formats one event as a narrative line, all but its time (the sink stamps that).
struct LineFormat {
    color: bool,
    class: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        let padded = format!("{:<5}", level.as_str());
        let level_text = if self.color {
            let style = match level {
                Level::ERROR => console::Style::new().red().bold(),
                Level::WARN => console::Style::new().yellow(),
                Level::INFO => console::Style::new().green(),
                _ => console::Style::new().dim(),
            };
            style.force_styling(true).apply_to(padded).to_string()
        } else {
            padded
        };
        let name = thread_name();
        let width = NAME_WIDTH;
        if !self.class {
            write!(writer, "[{level_text}] ({name:<width$}) ")?;
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            return writeln!(writer);
        }
        // The classroom's line: the thread in its own colour, no level; a warning's message
        // in yellow (or marked, without colour).
        let padded = format!("{name:<width$}");
        let shown = if self.color {
            thread_style(&name)
                .force_styling(true)
                .apply_to(padded)
                .to_string()
        } else {
            padded
        };
        write!(writer, "({shown}) ")?;
        let warn = level <= Level::WARN;
        match (warn, self.color) {
            (true, true) => {
                let mut message = String::new();
                ctx.field_format()
                    .format_fields(Writer::new(&mut message), event)?;
                let style = console::Style::new().yellow().force_styling(true);
                write!(writer, "{}", style.apply_to(message))?;
            }
            (true, false) => {
                write!(writer, "! ")?;
                ctx.field_format().format_fields(writer.by_ref(), event)?;
            }
            _ => ctx.field_format().format_fields(writer.by_ref(), event)?,
        }
        writeln!(writer)
    }
}

/// Stamps each formatted line with its time and hands it to its stream in one write, with
/// progress bars suspended, all under [`WRITE_ORDER`].
#[derive(Clone)]
struct LineSink {
    narrative: Narrative,
    bars: Arc<Mutex<Option<MultiProgress>>>,
    start: Instant,
    wrap: Option<usize>,
}

/// `line` (time, level, thread, message) wrapped to `width`: continuation lines start under
/// the message, so the thread column stays clear.
fn hang(line: &str, width: usize) -> String {
    let text = line.trim_end_matches('\n');
    if console::measure_text_width(text) <= width {
        return line.to_string();
    }
    let Some(at) = text.find(") ").map(|i| i + 2) else {
        return line.to_string();
    };
    let (prefix, message) = text.split_at(at);
    let indent = console::measure_text_width(prefix);
    let lines = crate::report::export::wrap(message, width.saturating_sub(indent).max(20));
    let mut out = String::with_capacity(line.len() + lines.len() * indent);
    out.push_str(prefix);
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str(l);
    }
    out.push('\n');
    out
}

/// stdout carries a command's own output (url-check `--output-format compact|json|…`): the
/// narrative goes to stderr, as with `--json`.
static STDOUT_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says, before the lab's output is made, that stdout is taken (see [`STDOUT_TAKEN`]).
pub fn stdout_taken() {
    STDOUT_TAKEN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The progress bars on the screen, if any: a `--pause` prompt hides them while it waits
/// (their steady tick would draw over it).
static SHOWN_BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Runs `f` with the progress bars off the screen (redrawn after it).
pub(crate) fn bars_hidden<R>(f: impl FnOnce() -> R) -> R {
    let bars = SHOWN_BARS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bars {
        Some(multi) => multi.suspend(f),
        None => f(),
    }
}

/// Held while a line is stamped and written: write order is time order.
static WRITE_ORDER: Mutex<()> = Mutex::new(());

/// Runs `f` with the screen held: no narrative line is written meanwhile (`--pause`'s
/// prompts).
pub fn hold_screen<R>(f: impl FnOnce() -> R) -> R {
    let _order = WRITE_ORDER.lock().unwrap_or_else(|e| e.into_inner());
    f()
}

impl<'a> MakeWriter<'a> for LineSink {
    type Writer = LineSink;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for LineSink {
    /// Writes one whole line. A closed pipe ends the process quietly (see
    /// [`super::signals::pipe_closed`]); any other write error drops the line rather than
    /// failing the demo (the narrative is commentary, never the evidence).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _order = WRITE_ORDER.lock().unwrap_or_else(|e| e.into_inner());
        // `--pause`: the run stops before a part's header, and the clock with it.
        if super::pause::on() && thread_name() == "MainThread" {
            let text = String::from_utf8_lossy(buf);
            let message = text.find(") ").map_or("", |i| &text[i + 2..]);
            if let Some(n) = super::pause::part_header(message) {
                super::pause::stop(&format!("Part {} is done; Part {n} next", n - 1));
                if super::signals::interrupted() {
                    // `q`: the part is not shown starting (it stops at its first step).
                    return Ok(buf.len());
                }
            }
        }
        let mut line = format!(
            "+{:.3}s ",
            crate::lab::now()
                .saturating_duration_since(self.start)
                .as_secs_f64()
        )
        .into_bytes();
        line.extend_from_slice(buf);
        if let Some(width) = self.wrap {
            line = hang(&String::from_utf8_lossy(&line), width).into_bytes();
        }
        let emit = || match self.narrative {
            Narrative::Stdout => io::stdout().lock().write_all(&line),
            Narrative::Stderr => io::stderr().lock().write_all(&line),
            Narrative::Off => Ok(()),
        };
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let written = match bars {
            Some(multi) => multi.suspend(emit),
            None => emit(),
        };
        if let Err(e) = written
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            super::signals::pipe_closed();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
