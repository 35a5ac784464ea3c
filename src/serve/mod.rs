//! A small httpbin-like HTTP/1.1 server on 127.0.0.1: what url-check runs against offline,
//! in its `--demo`, in the tests and in the benchmarks.
//!
//! Endpoints: `/get` (200, a small JSON body), `/status/CODE`, `/delay/SECS` (answers after
//! SECS, at most 60), `/bytes/N` (N zero bytes, streamed: never held in memory),
//! `/redirect/N` (N redirects, then `/get`), `/redirect-loop` (redirects to itself), and
//! `/unstable/KEY/N` (503 for the first N requests with that KEY, then 200: for retries;
//! `?retry-after=S` adds a `Retry-After: S` header to the 503s). At most
//! [`MAX_UNSTABLE_KEYS`] keys are remembered; past that the oldest memory is forgotten.
//!
//! Built on hyper with a multi-threaded tokio runtime whose worker threads are named
//! `Server_0`, `Server_1`, …: delays are timers, not sleeping threads, so thousands of slow
//! requests are in flight at once without being serialised.
//!
//! Against a hostile or careless client: a connection that sends no complete request head
//! within the idle timeout (30 s; `--idle-timeout`), whether it is new, half-sent or an idle
//! keep-alive, is closed; when `accept` fails (out of file descriptors, say) the loop backs
//! off instead of spinning; on stop, in-flight requests get [`STOP_GRACE`] to finish.
//!
//! The opposite, small servers that misbehave on purpose for the tests, `make stress` and
//! `make bench`, are in the developer tools (`tools/src/hostile.rs`), not in what
//! `cargo install` ships.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

type ResponseBody = BoxBody<Bytes, Infallible>;

/// Most `/unstable` keys remembered at once.
pub const MAX_UNSTABLE_KEYS: usize = 10_000;
/// How long in-flight requests may take to finish once the server is told to stop.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long `accept` waits after a failure before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A running server. Dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    served: Arc<AtomicU64>,
}

/// Shared state of the handlers.
#[derive(Default)]
struct State {
    unstable: Mutex<HashMap<String, u64>>,
    log_requests: bool,
}

impl Server {
    /// Starts serving on `bind` (port 0 picks a free port) with a 30 s idle timeout.
    /// `log_requests` narrates each request at info level from the worker thread that
    /// served it (debug level otherwise).
    pub fn start(bind: SocketAddr, log_requests: bool) -> anyhow::Result<Server> {
        Self::start_with(bind, log_requests, Duration::from_secs(30))
    }

    /// [`Server::start`] with an idle timeout: a connection that has not sent a complete
    /// request head within `idle` of connecting or of its last response is closed.
    pub fn start_with(
        bind: SocketAddr,
        log_requests: bool,
        idle: Duration,
    ) -> anyhow::Result<Server> {
        let listener = std::net::TcpListener::bind(bind)
            .map_err(|e| anyhow::anyhow!("cannot bind {bind}: {e}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let served = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&served);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name_fn(|| {
                static N: AtomicUsize = AtomicUsize::new(0);
                format!("Server_{}", N.fetch_add(1, Ordering::Relaxed))
            })
            .enable_all()
            .build()?;
        let state = Arc::new(State {
            unstable: Mutex::default(),
            log_requests,
        });
        let thread = std::thread::Builder::new()
            .name("Server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("server: {e}");
                            return;
                        }
                    };
                    let mut stop_rx = stop_rx;
                    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
                    let mut failures = 0u64;
                    loop {
                        tokio::select! {
                            accepted = listener.accept() => {
                                let stream = match accepted {
                                    Ok((stream, _)) => stream,
                                    Err(e) => {
                                        // Out of file descriptors, say: back off rather
                                        // than spin; the error says itself once a second.
                                        if failures % 10 == 0 {
                                            tracing::warn!("server: accept failed: {e}; backing off");
                                        }
                                        failures += 1;
                                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                                        continue;
                                    }
                                };
                                let _ = stream.set_nodelay(true);
                                let state = Arc::clone(&state);
                                let counter = Arc::clone(&counter);
                                let service = service_fn(move |req| {
                                    counter.fetch_add(1, Ordering::Relaxed);
                                    handle(req, Arc::clone(&state))
                                });
                                let conn = http1::Builder::new()
                                    .timer(hyper_util::rt::TokioTimer::new())
                                    .header_read_timeout(idle)
                                    .serve_connection(TokioIo::new(stream), service);
                                let conn = graceful.watch(conn);
                                tokio::spawn(async move {
                                    let _ = conn.await;
                                });
                            }
                            _ = &mut stop_rx => break,
                        }
                    }
                    drop(listener);
                    // In-flight requests get a short grace to finish; idle keep-alive
                    // connections close at once.
                    tokio::select! {
                        () = graceful.shutdown() => {}
                        () = tokio::time::sleep(STOP_GRACE) => {}
                    }
                });
                // Dropping the runtime here cancels in-flight connections.
            })?;
        Ok(Server {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            served,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` for building URLs.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r
}

fn redirect(to: &str) -> Response<ResponseBody> {
    let mut r = full(StatusCode::FOUND, Bytes::new());
    if let Ok(v) = hyper::header::HeaderValue::from_str(to) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match parts.as_slice() {
        ["get"] | [""] => full(
            StatusCode::OK,
            format!("{{\"url\": \"{path}\", \"server\": \"threadlab\"}}\n"),
        ),
        ["status", code] => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) => full(status, Bytes::new()),
            None => full(StatusCode::BAD_REQUEST, "bad status code\n"),
        },
        ["delay", secs] => match secs.parse::<f64>() {
            Ok(s) if s.is_finite() && (0.0..=60.0).contains(&s) => {
                tokio::time::sleep(Duration::from_secs_f64(s)).await;
                full(StatusCode::OK, format!("{{\"delay\": {s}}}\n"))
            }
            _ => full(StatusCode::BAD_REQUEST, "delay must be 0..=60 seconds\n"),
        },
        ["bytes", n] => match n.parse::<u64>() {
            Ok(n) => {
                let mut r = Response::new(Zeros { left: n }.boxed());
                r.headers_mut()
                    .insert(hyper::header::CONTENT_LENGTH, n.into());
                r
            }
            Err(_) => full(StatusCode::BAD_REQUEST, "bad byte count\n"),
        },
        ["redirect", n] => match n.parse::<u32>() {
            Ok(0) | Ok(1) => redirect("/get"),
            Ok(n) => redirect(&format!("/redirect/{}", n - 1)),
            Err(_) => full(StatusCode::BAD_REQUEST, "bad redirect count\n"),
        },
        ["redirect-loop"] => redirect("/redirect-loop"),
        ["unstable", key, n] => {
            let failures: u64 = n.parse().unwrap_or(0);
            let seen = {
                let mut map = state.unstable.lock().unwrap_or_else(|e| e.into_inner());
                if map.len() >= MAX_UNSTABLE_KEYS && !map.contains_key(*key) {
                    // Bounded memory: forget every key rather than grow without end.
                    map.clear();
                }
                let count = map.entry((*key).to_string()).or_insert(0);
                *count += 1;
                *count
            };
            if seen <= failures {
                let mut r = full(StatusCode::SERVICE_UNAVAILABLE, "try again\n");
                let after = req.uri().query().and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("retry-after="))
                        .and_then(|v| hyper::header::HeaderValue::from_str(v).ok())
                });
                if let Some(after) = after {
                    r.headers_mut().insert(hyper::header::RETRY_AFTER, after);
                }
                r
            } else {
                full(StatusCode::OK, "ok\n")
            }
        }
        _ => full(StatusCode::NOT_FOUND, "not found\n"),
    };
    if state.log_requests {
        tracing::info!("{} {} → {}", req.method(), path, response.status().as_u16());
    } else {
        tracing::debug!("{} {} → {}", req.method(), path, response.status().as_u16());
    }
    Ok(response)
}

/// A body of `left` zero bytes, produced 64 KiB at a time.
struct Zeros {
    left: u64,
}

static ZEROS: [u8; 65536] = [0; 65536];

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(ZEROS.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &ZEROS[..n as usize],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// Flags of `threadlab serve`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind. Stays on loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Stop after this many seconds (default: run until Ctrl-C; at most a year).
    #[arg(long = "for", value_name = "SECS", value_parser = crate::cli::parse_secs_any)]
    pub run_for: Option<f64>,
    /// Close a connection that sends no complete request head for this many seconds
    /// (new, half-sent or idle keep-alive; 0 < SECS <= one year).
    #[arg(long, default_value_t = 30.0, value_name = "SECS", value_parser = parse_idle)]
    pub idle_timeout: f64,
}

fn parse_idle(s: &str) -> Result<f64, String> {
    match crate::cli::parse_secs_any(s)? {
        0.0 => Err("must be more than 0 seconds".into()),
        v => Ok(v),
    }
}

/// Runs the server until Ctrl-C or SIGTERM (or `--for`), then reports how many requests it
/// answered. On a signal, in-flight requests get [`STOP_GRACE`] to finish.
pub fn run(args: &Args, _lab: &crate::lab::Lab) -> anyhow::Result<crate::lab::Report> {
    let mut report = crate::lab::Report::new("serve");
    report.params_from(args);
    let server = Server::start_with(
        SocketAddr::new(args.bind, args.port),
        true,
        Duration::from_secs_f64(args.idle_timeout),
    )?;
    // The address is the one thing a user must see, even with --quiet: stderr, always.
    eprintln!(
        "threadlab serve: listening on {} (Ctrl-C to stop)",
        server.base_url()
    );
    tracing::info!(
        "serving /get /status/CODE /delay/SECS /bytes/N /redirect/N /redirect-loop /unstable/KEY/N"
    );
    let until = args
        .run_for
        .and_then(|s| Instant::now().checked_add(Duration::from_secs_f64(s)));
    while until.is_none_or(|t| Instant::now() < t) && crate::lab::sleep(Duration::from_millis(50)) {
    }
    let interrupted = crate::lab::signals::interrupted();
    if interrupted {
        // What is left is bounded by STOP_GRACE: the signal backstop need not cut it short.
        crate::lab::signals::finished();
        tracing::info!(
            "stopping: in-flight requests have {} to finish",
            crate::lab::units::duration(STOP_GRACE)
        );
    }
    let served = server.served();
    drop(server);
    tracing::info!("stopped after answering {served} requests");
    report.metric("requests", served);
    report.exit_code = Some(if interrupted { 130 } else { 0 });
    Ok(report)
}
