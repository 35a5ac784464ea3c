//! `make bench`: the figures that matter, measured side by side in one run.
//! Not a test: nothing here asserts timings; it prints them for the README.

mod links;

use threadlab::demos::race_condition::{self, Strategy, Window};
use threadlab::lab::Lab;

fn main() -> anyhow::Result<()> {
    println!(
        "threadlab bench — {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // `threadlab-bench recording`: only the sections named (race, recording, pool, url-check,
    // links, sched, py).
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("race") {
        race_ns_per_increment()?;
    }
    if wanted("pool") {
        pool_overhead()?;
    }
    if wanted("url-check") {
        url_check_figures()?;
    }
    if wanted("links") {
        let server = threadlab::serve::Server::start("127.0.0.1:0".parse()?, false)?;
        links::figures(&binary(), &server.base_url())?;
    }
    if wanted("sched") {
        sched_rate();
    }
    if wanted("py") {
        py_figures()?;
    }
    // Last: its recording lab asks for pictures, which the process then records everywhere.
    if wanted("recording") {
        recording_cost();
    }
    Ok(())
}

/// `threadlab py`: the shim's cost per operation (demos/python/bench_ops.py prints it), and
/// the wall time of each classic that ends by itself, plain python3 beside `threadlab py`,
/// interleaved, median of 5.
fn py_figures() -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe()?.with_file_name("threadlab");
    anyhow::ensure!(
        exe.exists(),
        "build the threadlab binary first (cargo build --release)"
    );
    if Command::new("python3").arg("-V").output().is_err() {
        println!("\npy: no python3 here: skipped");
        return Ok(());
    }
    let ops = |under: bool| -> String {
        let out = if under {
            Command::new(&exe)
                .args(["-q", "py", "demos/python/bench_ops.py"])
                .output()
        } else {
            Command::new("python3")
                .arg("demos/python/bench_ops.py")
                .output()
        };
        out.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
    };
    println!("\npy: cost per operation (100 000 uncontended pairs), 3 runs each, interleaved");
    for _ in 0..3 {
        println!("  plain python3:  {}", ops(false));
        println!("  threadlab py:   {}", ops(true));
    }
    println!("\npy: wall time of each classic, median of 5 (interleaved)");
    println!(
        "  {:<22} {:>10} {:>14} {:>7}",
        "program", "python3", "threadlab py", "ratio"
    );
    for name in threadlab::py::CLASSICS_THAT_END {
        let path = format!("demos/python/{name}.py");
        let (mut plain, mut under) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = std::time::Instant::now();
            Command::new("python3")
                .arg(&path)
                .stdout(Stdio::null())
                .status()?;
            plain.push(t.elapsed().as_secs_f64());
            let t = std::time::Instant::now();
            Command::new(&exe)
                .args(["-q", "py", &path])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            under.push(t.elapsed().as_secs_f64());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (p, u) = (median(&mut plain), median(&mut under));
        println!(
            "  {name:<22} {:>8.0} ms {:>12.0} ms {:>6.2}×",
            p * 1e3,
            u * 1e3,
            u / p
        );
    }
    Ok(())
}

/// The scheduler's exploration rate, side by side with loom's on the same model: two
/// threads adding 1 to a shared counter k times (a load, then a store). threadlab runs
/// every interleaving of the 4k steps, C(4k, 2k) schedules, each a fresh pair of OS threads
/// run one at a time; loom runs its executions (fewer: it prunes by partial order) on its
/// own green threads. Then the rate of whole demos explored through the binary.
fn sched_rate() {
    use threadlab::lab::sched;
    println!(
        "\nscheduler: every schedule of the two-thread counter (k increments each), beside loom 0.7"
    );
    for k in [1u64, 2, 3] {
        let model = |strategy| sched::counter_model(strategy, k);
        let started = std::time::Instant::now();
        let Some(census) = sched::explore(1_000_000, None, model) else {
            println!("  k = {k}: over the limit");
            continue;
        };
        let secs = started.elapsed().as_secs_f64();
        let outcomes: Vec<String> = census
            .outcomes
            .iter()
            .map(|(v, (n, _))| format!("{v}: {n}"))
            .collect();
        let ours = census.schedules as f64 / secs;
        let (runs, loom_secs) = loom_counter(k);
        let theirs = runs as f64 / loom_secs;
        println!(
            "  k = {k}: threadlab {} schedules in {secs:.3} s ({ours:.0}/s; final value: schedules {{{}}})",
            census.schedules,
            outcomes.join(", ")
        );
        println!(
            "         loom      {runs} executions in {loom_secs:.3} s ({theirs:.0}/s): threadlab's rate {:.2}× loom's",
            ours / theirs
        );
        println!(
            "         the whole model: threadlab {:.2}× loom's time ({:.1}× fewer runs, each a real OS thread pair)",
            secs / loom_secs,
            runs as f64 / census.schedules as f64
        );
    }
    use threadlab::schedule::examples;
    let race3 = ["race", "--iterations", "3", "--strategy", "unsynchronized"];
    let condition_if: Vec<&str> = examples::CONDITION
        .iter()
        .copied()
        .chain(["--bug", "if"])
        .collect();
    for args in [
        examples::RACE,
        &race3[..],
        examples::TELLERS,
        &condition_if[..],
    ] {
        let label = args.join(" ");
        let out = std::process::Command::new(binary())
            .args(args)
            .args(["--explore", "--json"])
            .output();
        let census = out
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
        match census {
            Some(c) => println!(
                "  threadlab {label} --explore: {} schedules, {} schedules/s",
                c["census"]["schedules"], c["census"]["schedules_per_sec"]
            ),
            None => println!("  threadlab {label} --explore: did not run"),
        }
    }
}

/// The release binary next to this one.
fn binary() -> std::path::PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    me.with_file_name("threadlab")
}

/// loom on the same two-thread counter: how many executions, and how long they took.
fn loom_counter(k: u64) -> (usize, f64) {
    use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    RUNS.store(0, Ordering::SeqCst);
    let started = std::time::Instant::now();
    loom::model::Builder::new().check(move || {
        RUNS.fetch_add(1, Ordering::SeqCst);
        let v = loom::sync::Arc::new(AtomicU64::new(0));
        let add = |v: loom::sync::Arc<AtomicU64>| {
            move || {
                for _ in 0..k {
                    let read = v.load(SeqCst);
                    v.store(read + 1, SeqCst);
                }
            }
        };
        let a = loom::thread::spawn(add(v.clone()));
        let b = loom::thread::spawn(add(v.clone()));
        a.join().unwrap();
        b.join().unwrap();
    });
    (RUNS.load(Ordering::SeqCst), started.elapsed().as_secs_f64())
}

/// Cost of one shared increment under each strategy, window none, 2 threads × 10 M.
fn race_ns_per_increment() -> anyhow::Result<()> {
    let lab = Lab::quiet(1.0, 1);
    let args = race_condition::Args {
        iterations: 10_000_000,
        threads: 2,
        strategy: vec![
            Strategy::Unsynchronized,
            Strategy::Mutex,
            Strategy::Atomic,
            Strategy::LocalSum,
        ],
        window: Window::None,
        trials: 3,
        budget: None,
        python: false,
    };
    let report = race_condition::run(&args, &lab)?;
    println!("\nrace-condition: ns per increment (2 threads × 10 M, window none, median of 3)");
    for s in ["unsynchronized", "mutex", "atomic", "local-sum"] {
        println!(
            "  {s:<15} {:>8.2} ns/incr   lost {}",
            report
                .metric_f64(&format!("{s}.ns_per_incr"))
                .unwrap_or(f64::NAN),
            report.metric_u64(&format!("{s}.lost")).unwrap_or(0)
        );
    }
    Ok(())
}

/// The pool's overhead per task: 100 000 no-op tasks submitted, then every Future awaited.
fn pool_overhead() -> anyhow::Result<()> {
    use threadlab::pool::ThreadPool;
    const TASKS: usize = 100_000;
    println!(
        "\npool: overhead per task ({TASKS} no-op tasks, submit all then wait all, best of 5)"
    );
    for workers in [1, 2, ThreadPool::default_workers()] {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let pool = ThreadPool::new(workers, "Bench")?;
            let started = std::time::Instant::now();
            let futures: Vec<_> = (0..TASKS).map(|i| pool.submit(move || i)).collect();
            let sum: usize = futures.into_iter().map(|f| f.result().unwrap_or(0)).sum();
            let took = started.elapsed();
            assert_eq!(sum, TASKS * (TASKS - 1) / 2);
            best = best.min(took.as_secs_f64() * 1e6 / TASKS as f64);
        }
        println!("  {workers:>2} workers  {best:>6.3} µs/task");
    }
    python_pool_overhead(TASKS);
    Ok(())
}

/// The same measurement with Python's ThreadPoolExecutor, when python3 is on the machine.
fn python_pool_overhead(tasks: usize) {
    let script = format!(
        "import time, concurrent.futures as cf\n\
         best = 1e9\n\
         for _ in range(3):\n\
         \x20   with cf.ThreadPoolExecutor(max_workers=2) as ex:\n\
         \x20       t = time.perf_counter()\n\
         \x20       fs = [ex.submit(int, i) for i in range({tasks})]\n\
         \x20       s = sum(f.result() for f in fs)\n\
         \x20       best = min(best, (time.perf_counter() - t) * 1e6 / {tasks})\n\
         print(f'{{best:.3f}}')\n"
    );
    match std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
    {
        Ok(out) if out.status.success() => println!(
            "   Python ThreadPoolExecutor (2 workers, same workload): {} µs/task",
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        _ => println!("   (python3 not available: Python comparison skipped)"),
    }
}

/// What instrumentation costs race's hot loop (lock, read, write, unlock): std's mutex with
/// no instrumentation at all, threadlab's `sync::Mutex` with its probe off (the default), and
/// with it recording (`--timeline`, `--trace`, `--svg`). On 1 thread (no contention: the
/// cost itself) and on 2 (race's own shape, where lock hand-offs add noise). The variants
/// take turns, each of the 24 orders once; medians of the 24 rounds.
fn recording_cost() {
    use std::time::Instant;
    use threadlab::lab::Probe;
    use threadlab::sync::mutex::Lockable;
    const N: u64 = 1_000_000;
    /// race's increment: read, then write, under the lock.
    fn step(m: &impl Lockable<u64>) {
        m.locked(|count| {
            let v = *count;
            *count = std::hint::black_box(v + 1);
        });
    }
    fn run(threads: u64, step: &(dyn Fn() + Sync)) -> f64 {
        let began = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..N {
                        step();
                    }
                });
            }
        });
        began.elapsed().as_secs_f64() * 1e9 / (threads * N) as f64
    }
    println!(
        "\nrecording: race's hot loop, ns per increment (1 M per thread, median of 24 rounds)"
    );
    let span = std::mem::size_of::<threadlab::lab::record::Span>();
    for threads in [1, 2] {
        let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        let mut spans = 0;
        // Each round runs the four in a new order (every one of the 24 orders once), so no
        // variant always follows the same one.
        let mut orders: Vec<[usize; 4]> = Vec::new();
        for a in 0..4 {
            for b in 0..4 {
                for c in 0..4 {
                    for d in 0..4 {
                        let o = [a, b, c, d];
                        if (0..4).all(|v| o.contains(&v)) {
                            orders.push(o);
                        }
                    }
                }
            }
        }
        for order in &orders {
            for &which in order {
                let t = match which {
                    // std's mutex twice (0 and 3): their difference is the noise floor.
                    0 | 3 => {
                        let m = std::sync::Mutex::new(0u64);
                        run(threads, &|| step(&m))
                    }
                    1 => {
                        // As race does: std's mutex inside, chosen once, outside the loop.
                        let m = threadlab::sync::Mutex::new(0u64, Probe::off("counter"));
                        match m.unrecorded() {
                            Some(plain) => run(threads, &|| step(plain)),
                            None => run(threads, &|| step(&m)),
                        }
                    }
                    _ => {
                        // The probe race's counter has when pictures were asked for.
                        let settings = threadlab::lab::Settings {
                            pictures: true,
                            ..Default::default()
                        };
                        let lab =
                            threadlab::lab::Lab::new(settings, threadlab::lab::Output::silent());
                        let m = threadlab::sync::Mutex::new(0u64, lab.hot_probe("counter"));
                        let t = run(threads, &|| step(&m));
                        spans = lab.recorder().spans().len();
                        t
                    }
                };
                times[which].push(t);
            }
        }
        let [raw, off, on, again] = times.map(|t| median_min(t).0);
        println!(
            "  {threads} thread{}: std Mutex {raw:.2} (again: {again:.2}, {:+.1} %) · recording off {off:.2} ({:+.1} %) · on {on:.2} ({:.1}×)",
            if threads == 1 { " " } else { "s" },
            (again / raw - 1.0) * 100.0,
            (off / raw - 1.0) * 100.0,
            on / raw
        );
        if threads == 2 {
            println!("  recording on kept {spans} spans of {span} bytes each");
        }
    }
}

/// Median and minimum of some figures.
fn median_min(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    let median = if xs.len() % 2 == 0 {
        (xs[mid - 1] + xs[mid]) / 2.0
    } else {
        xs[mid]
    };
    (median, xs[0])
}

/// The floor: `workers` threads sharing one blocking reqwest client, each sending the next
/// URL and dropping the response unread, with no logging and no bookkeeping. Seconds for the
/// whole list.
fn floor_check(urls: &[String], workers: usize) -> anyhow::Result<f64> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(workers)
        .tcp_nodelay(true)
        .no_proxy()
        .build()?;
    let next = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(url) = urls.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let status = client.get(url).send().map(|r| r.status().as_u16());
                    assert_eq!(status.ok(), Some(200), "{url}");
                }
            });
        }
    });
    Ok(started.elapsed().as_secs_f64())
}

/// A plain threaded Python server in the style of `http.server` (HTTP/1.0, headers and body
/// in two writes, Nagle on) answering `/delay/SECS`, when python3 is on the machine; else
/// the same behaviour from threadlab's hostile servers. Returns its base URL and a guard.
fn python_style_server() -> anyhow::Result<(String, Box<dyn std::any::Any>)> {
    const SCRIPT: &str = r#"
import sys, time, http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try: d = float(self.path.split('/delay/')[1].split('?')[0])
        except Exception: d = 0.0
        time.sleep(d)
        body = b'{"delay": %f}\n' % d
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 128
s = S(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    if let Ok(mut child) = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
        }
        if let Ok(port) = line.trim().parse::<u16>() {
            return Ok((format!("http://127.0.0.1:{port}"), Box::new(Kill(child))));
        }
    }
    use threadlab_tools::hostile::{Behaviour, Hostile};
    let h = Hostile::start(Behaviour::TwoWrites)?;
    Ok((h.url(""), Box::new(h)))
}

/// Interleaved runs per url-check figure (median and minimum are shown).
const RUNS: usize = 5;

/// What the url-check figures share: the server, the binary, the scratch lists.
struct UrlBench {
    base: String,
    exe: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl UrlBench {
    /// A list file of `urls` named after `name`.
    fn write(&self, name: &str, urls: &[String]) -> anyhow::Result<std::path::PathBuf> {
        let path = self.dir.join(format!("threadlab-bench-{name}.txt"));
        std::fs::write(&path, urls.join("\n") + "\n")?;
        Ok(path)
    }

    /// `threadlab url-check LIST --json` on `workers`: its summary (every URL must pass).
    fn run(&self, list: &std::path::Path, workers: usize) -> anyhow::Result<serde_json::Value> {
        let out = std::process::Command::new(&self.exe)
            .args([
                "url-check",
                list.to_str().unwrap_or_default(),
                "--json",
                "-q",
            ])
            .args(["--workers", &workers.to_string()])
            .output()?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        anyhow::ensure!(
            report["summary"]["failed"] == 0,
            "url-check failed URLs: {}",
            report["summary"]
        );
        Ok(report["summary"].clone())
    }
}

/// url-check against servers on 127.0.0.1, beside the floor, the tutorials' Python version
/// (requests + ThreadPoolExecutor) and lychee when they are installed. Interleaved runs;
/// median and minimum.
fn url_check_figures() -> anyhow::Result<()> {
    let server = threadlab::serve::Server::start("127.0.0.1:0".parse()?, false)?;
    let bench = UrlBench {
        base: server.base_url(),
        exe: std::env::current_exe()?.with_file_name("threadlab"),
        dir: std::env::temp_dir(),
    };
    anyhow::ensure!(
        bench.exe.exists(),
        "build the threadlab binary first (cargo build --release)"
    );
    makespan(&bench)?;
    throughput(&bench)?;
    memory(&bench)
}

/// Makespan: 100 × /delay/0.1 on 10 workers; ideal 1.0 s. On threadlab's own server (one
/// write, TCP_NODELAY) and on an http.server-style one (two writes, Nagle on).
fn makespan(bench: &UrlBench) -> anyhow::Result<()> {
    let (py_base, _py_server) = python_style_server()?;
    println!(
        "\nurl-check makespan: 100 URLs of /delay/0.1 on 10 workers (ideal 1.000 s; {RUNS} interleaved runs: median, min)"
    );
    for (label, at) in [
        ("threadlab serve", bench.base.as_str()),
        ("http.server style", py_base.as_str()),
    ] {
        let urls: Vec<String> = (0..100).map(|i| format!("{at}/delay/0.1?n={i}")).collect();
        let list = bench.write("delay", &urls)?;
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let wall = bench.run(&list, 10)?["wall_ms"].as_f64();
            ours.push(wall.unwrap_or(f64::NAN) / 1e3);
            floor.push(floor_check(&urls, 10)?);
        }
        let ((om, on), (fm, fmin)) = (median_min(ours), median_min(floor));
        println!("  {label}:");
        println!(
            "    threadlab url-check   median {om:.3} s  min {on:.3} s  ({:+.1} % over the floor's median)",
            (om / fm - 1.0) * 100.0
        );
        println!("    floor                 median {fm:.3} s  min {fmin:.3} s");
        if let Some(py) = python_check(&list, 10) {
            println!("    Python requests       best of 3 {py:.3} s");
        }
        let _ = std::fs::remove_file(list);
    }
    Ok(())
}

/// Throughput: 2 000 fast, distinct URLs on 8 workers, beside the floor, Python and lychee.
fn throughput(bench: &UrlBench) -> anyhow::Result<()> {
    let urls: Vec<String> = (0..2000)
        .map(|i| format!("{}/get?n={i}", bench.base))
        .collect();
    let fast = bench.write("fast", &urls)?;
    println!(
        "\nurl-check throughput: 2 000 fast URLs on 8 workers ({RUNS} interleaved runs: median, min of the time; threadlab and lychee timed as whole processes)"
    );
    let (mut ours, mut floor, mut lychee) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let started = std::time::Instant::now();
        bench.run(&fast, 8)?;
        ours.push(started.elapsed().as_secs_f64());
        floor.push(floor_check(&urls, 8)?);
        if let Some(secs) = lychee_check(&fast, 8) {
            lychee.push(secs);
        }
    }
    let (om, on) = median_min(ours);
    let (fm, _) = median_min(floor);
    println!(
        "  threadlab                        {:>8.0} req/s  (fastest run {:.0})",
        2000.0 / om,
        2000.0 / on
    );
    println!(
        "  floor (in-process, no start-up)  {:>8.0} req/s  (threadlab takes {:.2}x its time)",
        2000.0 / fm,
        om / fm
    );
    if let Some(py) = python_check(&fast, 8) {
        let theirs = 2000.0 / py;
        println!(
            "  Python requests + ThreadPool     {theirs:>8.0} req/s  (threadlab {:.1}x)",
            2000.0 / om / theirs
        );
    }
    if lychee.is_empty() {
        println!("  lychee: not installed (cargo install lychee), comparison skipped");
    } else {
        let (lm, _) = median_min(lychee);
        println!(
            "  lychee (8 concurrent, per-host throttle off, no cache) {:>8.0} req/s  (threadlab {:.2}x)",
            2000.0 / lm,
            lm / om
        );
    }
    let _ = std::fs::remove_file(fast);
    Ok(())
}

/// Memory: 100 000 fast URLs with --json, peak RSS as the OS counts it.
fn memory(bench: &UrlBench) -> anyhow::Result<()> {
    let many_urls: Vec<String> = (0..100_000)
        .map(|i| format!("{}/get?n={i}", bench.base))
        .collect();
    let many = bench.write("many", &many_urls)?;
    let summary = bench.run(&many, 8)?;
    let time_v = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&bench.exe)
        .args([
            "url-check",
            many.to_str().unwrap_or_default(),
            "--json",
            "-q",
        ])
        .args(["--workers", "8"])
        .stdout(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find(|l| l.contains("Maximum resident set size"))
                .and_then(|l| l.rsplit(':').next()?.trim().parse::<f64>().ok())
        });
    println!(
        "\nurl-check memory: 100 000 fast URLs on 8 workers with --json: peak RSS {} (VmHWM {:.1} MB), {:.1} s, {:.0} req/s",
        time_v.map_or("n/a (no /usr/bin/time)".to_string(), |kb| format!(
            "{:.1} MB by /usr/bin/time",
            kb / 1024.0
        )),
        summary["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
        summary["wall_ms"].as_f64().unwrap_or(0.0) / 1e3,
        100_000.0 / (summary["wall_ms"].as_f64().unwrap_or(1.0) / 1e3)
    );
    let _ = std::fs::remove_file(many);
    Ok(())
}

/// Seconds the tutorials' Python checker takes for `list` on `workers` threads (best of 3).
fn python_check(list: &std::path::Path, workers: usize) -> Option<f64> {
    const SCRIPT: &str = r#"
import sys, time, requests, concurrent.futures as cf
urls = [l.strip() for l in open(sys.argv[1]) if l.strip()]
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=int(sys.argv[2])) as ex:
        codes = list(ex.map(lambda u: requests.get(u, timeout=10).status_code, urls))
    assert all(c == 200 for c in codes)
    best = min(best, time.perf_counter() - t)
print(best)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT, list.to_str()?, &workers.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Seconds lychee takes for `list` at `concurrency` (one run), when it is on PATH.
fn lychee_check(list: &std::path::Path, concurrency: usize) -> Option<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..1 {
        let started = std::time::Instant::now();
        let status = std::process::Command::new("lychee")
            .args([
                "--no-progress",
                "--max-retries",
                "0",
                "--host-request-interval",
                "0ms",
            ])
            .args(["--max-concurrency", &concurrency.to_string()])
            .args(["--host-concurrency", &concurrency.to_string()])
            .arg(list)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    Some(best)
}
