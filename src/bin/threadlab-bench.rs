//! `make bench`: the figures that matter, measured side by side in one run.
//! Not a test: nothing here asserts timings; it prints them for the README.

use threadlab::demos::race_condition::{self, Strategy, Window};
use threadlab::lab::Lab;

fn main() -> anyhow::Result<()> {
    println!(
        "threadlab bench — {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    race_ns_per_increment()?;
    pool_overhead()?;
    url_check_figures()?;
    Ok(())
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

/// url-check against threadlab's own server on 127.0.0.1, beside the tutorials' Python
/// version (requests + ThreadPoolExecutor) and lychee when they are installed.
fn url_check_figures() -> anyhow::Result<()> {
    use std::path::Path;
    use threadlab::serve::Server;
    let server = Server::start("127.0.0.1:0".parse()?, false)?;
    let base = server.base_url();
    let exe = std::env::current_exe()?.with_file_name("threadlab");
    anyhow::ensure!(
        exe.exists(),
        "build the threadlab binary first (cargo build --release)"
    );
    let dir = std::env::temp_dir();
    let write = |name: &str, urls: Vec<String>| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(format!("threadlab-bench-{name}.txt"));
        std::fs::write(&path, urls.join("\n") + "\n")?;
        Ok(path)
    };
    let threadlab_run = |list: &Path, workers: usize| -> anyhow::Result<serde_json::Value> {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "url-check",
            list.to_str().unwrap_or_default(),
            "--json",
            "-q",
            "--workers",
            &workers.to_string(),
        ]);
        let out = cmd.output()?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        anyhow::ensure!(
            report["summary"]["failed"] == 0,
            "url-check failed URLs: {}",
            report["summary"]
        );
        Ok(report["summary"].clone())
    };

    // Makespan: 100 × /delay/0.1 on 10 workers; ideal 1.0 s.
    let delays = write(
        "delay",
        (0..100)
            .map(|i| format!("{base}/delay/0.1?n={i}"))
            .collect(),
    )?;
    let best = (0..3)
        .map(|_| threadlab_run(&delays, 10).map(|s| s["wall_ms"].as_f64().unwrap_or(f64::NAN)))
        .collect::<anyhow::Result<Vec<f64>>>()?
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    println!(
        "\nurl-check makespan: 100 URLs of /delay/0.1 on 10 workers (ideal 1.000 s; best of 3)"
    );
    println!(
        "  threadlab                        {:.3} s  ({:+.1} % over ideal)",
        best / 1e3,
        (best / 1e3 - 1.0) * 100.0
    );
    if let Some(py) = python_check(&delays, 10) {
        println!("  Python requests + ThreadPool     {py:.3} s");
    }

    // Throughput: 2 000 fast, distinct URLs on 8 workers.
    let fast = write(
        "fast",
        (0..2000).map(|i| format!("{base}/get?n={i}")).collect(),
    )?;
    println!(
        "\nurl-check throughput: 2 000 fast URLs on 8 workers (best of 3; threadlab and lychee timed as whole processes)"
    );
    let mut best = f64::INFINITY;
    let mut inner = f64::INFINITY;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let summary = threadlab_run(&fast, 8)?;
        best = best.min(started.elapsed().as_secs_f64());
        inner = inner.min(summary["wall_ms"].as_f64().unwrap_or(f64::NAN) / 1e3);
    }
    let ours = 2000.0 / best;
    println!(
        "  threadlab                        {ours:>8.0} req/s  (checking alone: {:.0} req/s)",
        2000.0 / inner
    );
    if let Some(py) = python_check(&fast, 8) {
        let theirs = 2000.0 / py;
        println!(
            "  Python requests + ThreadPool     {theirs:>8.0} req/s  (threadlab {:.1}x)",
            ours / theirs
        );
    }
    match lychee_check(&fast, 8) {
        Some(secs) => {
            let theirs = 2000.0 / secs;
            println!(
                "  lychee (8 concurrent, per-host throttle off, no cache) {theirs:>8.0} req/s  (threadlab {:.2}x)",
                ours / theirs
            );
        }
        None => println!("  lychee: not installed (cargo install lychee), comparison skipped"),
    }

    // Memory: 100 000 fast URLs.
    let many = write(
        "many",
        (0..100_000).map(|i| format!("{base}/get?n={i}")).collect(),
    )?;
    let summary = threadlab_run(&many, 8)?;
    println!(
        "\nurl-check memory: 100 000 fast URLs on 8 workers: peak RSS {:.1} MB (VmHWM, read after the results are serialized), {:.1} s, {:.0} req/s",
        summary["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
        summary["wall_ms"].as_f64().unwrap_or(0.0) / 1e3,
        100_000.0 / (summary["wall_ms"].as_f64().unwrap_or(1.0) / 1e3)
    );
    for p in [delays, fast, many] {
        let _ = std::fs::remove_file(p);
    }
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

/// Seconds lychee takes for `list` at `concurrency` (best of 3), when it is on PATH.
fn lychee_check(list: &std::path::Path, concurrency: usize) -> Option<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
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
