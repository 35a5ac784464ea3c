#![doc = include_str!("../pages/url_check.md")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tracing::{info, warn};

use crate::check::corpus::Target;
use crate::check::{Accept, Checker, Entry, Kind, Method, Options, Outcome, UrlList};
use crate::lab::{self, Lab, Report, Table, units};
use crate::serve::Server;

mod docs;
mod report_formats;

/// Flags of `threadlab url-check`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// What to check: a file of URLs (one a line, `-` for stdin: the lesson's list), or
    /// documents: Markdown and HTML files, folders (their .md and .html files; .gitignore and
    /// hidden files honoured), globs, URLs given directly. Every link is reported with its
    /// file:line:col.
    #[arg(required_unless_present = "demo", value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Worker threads (1..=512).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = crate::cli::whole::<usize>(1, 512))]
    pub workers: usize,
    /// Seconds one attempt may take in all: connecting, the headers and any body read
    /// (0 < SECS <= 3600).
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: f64,
    /// HTTP method.
    #[arg(long, value_enum, default_value_t = Method::Get)]
    pub method: Method,
    /// Accepted status codes after redirects, e.g. `200..=299,404`.
    #[arg(long, default_value = "200..=399", value_name = "RANGES", value_parser = Accept::parse)]
    pub accept: Accept,
    /// Most redirects to follow; a redirect loop is an error naming the loop (0..=100).
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = crate::cli::whole::<usize>(0, 100))]
    pub max_redirects: usize,
    /// Retries on timeouts, connection errors, 429 and 5xx, with exponential backoff or the
    /// server's Retry-After (0..=10) [default: 2 for documents, 0 for a plain list: the
    /// lesson's one attempt each].
    #[arg(long, value_name = "N", value_parser = crate::cli::whole::<u32>(0, 10))]
    pub retries: Option<u32>,
    /// User-Agent header (visible ASCII and spaces).
    #[arg(long, default_value = concat!("threadlab/", env!("CARGO_PKG_VERSION")),
          value_parser = parse_header_value)]
    pub user_agent: String,
    /// Also check the list sequentially on the main thread and print the speedup.
    #[arg(long)]
    pub compare: bool,
    /// Run the list at each of these worker counts, e.g. 1,2,4,8,16 (each 1..=512).
    #[arg(long, value_name = "LIST", value_parser = parse_workers_list)]
    pub sweep: Option<::std::vec::Vec<usize>>,
    /// Check a built-in list against threadlab's own server on 127.0.0.1 (no file, no network).
    #[arg(long, conflicts_with = "inputs")]
    pub demo: bool,
    /// List the links that would be checked, each as `file:line:column: url`, without any
    /// network: from a plain list, a Markdown file (.md), or every Markdown file in a folder.
    #[arg(long, conflicts_with_all = ["demo", "compare", "sweep"])]
    pub dump: bool,
    /// Read every input as this format, whatever its name says (by default .md files are
    /// Markdown, .html and .htm files HTML, and any other file a list of URLs, one a line).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format_in: Option<crate::check::extract::Format>,
    /// What relative links resolve against: a folder (links from `/` start there) or a URL
    /// (relative links become web links). By default, the folder of the file they are in.
    #[arg(long, value_name = "FOLDER|URL")]
    pub base: Option<String>,
    /// Leave out links matching this regex (repeatable); counted, and listed with -v.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Check links matching this regex even if an exclude matches (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Exclude patterns, one regex a line, `#` comments [default: .threadlab-ignore in the
    /// current folder, if there].
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Option<PathBuf>,
    /// Leave out links to private addresses (10/8, 172.16/12, 192.168/16, fc00::/7,
    /// link-local).
    #[arg(long)]
    pub exclude_private: bool,
    /// Leave out links to loopback (127/8, ::1, localhost).
    #[arg(long)]
    pub exclude_loopback: bool,
    /// Checks of one host at once (1..=512) [default: 4 for documents; a plain list: as many
    /// as --workers].
    #[arg(long, value_name = "N", value_parser = crate::cli::whole::<usize>(1, 512))]
    pub host_concurrency: Option<usize>,
    /// Least seconds between two requests to one host (0 < SECS <= 3600) [default: none].
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub host_interval: Option<f64>,
    /// A request header, `Name: value` (repeatable); never printed.
    #[arg(long, value_name = "'NAME: VALUE'", value_parser = parse_header)]
    #[serde(serialize_with = "header_names")]
    pub header: Vec<(String, String)>,
    /// A token sent as `Authorization: Bearer` to GitHub's hosts only (github.com,
    /// api.github.com, raw.githubusercontent.com) [default: $GITHUB_TOKEN]; never printed.
    #[arg(long, value_name = "TOKEN", env = "GITHUB_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    pub github_token: Option<String>,
    /// Accept invalid TLS certificates (self-signed, expired, another host's): said in the
    /// summary of every run that uses it.
    #[arg(long)]
    pub insecure: bool,
    /// A cookie jar: its cookies are sent, and the ones servers set are written back to it
    /// at the end (cookie_store's JSON, as lychee's --cookie-jar); values never printed.
    #[arg(long, value_name = "FILE")]
    pub cookie_jar: Option<PathBuf>,
    /// Keep results between runs in the cache file: a cached success or definitive failure
    /// (404, 410, no such host) is not requested again while fresh; errors are never kept.
    #[arg(long)]
    pub cache: bool,
    /// The cache file [default: .threadlab-cache in the current folder].
    #[arg(long, value_name = "FILE", requires = "cache")]
    pub cache_file: Option<PathBuf>,
    /// How old a cached result may be: 90s, 30m, 12h, 1d.
    #[arg(long, value_name = "AGE", default_value = "1d",
          value_parser = crate::check::cache::parse_age)]
    #[serde(skip)]
    pub max_cache_age: Duration,
    /// How the links' results are written.
    #[arg(long, value_enum, default_value_t = report_formats::OutputFormat::Text)]
    pub output_format: report_formats::OutputFormat,
    /// Write the results there instead of stdout (complete or not at all).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `url-check --dump`: every link of the inputs with its place and its target as it would
/// be checked (excluded ones said so), in input order, on stdout; how many on stderr. No
/// lab, no network.
pub fn dump(args: &Args) -> anyhow::Result<i32> {
    use std::io::Write;
    anyhow::ensure!(
        !args.inputs.is_empty(),
        "--dump: name a file, a folder or a glob to list the links of"
    );
    let reading = std::sync::Arc::new(docs::reading(args)?);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Streamed: each document's links are written as it is read, and only a hash of each
    // distinct target is kept (for the count), so memory does not grow with the files.
    let (mut links, mut files, mut broken) = (0usize, 0usize, 0usize);
    let mut distinct = std::collections::HashSet::new();
    let mut write = |line: String| {
        if writeln!(out, "{line}").is_err() {
            crate::lab::signals::pipe_closed();
        }
    };
    crate::check::corpus::read_each(&args.inputs, &reading, |document| {
        files += usize::from(document.dir.is_some());
        let name = &document.name;
        match &document.links {
            Ok(found) => {
                for f in found {
                    links += 1;
                    distinct.insert(hash(&f.key()));
                    let note = match &f.target {
                        Target::Excluded { why } => format!("  ({why})"),
                        Target::Broken { why, .. } => {
                            broken += 1;
                            format!("  (broken: {why})")
                        }
                        _ => String::new(),
                    };
                    let (line, col) = (f.link.line, f.link.col);
                    write(format!("{name}:{line}:{col}: {}{note}", f.shown));
                }
            }
            Err(why) => {
                links += 1;
                broken += 1;
                distinct.insert(hash(&format!("{name}\n{why}")));
                write(format!("{name}: {name}  (broken: {why})"));
            }
        }
    });
    if out.flush().is_err() {
        crate::lab::signals::pipe_closed();
    }
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    eprintln!(
        "url-check --dump: {} in {} ({})",
        plural(links, "link", "links"),
        plural(files, "file", "files"),
        plural(distinct.len(), "distinct target", "distinct targets")
    );
    Ok(if broken > 0 { 2 } else { 0 })
}

/// A 64-bit hash of a target's key: enough to count distinct targets without keeping them.
fn hash(key: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!(
            "must be more than 0 and at most 3600 seconds (got {s})"
        )),
    }
}

/// A header value HTTP can carry: visible ASCII, spaces and tabs (no control characters,
/// which the HTTP client would refuse only later, without naming the flag).
fn parse_header_value(s: &str) -> Result<String, String> {
    match s
        .char_indices()
        .find(|(_, c)| !(*c == ' ' || *c == '\t' || c.is_ascii_graphic()))
    {
        Some((at, c)) => Err(format!(
            "character {} ({c:?}) at byte {at} cannot go in an HTTP header",
            c.escape_unicode()
        )),
        None => Ok(s.to_string()),
    }
}

impl Args {
    /// Whether the results are written to stdout in a format of their own (the narrative
    /// and the evidence then go to stderr).
    pub fn results_take_stdout(&self) -> bool {
        self.output.is_none()
            && self.output_format != report_formats::OutputFormat::Text
            && !self.demo
    }
}

/// The report's params name the headers sent, never their values.
fn header_names<S: serde::Serializer>(h: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(h.iter().map(|(name, _)| format!("{name}: (not shown)")))
}

/// Writes the cookie jar back, and says how many cookies it keeps (never their values).
fn keep_cookies(checker: &Checker, report: &mut Report) -> anyhow::Result<()> {
    if let (Some(kept), Some(path)) = (checker.keep_cookies()?, &checker.options().cookie_jar) {
        report.note(format!(
            "--cookie-jar {}: {} kept for the next run.",
            path.display(),
            if kept == 1 { "1 cookie".to_string() } else { format!("{kept} cookies") }
        ));
    }
    Ok(())
}

/// Said in the summary of every run with `--insecure`.
fn warn_insecure(args: &Args, report: &mut Report) {
    if args.insecure {
        report.note(
            "⚠ --insecure: TLS certificates were NOT verified in this run (self-signed, expired or another host's were accepted).",
        );
    }
}

/// `--header 'Name: value'`: a valid header name and value, or one line saying which part
/// is wrong.
fn parse_header(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(format!("expected 'Name: value', with a colon (got {s:?})"));
    };
    let (name, value) = (name.trim(), value.trim());
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| format!("the value of {name} has characters a header cannot carry"))?;
    Ok((name.to_string(), value.to_string()))
}

fn parse_workers_list(s: &str) -> Result<Vec<usize>, String> {
    crate::cli::parse_counts_within(s, 512)
}

/// Most rows the results table shows; the rest are counted in a note (`--json` has all).
const MAX_TABLE_ROWS: usize = 1000;
/// Lists up to this long show every row; longer ones only the failures.
const ALL_ROWS_UP_TO: usize = 200;

/// The outcome for one input line (`results` in the JSON report: README, "The JSON report").
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// 1-based input line.
    pub line: u32,
    /// The URL as given, credentials masked and control characters escaped.
    pub url: String,
    /// Final status code after redirects, if a response came.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The failure's kind (see [`Kind`]).
    pub kind: Option<Kind>,
    /// Accepted.
    pub ok: bool,
    /// Time spent on it, all attempts included.
    pub elapsed_ms: f64,
    /// The thread that checked it.
    pub thread: Option<Arc<str>>,
    /// Requests made (1 + retries used).
    pub attempts: u32,
}

impl CheckResult {
    fn new(list: &UrlList, entry: &Entry, outcome: Outcome, thread: Option<Arc<str>>) -> Self {
        CheckResult {
            line: entry.line,
            url: list.shown(entry),
            status: outcome.status,
            error: outcome.error,
            kind: outcome.kind,
            ok: outcome.ok,
            elapsed_ms: units::ms(outcome.elapsed),
            thread,
            attempts: outcome.attempts,
        }
    }
}

/// Checks one entry on the calling thread; `in_flight` counts the requests being made right
/// now, over every worker of this run.
fn check_entry(
    list: &UrlList,
    checker: &Checker,
    entry: &Entry,
    narrate: bool,
    in_flight: &AtomicUsize,
    at_once: &AtOnce,
) -> CheckResult {
    let thread = Some(this_thread());
    match list.target(entry) {
        Ok(url) => {
            let shown = list.shown(entry);
            // The pictures' counter track of requests in flight (a no-op without them).
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            crate::lab::record::count("requests in flight", now as f64);
            let outcome = crate::lab::blocking("network", || at_once.check(checker, &url, &shown));
            let now = in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
            crate::lab::record::count("requests in flight", now as f64);
            CheckResult::new(list, entry, outcome, thread)
        }
        Err((kind, msg)) => {
            if narrate {
                warn!("line {}: {}: {msg}", entry.line, list.shown(entry));
            }
            CheckResult::new(list, entry, Outcome::failed(kind, msg), thread)
        }
    }
}

/// The current thread's narrative name, shared by every result it produces.
fn this_thread() -> Arc<str> {
    thread_local!(static NAME: Arc<str> = lab::thread_name().into());
    NAME.with(Arc::clone)
}

/// The most checks of one host at once, counted by the workers around each check (inside
/// the host's gate, not by asking its semaphore): what the host-limit check judges.
#[derive(Default)]
pub(super) struct AtOnce {
    now: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    most: AtomicUsize,
}

impl AtOnce {
    /// Checks `url` through its host's gate, counting this check while it is inside.
    pub(super) fn check(&self, checker: &Checker, url: &reqwest::Url, shown: &str) -> Outcome {
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        checker.check_gated(url, shown, &|inside| {
            let mut now = crate::sync::lock(&self.now);
            let n = now.entry(host.clone()).or_default();
            if inside {
                *n += 1;
                self.most.fetch_max(*n, Ordering::SeqCst);
            } else {
                *n = n.saturating_sub(1);
            }
        })
    }

    /// The check: never more than `limit` checks of one host at once.
    pub(super) fn judge(&self, limit: usize, report: &mut Report) {
        let most = self.most.load(Ordering::SeqCst);
        report.check(
            "checks-one-host-at-once",
            "checks of one host at once (counted by the workers around each check)",
            format!("≤ {limit} (--host-concurrency)"),
            most,
            most <= limit,
        );
    }
}

/// Checks every entry on a pool of `workers` threads and hands each result to `emit` in
/// input order, as soon as every earlier line has been handed on. Stops handing out lines
/// when the run is interrupted; the lines left are emitted as `not checked`.
fn check_all(
    list: &Arc<UrlList>,
    checker: &Arc<Checker>,
    workers: usize,
    lab: &Lab,
    at_once: &Arc<AtOnce>,
    mut emit: impl FnMut(CheckResult) -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let narrate = lab.output().narrative != lab::output::Narrative::Off;
    let job = {
        let (list, checker, at_once) = (Arc::clone(list), Arc::clone(checker), Arc::clone(at_once));
        Arc::new(move |i: usize| {
            let entry = &list.entries()[i];
            check_entry(&list, &checker, entry, narrate, &in_flight, &at_once)
        })
    };
    let not_checked = |i: usize| {
        let outcome = Outcome::failed(Kind::NotChecked, "not checked (interrupted)".into());
        CheckResult::new(list, &list.entries()[i], outcome, None)
    };
    in_order(list.len(), workers, lab, job, not_checked, |_, r| emit(r))
}

/// Runs `job(i)` for every `i` in `0..count` on a pool of `workers` checker threads
/// (`Checker_N`, recorded for the report) and hands each result to `emit` in index order:
/// the pool's [`InOrder`](crate::pool::ordered::InOrder), without a window, so one slow
/// server never holds the other checks back.
pub(super) fn in_order<R: Send + 'static>(
    count: usize,
    workers: usize,
    lab: &Lab,
    job: Arc<dyn Fn(usize) -> R + Send + Sync>,
    left: impl Fn(usize) -> R,
    emit: impl FnMut(usize, R) -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let order = crate::pool::ordered::InOrder {
        workers,
        prefix: "Checker",
        recorder: Some(Arc::clone(lab.recorder())),
        window: None,
    };
    order.run(count, job, left, emit)
}

/// Checks every entry one by one on the calling thread, for the comparison. Returns how long
/// that took, or `None` if interrupted before the end (a partial time is no comparison).
fn check_sequentially(list: &UrlList, checker: &Checker, narrate: bool) -> Option<Duration> {
    let started = Instant::now();
    let (in_flight, at_once) = (AtomicUsize::new(0), AtOnce::default());
    for entry in list.entries() {
        if lab::signals::interrupted() {
            return None;
        }
        check_entry(list, checker, entry, narrate, &in_flight, &at_once);
    }
    (!lab::signals::interrupted()).then(|| started.elapsed())
}

/// A demo line's designed outcome, as the checker must report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Designed {
    status: Option<u16>,
    kind: Option<Kind>,
    ok: bool,
    /// Attempts: 1, or 1 + --retries for an error that is retried (a refused connection).
    attempts: u32,
    /// Requests the demo server answers for the line (a redirect chain counts each hop).
    requests: u64,
}

impl Designed {
    fn ok(requests: u64) -> Self {
        Designed {
            status: Some(200),
            kind: None,
            ok: true,
            attempts: 1,
            requests,
        }
    }
}

/// Everything the report needs from the results, gathered as they stream past: counts,
/// the rows of the table, and (with `--json`) the results written straight to stdout.
struct Tally {
    total: usize,
    ok: usize,
    by_kind: BTreeMap<Kind, u64>,
    last_line: u32,
    ascending: bool,
    rows: Vec<[String; 5]>,
    rows_left_out: usize,
    all_rows: bool,
    designed: Option<Vec<Designed>>,
    not_as_designed: Vec<u32>,
    stream: Option<crate::report::export::ResultStream<std::io::BufWriter<std::io::Stdout>>>,
}

impl Tally {
    fn new(lab: &Lab, entries: usize, designed: Option<Vec<Designed>>) -> anyhow::Result<Self> {
        let stream = if lab.output().json {
            Some(crate::report::export::ResultStream::begin(
                std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
                "results",
            )?)
        } else {
            None
        };
        Ok(Tally {
            total: 0,
            ok: 0,
            by_kind: BTreeMap::new(),
            last_line: 0,
            ascending: true,
            rows: Vec::new(),
            rows_left_out: 0,
            all_rows: entries <= ALL_ROWS_UP_TO,
            designed,
            not_as_designed: Vec::new(),
            stream,
        })
    }

    fn add(&mut self, r: CheckResult) -> anyhow::Result<()> {
        if let Some(want) = self.designed.as_ref().and_then(|d| d.get(self.total))
            && (r.status, r.kind, r.ok, r.attempts)
                != (want.status, want.kind, want.ok, want.attempts)
        {
            self.not_as_designed.push(r.line);
        }
        self.total += 1;
        self.ascending &= r.line > self.last_line;
        self.last_line = r.line;
        if r.ok {
            self.ok += 1;
        } else {
            *self
                .by_kind
                .entry(r.kind.unwrap_or(Kind::ProtocolError))
                .or_default() += 1;
        }
        if self.all_rows || !r.ok {
            if self.rows.len() < MAX_TABLE_ROWS {
                let status = match (r.status, &r.error) {
                    (Some(code), Some(_)) => format!("{code} (not accepted)"),
                    (_, Some(e)) => e.clone(),
                    (Some(code), None) => code.to_string(),
                    (None, None) => "-".into(),
                };
                self.rows.push([
                    r.line.to_string(),
                    r.url.clone(),
                    status,
                    format!("{:.0} ms", r.elapsed_ms),
                    r.thread.as_deref().unwrap_or_default().to_string(),
                ]);
            } else {
                self.rows_left_out += 1;
            }
        }
        if let Some(stream) = &mut self.stream {
            if let Err(e) = stream.push(&r) {
                // A closed stdout ends the run now, not after the checks in flight finish.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    lab::signals::pipe_closed();
                }
                return Err(e.into());
            }
        }
        Ok(())
    }
}

/// Reads the input file (or stdin for `-`), with the caps of [`crate::check::input`].
fn read_input(path: &std::path::Path) -> anyhow::Result<UrlList> {
    if path.as_os_str() == "-" {
        return Ok(UrlList::read(std::io::stdin(), "stdin")?);
    }
    let shown = path.display().to_string();
    anyhow::ensure!(
        !path.is_dir(),
        "{shown}: is a directory, not a file of URLs"
    );
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {shown}"))?;
    Ok(UrlList::read(file, &shown)?)
}

/// The built-in demo list against a server started here, and each line's designed outcome.
fn demo_list(server: &Server, lab: &Lab, retries: u32) -> anyhow::Result<(Vec<u8>, Vec<Designed>)> {
    let base = server.base_url();
    // A port that was free a moment ago and is closed now: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut lines =
        String::from("# threadlab url-check --demo: the tutorials' list, served locally\n");
    let mut designed = Vec::new();
    for secs in [0.5, 1.0, 1.5, 2.0] {
        let paced = format!("{:.3}", secs * lab.pace());
        let paced = paced.trim_end_matches('0').trim_end_matches('.');
        lines.push_str(&format!("{base}/delay/{paced}\n"));
        designed.push(Designed::ok(1));
    }
    lines.push_str(&format!("{base}/status/404\n"));
    // A 404 is final: never retried.
    designed.push(Designed {
        status: Some(404),
        kind: Some(Kind::Status),
        ok: false,
        attempts: 1,
        requests: 1,
    });
    lines.push_str(&format!("{base}/redirect/2\n"));
    designed.push(Designed::ok(3));
    lines.push_str(&format!("{base}/get\n"));
    designed.push(Designed::ok(1));
    lines.push_str(&format!("http://127.0.0.1:{closed}/\n"));
    // A refused connection is retried: every retry asked for is made.
    designed.push(Designed {
        status: None,
        kind: Some(Kind::ConnectionRefused),
        ok: false,
        attempts: 1 + retries,
        requests: 0,
    });
    Ok((lines.into_bytes(), designed))
}

/// Peak resident memory of this process, in MB (Linux; `None` elsewhere).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

fn options(args: &Args) -> Options {
    Options {
        method: args.method,
        accept: args.accept.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        max_redirects: args.max_redirects,
        retries: args.retries.unwrap_or(0),
        headers: args.header.clone(),
        github_token: args.github_token.clone().filter(|t| !t.is_empty()),
        insecure: args.insecure,
        cookie_jar: args.cookie_jar.clone(),
        // A list has no host limit unless one is asked for (the lesson's pool is the
        // limit); documents have 4 by default (see docs::run).
        hosts: crate::check::hosts::Limits {
            concurrency: args.host_concurrency,
            interval: args.host_interval.map(Duration::from_secs_f64),
        },
        user_agent: args.user_agent.clone(),
        max_idle_per_host: args
            .workers
            .max(args.sweep.iter().flatten().copied().max().unwrap_or(0)),
        ..Options::default()
    }
}

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    if !args.demo && docs::wanted(args) {
        return docs::run(args, lab);
    }
    let mut report = Report::new("url-check");
    report.params_from(args);
    let server = if args.demo {
        Some(Server::start("127.0.0.1:0".parse()?, false)?)
    } else {
        None
    };
    let (list, designed) = the_list(args, lab, server.as_ref())?;
    let source = args
        .inputs
        .first()
        .map_or("the demo list".to_string(), Clone::clone);
    anyhow::ensure!(
        !list.is_empty(),
        "{source}: no URLs found ({} blank or comment lines)",
        list.skipped
    );
    let compare = args.compare || args.demo;
    let list = Arc::new(list);
    let checker = Arc::new(Checker::new(options(args))?);
    let narrate = lab.output().narrative != lab::output::Narrative::Off;
    checker.set_narrate(narrate);
    info!(
        "url-check: {} URLs from {source} on {} workers (timeout {} s per attempt, accept {})",
        list.len(),
        args.workers,
        args.timeout,
        args.accept
    );

    let expected_requests: Option<u64> = designed
        .as_ref()
        .map(|d| d.iter().map(|x| x.requests).sum());
    let mut tally = Tally::new(lab, list.len(), designed)?;
    let progress = lab.progress(list.len() as u64, "checked");
    let at_once = Arc::new(AtOnce::default());
    let concurrent = check_all(&list, &checker, args.workers, lab, &at_once, |r| {
        progress.inc(1);
        tally.add(r)
    })?;
    progress.finish_and_clear();
    info!(
        "Concurrent: {} URLs in {} on {} workers",
        list.len(),
        units::duration(concurrent),
        args.workers
    );
    if let Some(stream) = tally.stream.take() {
        stream.end()?;
        report.results_streamed = true;
    }
    if let (Some(server), Some(expected)) = (&server, expected_requests)
        && !lab.interrupted()
    {
        judge_served(server.served(), expected, &mut report);
    }
    if let Some(limit) = args.host_concurrency {
        at_once.judge(limit, &mut report);
    }
    let mut summary = serde_json::Map::new();
    if compare && !lab.interrupted() {
        info!("Now the same list sequentially on the main thread…");
        compare_sequentially(
            &list,
            &checker,
            narrate,
            concurrent,
            &mut summary,
            &mut report,
        );
    }
    if let Some(counts) = &args.sweep {
        sweep(counts, &list, &checker, lab, &mut report)?;
    }
    keep_cookies(&checker, &mut report)?;
    let interrupted = lab.interrupted();
    finish(
        args,
        &list,
        tally,
        concurrent,
        interrupted,
        summary,
        &mut report,
    )?;
    Ok(report)
}

/// The list to check: the demo's (against `server`, with each line's designed outcome), or
/// the file given (or stdin).
fn the_list(
    args: &Args,
    lab: &Lab,
    server: Option<&Server>,
) -> anyhow::Result<(UrlList, Option<Vec<Designed>>)> {
    Ok(match (server, args.inputs.first()) {
        (Some(server), _) => {
            let (bytes, designed) = demo_list(server, lab, args.retries.unwrap_or(0))?;
            info!(
                "demo: threadlab's server is on {}; checking {} URLs",
                server.base_url(),
                designed.len()
            );
            (UrlList::parse(&bytes), Some(designed))
        }
        (None, Some(path)) => (read_input(std::path::Path::new(path))?, None),
        (None, None) => anyhow::bail!("give a file of URLs (or - for stdin), or --demo"),
    })
}

/// From the other side: what the demo server itself answered, one request per attempt.
fn judge_served(served: u64, expected: u64, report: &mut Report) {
    report.metric("server.requests", served);
    report.check(
        "requests-demo-server-answered",
        "requests the demo server answered (counted by the server)",
        format!("{expected} (one per attempt; a 404 is final; each redirect hop counts)"),
        served,
        served == expected,
    );
}

/// The same list one URL at a time on the main thread: the speedup of the concurrent run.
fn compare_sequentially(
    list: &UrlList,
    checker: &Checker,
    narrate: bool,
    concurrent: Duration,
    summary: &mut serde_json::Map<String, serde_json::Value>,
    report: &mut Report,
) {
    match check_sequentially(list, checker, narrate) {
        Some(sequential) => {
            let speedup = sequential.as_secs_f64() / concurrent.as_secs_f64().max(1e-9);
            info!(
                "Sequential: {} / Concurrent: {} / Speedup: {}",
                units::duration(sequential),
                units::duration(concurrent),
                units::speedup(speedup)
            );
            summary.insert("sequential_ms".into(), units::ms(sequential).into());
            summary.insert("speedup".into(), ((speedup * 100.0).round() / 100.0).into());
            report.metric("sequential_ms", units::ms(sequential));
            report.metric("speedup", (speedup * 100.0).round() / 100.0);
        }
        None => report.note("The sequential comparison was interrupted: no speedup measured."),
    }
}

/// The table, summary, notes, checks and exit code, from the tally.
fn finish(
    args: &Args,
    list: &UrlList,
    tally: Tally,
    concurrent: Duration,
    interrupted: bool,
    mut summary: serde_json::Map<String, serde_json::Value>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut table = Table::new(["line", "url", "status", "time", "thread"]);
    for row in tally.rows {
        table.row(row);
    }
    report.tables.push(table);
    let (total, ok) = (tally.total, tally.ok);
    let failed = total - ok;
    if !tally.all_rows {
        report.note(format!(
            "The table shows only failures: {ok} accepted URLs are left out (--json lists every result)."
        ));
    }
    if tally.rows_left_out > 0 {
        report.note(format!(
            "{} more failures are left out of the table (--json lists every result).",
            tally.rows_left_out
        ));
    }
    let by_kind: BTreeMap<&str, u64> = tally
        .by_kind
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    summary.insert("total".into(), total.into());
    summary.insert("ok".into(), ok.into());
    summary.insert("failed".into(), failed.into());
    summary.insert("failed_by_kind".into(), serde_json::to_value(&by_kind)?);
    summary.insert("skipped_lines".into(), list.skipped.into());
    summary.insert("wall_ms".into(), units::ms(concurrent).into());
    summary.insert("workers".into(), args.workers.into());
    summary.insert("interrupted".into(), interrupted.into());
    report.metric("total", total as u64);
    report.metric("ok", ok as u64);
    report.metric("failed", failed as u64);
    report.metric("wall_ms", units::ms(concurrent));
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    report.note(format!(
        "{total} URLs: {ok} ok, {failed} failed{}; {} on {} workers{}",
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        },
        units::duration(concurrent),
        args.workers,
        summary
            .get("speedup")
            .map_or(String::new(), |s| format!("; speedup over sequential {s}x"))
    ));
    if failed > 0 && tally.by_kind.get(&Kind::DnsFailure) == Some(&(failed as u64)) {
        report.note(
            "Every failure is a DNS failure: is this machine offline? `threadlab url-check --demo` runs offline.",
        );
    }
    warn_insecure(args, report);
    judge_lines(list, total, tally.ascending, report);
    if let Some(designed) = &tally.designed {
        judge_demo(args, designed.len(), &tally.not_as_designed, report);
    }
    // Peak memory, read at the end of the run.
    if let Some(mb) = peak_rss_mb() {
        summary.insert("peak_rss_mb".into(), mb.into());
        report.metric("peak_rss_mb", mb);
    }
    report
        .extra
        .insert("summary".into(), serde_json::Value::Object(summary));
    report.exit_code = Some(if interrupted {
        130
    } else if !report.ok {
        1
    } else if failed > 0 && !args.demo {
        2
    } else {
        0
    });
    Ok(())
}

/// Evidence from the input itself: its lines (counted from the newline bytes) less blanks
/// and comments, against the results handed on, in input order (each for a later line than
/// the one before).
fn judge_lines(list: &UrlList, total: usize, ascending: bool, report: &mut Report) {
    let expected = list.lines - list.skipped;
    report.check(
        "input-line-has-exactly-result",
        "every input line has exactly one result",
        format!(
            "{} lines − {} blank/comment = {expected}",
            list.lines, list.skipped
        ),
        format!(
            "{total} results{}",
            if ascending {
                ", in input order"
            } else {
                ", some for the same line or out of order"
            }
        ),
        total == expected && ascending,
    );
}

/// The demo list: every line as designed, and the concurrent run faster than one by one.
fn judge_demo(args: &Args, n: usize, not_as_designed: &[u32], report: &mut Report) {
    report.check(
        "demo-urls-behaved-designed",
        "demo URLs that behaved as designed (4 delays and a redirect: 200, ok; a 404: failed; a closed port: refused, tried 1 + --retries times)",
        format!("{n} of {n}"),
        if not_as_designed.is_empty() {
            format!("{n} of {n}")
        } else {
            format!(
                "{} of {n}; not as designed: line {}",
                n - not_as_designed.len(),
                not_as_designed
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        not_as_designed.is_empty(),
    );
    match report.metric_f64("speedup") {
        Some(s) if args.workers > 1 => report.check(
            "speedup-concurrent-run-over-sequential",
            "speedup of the concurrent run over the sequential one",
            "> 1.00x",
            format!("{s:.2}x"),
            s > 1.0,
        ),
        Some(s) => report.note(format!(
            "With one worker there is nothing to overlap: the concurrent run is the sequential one ({s:.2}x). Try --workers 5."
        )),
        None => {}
    }
}

/// The list at each worker count: a table of times and speedups and a bar chart.
fn sweep(
    counts: &[usize],
    list: &Arc<UrlList>,
    checker: &Arc<Checker>,
    lab: &Lab,
    report: &mut Report,
) -> anyhow::Result<()> {
    info!("sweep: the list at worker counts {counts:?} (per-URL lines hidden)");
    checker.set_narrate(false);
    let mut rows = Vec::new();
    for &w in counts {
        if lab.interrupted() {
            break;
        }
        let at_once = Arc::new(AtOnce::default());
        let took = check_all(list, checker, w, lab, &at_once, |_| Ok(()))?;
        if lab.interrupted() {
            break;
        }
        info!("{w} workers: {}", units::duration(took));
        rows.push((w, took));
    }
    checker.set_narrate(lab.output().narrative != lab::output::Narrative::Off);
    let Some(&(_, base)) = rows.first() else {
        return Ok(());
    };
    let rows: Vec<(usize, Duration, f64)> = rows
        .iter()
        .map(|&(w, took)| (w, took, base.as_secs_f64() / took.as_secs_f64()))
        .collect();
    report.sweep(
        format!(
            "sweep: {} URLs, speedup against {} worker(s)",
            list.len(),
            rows[0].0
        ),
        &rows,
        None,
    );
    Ok(())
}
