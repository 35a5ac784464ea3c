//! The typed report every demo returns (the JSON contract: README, "The JSON report").
//!
//! Demos fill in params, metrics, checks and tables; the lab fills in what it owns (wall
//! time, pace, seed, per-thread timings and accounting); exporters render it.

pub mod export;

use std::fmt::Display;

use serde::Serialize;
use serde_json::{Map, Value};

/// One expected-versus-observed check: the evidence a demo offers for its point.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// A stable id, `DEMO.CHECK` in kebab-case (`race-condition.mutex.counter-final-value`):
    /// what tests and scripts match on; the sentence may be reworded, the id stays.
    pub id: String,
    /// What is claimed, as a sentence: "mutex counter is exact".
    pub name: String,
    /// What the lesson predicts.
    pub expected: String,
    /// What this run measured.
    pub observed: String,
    /// Whether the observation bears the claim out.
    pub ok: bool,
    /// Why this run cannot judge the claim, when the demo's own measure says the machine
    /// ruled it out (other programs took the cores): then `ok` is false but the report's
    /// verdict is not (no ✘, no exit 1). Absent on every judged check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
}

/// One thread's life and accounting, from the recorder.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadReport {
    /// Name as set at spawn.
    pub name: String,
    /// Start, in ms since the demo began.
    pub started_ms: f64,
    /// Finish, in ms since the demo began; null if it never finished (a daemon cut off).
    pub finished_ms: Option<f64>,
    /// Time spent blocked on instrumented primitives, in ms.
    pub waiting_ms: f64,
    /// Time spent holding instrumented primitives, in ms.
    pub holding_ms: f64,
    /// Time spent in simulated work (`lab::sleep`), in ms.
    pub sleeping_ms: f64,
    /// Time alive and neither waiting nor sleeping, in ms (until the run's end for a thread
    /// that never finished).
    pub running_ms: f64,
    /// Waiting, per primitive, in ms.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub waiting_on: Map<String, Value>,
    /// Holding, per primitive, in ms.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub holding_on: Map<String, Value>,
}

/// One instrumented primitive's accounting, from the recorder: who waited how long, who
/// held it, the most at once. Primitives of the same name (a lock made anew for each run of a
/// demo) are counted together.
#[derive(Debug, Clone, Serialize)]
pub struct PrimitiveReport {
    /// The primitive's name, as the demo gave it.
    pub name: String,
    /// Waits that blocked (a free primitive taken at once is no wait).
    pub waits: usize,
    /// All the waiting, in ms.
    pub total_wait_ms: f64,
    /// The longest single wait, in ms, and the thread that waited it.
    pub longest_wait_ms: f64,
    /// Who waited longest.
    pub longest_waiter: Option<String>,
    /// Holds recorded (locks and semaphore permits taken as guards).
    pub holds: usize,
    /// All the holding, in ms.
    pub total_hold_ms: f64,
    /// The most threads waiting at once.
    pub most_waiting: usize,
    /// The most threads holding at once.
    pub most_holding: usize,
    /// A thread whose longest wait was at least 5× the median of every waiter's longest
    /// (with three or more waiters): starving.
    pub starving: Option<String>,
}

/// A table for the human summary. Cells are already formatted (see `units`); the numbers
/// themselves live in `metrics` or in the demo's own fields.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Printed above the table, when set.
    pub title: Option<String>,
    /// Column headings.
    pub headers: Vec<String>,
    /// Rows of cells, one per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            title: None,
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }
    /// Sets the title.
    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    /// Appends a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

/// The schedule a scheduled run followed (JSON `schedule`).
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleReport {
    /// The strategy, as `--schedule` takes it (`random:42`, `pct:7:3`, `default`).
    pub strategy: String,
    /// The replay token: `--schedule TOKEN` runs this run again, exactly.
    pub token: String,
    /// Scheduling points passed.
    pub points: u32,
    /// Choices that preempted a thread that could have gone on.
    pub preemptions: u32,
}

/// What a run came to, in the lesson's words: the key of an exploration's census (race:
/// the final value; deadlock: the cycle or done) and whether it is the failure the lesson
/// is about (`--search` stops at the first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RunOutcome {
    /// The outcome, short: "final 1 (1 lost)", "cycle: Teller-1 → 'B' → Teller-2 → 'A'".
    pub text: String,
    /// Whether it is the lesson's failure (a lost update, a deadlock, a wrong wake-up).
    pub bug: bool,
}

/// What a demo run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The demo's canonical name.
    pub demo: String,
    /// Its parameters, including `pace` and `seed`.
    pub params: Map<String, Value>,
    /// Wall time of the whole run, ms.
    pub wall_ms: f64,
    /// Every thread the lab spawned.
    pub threads: Vec<ThreadReport>,
    /// Measured numbers under stable dotted names.
    pub metrics: Map<String, Value>,
    /// Expected versus observed.
    pub checks: Vec<Check>,
    /// All checks hold.
    pub ok: bool,
    /// A SIGINT or SIGTERM stopped the run early: what it holds is partial.
    pub interrupted: bool,
    /// Plain-language remarks for the summary: what was seen, what to try next.
    pub notes: Vec<String>,
    /// Claims this run's flags made impossible to show (see [`Report::cannot_show`]): not
    /// checked, and said so in `notes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_shown: Vec<String>,
    /// The pictures' model, when `--timeline`, `--trace` or `--svg` asked for it.
    #[serde(skip)]
    pub timeline: Option<std::sync::Arc<crate::pictures::timeline::Timeline>>,
    /// Every instrumented primitive's accounting (see [`PrimitiveReport`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub primitives: Vec<PrimitiveReport>,
    /// Every deadlock cycle the runtime's detector found (see `lab::waitgraph`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deadlocks: Vec<crate::lab::waitgraph::Cycle>,
    /// The schedule of a scheduled run (`--schedule`): strategy, replay token, points,
    /// preemptions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleReport>,
    /// What the run came to, in the lesson's words (see [`RunOutcome`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunOutcome>,
    /// Demo-specific structured fields (url-check's `summary`, race's `distribution`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Tables for the human summary.
    #[serde(skip)]
    pub tables: Vec<Table>,
    /// A `results` array was already written to stdout as the run went (url-check with
    /// `--json`, see [`super::export::ResultStream`]): the JSON exporter finishes that document.
    #[serde(skip)]
    pub results_streamed: bool,
    /// The evidence goes to stderr: stdout carries results in a format of their own
    /// (url-check `--output-format compact|json|markdown|junit`).
    #[serde(skip)]
    pub summary_to_stderr: bool,
    /// Exit code other than the default (0 when ok, 1 otherwise): url-check's 2 and 130.
    #[serde(skip)]
    pub exit_code: Option<i32>,
}

impl Report {
    /// An empty report for `demo`.
    pub fn new(demo: &str) -> Self {
        Self {
            demo: demo.to_string(),
            params: Map::new(),
            wall_ms: 0.0,
            threads: Vec::new(),
            metrics: Map::new(),
            checks: Vec::new(),
            ok: true,
            interrupted: false,
            notes: Vec::new(),
            not_shown: Vec::new(),
            deadlocks: Vec::new(),
            schedule: None,
            outcome: None,
            timeline: None,
            primitives: Vec::new(),
            results_streamed: false,
            summary_to_stderr: false,
            extra: Map::new(),
            tables: Vec::new(),
            exit_code: None,
        }
    }

    /// Says what the run came to (see [`RunOutcome`]).
    pub fn outcome(&mut self, text: impl Into<String>, bug: bool) {
        self.outcome = Some(RunOutcome {
            text: text.into(),
            bug,
        });
    }

    /// Stores the demo's arguments as its params.
    pub fn params_from(&mut self, args: &impl Serialize) {
        if let Ok(Value::Object(map)) = serde_json::to_value(args) {
            self.params.extend(map);
        }
    }

    /// Records a measured number.
    pub fn metric(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.metrics.insert(name.into(), value.into());
    }

    /// Records a check with its expectation and observation.
    ///
    /// The rule every demo follows (CONTRIBUTING.md, "How a check must measure"): the
    /// observation is measured from outside the thing under test (the threads count for
    /// themselves, an observer timestamps, the OS reports, a second data path recomputes),
    /// never read back from the primitive or compared with its own copy; the name says the
    /// quantity, `expected` the bound, `observed` the measured value. A check that could not
    /// turn into ✘ when its primitive is broken does not belong here.
    pub fn check(
        &mut self,
        id: impl AsRef<str>,
        name: impl Into<String>,
        expected: impl Display,
        observed: impl Display,
        ok: bool,
    ) {
        self.ok &= ok;
        let id = format!("{}.{}", self.demo, kebab(id.as_ref()));
        debug_assert!(
            self.checks.iter().all(|c| c.id != id),
            "two checks share the id {id}"
        );
        self.checks.push(Check {
            id,
            name: name.into(),
            expected: expected.to_string(),
            observed: observed.to_string(),
            ok,
            inconclusive: None,
        });
    }

    /// Records a check that this run could not judge: the claim did not hold, and the
    /// demo's own measure of the machine names `why` (other programs took the cores). It
    /// reads "inconclusive" with the reason, and leaves the verdict and the exit code alone.
    /// Only for a reason the demo measured, never to excuse a failure it cannot explain.
    pub fn inconclusive(
        &mut self,
        id: impl AsRef<str>,
        name: impl Into<String>,
        expected: impl Display,
        observed: impl Display,
        why: impl Into<String>,
    ) {
        let ok = self.ok;
        self.check(id, name, expected, observed, false);
        self.ok = ok;
        if let Some(c) = self.checks.last_mut() {
            c.inconclusive = Some(why.into());
        }
    }

    /// A check, or, where it failed and the demo measured a reason the machine gave
    /// (`doubt`), the same claim marked [inconclusive](Self::inconclusive) with that reason.
    /// On a quiet machine `doubt` is `None` and the check is strict.
    pub fn judged(
        &mut self,
        doubt: Option<String>,
        id: impl AsRef<str>,
        name: impl Into<String>,
        expected: impl Display,
        observed: impl Display,
        ok: bool,
    ) {
        match doubt {
            Some(why) if !ok => self.inconclusive(id, name, expected, observed, why),
            _ => self.check(id, name, expected, observed, ok),
        }
    }

    /// Records a check that `observed == expected`.
    pub fn check_eq<T: PartialEq + Display>(
        &mut self,
        id: impl AsRef<str>,
        name: impl Into<String>,
        expected: T,
        observed: T,
    ) {
        let ok = expected == observed;
        self.check(id, name, expected, observed, ok);
    }

    /// Adds a note for the summary.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The flags ruled the lesson out: instead of a ✘ that would blame the lesson, a note
    /// that says what this setting cannot show and why (with the measured reason), listed in
    /// `not_shown` for scripts. Only for a claim the flags made impossible, never for one
    /// the run merely failed.
    pub fn cannot_show(&mut self, what: impl Into<String>, why: impl Display) {
        let what = what.into();
        self.notes
            .push(format!("This setting cannot show {what}: {why}."));
        self.not_shown.push(what);
    }

    /// Records a worker-count sweep: `sweep.{workers}.ms` and `sweep.{workers}.speedup`
    /// metrics, and a table with a bar chart of the speedups. Each row is (workers, time,
    /// speedup); `ideal` gives the ideal speedup for a worker count, when there is one.
    pub fn sweep(
        &mut self,
        title: impl Into<String>,
        rows: &[(usize, std::time::Duration, f64)],
        ideal: Option<&dyn Fn(usize) -> f64>,
    ) {
        use crate::lab::units;
        let best = rows.iter().map(|r| r.2).fold(0.0, f64::max);
        let mut headers = vec!["workers", "time", "speedup"];
        if ideal.is_some() {
            headers.push("ideal");
        }
        headers.push("");
        let mut table = Table::new(headers).titled(title);
        for &(workers, took, speedup) in rows {
            self.metric(format!("sweep.{workers}.ms"), units::ms(took));
            self.metric(
                format!("sweep.{workers}.speedup"),
                (speedup * 100.0).round() / 100.0,
            );
            let mut cells = vec![
                workers.to_string(),
                units::duration(took),
                units::speedup(speedup),
            ];
            if let Some(ideal) = ideal {
                cells.push(units::speedup(ideal(workers)));
            }
            cells.push(units::bar(speedup, best, 30));
            table.row(cells);
        }
        self.tables.push(table);
    }

    /// Marks the report as cut short by `signal`: its figures are partial.
    pub fn interrupt(&mut self, signal: &str) {
        if !self.interrupted {
            self.interrupted = true;
            self.notes.insert(
                0,
                format!(
                    "Interrupted by {signal}: the run stopped early and these results are partial."
                ),
            );
        }
    }

    /// The process exit code this report calls for.
    pub fn exit_code(&self) -> i32 {
        self.exit_code.unwrap_or(if self.ok { 0 } else { 1 })
    }

    /// A metric as u64, for tests and summaries.
    pub fn metric_u64(&self, name: &str) -> Option<u64> {
        self.metrics.get(name).and_then(Value::as_u64)
    }

    /// A metric as f64.
    pub fn metric_f64(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).and_then(Value::as_f64)
    }

    /// The check with this id (without the demo's prefix: `mutex.counter-final-value`).
    pub fn check_id(&self, id: &str) -> Option<&Check> {
        let full = format!("{}.{id}", self.demo);
        self.checks.iter().find(|c| c.id == full)
    }
}

/// A check id in kebab-case: lower-case letters, digits, `.` between parts and `-` within
/// them (a part made at run time, such as a strategy's name, is folded the same way).
fn kebab(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() || c == '.' {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with(['-', '.']))) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').replace("-.", ".")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_folded_to_kebab_case() {
        assert_eq!(
            super::kebab("local-sum.Counter final value"),
            "local-sum.counter-final-value"
        );
        assert_eq!(super::kebab("Arc'd data.result"), "arc-d-data.result");
        assert_eq!(super::kebab("--tail--"), "tail");
    }
}
