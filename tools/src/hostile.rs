//! Servers that misbehave on purpose, on 127.0.0.1, for the tests, `make stress` and
//! `make bench`: each [`Behaviour`] is one way a real server goes wrong.
//!
//! Every server is bounded: it stops when dropped, and each connection ends after
//! [`MAX_CONNECTION_LIFE`] whatever its behaviour, so a test that forgets one cannot leave a
//! thread running for long.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any connection to a hostile server lives.
pub const MAX_CONNECTION_LIFE: Duration = Duration::from_secs(60);

/// One way of misbehaving.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Accepts, reads the request, never answers.
    Silent,
    /// Sends a status line, then one header byte every `every`.
    DripHeaders { every: Duration },
    /// Sends complete headers with `Content-Length: 16384`, then one body byte every `every`.
    DripBody { every: Duration },
    /// Sends part of a status line, then resets the connection (RST).
    Reset,
    /// Answers with bytes that are not HTTP.
    Garbage,
    /// Answers with an invalid status line.
    BadStatusLine,
    /// Sends a chunked body that never ends.
    EndlessChunked,
    /// Sends 1 MB of headers.
    HugeHeaders,
    /// Redirects every request to `location`.
    RedirectTo(String),
    /// Like Python's `http.server`: HTTP/1.0, one connection per request, no TCP_NODELAY,
    /// the headers and the body in two writes. `/delay/SECS` answers after SECS.
    TwoWrites,
}

/// A running hostile server. Dropping it stops it.
pub struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hostile {
    /// Starts a server with `behaviour` on a free loopback port.
    pub fn start(behaviour: Behaviour) -> std::io::Result<Hostile> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("Hostile".into())
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (b, stop) = (behaviour.clone(), Arc::clone(&stopping));
                            let _ = std::thread::Builder::new()
                                .name("HostileConn".into())
                                .spawn(move || serve(stream, &b, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })?;
        Ok(Hostile {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request head (up to a blank line, 64 KiB at most, 5 s at most); returns its path.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let text = read_head_text(stream)?;
    text.split_whitespace().nth(1).map(str::to_string)
}

/// A request head's text (up to a blank line, 64 KiB at most, 5 s at most).
pub(crate) fn read_head_text(stream: &mut TcpStream) -> Option<String> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Sleeps `d` in small steps; false once the server is stopping or the connection is old.
fn pause(d: Duration, stop: &AtomicBool, born: Instant) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) || born.elapsed() > MAX_CONNECTION_LIFE {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5).min(d));
    }
    !stop.load(Ordering::SeqCst) && born.elapsed() <= MAX_CONNECTION_LIFE
}

/// Closes `stream` with a reset rather than a graceful close.
fn reset(stream: TcpStream) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket this function owns, with a correctly sized value.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of!(linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    drop(stream);
}

fn serve(mut s: TcpStream, behaviour: &Behaviour, stop: &AtomicBool) {
    let born = Instant::now();
    let _ = s.set_nonblocking(false);
    let Some(path) = read_head(&mut s) else {
        return;
    };
    match behaviour {
        Behaviour::Silent => while pause(Duration::from_millis(50), stop, born) {},
        Behaviour::DripHeaders { every } => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
            for b in b"X-Drip: ".iter().cycle() {
                if !pause(*every, stop, born) || s.write_all(&[*b]).is_err() {
                    break;
                }
            }
        }
        Behaviour::DripBody { every } => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n");
            for _ in 0..16384 {
                if !pause(*every, stop, born) || s.write_all(b"x").is_err() {
                    break;
                }
            }
        }
        Behaviour::Reset => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
            std::thread::sleep(Duration::from_millis(5));
            reset(s);
            return;
        }
        Behaviour::Garbage => {
            let _ = s.write_all(b"this is not HTTP at all\r\n\r\n\x00\x01\x02");
        }
        Behaviour::BadStatusLine => {
            let _ = s.write_all(b"HTTP/1.1 abc Not A Status\r\nContent-Length: 0\r\n\r\n");
        }
        Behaviour::EndlessChunked => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            while pause(Duration::from_millis(1), stop, born) {
                if s.write_all(b"400\r\n").is_err()
                    || s.write_all(&[b'z'; 0x400]).is_err()
                    || s.write_all(b"\r\n").is_err()
                {
                    break;
                }
            }
        }
        Behaviour::HugeHeaders => {
            let mut reply = b"HTTP/1.1 200 OK\r\n".to_vec();
            let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
            while reply.len() < 1_000_000 {
                reply.extend_from_slice(line.as_bytes());
            }
            reply.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            let _ = s.write_all(&reply);
        }
        Behaviour::RedirectTo(location) => {
            let _ = write!(
                s,
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
            );
        }
        Behaviour::TwoWrites => {
            let delay = path
                .strip_prefix("/delay/")
                .and_then(|d| d.split('?').next())
                .and_then(|d| d.parse::<f64>().ok())
                .filter(|d| d.is_finite() && (0.0..=60.0).contains(d))
                .unwrap_or(0.0);
            if !pause(Duration::from_secs_f64(delay), stop, born) {
                return;
            }
            let body = format!("{{\"delay\": {delay}}}\n");
            let head = format!(
                "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            // Two writes and Nagle on, as http.server does.
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body.as_bytes());
        }
    }
    // Let the client read what was sent before the close.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = pause(Duration::from_millis(20), stop, born);
}
