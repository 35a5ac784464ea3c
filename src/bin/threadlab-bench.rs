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
