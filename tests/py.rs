//! `threadlab py`: the learner's own Python program under the lab. Each test runs a real
//! python3 on a program from `demos/python/` or one it writes, and asserts what threadlab
//! said of it (threads, locks, file:line, exit status) and that the program's own output is
//! what plain python3 prints.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Run, threadlab};
use serde_json::Value;

fn demo(name: &str) -> String {
    format!("demos/python/{name}.py")
}

/// A script the test writes, in a folder of its own.
fn script(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("threadlab-py-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

/// `threadlab --json py ARGS…`: the run and its report.
fn py_json(args: &[&str]) -> (Run, Value) {
    let mut all = vec!["--json", "py"];
    all.extend_from_slice(args);
    let run = threadlab(&all);
    let report = run.json();
    (run, report)
}

/// The program's own lines, sorted (threads interleave), from plain python3.
fn plain(path: &str) -> Vec<String> {
    let out = Command::new("python3").arg(path).output().unwrap();
    sorted(&String::from_utf8_lossy(&out.stdout))
}

fn sorted(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn deadlocks(r: &Value) -> Vec<Value> {
    r["deadlocks"].as_array().cloned().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_classic_programs_print_what_plain_python_prints() {
    for name in threadlab::py::CLASSICS_THAT_END {
        let path = demo(name);
        let run = threadlab(&["-q", "py", &path]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let printed: String = run
            .stdout
            .lines()
            .take_while(|l| !l.starts_with(" CPU time against wall time"))
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(sorted(&printed), plain(&path), "{name}");
        assert!(
            run.stdout.contains("deadlocks and stalls that formed"),
            "{name}"
        );
        // Every wait was answered before the thread blocked (none waited out the second).
        assert!(
            !run.stdout.contains("did not answer"),
            "{name}: {}",
            run.stdout
        );
    }
}

#[test]
fn a_bank_transfer_deadlock_is_named_with_both_tellers_both_locks_and_their_lines() {
    let (run, r) = py_json(&[&demo("bank_deadlock")]);
    // The program goes on after the victim's DeadlockError, as it would after any exception
    // in a thread: its status is its own.
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(r["demo"], "py");
    assert_eq!(r["exit_status"], 0);
    let d = deadlocks(&r);
    assert_eq!(d.len(), 1, "{r}");
    assert_eq!(d[0]["kind"], "cycle");
    let mut threads = strings(&d[0]["threads"]);
    threads.sort();
    assert_eq!(threads, ["Teller-1", "Teller-2"]);
    let mut locks = strings(&d[0]["locks"]);
    locks.sort();
    assert_eq!(locks, ["a.lock", "b.lock"]);
    let err = &run.stderr;
    assert!(err.contains("taken at bank_deadlock.py:19"), "{err}");
    assert!(
        err.contains("waits for 'a.lock' at bank_deadlock.py:21")
            || err.contains("waits for 'b.lock' at bank_deadlock.py:21"),
        "{err}"
    );
    // Raised inside Python, in the victim, at the line of its acquire.
    assert!(
        err.contains("threadlab.DeadlockError: deadlock: a cycle of 2 threads"),
        "{err}"
    );
    assert!(err.contains("bank_deadlock.py\", line 21"), "{err}");
    // The traceback is the program's own: none of the shim's frames.
    assert!(!err.contains("sitecustomize.py"), "{err}");
    assert!(run.stderr.contains("balances:"), "the program finished");
}

#[test]
fn a_ring_of_five_philosophers_is_one_cycle_of_five_forks() {
    let (run, r) = py_json(&[&demo("philosophers")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let d = deadlocks(&r);
    assert_eq!(d.len(), 1, "{r}");
    let mut locks = strings(&d[0]["locks"]);
    locks.sort();
    assert_eq!(
        locks,
        ["forks[0]", "forks[1]", "forks[2]", "forks[3]", "forks[4]"]
    );
    assert_eq!(d[0]["threads"].as_array().unwrap().len(), 5);
    assert!(run.stderr.contains("dinner over"));
}

#[test]
fn a_consumer_nobody_will_feed_is_a_stall_named_at_its_get() {
    let (run, r) = py_json(&[&demo("lonely_consumer")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let d = deadlocks(&r);
    assert_eq!(d.len(), 1, "{r}");
    assert_eq!(d[0]["kind"], "stall");
    assert_eq!(d[0]["victim"], "Consumer");
    assert!(strings(&d[0]["locks"]).contains(&"tasks".to_string()));
    assert!(
        run.stderr
            .contains("Consumer waits for 'tasks' at lonely_consumer.py:17")
    );
    assert!(
        run.stderr.contains("done"),
        "the program ended: {}",
        run.stderr
    );
}

#[test]
fn a_pool_task_waiting_for_a_task_queued_behind_it_is_a_stall() {
    let (run, r) = py_json(&[&demo("pool_deadlock")]);
    let d = deadlocks(&r);
    assert!(!d.is_empty(), "{r}");
    assert_eq!(d[0]["kind"], "stall");
    let mut threads = strings(&d[0]["threads"]);
    threads.sort();
    assert_eq!(threads, ["MainThread", "Worker_0"]);
    assert!(run.stderr.contains("waits for 'future-"), "{}", run.stderr);
    assert!(run.stderr.contains("pool_deadlock.py:14"), "{}", run.stderr);
    assert!(
        run.stderr.contains("threadlab.DeadlockError"),
        "{}",
        run.stderr
    );
    // The program ends (with the uncaught error's status) instead of hanging.
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[test]
fn stop_ends_the_program_with_status_3_and_observe_leaves_it_to_the_timeout() {
    let (run, r) = py_json(&["--on-deadlock", "stop", &demo("bank_deadlock")]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(r["ended"], "stopped");
    assert_eq!(deadlocks(&r).len(), 1);
    assert!(!run.stderr.contains("balances:"), "stopped before the end");

    let (run, r) = py_json(&[
        "--on-deadlock",
        "observe",
        "--timeout",
        "2",
        &demo("bank_deadlock"),
    ]);
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert_eq!(r["ended"], "timed out");
    let d = deadlocks(&r);
    assert_eq!(d.len(), 1, "{r}");
    assert_eq!(d[0]["victim"], Value::Null, "observed, nobody refused");

    // A stall observed: told, nobody refused, and the program hangs on to the timeout.
    let (run, r) = py_json(&[
        "--on-deadlock",
        "observe",
        "--timeout",
        "2",
        &demo("lonely_consumer"),
    ]);
    assert_eq!(run.code, 124, "{}", run.stderr);
    let d = deadlocks(&r);
    assert_eq!(d.len(), 1, "{r}");
    assert_eq!(
        (&d[0]["kind"], &d[0]["victim"]),
        (&Value::from("stall"), &Value::Null)
    );
    assert!(
        run.stderr.contains("told, not refused (observed)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("DeadlockError"), "{}", run.stderr);
}

#[test]
fn waits_with_a_timeout_of_the_programs_own_never_count() {
    let path = script(
        "timed.py",
        r#"
import queue, threading, time
a, b = threading.Lock(), threading.Lock()
q = queue.Queue()
def one(first, second):
    with first:
        time.sleep(0.1)
        if second.acquire(timeout=0.3):
            second.release()
        else:
            print("gave up")
t1 = threading.Thread(target=one, args=(a, b)); t2 = threading.Thread(target=one, args=(b, a))
t1.start(); t2.start(); t1.join(); t2.join()
try:
    q.get(timeout=0.2)
except queue.Empty:
    print("empty")
"#,
    );
    let (run, r) = py_json(&[&path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(deadlocks(&r).iter().all(|d| d["victim"].is_null()), "{r}");
    assert!(run.stderr.contains("empty"));
    assert!(!run.stderr.contains("DeadlockError"), "{}", run.stderr);
}

#[test]
fn a_program_can_catch_the_deadlock_error_and_recover() {
    let path = script(
        "recover.py",
        r#"
import threading, time
from threadlab import DeadlockError
a, b = threading.Lock(), threading.Lock()
def teller(first, second):
    while True:
        with first:
            time.sleep(0.05)
            try:
                with second:
                    print("moved")
                    return
            except DeadlockError:
                print("recovered")
        time.sleep(0.1)
t1 = threading.Thread(target=teller, args=(a, b)); t2 = threading.Thread(target=teller, args=(b, a))
t1.start(); t2.start(); t1.join(); t2.join()
"#,
    );
    let (run, r) = py_json(&[&path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = sorted(
        &run.stderr
            .lines()
            .filter(|l| !l.starts_with('+'))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    assert_eq!(
        out.iter().filter(|l| *l == "moved").count(),
        2,
        "{}",
        run.stderr
    );
    assert!(out.iter().any(|l| l == "recovered"));
    assert!(!deadlocks(&r).is_empty());
}

#[test]
fn every_wrapped_primitive_is_reported_and_behaves_as_in_python() {
    let path = script(
        "every.py",
        r#"
import queue, threading, time
from concurrent.futures import ThreadPoolExecutor
r = threading.RLock(); cond = threading.Condition(); sem = threading.Semaphore(2)
bsem = threading.BoundedSemaphore(1); ev = threading.Event(); gate = threading.Barrier(2)
lifo = queue.LifoQueue(); prio = queue.PriorityQueue(); jobs = queue.Queue()
items = []
def waiter():
    with cond:
        cond.wait_for(lambda: items)
    ev.wait()
    gate.wait()
with r:
    with r:
        pass
t = threading.Thread(target=waiter, name="Waiter"); t.start()
time.sleep(0.05)
with cond:
    items.append(1); cond.notify_all()
ev.set(); gate.wait(); t.join()
with sem:
    with bsem:
        pass
try:
    bsem.release()
except ValueError:
    print("bounded")
for q in (lifo, prio):
    q.put(2); q.put(1)
    print(type(q).__name__, q.get(), q.get())
def worker():
    while (item := jobs.get()) is not None:
        jobs.task_done()
    jobs.task_done()
w = threading.Thread(target=worker, name="Worker"); w.start()
for i in range(3):
    jobs.put(i)
jobs.put(None); jobs.join(); w.join(timeout=5)
timer = threading.Timer(0.01, lambda: print("timer fired")); timer.start(); timer.join()
with ThreadPoolExecutor(2) as pool:
    print("future", pool.submit(pow, 2, 5).result())
print("isinstance", isinstance(ev, threading.Event), isinstance(lifo, queue.Queue))
"#,
    );
    let (run, r) = py_json(&[&path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stderr;
    for line in [
        "bounded",
        "LifoQueue 1 2",
        "PriorityQueue 1 2",
        "timer fired",
        "future 32",
        "isinstance True True",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    let prims: Vec<String> = r["primitives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    // Every primitive that was waited for or held (a get that found an item waits for
    // nothing): named by the program's own variable.
    for name in ["r", "cond", "cond._lock", "sem", "bsem", "gate", "jobs"] {
        assert!(prims.contains(&name.to_string()), "{name} in {prims:?}");
    }
    let threads: Vec<&str> = r["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in ["MainThread", "Waiter", "Worker"] {
        assert!(threads.contains(&name), "{name} in {threads:?}");
    }
    assert!(deadlocks(&r).is_empty(), "{r}");
    // Where each was made, as Python would say it.
    let made = r["python_primitives"].to_string();
    assert!(made.contains(r#""name":"bsem""#), "{made}");
    assert!(
        made.contains(r#""kind":"BoundedSemaphore","made_at":"every.py:5""#),
        "{made}"
    );
}

#[test]
fn verbose_narrates_each_wait_and_hold_with_pythons_thread_names() {
    let run = threadlab(&["-v", "--no-color", "py", &demo("bank_ordered")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    assert!(out.contains("(Teller-1  ) holding 'a.lock'"), "{out}");
    assert!(
        out.contains("(Teller-2  ) waiting for 'a.lock'")
            || out.contains("(Teller-1  ) waiting for 'a.lock'"),
        "{out}"
    );
    // The program's own line comes after the narrative of every event before it.
    let balances = out.find("balances:").expect("the program printed");
    let last_release = out.rfind("released 'a.lock'").unwrap();
    assert!(last_release < balances, "{out}");
    // Times never go backwards.
    let times: Vec<f64> = out
        .lines()
        .filter_map(|l| l.strip_prefix('+')?.split('s').next()?.parse().ok())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn bad_input_gets_one_clear_line_and_nothing_is_left_running() {
    let run = threadlab(&["py", "no-such-script.py"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no such file: no-such-script.py"),
        "{}",
        run.stderr
    );
    let run = threadlab(&["py", "demos"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is a folder"), "{}", run.stderr);
    let run = threadlab(&["py", "--python", "/no/such/python3", &demo("thread_basics")]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot run /no/such/python3"),
        "{}",
        run.stderr
    );
    // Python's own message and status for a syntax error.
    let bad = script("syntax.py", "def broken(:\n    pass\n");
    let run = threadlab(&["-q", "py", &bad]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("SyntaxError"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
    // A program that never ends, ended by --timeout; its process is gone afterwards.
    let pidfile = std::env::temp_dir().join(format!("threadlab-py-pid-{}", std::process::id()));
    let forever = script(
        "forever.py",
        &format!(
            "import os, time\nopen({:?}, 'w').write(str(os.getpid()))\nwhile True:\n    time.sleep(1)\n",
            pidfile.to_string_lossy()
        ),
    );
    let run = threadlab(&["-q", "py", "--timeout", "1", &forever]);
    assert_eq!(run.code, 124, "{}", run.stderr);
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "python {pid} left behind"
    );
    // A program that replaces threading's Lock runs on, and the report says so.
    let patched = script(
        "patched.py",
        "import threading\nthreading.Lock = threading._allocate_lock\nwith threading.Lock():\n    print('ok')\n",
    );
    let run = threadlab(&["py", &patched]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("threading.Lock was replaced"),
        "{}",
        run.stdout
    );
}

#[test]
fn argv_main_and_the_exit_status_are_the_programs() {
    let path = script(
        "argv.py",
        "import sys\nprint(__name__, sys.argv[1:])\nsys.exit(7)\n",
    );
    let run = threadlab(&["-q", "py", &path, "--flag", "x"]);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(
        run.stdout.contains("__main__ ['--flag', 'x']"),
        "{}",
        run.stdout
    );
}

#[test]
fn cpu_bound_threads_take_turns_under_the_gil() {
    let path = script(
        "spin.py",
        "import threading\ndef spin():\n    n = 0\n    for _ in range(3_000_000):\n        n += 1\n\
         ts = [threading.Thread(target=spin) for _ in range(2)]\nfor t in ts: t.start()\nfor t in ts: t.join()\n",
    );
    let (run, r) = py_json(&[&path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let gil = r["interpreter"]["gil"].as_bool().unwrap();
    let cores = r["metrics"]["cpu_cores_used"].as_f64().unwrap();
    if gil {
        // Two CPU-bound threads under the GIL: never much more than one core between them.
        assert!(cores < 1.3, "{cores}");
    }
    assert!(r["python_threads"].as_array().unwrap().len() >= 3);
}

#[test]
fn sigterm_reaches_the_program_and_the_partial_report_is_printed() {
    let pidfile = std::env::temp_dir().join(format!("threadlab-py-term-{}", std::process::id()));
    let path = script(
        "term.py",
        &format!(
            "import os, threading, time\nopen({:?}, 'w').write(str(os.getpid()))\n\
             def spin():\n    while True:\n        time.sleep(0.01)\n\
             threading.Thread(target=spin, daemon=True, name='Spinner').start()\n\
             print('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n",
            pidfile.to_string_lossy()
        ),
    );
    let mut run = common::Spawned::start(&["--json", "py", &path]);
    run.wait_for("ready", std::time::Duration::from_secs(20));
    run.signal(libc::SIGTERM);
    let (status, stdout, _, _) = run.finish(std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(143));
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["interrupted"], true);
    assert!(
        strings(&Value::Array(
            r["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].clone())
                .collect()
        ))
        .contains(&"Spinner".to_string())
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "python {pid} left"
    );
}

#[test]
fn a_closed_pipe_ends_both_quietly_and_leaves_no_python_behind() {
    let path = script(
        "piped_forever.py",
        "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.01)\n",
    );
    let (stdout, stderr) = common::piped_to_head(&format!("py {path}"));
    assert!(stdout.contains("rc=141"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The kernel ends the program with threadlab (PR_SET_PDEATHSIG): give it a moment.
    let gone = || {
        Command::new("pgrep")
            .args(["-f", &path])
            .output()
            .is_ok_and(|o| o.stdout.is_empty())
    };
    for _ in 0..50 {
        if gone() {
            break;
        }
        let _ = Command::new("sleep").arg("0.01").status();
    }
    let left = Command::new("pgrep").args(["-f", &path]).output().unwrap();
    assert!(
        left.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn child_processes_and_an_interpreter_without_the_shim_are_said_so() {
    let path = script(
        "child.py",
        "import subprocess\nsubprocess.run(['true'])\nprint('ran')\n",
    );
    let (run, r) = py_json(&[&path]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let notes = r["notes"].to_string();
    assert!(
        notes.contains("a child process (subprocess) runs unobserved"),
        "{notes}"
    );
    // Not a Python at all: it runs, threadlab says nothing was observed, the status passes.
    let run = threadlab(&["-q", "py", "--python", "/bin/true", &demo("thread_basics")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("ran unobserved"), "{}", run.stdout);
}
