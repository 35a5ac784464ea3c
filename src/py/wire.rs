//! The line format the Python shim (`src/py/shim.py`) speaks: one event per line,
//!
//! ```text
//! <monotonic ns> <thread ident> <op> <fields…>
//! ```
//!
//! | op | fields | meaning |
//! |---|---|---|
//! | `I` | `gil switch version` | the interpreter: GIL on (1) or off (0), `sys.getswitchinterval()`, version |
//! | `T` | `daemon name…` | this thread started (name last: it may hold spaces) |
//! | `E` | `cpu_ns` | this thread ended, after `cpu_ns` of CPU time (`time.thread_time_ns()`) |
//! | `N` | `pid kind made name…` | primitive `pid` (a `Lock`, …) made at `file:line`, first used: its name |
//! | `H` | `pid site` | this thread now holds `pid` (a lock, a permit), taken at `file:line` |
//! | `R` | `pid` | this thread gives `pid` back (told before the release itself) |
//! | `W` | `pid kind by timeout site` | this thread begins to wait: for a lock (`L`), a signal `by` (`S`), or the end of thread `pid` (`J`); `timeout` in ms or `-` |
//! | `K` | | this thread's wait looked again (a slice ran out) and found it still blocked |
//! | `D` | `how` | this thread's wait ended: `ok`, `timeout`, `refused`, `gave-up` |
//! | `S` | `pid what` | this thread signalled `pid`: `put`, `get`, `set`, `notify`, `task_done`, `arrive`, `done` |
//! | `P` | `text…` | a note for the report (a child process, a patched `threading`) |
//! | `Y` | | the program is about to write to stdout or stderr (with `-v`): answered `ok` once every event before it is told |
//! | `X` | `version` | the interpreter is older than 3.8: the shim ended the program |
//!
//! The reply, threadlab to Python, is one line per refused wait: `<thread ident> <why>`, with
//! newlines in `why` written `\n`.

use std::time::Duration;

/// One event from the shim.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// When, in the interpreter's monotonic clock (ns).
    pub at_ns: u64,
    /// Which thread (`threading.get_ident()`).
    pub tid: u64,
    /// What happened.
    pub op: Op,
}

/// What a wait waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A lock or a permit: an edge to its holders.
    Lock,
    /// A signal of the primitive, answered by the named signal.
    Signal(&'static str),
    /// The end of a thread (the primitive id is the thread's ident).
    Join,
}

/// The operations of [the table above](self).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The interpreter.
    Interpreter {
        gil: bool,
        switch_s: f64,
        version: String,
    },
    /// A thread started.
    Started { daemon: bool, name: String },
    /// A thread ended.
    Ended { cpu: Duration },
    /// A primitive's first use: its kind, where it was made, its name.
    Named {
        pid: u64,
        kind: String,
        made: String,
        name: String,
    },
    /// Holds a lock or permit.
    Holds { pid: u64, site: String },
    /// Gives one back.
    Releases { pid: u64 },
    /// Begins to wait.
    Waits {
        pid: u64,
        kind: Kind,
        timeout: Option<Duration>,
        site: String,
    },
    /// The wait looked again and is still blocked.
    Looked,
    /// The wait ended.
    Done(Ended),
    /// A signal.
    Signals { pid: u64, what: &'static str },
    /// A note.
    Note(String),
    /// The interpreter is too old; the shim ended the program.
    TooOld(String),
    /// The program is about to write: tell what came before, then answer.
    Sync,
}

/// How a wait ended, as the program saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It got what it waited for.
    Ok,
    /// The program's own timeout ran out.
    Timeout,
    /// threadlab refused it (`DeadlockError` was raised).
    Refused,
    /// It ended otherwise (an exception such as KeyboardInterrupt, a broken barrier).
    GaveUp,
}

/// The signal names the shim sends (a wait's "answered by").
pub static SIGNALS: [&str; 8] = [
    "put",
    "get",
    "set",
    "notify",
    "task_done",
    "arrive",
    "done",
    "release",
];

/// The signal named `s`, as `'static`; `None` for a name the shim does not send.
pub fn signal_name(s: &str) -> Option<&'static str> {
    SIGNALS.iter().find(|n| **n == s).copied()
}

/// Parses one line; `None` (and the caller skips it) for a line it cannot read.
pub fn parse(line: &str) -> Option<Line> {
    let mut f = line.splitn(4, ' ');
    let at_ns = f.next()?.parse().ok()?;
    let tid = f.next()?.parse().ok()?;
    let op = f.next()?;
    let rest = f.next().unwrap_or("");
    let op = match op {
        "I" => {
            let mut r = rest.splitn(3, ' ');
            Op::Interpreter {
                gil: r.next()? == "1",
                switch_s: r.next()?.parse().ok()?,
                version: r.next()?.to_string(),
            }
        }
        "T" => {
            let (daemon, name) = rest.split_once(' ')?;
            Op::Started {
                daemon: daemon == "1",
                name: name.to_string(),
            }
        }
        "E" => Op::Ended {
            cpu: Duration::from_nanos(rest.parse().ok()?),
        },
        "N" => {
            let mut r = rest.splitn(4, ' ');
            Op::Named {
                pid: r.next()?.parse().ok()?,
                kind: r.next()?.to_string(),
                made: r.next()?.to_string(),
                name: r.next()?.to_string(),
            }
        }
        "H" => {
            let (pid, site) = rest.split_once(' ')?;
            Op::Holds {
                pid: pid.parse().ok()?,
                site: site.to_string(),
            }
        }
        "R" => Op::Releases {
            pid: rest.parse().ok()?,
        },
        "W" => waits(rest)?,
        "K" => Op::Looked,
        "D" => Op::Done(match rest {
            "ok" => Ended::Ok,
            "timeout" => Ended::Timeout,
            "refused" => Ended::Refused,
            _ => Ended::GaveUp,
        }),
        "S" => {
            let (pid, what) = rest.split_once(' ')?;
            Op::Signals {
                pid: pid.parse().ok()?,
                what: signal_name(what)?,
            }
        }
        "P" => Op::Note(rest.to_string()),
        "X" => Op::TooOld(rest.to_string()),
        "Y" => Op::Sync,
        _ => return None,
    };
    Some(Line { at_ns, tid, op })
}

fn waits(rest: &str) -> Option<Op> {
    let mut r = rest.splitn(5, ' ');
    let pid = r.next()?.parse().ok()?;
    let kind = r.next()?;
    let by = r.next()?;
    let kind = match kind {
        "L" => Kind::Lock,
        "J" => Kind::Join,
        "S" => Kind::Signal(signal_name(by)?),
        _ => return None,
    };
    let timeout = match r.next()? {
        "-" => None,
        ms => Some(Duration::from_secs_f64(
            ms.parse::<f64>().ok()?.max(0.0) / 1000.0,
        )),
    };
    Some(Op::Waits {
        pid,
        kind,
        timeout,
        site: r.next().unwrap_or("?").to_string(),
    })
}

/// The reply refusing thread `tid`'s wait, with `why` on one line.
pub fn refusal(tid: u64, why: &str) -> String {
    format!("{tid} {}\n", why.replace('\n', "\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines as the shim writes them (its `emit` calls), each read back.
    #[test]
    fn every_line_the_shim_writes_reads_back() {
        let l = parse("100 7 T 0 Thread-1 (worker)").unwrap();
        assert_eq!((l.at_ns, l.tid), (100, 7));
        assert_eq!(
            l.op,
            Op::Started {
                daemon: false,
                name: "Thread-1 (worker)".into()
            }
        );
        assert_eq!(
            parse("1 7 I 1 0.005 3.11.2").unwrap().op,
            Op::Interpreter {
                gil: true,
                switch_s: 0.005,
                version: "3.11.2".into()
            }
        );
        assert_eq!(
            parse("1 7 N 3 Lock bank.py:4 accounts['a']").unwrap().op,
            Op::Named {
                pid: 3,
                kind: "Lock".into(),
                made: "bank.py:4".into(),
                name: "accounts['a']".into()
            }
        );
        assert_eq!(
            parse("1 7 W 3 L - - bank.py:12").unwrap().op,
            Op::Waits {
                pid: 3,
                kind: Kind::Lock,
                timeout: None,
                site: "bank.py:12".into()
            }
        );
        assert_eq!(
            parse("1 7 W 4 S put 250.000 q.py:9").unwrap().op,
            Op::Waits {
                pid: 4,
                kind: Kind::Signal("put"),
                timeout: Some(Duration::from_millis(250)),
                site: "q.py:9".into()
            }
        );
        assert_eq!(parse("1 7 D timeout").unwrap().op, Op::Done(Ended::Timeout));
        assert_eq!(parse("1 7 K").unwrap().op, Op::Looked);
        assert_eq!(parse("0 0 X 3.7").unwrap().op, Op::TooOld("3.7".into()));
        assert_eq!(parse("1 7 Y").unwrap().op, Op::Sync);
        assert_eq!(
            parse("1 7 E 1500").unwrap().op,
            Op::Ended {
                cpu: Duration::from_nanos(1500)
            }
        );
        assert_eq!(
            parse("1 7 S 4 task_done").unwrap().op,
            Op::Signals {
                pid: 4,
                what: "task_done"
            }
        );
        assert_eq!(
            parse("1 7 P a child process (fork) runs unobserved")
                .unwrap()
                .op,
            Op::Note("a child process (fork) runs unobserved".into())
        );
    }

    #[test]
    fn lines_it_cannot_read_are_skipped_not_misread() {
        for bad in [
            "",
            "x 7 T 0 a",
            "1 7 Q 3",
            "1 7 W 3 S shout - a.py:1",
            "1 7 H notanumber a.py:1",
            "1 7 S 3 sing",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_refusal_stays_on_one_line() {
        assert_eq!(refusal(9, "a\nb"), "9 a\\nb\n");
    }
}
