//! url-check: a real concurrent URL status checker on a pool of threads.
//!
//! Reads one URL per line, checks each with an HTTP request on a pool of `--workers`
//! threads (`Checker_0`, `Checker_1`, …) sharing one blocking reqwest client (so connections
//! are reused), and reports every line in input order. `--compare` checks the same list one
//! by one on the main thread and prints the speedup; `--sweep` tries several worker counts.
//! `--demo` needs no file and no network: it starts threadlab's own server on a free
//! loopback port and checks a list modelled on the tutorials'.
//!
//! # What to watch for
//! - "Checking …" lines from several `Checker_N` threads at once, and the "Finished" lines
//!   arriving in completion order, not input order; the table is in input order anyway.
//! - The speedup: waiting on the network is exactly the work threads overlap well, even on
//!   two cores: the threads spend their time blocked, not computing.
//!
//! # Why it works
//! Each worker pulls the next line index from a shared atomic counter and sends its result
//! through a channel; the main thread files each result under its index. Nothing a user gave
//! is dropped: a line that is not a URL becomes a result with the reason.
//!
//! Response bodies are not read: the status is in the headers. Only a small body (a known
//! length of at most 16 KiB) is read and discarded, because a fully read response lets the
//! connection go back to the pool for the next request; a large or unknown-length body is
//! dropped unread, which closes that connection instead of downloading it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::builder::RangedU64ValueParser;
use reqwest::Url;
use reqwest::blocking::Client;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::pool::ThreadPool;
use crate::serve::Server;

/// Flags of `threadlab url-check`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// File with one URL per line (`-` for stdin). Blank lines and `#` comments are skipped.
    #[arg(required_unless_present = "demo", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Worker threads (1..=512).
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=512))]
    pub workers: usize,
    /// Seconds allowed per request, from connecting to the end of the headers.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = parse_timeout,
          allow_negative_numbers = true)]
    pub timeout: f64,
    /// HTTP method.
    #[arg(long, value_enum, default_value_t = Method::Get)]
    pub method: Method,
    /// Accepted status codes after redirects, e.g. `200..=299,404`.
    #[arg(long, default_value = "200..=399", value_name = "RANGES", value_parser = Accept::parse)]
    pub accept: Accept,
    /// Most redirects to follow; a redirect loop is an error naming the loop (0..=100).
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=100))]
    pub max_redirects: usize,
    /// Retries on timeouts, connection errors, 429 and 5xx, with exponential backoff (0..=10).
    #[arg(long, default_value_t = 0, value_name = "N",
          value_parser = RangedU64ValueParser::<u32>::new().range(0..=10))]
    pub retries: u32,
    /// User-Agent header.
    #[arg(long, default_value = concat!("threadlab/", env!("CARGO_PKG_VERSION")))]
    pub user_agent: String,
    /// Also check the list sequentially on the main thread and print the speedup.
    #[arg(long)]
    pub compare: bool,
    /// Run the list at each of these worker counts, e.g. 1,2,4,8,16.
    #[arg(long, value_name = "LIST", value_parser = crate::cli::parse_counts)]
    pub sweep: Option<::std::vec::Vec<usize>>,
    /// Check a built-in list against threadlab's own server on 127.0.0.1 (no file, no network).
    #[arg(long, conflicts_with = "input")]
    pub demo: bool,
}

/// HTTP method for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// GET (some servers answer HEAD wrongly; GET is what browsers do).
    Get,
    /// HEAD: headers only.
    Head,
}

/// Accepted status ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept(Vec<RangeInclusive<u16>>);

impl Accept {
    /// Parses `200..=299,404` (a bare code, `A..=B` or `A..B`).
    pub fn parse(s: &str) -> Result<Accept, String> {
        let code = |t: &str| {
            t.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=999).contains(c))
                .ok_or_else(|| format!("'{}' is not a status code (100..=999) in '{s}'", t.trim()))
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let range = if let Some((a, b)) = part.split_once("..=") {
                code(a)?..=code(b)?
            } else if let Some((a, b)) = part.split_once("..") {
                code(a)?..=code(b)?.saturating_sub(1)
            } else {
                let c = code(part)?;
                c..=c
            };
            if range.is_empty() {
                return Err(format!("'{}' is an empty range in '{s}'", part.trim()));
            }
            ranges.push(range);
        }
        Ok(Accept(ranges))
    }

    /// Whether `status` is accepted.
    pub fn accepts(&self, status: u16) -> bool {
        self.0.iter().any(|r| r.contains(&status))
    }
}

impl fmt::Display for Accept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                if r.start() == r.end() {
                    r.start().to_string()
                } else {
                    format!("{}..={}", r.start(), r.end())
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for Accept {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!(
            "must be more than 0 and at most 3600 seconds (got {s})"
        )),
    }
}

/// One input line to check: a URL, or the reason it is not one. Kept small (the text is
/// shared with its result, and the URL is parsed again when checked) so 100 000 lines fit
/// in a few megabytes.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number in the input.
    pub line: usize,
    /// The line as given (trimmed).
    pub text: Arc<str>,
    /// `Ok` for an http(s) URL, or (kind, message) for a line that cannot be checked.
    pub target: Result<(), (&'static str, String)>,
}

/// Parses a line as an http(s) URL, or says why it is not one.
fn parse_target(text: &str) -> Result<Url, (&'static str, String)> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        Ok(url) => Err((
            "unsupported scheme",
            format!("unsupported scheme '{}'", url.scheme()),
        )),
        Err(e) => Err(("invalid URL", format!("invalid URL ({e})"))),
    }
}

/// Parses the input: every non-blank, non-comment line becomes exactly one entry.
/// Returns the entries and how many lines were skipped as blank or comments.
pub fn parse_lines(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut skipped = 0;
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return (entries, usize::from(!bytes.is_empty()));
    }
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t.trim(),
            Err(e) => {
                entries.push(Entry {
                    line,
                    text: String::from_utf8_lossy(raw).trim().into(),
                    target: Err((
                        "invalid line",
                        format!("invalid line: not UTF-8 (byte {})", e.valid_up_to()),
                    )),
                });
                continue;
            }
        };
        if text.is_empty() || text.starts_with('#') {
            skipped += 1;
            continue;
        }
        let target = parse_target(text).map(drop);
        entries.push(Entry {
            line,
            text: text.into(),
            target,
        });
    }
    (entries, skipped)
}

/// The outcome for one input line (DESIGN.md §4 `results`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// 1-based input line.
    pub line: usize,
    /// The URL as given.
    pub url: Arc<str>,
    /// Final status code after redirects, if a response came.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The failure's kind: timeout, connection refused, DNS failure, TLS error, too many
    /// redirects, redirect loop, invalid URL, unsupported scheme, invalid line, status,
    /// not checked.
    pub kind: Option<&'static str>,
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
    fn failed(entry: &Entry, kind: &'static str, error: String) -> Self {
        CheckResult {
            line: entry.line,
            url: Arc::clone(&entry.text),
            status: None,
            error: Some(error),
            kind: Some(kind),
            ok: false,
            elapsed_ms: 0.0,
            thread: None,
            attempts: 0,
        }
    }
}

/// Everything a check needs, shared by every worker.
pub struct Checker {
    client: Client,
    method: Method,
    accept: Accept,
    retries: u32,
    timeout: Duration,
    narrate: AtomicBool,
}

impl Checker {
    /// One client for all workers, so connections are reused.
    pub fn new(args: &Args) -> anyhow::Result<Self> {
        // reqwest is built with rustls and no bundled crypto provider; use ring's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let max = args.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().contains(attempt.url()) {
                let url = attempt.url().to_string();
                attempt.error(format!("redirect loop: {url} was already visited"))
            } else if attempt.previous().len() > max {
                attempt.error(format!("too many redirects (more than {max})"))
            } else {
                attempt.follow()
            }
        });
        let timeout = Duration::from_secs_f64(args.timeout);
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(policy)
            .user_agent(args.user_agent.clone())
            .pool_max_idle_per_host(
                args.workers
                    .max(args.sweep.iter().flatten().copied().max().unwrap_or(0)),
            )
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .context("could not build the HTTP client")?;
        Ok(Checker {
            client,
            method: args.method,
            accept: args.accept.clone(),
            retries: args.retries,
            timeout,
            narrate: AtomicBool::new(true),
        })
    }

    /// Checks one entry on the current thread, retrying as configured.
    pub fn check(&self, entry: &Entry) -> CheckResult {
        let parsed = entry
            .target
            .clone()
            .and_then(|()| parse_target(&entry.text));
        let url = match &parsed {
            Ok(url) => url,
            Err((kind, msg)) => {
                if self.narrate.load(Ordering::Relaxed) {
                    warn!("line {}: {msg}: {}", entry.line, entry.text);
                }
                let mut r = CheckResult::failed(entry, kind, msg.clone());
                r.thread = Some(this_thread());
                return r;
            }
        };
        let narrate = self.narrate.load(Ordering::Relaxed);
        if narrate {
            info!("Checking {url}");
        }
        let started = Instant::now();
        let mut attempts = 0;
        let (status, failure) = loop {
            attempts += 1;
            let (status, failure, retryable) = self.attempt(url);
            if retryable && attempts <= self.retries {
                let backoff =
                    Duration::from_millis(100 * (1 << (attempts - 1))).min(Duration::from_secs(5));
                if narrate {
                    let why = failure.as_ref().map_or_else(
                        || format!("status {}", status.unwrap_or(0)),
                        |f| f.1.clone(),
                    );
                    warn!(
                        "{url}: {why}; retry {attempts}/{} in {}",
                        self.retries,
                        units::duration(backoff)
                    );
                }
                std::thread::sleep(backoff);
                continue;
            }
            break (status, failure);
        };
        let elapsed = started.elapsed();
        let (ok, kind, error) = match (&failure, status) {
            (Some((kind, msg)), _) => (false, Some(*kind), Some(msg.clone())),
            (None, Some(code)) if self.accept.accepts(code) => (true, None, None),
            (None, Some(code)) => (
                false,
                Some("status"),
                Some(format!("status {code} not accepted ({})", self.accept)),
            ),
            (None, None) => (false, Some("request error"), Some("no response".into())),
        };
        if narrate {
            match (&error, status) {
                (None, Some(code)) => info!(
                    "Finished {url} - Status: {code} ({})",
                    units::duration(elapsed)
                ),
                (Some(e), _) => warn!("Failed {url} - {e} ({})", units::duration(elapsed)),
                _ => {}
            }
        }
        CheckResult {
            line: entry.line,
            url: Arc::clone(&entry.text),
            status,
            error,
            kind,
            ok,
            elapsed_ms: units::ms(elapsed),
            thread: Some(this_thread()),
            attempts,
        }
    }

    /// One request: (status, failure, worth retrying).
    fn attempt(&self, url: &Url) -> (Option<u16>, Option<(&'static str, String)>, bool) {
        let request = match self.method {
            Method::Get => self.client.get(url.clone()),
            Method::Head => self.client.head(url.clone()),
        };
        match request.send() {
            Ok(mut response) => {
                let code = response.status().as_u16();
                // A small body of known length is read so the connection can be reused.
                if response.content_length().is_some_and(|n| n <= 16 * 1024) {
                    let _ =
                        std::io::copy(&mut (&mut response).take(16 * 1024), &mut std::io::sink());
                }
                (Some(code), None, code == 429 || (500..=599).contains(&code))
            }
            Err(e) => {
                let (kind, msg) = classify(&e, self.timeout);
                let retryable =
                    matches!(kind, "timeout" | "connection refused" | "connection error");
                (None, Some((kind, msg)), retryable)
            }
        }
    }
}

/// The current thread's narrative name, shared by every result it produces.
fn this_thread() -> Arc<str> {
    thread_local!(static NAME: Arc<str> = lab::thread_name().into());
    NAME.with(Arc::clone)
}

/// Whether an I/O error carries a rustls error, however deeply io errors are nested (the
/// connector wraps it twice, and `io::Error::source` skips the wrappers).
fn wraps_rustls(io: &std::io::Error) -> bool {
    match io.get_ref() {
        Some(inner) if inner.is::<rustls::Error>() => true,
        Some(inner) => inner
            .downcast_ref::<std::io::Error>()
            .is_some_and(wraps_rustls),
        None => false,
    }
}

/// Names what went wrong with a request, from reqwest's error and its causes.
fn classify(e: &reqwest::Error, timeout: Duration) -> (&'static str, String) {
    let mut chain = Vec::new();
    let mut refused = false;
    let mut tls = false;
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        tls |= s.downcast_ref::<rustls::Error>().is_some();
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            tls |= wraps_rustls(io);
        }
        source = s.source();
    }
    let text = chain.join(": ");
    let lower = text.to_lowercase();
    let detail = chain.last().cloned().unwrap_or_default();
    if e.is_timeout() {
        (
            "timeout",
            format!("timeout after {}", units::duration(timeout)),
        )
    } else if e.is_redirect() && lower.contains("redirect loop") {
        ("redirect loop", detail)
    } else if e.is_redirect() {
        ("too many redirects", detail)
    } else if refused || lower.contains("connection refused") {
        ("connection refused", "connection refused".to_string())
    } else if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        ("DNS failure", format!("DNS failure: {detail}"))
    } else if tls || lower.contains("certificate") || lower.contains("handshake") {
        ("TLS error", format!("TLS error: {detail}"))
    } else if e.is_connect() {
        ("connection error", format!("connection error: {detail}"))
    } else {
        ("request error", text)
    }
}

/// Checks every entry on a pool of `workers` threads; results come back in input order.
/// Stops handing out lines when `stop` is set; unchecked lines are marked "not checked".
pub fn check_all(
    entries: &Arc<Vec<Entry>>,
    checker: &Arc<Checker>,
    workers: usize,
    lab: &Lab,
    stop: &Arc<AtomicBool>,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(Vec<CheckResult>, Duration)> {
    let started = Instant::now();
    let pool = ThreadPool::recorded(
        workers.min(entries.len()).max(1),
        "Checker",
        Arc::clone(lab.recorder()),
    )?;
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, CheckResult)>();
    for _ in 0..pool.workers() {
        let (entries, checker, next, stop, tx) = (
            Arc::clone(entries),
            Arc::clone(checker),
            Arc::clone(&next),
            Arc::clone(stop),
            tx.clone(),
        );
        pool.submit(move || {
            while !stop.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(entry) = entries.get(i) else { break };
                if tx.send((i, checker.check(entry))).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut results: Vec<Option<CheckResult>> = vec![None; entries.len()];
    for (i, result) in rx {
        results[i] = Some(result);
        progress.inc(1);
    }
    drop(pool); // joins every worker
    let elapsed = started.elapsed();
    Ok((fill_unchecked(entries, results), elapsed))
}

/// Checks every entry one by one on the calling thread, for the comparison. Returns how long
/// that took, or `None` if interrupted before the end (a partial time is no comparison).
fn check_sequentially(entries: &[Entry], checker: &Checker, stop: &AtomicBool) -> Option<Duration> {
    let started = Instant::now();
    for entry in entries {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        checker.check(entry);
    }
    Some(started.elapsed())
}

fn fill_unchecked(entries: &[Entry], results: Vec<Option<CheckResult>>) -> Vec<CheckResult> {
    results
        .into_iter()
        .zip(entries)
        .map(|(r, e)| {
            r.unwrap_or_else(|| {
                CheckResult::failed(e, "not checked", "not checked (interrupted)".into())
            })
        })
        .collect()
}

/// Reads the input file (or stdin for `-`).
fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        return Ok(buf);
    }
    let shown = path.display();
    anyhow::ensure!(
        !path.is_dir(),
        "{shown}: is a directory, not a file of URLs"
    );
    std::fs::read(path).with_context(|| format!("cannot read {shown}"))
}

/// The built-in demo list against a server started here, and each line's designed outcome.
/// A demo line's designed outcome: its status, and its failure kind if it fails.
type Designed = (Option<u16>, Option<&'static str>);

fn demo_entries(server: &Server, lab: &Lab) -> anyhow::Result<(Vec<u8>, Vec<Designed>)> {
    let base = server.base_url();
    // A port that was free a moment ago and is closed now: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut lines =
        String::from("# threadlab url-check --demo: the tutorials' list, served locally\n");
    let mut designed = Vec::new();
    for secs in [0.5, 1.0, 1.5, 2.0] {
        lines.push_str(&format!("{base}/delay/{}\n", secs * lab.pace()));
        designed.push((Some(200), None));
    }
    lines.push_str(&format!("{base}/status/404\n"));
    designed.push((Some(404), Some("status")));
    lines.push_str(&format!("{base}/redirect/2\n"));
    designed.push((Some(200), None));
    lines.push_str(&format!("{base}/get\n"));
    designed.push((Some(200), None));
    lines.push_str(&format!("http://127.0.0.1:{closed}/\n"));
    designed.push((None, Some("connection refused")));
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

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("url-check");
    report.params_from(args);
    let server = if args.demo {
        Some(Server::start("127.0.0.1:0".parse()?, false)?)
    } else {
        None
    };
    let (bytes, designed) = match (&server, &args.input) {
        (Some(server), _) => {
            let (bytes, designed) = demo_entries(server, lab)?;
            info!(
                "demo: threadlab's server is on {}; checking {} URLs",
                server.base_url(),
                designed.len()
            );
            (bytes, Some(designed))
        }
        (None, Some(path)) => (read_input(path)?, None),
        (None, None) => anyhow::bail!("give a file of URLs (or - for stdin), or --demo"),
    };
    let (entries, skipped) = parse_lines(&bytes);
    let input_lines = bytes
        .strip_suffix(b"\n")
        .unwrap_or(&bytes)
        .split(|&b| b == b'\n')
        .count();
    drop(bytes);
    let source = args
        .input
        .as_ref()
        .map_or("the demo list".to_string(), |p| p.display().to_string());
    anyhow::ensure!(
        !entries.is_empty(),
        "{source}: no URLs found ({skipped} blank or comment lines)"
    );
    let compare = args.compare || args.demo;
    let entries = Arc::new(entries);
    let checker = Arc::new(Checker::new(args)?);
    let stop = lab::interrupt_flag();
    info!(
        "url-check: {} URLs from {source} on {} workers (timeout {} s, accept {})",
        entries.len(),
        args.workers,
        args.timeout,
        args.accept
    );

    let progress = lab.progress(entries.len() as u64, "checked");
    let (results, concurrent) = check_all(&entries, &checker, args.workers, lab, &stop, &progress)?;
    progress.finish_and_clear();
    info!(
        "Concurrent: {} URLs in {} on {} workers",
        entries.len(),
        units::duration(concurrent),
        args.workers
    );

    let mut summary = serde_json::Map::new();
    if compare && !stop.load(Ordering::SeqCst) {
        info!("Now the same list sequentially on the main thread…");
        match check_sequentially(&entries, &checker, &stop) {
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
    if let Some(counts) = &args.sweep {
        sweep(counts, &entries, &checker, lab, &stop, &mut report)?;
    }
    let interrupted = stop.load(Ordering::SeqCst);

    // Results table, summary, checks.
    let ok = results.iter().filter(|r| r.ok).count();
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for r in results.iter().filter(|r| !r.ok) {
        *by_kind.entry(r.kind.unwrap_or("failed")).or_default() += 1;
    }
    let show_all = results.len() <= 200;
    let mut table = Table::new(["line", "url", "status", "time", "thread"]);
    for r in results.iter().filter(|r| show_all || !r.ok) {
        let status = match (r.status, &r.error) {
            (Some(code), Some(_)) => format!("{code} (not accepted)"),
            (_, Some(e)) => e.clone(),
            (Some(code), None) => code.to_string(),
            (None, None) => "-".into(),
        };
        table.row([
            r.line.to_string(),
            r.url.to_string(),
            status,
            format!("{:.0} ms", r.elapsed_ms),
            r.thread.as_deref().unwrap_or_default().to_string(),
        ]);
    }
    report.tables.push(table);
    if !show_all {
        report.note(format!(
            "{} accepted URLs are left out of the table (--json lists every result).",
            ok
        ));
    }
    let failed = results.len() - ok;
    summary.insert("total".into(), results.len().into());
    summary.insert("ok".into(), ok.into());
    summary.insert("failed".into(), failed.into());
    summary.insert("failed_by_kind".into(), serde_json::to_value(&by_kind)?);
    summary.insert("skipped_lines".into(), skipped.into());
    summary.insert("wall_ms".into(), units::ms(concurrent).into());
    summary.insert("workers".into(), args.workers.into());
    summary.insert("interrupted".into(), interrupted.into());
    report.metric("total", results.len() as u64);
    report.metric("ok", ok as u64);
    report.metric("failed", failed as u64);
    report.metric("wall_ms", units::ms(concurrent));
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    report.note(format!(
        "{} URLs: {ok} ok, {failed} failed{}; {} on {} workers{}",
        results.len(),
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
    // Evidence from the input itself: its lines less blanks and comments, against the
    // distinct line numbers the workers reported back.
    let reported: std::collections::BTreeSet<usize> = results.iter().map(|r| r.line).collect();
    report.check(
        "every input line has exactly one result",
        format!(
            "{} lines − {skipped} blank/comment = {}",
            input_lines,
            input_lines - skipped
        ),
        format!(
            "{} results for {} distinct lines",
            results.len(),
            reported.len()
        ),
        results.len() == input_lines - skipped && reported.len() == results.len(),
    );
    let in_order = results.windows(2).all(|w| w[0].line < w[1].line);
    report.check(
        "results are in input order",
        "ascending line numbers",
        if in_order {
            "ascending"
        } else {
            "out of order"
        },
        in_order,
    );

    if let Some(designed) = designed {
        let as_designed = results
            .iter()
            .zip(&designed)
            .all(|(r, want)| (r.status, r.kind) == *want);
        report.check(
            "every demo URL behaved as designed (4 delays and a redirect: 200, one 404, one closed port)",
            "as designed",
            if as_designed { "as designed".to_string() } else { "differs: see the table".to_string() },
            as_designed,
        );
        if let Some(s) = report.metric_f64("speedup") {
            report.check(
                "the concurrent run beat the sequential one",
                "speedup > 1",
                format!("{s:.2}x"),
                s > 1.0,
            );
        }
    }
    // Serialized once, compactly: no JSON tree of 100 000 objects in memory.
    let mut json = Vec::with_capacity(results.len() * 192);
    serde_json::to_writer(&mut json, &results)?;
    drop(results);
    report.results = Some(serde_json::value::RawValue::from_string(
        String::from_utf8(json)?,
    )?);
    // Peak memory, read after the largest allocation of the run.
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
    Ok(report)
}

/// The list at each worker count: a table of times and speedups and a bar chart.
fn sweep(
    counts: &[usize],
    entries: &Arc<Vec<Entry>>,
    checker: &Arc<Checker>,
    lab: &Lab,
    stop: &Arc<AtomicBool>,
    report: &mut Report,
) -> anyhow::Result<()> {
    info!("sweep: the list at worker counts {counts:?} (per-URL lines hidden)");
    checker.narrate.store(false, Ordering::Relaxed);
    let mut rows = Vec::new();
    for &w in counts {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (_, took) = check_all(
            entries,
            checker,
            w,
            lab,
            stop,
            &indicatif::ProgressBar::hidden(),
        )?;
        info!("{w} workers: {}", units::duration(took));
        rows.push((w, took));
    }
    checker.narrate.store(true, Ordering::Relaxed);
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
            entries.len(),
            rows[0].0
        ),
        &rows,
        None,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_but_blanks_and_comments_becomes_one_entry() {
        let input = b"http://a.test/\n\n# comment\n  https://b.test/x  \nftp://c.test/\nnot a url\n\xff\xfe\nhttp://a.test/\r\n";
        let (entries, skipped) = parse_lines(input);
        assert_eq!(skipped, 2);
        let lines: Vec<usize> = entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 4, 5, 6, 7, 8]);
        assert!(entries[1].target.is_ok());
        assert_eq!(&*entries[1].text, "https://b.test/x");
        assert_eq!(
            entries[2].target.as_ref().unwrap_err().1,
            "unsupported scheme 'ftp'"
        );
        assert!(
            entries[3]
                .target
                .as_ref()
                .unwrap_err()
                .1
                .starts_with("invalid URL")
        );
        assert_eq!(entries[4].target.as_ref().unwrap_err().0, "invalid line");
        assert!(
            entries[5].target.is_ok(),
            "CRLF line endings are fine; duplicates are kept"
        );
    }

    #[test]
    fn accept_ranges_parse_and_match() {
        let a = Accept::parse("200..=299,404").unwrap();
        assert!(a.accepts(204) && a.accepts(404) && !a.accepts(301));
        assert_eq!(a.to_string(), "200..=299,404");
        assert!(Accept::parse("200..300").unwrap().accepts(299));
        assert!(!Accept::parse("200..300").unwrap().accepts(300));
        assert!(Accept::parse("abc").unwrap_err().contains("'abc'"));
        assert!(Accept::parse("300..=200").is_err());
    }
}
