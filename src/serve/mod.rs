//! A small httpbin-like HTTP/1.1 server on 127.0.0.1: what url-check runs against offline,
//! in its `--demo`, in the tests and in the benchmarks.
//!
//! Endpoints: `/get` (200, a small JSON body), `/status/CODE`, `/delay/SECS` (answers after
//! SECS, at most 60), `/bytes/N` (N zero bytes, streamed: never held in memory),
//! `/redirect/N` (N redirects, then `/get`), `/redirect-loop` (redirects to itself), and
//! `/unstable/KEY/N` (503 for the first N requests with that KEY, then 200: for retries).
//!
//! Built on hyper with a multi-threaded tokio runtime whose worker threads are named
//! `Server_0`, `Server_1`, …: delays are timers, not sleeping threads, so thousands of slow
//! requests are in flight at once without being serialised.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

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
    /// Starts serving on `bind` (port 0 picks a free port). `log_requests` narrates each
    /// request at info level from the worker thread that served it (debug level otherwise).
    pub fn start(bind: SocketAddr, log_requests: bool) -> anyhow::Result<Server> {
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
                    loop {
                        tokio::select! {
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let _ = stream.set_nodelay(true);
                                let state = Arc::clone(&state);
                                let counter = Arc::clone(&counter);
                                tokio::spawn(async move {
                                    let service = service_fn(move |req| {
                                        counter.fetch_add(1, Ordering::Relaxed);
                                        handle(req, Arc::clone(&state))
                                    });
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                            _ = &mut stop_rx => break,
                        }
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
                let count = map.entry((*key).to_string()).or_insert(0);
                *count += 1;
                *count
            };
            if seen <= failures {
                full(StatusCode::SERVICE_UNAVAILABLE, "try again\n")
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
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long = "for", value_name = "SECS", value_parser = crate::cli::parse_secs_any)]
    pub run_for: Option<f64>,
}

/// Runs the server until Ctrl-C (or `--for`), then reports how many requests it answered.
pub fn run(args: &Args, _lab: &crate::lab::Lab) -> anyhow::Result<crate::lab::Report> {
    let mut report = crate::lab::Report::new("serve");
    report.params_from(args);
    let server = Server::start(SocketAddr::new(args.bind, args.port), true)?;
    // The address is the one thing a user must see, even with --quiet: stderr, always.
    eprintln!(
        "threadlab serve: listening on {} (Ctrl-C to stop)",
        server.base_url()
    );
    tracing::info!(
        "serving /get /status/CODE /delay/SECS /bytes/N /redirect/N /redirect-loop /unstable/KEY/N"
    );
    let stop = crate::lab::interrupt_flag();
    let until = args
        .run_for
        .map(|s| std::time::Instant::now() + Duration::from_secs_f64(s));
    while !stop.load(Ordering::SeqCst) && until.is_none_or(|t| std::time::Instant::now() < t) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let served = server.served();
    drop(server);
    tracing::info!("stopped after answering {served} requests");
    report.metric("requests", served);
    report.exit_code = Some(0);
    Ok(report)
}
