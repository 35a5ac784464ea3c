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
