//! Checking URLs: the library piece under `url-check`, usable without the demo.
//!
//! A [`Checker`] is shared by any number of threads; each calls [`Checker::check`] and
//! blocks until that URL's outcome is known. Every check is bounded:
//!
//! - **One attempt never outlasts `timeout`**, whatever the server does: connecting,
//!   sending, the headers and any body read all sit under one deadline. A server that
//!   drips its headers or its body, or never answers, costs at most `timeout`.
//! - **The whole check** (`1 + retries` attempts) takes at most
//!   `(1 + retries) × timeout` plus the waits between attempts (100 ms·2ⁿ, at most 5 s, or the
//!   server's `Retry-After`, at most [`RETRY_AFTER_CAP`]).
//! - **Cancellation**: when the `cancelled` function (by default: a SIGINT or SIGTERM
//!   arrived) turns true, in-flight checks end within [`CANCEL_POLL`] as `not checked`.
//!
//! # How it works
//! reqwest's blocking client runs an async client on a hidden runtime thread and parks the
//! caller on a channel; its timeout restarts on every read of a body, so a dripping server
//! can hold a check for as long as it likes. Here the same thing is done in plain view: one
//! async client on a small tokio runtime (threads `HttpIo_N`) does the I/O, and each checker
//! thread blocks on its own request with the deadline and the cancellation around the whole
//! of it. The threads still block, one request each: that is the lesson of `url-check`.
//!
//! Bodies are not downloaded: the status is in the headers. A small body (a known length of
//! at most [`SMALL_BODY`]) that has already arrived is read, so its connection can be reused;
//! one that has not arrived within [`BODY_GRACE`] is left, and its connection closed, so a
//! server that writes its body late (or a delayed ACK) never delays the result.

pub mod cache;
pub mod cookies;
pub mod corpus;
pub mod extract;
pub mod hosts;
pub mod html;
pub mod input;

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use reqwest::Url;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::units;

pub use input::{Entry, UrlList};

/// Most a `Retry-After` header is honoured for; a longer one is cut to this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// Longest exponential back-off between attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Largest body read (when already there) so its connection can be reused.
pub const SMALL_BODY: u64 = 16 * 1024;
/// How long a small body may take to arrive after the headers before it is left unread.
pub const BODY_GRACE: Duration = Duration::from_millis(2);
/// How often an in-flight check looks at its cancellation.
pub const CANCEL_POLL: Duration = Duration::from_millis(25);

/// Why a line failed: every failure has exactly one of these kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// No complete answer within `--timeout`.
    Timeout,
    /// Nothing listens on that port.
    ConnectionRefused,
    /// The connection failed or was reset or closed before a complete answer.
    ConnectionError,
    /// The host name did not resolve.
    DnsFailure,
    /// The TLS handshake or certificate failed.
    TlsError,
    /// The server's reply was not valid HTTP (garbage, a bad status line, headers too large).
    ProtocolError,
    /// More redirects than `--max-redirects`.
    TooManyRedirects,
    /// A redirect back to a URL already visited.
    RedirectLoop,
    /// A redirect to something that cannot be followed (`file:`, `javascript:`, …).
    BadRedirect,
    /// A status outside `--accept`.
    Status,
    /// The line is not a URL.
    InvalidUrl,
    /// A URL whose scheme is not http or https.
    UnsupportedScheme,
    /// The line is not UTF-8.
    InvalidLine,
    /// The line is longer than the cap.
    LineTooLong,
    /// Interrupted before it was checked.
    NotChecked,
    /// A relative link to a local file or folder that is not there.
    MissingFile,
    /// A `#fragment` the local file it points into has no anchor for.
    MissingAnchor,
    /// A link from a site's root (`/page`) with no `--base` to resolve it against.
    NeedsBase,
    /// An input that could not be read: missing, binary, too large, not a regular file.
    UnreadableInput,
}

impl Kind {
    /// Every kind, in the order the README lists them.
    pub const ALL: [Kind; 19] = [
        Kind::Timeout,
        Kind::ConnectionRefused,
        Kind::ConnectionError,
        Kind::DnsFailure,
        Kind::TlsError,
        Kind::ProtocolError,
        Kind::TooManyRedirects,
        Kind::RedirectLoop,
        Kind::BadRedirect,
        Kind::Status,
        Kind::InvalidUrl,
        Kind::UnsupportedScheme,
        Kind::InvalidLine,
        Kind::LineTooLong,
        Kind::NotChecked,
        Kind::MissingFile,
        Kind::MissingAnchor,
        Kind::NeedsBase,
        Kind::UnreadableInput,
    ];

    /// The kind's stable name (the JSON `kind` field).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Timeout => "timeout",
            Kind::ConnectionRefused => "connection refused",
            Kind::ConnectionError => "connection error",
            Kind::DnsFailure => "DNS failure",
            Kind::TlsError => "TLS error",
            Kind::ProtocolError => "protocol error",
            Kind::TooManyRedirects => "too many redirects",
            Kind::RedirectLoop => "redirect loop",
            Kind::BadRedirect => "bad redirect",
            Kind::Status => "status",
            Kind::InvalidUrl => "invalid URL",
            Kind::UnsupportedScheme => "unsupported scheme",
            Kind::InvalidLine => "invalid line",
            Kind::LineTooLong => "line too long",
            Kind::NotChecked => "not checked",
            Kind::MissingFile => "missing file",
            Kind::MissingAnchor => "missing anchor",
            Kind::NeedsBase => "needs --base",
            Kind::UnreadableInput => "unreadable input",
        }
    }

    /// The kind with this name (see [`Kind::as_str`]).
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether another attempt may succeed (a status is judged by its code instead).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Kind::Timeout | Kind::ConnectionRefused | Kind::ConnectionError
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
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

impl Default for Accept {
    fn default() -> Self {
        Accept(vec![200..=399])
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

/// How a [`Checker`] checks.
#[derive(Debug, Clone)]
pub struct Options {
    /// GET or HEAD.
    pub method: Method,
    /// Statuses that count as ok.
    pub accept: Accept,
    /// Bound on one attempt, from connecting to the end of any body read.
    pub timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Extra attempts after a timeout, a connection error, 429 or 5xx.
    pub retries: u32,
    /// The User-Agent header.
    pub user_agent: String,
    /// Idle connections kept per host (the most threads that check at once).
    pub max_idle_per_host: usize,
    /// Whether to stop: checked before and during every attempt and back-off.
    pub cancelled: fn() -> bool,
    /// Per-host limits: checks at once and spacing between requests.
    pub hosts: hosts::Limits,
    /// Headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Sent as a bearer token to GitHub's hosts only.
    pub github_token: Option<String>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// A cookie jar file: its cookies sent, the ones servers set kept (`--cookie-jar`).
    pub cookie_jar: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            method: Method::Get,
            accept: Accept::default(),
            timeout: Duration::from_secs(10),
            max_redirects: 10,
            retries: 0,
            user_agent: concat!("threadlab/", env!("CARGO_PKG_VERSION")).into(),
            max_idle_per_host: 8,
            cancelled: crate::lab::signals::interrupted,
            hosts: hosts::Limits::default(),
            headers: Vec::new(),
            github_token: None,
            insecure: false,
            cookie_jar: None,
        }
    }
}

/// What checking one URL found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Final status code after redirects, if a response came.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub kind: Option<Kind>,
    /// The failure in words.
    pub error: Option<String>,
    /// Accepted.
    pub ok: bool,
    /// Time spent, every attempt and wait included.
    pub elapsed: Duration,
    /// Requests made.
    pub attempts: u32,
}

impl Outcome {
    /// A failure before any request (a bad line, an interruption).
    pub fn failed(kind: Kind, error: String) -> Self {
        Outcome {
            status: None,
            kind: Some(kind),
            error: Some(error),
            ok: false,
            elapsed: Duration::ZERO,
            attempts: 0,
        }
    }
}

/// A redirect the policy refused.
#[derive(Debug, thiserror::Error)]
enum RedirectError {
    #[error("redirect loop: {0} was already visited")]
    Loop(String),
    #[error("too many redirects (more than {0})")]
    TooMany(usize),
    #[error("redirect to unsupported scheme '{scheme}'")]
    Scheme { scheme: String },
}

/// The result of one attempt: a status (and any `Retry-After`), or a failure.
type Attempt = Result<(u16, Option<Duration>), (Kind, String)>;

/// Checks URLs; shared by every checker thread (one client, so connections are reused).
pub struct Checker {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    options: Options,
    narrate: AtomicBool,
    hosts: hosts::Hosts,
    jar: Option<cookies::Jar>,
}

impl Checker {
    /// A checker with its own I/O runtime and one client for every thread.
    pub fn new(options: Options) -> anyhow::Result<Self> {
        // reqwest is built with rustls and no bundled crypto provider; use ring's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let max = options.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let scheme = attempt.url().scheme().to_string();
            if !matches!(scheme.as_str(), "http" | "https") {
                attempt.error(RedirectError::Scheme {
                    scheme: units::printable(&scheme).into_owned(),
                })
            } else if attempt.previous().contains(attempt.url()) {
                let url = input::mask_credentials(attempt.url());
                attempt.error(RedirectError::Loop(url))
            } else if attempt.previous().len() > max {
                attempt.error(RedirectError::TooMany(max))
            } else {
                attempt.follow()
            }
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(2),
            )
            .thread_name_fn(|| {
                use std::sync::atomic::AtomicUsize;
                static N: AtomicUsize = AtomicUsize::new(0);
                format!("HttpIo_{}", N.fetch_add(1, Ordering::Relaxed))
            })
            .enable_all()
            .build()
            .context("could not start the HTTP runtime")?;
        let jar = options
            .cookie_jar
            .as_deref()
            .map(cookies::Jar::open)
            .transpose()?;
        let client = {
            // The client's connection tasks belong to this runtime.
            let _guard = runtime.enter();
            let mut headers = reqwest::header::HeaderMap::new();
            for (name, value) in &options.headers {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())?;
                let mut value = reqwest::header::HeaderValue::from_str(value)?;
                value.set_sensitive(true);
                headers.append(name, value);
            }
            let mut builder = reqwest::Client::builder();
            if let Some(jar) = &jar {
                builder = builder.cookie_provider(jar.store());
            }
            builder
                .default_headers(headers)
                .danger_accept_invalid_certs(options.insecure)
                .redirect(policy)
                .user_agent(options.user_agent.clone())
                .pool_max_idle_per_host(options.max_idle_per_host)
                .tcp_nodelay(true)
                .no_proxy()
                .build()
                .context("could not build the HTTP client")?
        };
        Ok(Checker {
            client,
            runtime,
            hosts: hosts::Hosts::new(options.hosts),
            options,
            narrate: AtomicBool::new(false),
            jar,
        })
    }

    /// Writes the cookie jar back (with the cookies servers set in this run), if there is
    /// one; returns how many cookies it holds.
    pub fn keep_cookies(&self) -> anyhow::Result<Option<usize>> {
        let Some(jar) = &self.jar else {
            return Ok(None);
        };
        jar.save()?;
        Ok(Some(jar.len()))
    }

    /// The options it checks with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Narrate each check ("Checking …", "Finished …") from the thread doing it.
    pub fn set_narrate(&self, on: bool) {
        self.narrate.store(on, Ordering::Relaxed);
    }

    /// Checks `url` on the calling thread, retrying as configured; `shown` is how the URL
    /// appears in narration (credentials masked). Blocks for at most the bound in the
    /// module docs.
    pub fn check(&self, url: &Url, shown: &str) -> Outcome {
        self.check_gated(url, shown, &|_| {})
    }

    /// [`Checker::check`], telling `inside(true)` once the host's gate let this check in and
    /// `inside(false)` just before it gives its place back: so a caller can count, from
    /// outside the gate, how many checks of one host are in at once.
    pub fn check_gated(&self, url: &Url, shown: &str, inside: &dyn Fn(bool)) -> Outcome {
        if (self.options.cancelled)() {
            return Outcome::failed(Kind::NotChecked, "not checked (interrupted)".into());
        }
        let narrate = self.narrate.load(Ordering::Relaxed);
        // Its time runs from the host's gate letting it in: a wait for the host is not the
        // check's (the narration says how long it waited).
        let outcome = self.attempts(url, shown, inside);
        if narrate {
            let took = units::duration(outcome.elapsed);
            match (&outcome.error, outcome.status) {
                (None, Some(code)) => info!("Finished {shown} - Status: {code} ({took})"),
                (Some(e), _) => warn!("Failed {shown} - {e} ({took})"),
                _ => {}
            }
        }
        outcome
    }

    /// What every host saw so far (requests, 429s, mean latency).
    pub fn host_stats(&self) -> Vec<hosts::HostStats> {
        self.hosts.stats()
    }

    /// The attempts at one URL: inside one of its host's permits, each attempt at the host's
    /// next turn, retried (after a back-off or the server's `Retry-After`) on a timeout, a
    /// connection error, 429 or 5xx.
    fn attempts(&self, url: &Url, shown: &str, inside: &dyn Fn(bool)) -> Outcome {
        let host = self.hosts.of(url);
        let arrived = Instant::now();
        let Ok(_permit) = host.enter(self.options.cancelled) else {
            return interrupted(0);
        };
        // Told in, and told out before the permit goes back (dropped in reverse order).
        inside(true);
        let _told = Told(inside);
        let admitted = Instant::now();
        // Said once the host's gate let it in: a check waiting for its host is not checking.
        if self.narrate.load(Ordering::Relaxed) {
            let waited = admitted - arrived;
            if waited >= Duration::from_millis(10) {
                let waited = units::duration(waited);
                info!("Checking {shown} (its host's gate let it in after {waited})");
            } else {
                info!("Checking {shown}");
            }
        }
        let outcome = self.tries(url, shown, &host);
        Outcome {
            elapsed: admitted.elapsed(),
            ..outcome
        }
    }

    /// The attempts of one check, inside its host's gate: retried as configured.
    fn tries(&self, url: &Url, shown: &str, host: &hosts::Host) -> Outcome {
        let mut attempts = 0;
        loop {
            attempts += 1;
            host.turn();
            let began = Instant::now();
            let result = self.runtime.handle().block_on(async {
                // Made inside the runtime: a timer needs its reactor.
                let attempt = tokio::time::timeout(self.options.timeout, self.attempt(url));
                tokio::select! {
                    r = attempt => Some(r.unwrap_or_else(|_| Err((
                        Kind::Timeout,
                        format!("timeout after {}", units::duration(self.options.timeout)),
                    )))),
                    () = until(self.options.cancelled) => None,
                }
            });
            let Some(result) = result else {
                return interrupted(attempts);
            };
            host.record(result.as_ref().ok().map(|r| r.0), began.elapsed());
            let retry = match &result {
                Ok((code, after)) if *code == 429 || (500..=599).contains(code) => {
                    Some((format!("status {code}"), *after))
                }
                Err((kind, msg)) if kind.retryable() => Some((msg.clone(), None)),
                _ => None,
            };
            match retry {
                Some((why, after)) if attempts <= self.options.retries => {
                    if !self.back_off(shown, &why, attempts, after) {
                        return interrupted(attempts);
                    }
                }
                _ => return self.judge(result, attempts),
            }
        }
    }

    /// Waits before retry `attempt` (the server's `Retry-After`, or 100 ms·2ⁿ); false when
    /// cancelled meanwhile.
    fn back_off(&self, shown: &str, why: &str, attempt: u32, after: Option<Duration>) -> bool {
        let wait = after.unwrap_or_else(|| backoff(attempt));
        if self.narrate.load(Ordering::Relaxed) {
            let source = if after.is_some() {
                " (the server's Retry-After)"
            } else {
                ""
            };
            warn!(
                "{shown}: {why}; retry {attempt}/{} in {}{source}",
                self.options.retries,
                units::duration(wait)
            );
        }
        self.runtime.handle().block_on(async {
            tokio::select! {
                () = tokio::time::sleep(wait) => true,
                () = until(self.options.cancelled) => false,
            }
        })
    }

    /// Turns an attempt's result into an outcome under `--accept`.
    fn judge(&self, result: Attempt, attempts: u32) -> Outcome {
        let (status, kind, error) = match result {
            Ok((code, _)) if self.options.accept.accepts(code) => (Some(code), None, None),
            Ok((code, _)) => (
                Some(code),
                Some(Kind::Status),
                Some(format!(
                    "status {code} not accepted ({})",
                    self.options.accept
                )),
            ),
            Err((kind, msg)) => (None, Some(kind), Some(msg)),
        };
        Outcome {
            ok: error.is_none(),
            status,
            kind,
            error,
            elapsed: Duration::ZERO,
            attempts,
        }
    }

    /// One request: its status and any `Retry-After`, or why it failed.
    async fn attempt(&self, url: &Url) -> Attempt {
        let mut request = match self.options.method {
            Method::Get => self.client.get(url.clone()),
            Method::Head => self.client.head(url.clone()),
        };
        if let Some(token) = &self.options.github_token
            && is_github(url)
        {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.map_err(|e| classify(&e))?;
        let code = response.status().as_u16();
        if (300..=399).contains(&code) {
            // A redirect that came back unfollowed: say why, if its target is unusable.
            bad_location(&response)?;
        }
        let retry_after = (code == 429 || code == 503)
            .then(|| response.headers().get(reqwest::header::RETRY_AFTER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        if response.content_length().is_some_and(|n| n <= SMALL_BODY) {
            // Read what has already arrived so the connection can be reused; never wait
            // for a body that is late (its connection is closed instead).
            let _ = tokio::time::timeout(BODY_GRACE, async {
                while let Ok(Some(_)) = response.chunk().await {}
            })
            .await;
        }
        Ok((code, retry_after))
    }
}

/// GitHub's hosts, the only ones a GitHub token is sent to.
pub fn is_github(url: &Url) -> bool {
    matches!(
        url.host_str(),
        Some("github.com" | "api.github.com" | "raw.githubusercontent.com" | "gist.github.com")
    )
}

/// Tells `inside(false)` when dropped.
struct Told<'a>(&'a dyn Fn(bool));

impl Drop for Told<'_> {
    fn drop(&mut self) {
        (self.0)(false);
    }
}

/// Fails a redirect response whose `Location` cannot be followed (not http(s), or not a
/// URL at all). The client leaves such a response unfollowed; a link checker calls it what
/// it is.
fn bad_location(response: &reqwest::Response) -> Result<(), (Kind, String)> {
    let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
        return Ok(());
    };
    let target = location
        .to_str()
        .ok()
        .and_then(|l| response.url().join(l).ok());
    match target {
        Some(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        Some(url) => Err((
            Kind::BadRedirect,
            format!(
                "bad redirect: {}",
                RedirectError::Scheme {
                    scheme: units::printable(url.scheme()).into_owned()
                }
            ),
        )),
        None => Err((
            Kind::BadRedirect,
            "bad redirect: the Location header is not a URL".into(),
        )),
    }
}

/// The wait before attempt `n + 1`: 100 ms·2ⁿ⁻¹, at most [`BACKOFF_CAP`].
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << (attempt - 1).min(16))).min(BACKOFF_CAP)
}

/// Parses a `Retry-After` value (seconds, or an HTTP date), capped at [`RETRY_AFTER_CAP`].
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(RETRY_AFTER_CAP))
}

/// Resolves when `cancelled` turns true (looked at every [`CANCEL_POLL`]).
async fn until(cancelled: fn() -> bool) {
    while !cancelled() {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

fn interrupted(attempts: u32) -> Outcome {
    Outcome {
        attempts,
        ..Outcome::failed(Kind::NotChecked, "not checked (interrupted)".into())
    }
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

/// Names what went wrong with a request, from the error types in reqwest's error chain.
fn classify(e: &reqwest::Error) -> (Kind, String) {
    use std::io::ErrorKind as Io;
    let mut chain = Vec::new();
    let mut found: Option<Kind> = None;
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let note = |k: Kind, found: &mut Option<Kind>| {
        // The first, outermost specific finding wins, except that a more specific one
        // (refused, TLS) found deeper replaces a generic connection error.
        if found.is_none() || *found == Some(Kind::ConnectionError) {
            *found = Some(k);
        }
    };
    while let Some(s) = source {
        chain.push(units::printable(&s.to_string()).into_owned());
        if let Some(r) = s.downcast_ref::<RedirectError>() {
            let kind = match r {
                RedirectError::Loop(_) => Kind::RedirectLoop,
                RedirectError::TooMany(_) => Kind::TooManyRedirects,
                RedirectError::Scheme { .. } => Kind::BadRedirect,
            };
            return (kind, r.to_string());
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            note(Kind::TlsError, &mut found);
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                note(Kind::ProtocolError, &mut found);
            } else if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                note(Kind::ConnectionError, &mut found);
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if wraps_rustls(io) {
                note(Kind::TlsError, &mut found);
            }
            match io.kind() {
                Io::ConnectionRefused => note(Kind::ConnectionRefused, &mut found),
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof
                | Io::NotConnected => note(Kind::ConnectionError, &mut found),
                _ => {}
            }
        }
        source = s.source();
    }
    let text = chain.join(": ");
    let lower = text.to_lowercase();
    let detail = chain.last().cloned().unwrap_or_default();
    if found.is_none()
        && (lower.contains("dns error")
            || lower.contains("failed to lookup")
            || lower.contains("name or service not known"))
    {
        found = Some(Kind::DnsFailure);
    }
    let kind = match found {
        Some(k) => k,
        None if e.is_timeout() => Kind::Timeout,
        None if e.is_connect() => Kind::ConnectionError,
        None if e.is_redirect() => Kind::BadRedirect,
        // Anything else went wrong in the HTTP exchange itself.
        None => Kind::ProtocolError,
    };
    let msg = match kind {
        Kind::ConnectionRefused => "connection refused".to_string(),
        Kind::DnsFailure => format!("DNS failure: {detail}"),
        Kind::TlsError => format!("TLS error: {detail}"),
        Kind::ConnectionError => format!("connection error: {detail}"),
        Kind::ProtocolError => format!("protocol error: {detail}"),
        Kind::BadRedirect => format!("bad redirect: {detail}"),
        _ => text,
    };
    (kind, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("100000", now), Some(RETRY_AFTER_CAP));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(4));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(4)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(4));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(30), BACKOFF_CAP);
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> =
            Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
