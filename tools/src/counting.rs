//! A loopback server that counts what a link checker does to it, from the server's side:
//! every request with the host name it was sent to (the `Host` header: `localhost`,
//! `127.0.0.1`, `127.0.0.2` all reach it), its path, its headers, when it began and ended,
//! and the most requests in progress at once per host name.
//!
//! Paths: `/ok…` 200; `/missing…` 404; `/gone` 410; `/slow…` 200 after 150 ms; `/busy/KEY`
//! 429 with `Retry-After: 1` the first time a KEY is asked for, then 200; `/moved` a 301 to
//! `/ok`; `/error` 500; `/needs-header` 200 with an `X-Test: yes` header, else 401;
//! `/login` 200 with a session cookie; `/members` 200 with that cookie, else 403.
//! Anything else 404. One request per connection (`Connection: close`), a thread each.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request, as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The host name it was sent to, without the port.
    pub host: String,
    pub path: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    pub began: Instant,
    pub ended: Instant,
}

#[derive(Default)]
struct Book {
    seen: Vec<Seen>,
    now: HashMap<String, usize>,
    most: HashMap<String, usize>,
    busy_asked: HashSet<String>,
}

/// A running counting server; dropping it stops it.
pub struct Counting {
    addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Counting {
    /// Listens on 127.0.0.1 (which `localhost` reaches too) and on 127.0.0.2 at the same
    /// port when it can have it (on Linux all of 127/8 is loopback): three host names.
    pub fn start() -> std::io::Result<Counting> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let second = TcpListener::bind(("127.0.0.2", addr.port())).ok();
        let book = Arc::new(Mutex::new(Book::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut listeners = vec![listener];
        listeners.extend(second);
        for l in &listeners {
            l.set_nonblocking(true)?;
        }
        let (b, s) = (Arc::clone(&book), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("Counting".into())
            .spawn(move || accept(&listeners, &b, &s))?;
        Ok(Counting {
            addr,
            book,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.book.lock().unwrap().seen.clone()
    }

    /// The most requests in progress at once for each host name.
    pub fn most_at_once(&self) -> HashMap<String, usize> {
        self.book.lock().unwrap().most.clone()
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept(listeners: &[TcpListener], book: &Arc<Mutex<Book>>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let mut any = false;
        for l in listeners {
            if let Ok((stream, _)) = l.accept() {
                any = true;
                let book = Arc::clone(book);
                let _ = std::thread::Builder::new()
                    .name("CountingConn".into())
                    .spawn(move || serve(stream, &book));
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Header names (lower case) and values.
type Headers = Vec<(String, String)>;

/// (path, host, headers) of a request head, or `None` if it never came whole.
fn read_head(stream: &mut TcpStream) -> Option<(String, String, Headers)> {
    let _ = stream.set_nonblocking(false);
    let text = crate::hostile::read_head_text(stream)?;
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split_whitespace().nth(1)?.to_string();
    let headers: Headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let host = headers
        .iter()
        .find(|(n, _)| n == "host")
        .map(|(_, v)| {
            v.rsplit_once(':')
                .map_or(v.as_str(), |(h, _)| h)
                .to_string()
        })
        .unwrap_or_default();
    Some((path, host, headers))
}

fn serve(mut stream: TcpStream, book: &Mutex<Book>) {
    let Some((path, host, headers)) = read_head(&mut stream) else {
        return;
    };
    let began = Instant::now();
    let first_busy = {
        let mut b = book.lock().unwrap();
        let n = b.now.entry(host.clone()).or_default();
        *n += 1;
        let n = *n;
        let most = b.most.entry(host.clone()).or_default();
        *most = (*most).max(n);
        path.starts_with("/busy/") && b.busy_asked.insert(path.clone())
    };
    let (status, extra) = answer(&path, &headers, first_busy);
    // Counted and recorded before the reply goes: once the client has it, it may send the
    // next request (which must not find this one still in progress) or end (and the test
    // then reads what was seen).
    {
        let mut b = book.lock().unwrap();
        if let Some(n) = b.now.get_mut(&host) {
            *n -= 1;
        }
        b.seen.push(Seen {
            host,
            path,
            headers,
            began,
            ended: Instant::now(),
        });
    }
    let body = format!("{status}\n");
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

/// The status line's code and reason, and any extra header lines, for `path`.
fn answer(path: &str, headers: &[(String, String)], first_busy: bool) -> (&'static str, String) {
    let has = |name: &str, value: &str| headers.iter().any(|(n, v)| n == name && v == value);
    if path.starts_with("/ok") {
        ("200 OK", String::new())
    } else if path.starts_with("/slow") {
        std::thread::sleep(Duration::from_millis(150));
        ("200 OK", String::new())
    } else if path.starts_with("/busy/") && first_busy {
        ("429 Too Many Requests", "Retry-After: 1\r\n".into())
    } else if path.starts_with("/busy/") {
        ("200 OK", String::new())
    } else if path == "/moved" {
        ("301 Moved Permanently", "Location: /ok\r\n".into())
    } else if path == "/gone" {
        ("410 Gone", String::new())
    } else if path == "/error" {
        ("500 Internal Server Error", String::new())
    } else if path == "/needs-header" && has("x-test", "yes") {
        ("200 OK", String::new())
    } else if path == "/needs-header" {
        ("401 Unauthorized", String::new())
    } else if path == "/login" {
        // A session cookie (no Max-Age): a jar keeps it for the next run all the same.
        (
            "200 OK",
            "Set-Cookie: session=s3cr3t-cookie; Path=/\r\n".into(),
        )
    } else if path == "/members" && has("cookie", "session=s3cr3t-cookie") {
        ("200 OK", String::new())
    } else if path == "/members" {
        ("403 Forbidden", String::new())
    } else {
        ("404 Not Found", String::new())
    }
}
