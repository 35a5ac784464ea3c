//! threadlab's developer tools, kept out of what `cargo install` ships: the benchmarks
//! (`threadlab-bench`, `make bench`), the stress run (`threadlab-stress`, `make stress`), the
//! deliberate breaks (`threadlab-mutants`, `make mutants`), and [`hostile`]: servers that
//! misbehave on purpose, for the tests and the stress run.

// The servers misbehave in real time: they sleep for real.
#![allow(clippy::disallowed_methods)]

pub mod counting;
pub mod hostile;
