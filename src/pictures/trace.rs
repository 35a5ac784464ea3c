//! `--trace FILE`: the timeline as a Chrome Trace Event file, for ui.perfetto.dev and
//! chrome://tracing.
//!
//! The format ("Trace Event Format", the JSON object form): `{"traceEvents": [...]}`, times
//! in microseconds. What goes in:
//! - process 1, one thread lane per thread (`M` events name them, real names): a slice for
//!   each life (`X`), and inside it each wait, sleep and hold (holds that do not nest, as in
//!   hand-over-hand locking, are on the primitive's lane only);
//! - process 2, a lane per primitive (more when several threads hold it at once, as permits
//!   of a semaphore): a slice per hold, named after the holder;
//! - the narrative lines and the marks as instant events (`i`) on their thread;
//! - counter tracks (`C`) for the quantities a primitive reports (permits available, queue
//!   depth);
//! - flow arrows (`s` → `f`) from each release to the acquire it enabled and from each
//!   `put`/`set` to the wait it ended.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::timeline::{FlowKind, Timeline};
use crate::lab::record::State;

/// The trace exporter: the run's timeline as a Trace Event JSON document.
pub struct Trace;

impl crate::report::export::Exporter for Trace {
    fn export(
        &self,
        report: &crate::report::Report,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        match &report.timeline {
            Some(t) => serde_json::to_writer(out, &document(t)).map_err(std::io::Error::from),
            None => Ok(()),
        }
    }
}

/// Microseconds, as the format wants them (fractions allowed).
fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e9).round() / 1e3
}

const THREADS: u32 = 1;
const PRIMITIVES: u32 = 2;

/// The trace document of `t`.
pub fn document(t: &Timeline) -> Value {
    let mut meta: Vec<Value> = vec![
        json!({"ph": "M", "name": "process_name", "pid": THREADS, "tid": 0,
               "args": {"name": format!("threadlab {}: threads", t.demo)}}),
        json!({"ph": "M", "name": "process_sort_index", "pid": THREADS, "tid": 0,
               "args": {"sort_index": 0}}),
        json!({"ph": "M", "name": "thread_name", "pid": THREADS, "tid": 0,
               "args": {"name": "counters"}}),
    ];
    let mut events: Vec<Value> = Vec::new();
    let tid_of = |name: &str, at: Duration| t.lane_at(name, at).map(|i| i + 1);
    for (i, lane) in t.lanes.iter().enumerate() {
        let tid = i + 1;
        meta.push(
            json!({"ph": "M", "name": "thread_name", "pid": THREADS, "tid": tid,
                         "args": {"name": &*lane.name}}),
        );
        meta.push(
            json!({"ph": "M", "name": "thread_sort_index", "pid": THREADS, "tid": tid,
                         "args": {"sort_index": i}}),
        );
        for (a, b) in &lane.lives {
            events.push(
                json!({"ph": "X", "name": &*lane.name, "cat": "thread", "pid": THREADS,
                               "tid": tid, "ts": us(*a), "dur": us(b.saturating_sub(*a))}),
            );
        }
        // Waits, sleeps and the holds that nest, kept properly nested: a stack of ends.
        let mut items: Vec<&crate::lab::record::Span> = lane.spans.iter().collect();
        items.sort_by(|x, y| x.start.cmp(&y.start).then(y.end.cmp(&x.end)));
        let mut stack: Vec<Duration> = Vec::new();
        for s in items {
            let Some(&(life_a, life_b)) = lane
                .lives
                .iter()
                .find(|(a, b)| s.start >= *a && s.start <= *b)
            else {
                continue;
            };
            let (start, mut end) = (s.start.max(life_a), s.end.min(life_b));
            while stack.last().is_some_and(|top| *top <= start) {
                stack.pop();
            }
            if let Some(top) = stack.last()
                && end > *top
            {
                if s.state == State::Holding {
                    continue; // hand-over-hand: on the primitive's lane only
                }
                end = *top;
            }
            stack.push(end);
            let name = match s.state {
                State::Waiting => format!("wait '{}'", s.primitive),
                State::Holding => format!("hold '{}'", s.primitive),
                State::Sleeping => "sleep (simulated work)".to_string(),
            };
            events.push(json!({"ph": "X", "name": name, "cat": state_name(s.state),
                               "pid": THREADS, "tid": tid, "ts": us(start),
                               "dur": us(end.saturating_sub(start)),
                               "args": {"primitive": &*s.primitive}}));
        }
    }
    // A lane per primitive (more when held by several at once): who held it, when.
    meta.push(
        json!({"ph": "M", "name": "process_name", "pid": PRIMITIVES, "tid": 0,
                     "args": {"name": "primitives: who held each"}}),
    );
    meta.push(
        json!({"ph": "M", "name": "process_sort_index", "pid": PRIMITIVES, "tid": 0,
                     "args": {"sort_index": 1}}),
    );
    let mut next_tid = 1usize;
    for p in &t.primitives {
        let mut holds: Vec<(&Arc<str>, Duration, Duration)> = t
            .lanes
            .iter()
            .flat_map(|l| l.spans.iter())
            .filter(|s| s.state == State::Holding && s.primitive == *p)
            .map(|s| (&s.thread, s.start, s.end))
            .collect();
        if holds.is_empty() {
            continue;
        }
        holds.sort_by_key(|h| (h.1, h.2));
        let mut slots: Vec<(usize, Duration)> = Vec::new();
        for (who, a, b) in holds {
            let slot = match slots.iter().position(|(_, end)| *end <= a) {
                Some(i) => i,
                None => {
                    let tid = next_tid;
                    next_tid += 1;
                    let name = if slots.is_empty() {
                        format!("'{p}'")
                    } else {
                        format!("'{p}' #{}", slots.len() + 1)
                    };
                    meta.push(json!({"ph": "M", "name": "thread_name", "pid": PRIMITIVES,
                                     "tid": tid, "args": {"name": name}}));
                    meta.push(
                        json!({"ph": "M", "name": "thread_sort_index", "pid": PRIMITIVES,
                                     "tid": tid, "args": {"sort_index": tid}}),
                    );
                    slots.push((tid, Duration::ZERO));
                    slots.len() - 1
                }
            };
            slots[slot].1 = b;
            events.push(
                json!({"ph": "X", "name": &**who, "cat": "holder", "pid": PRIMITIVES,
                               "tid": slots[slot].0, "ts": us(a), "dur": us(b.saturating_sub(a)),
                               "args": {"primitive": &**p}}),
            );
        }
    }
    // Narrative lines and marks: instants on their thread.
    for m in &t.narrative {
        if let Some(tid) = tid_of(&m.thread, m.at) {
            events.push(
                json!({"ph": "i", "s": "t", "name": &m.text, "cat": "narrative",
                               "pid": THREADS, "tid": tid, "ts": us(m.at)}),
            );
        }
    }
    for m in &t.marks {
        if let Some(tid) = tid_of(&m.thread, m.at) {
            events.push(json!({"ph": "i", "s": "p", "name": &m.text, "cat": "mark",
                               "pid": THREADS, "tid": tid, "ts": us(m.at)}));
        }
    }
    // Counter tracks.
    for s in &t.samples {
        events.push(
            json!({"ph": "C", "name": &*s.track, "pid": THREADS, "tid": 0,
                           "ts": us(s.at), "args": {"value": s.value}}),
        );
    }
    // Flow arrows: each end sits inside its thread's life slice.
    for (id, f) in t.flows.iter().enumerate() {
        let (Some(from), Some(to)) = (tid_of(&f.from.0, f.from.1), tid_of(&f.to.0, f.to.1)) else {
            continue;
        };
        let name = match f.kind {
            FlowKind::Handover => format!("'{}': release → acquire", f.primitive),
            FlowKind::Signal => format!("'{}': signal → wake", f.primitive),
        };
        events.push(
            json!({"ph": "s", "id": id, "name": &name, "cat": "flow", "pid": THREADS,
                           "tid": from, "ts": us(f.from.1)}),
        );
        events.push(
            json!({"ph": "f", "bp": "e", "id": id, "name": &name, "cat": "flow",
                           "pid": THREADS, "tid": to, "ts": us(f.to.1)}),
        );
    }
    events.sort_by(|a, b| {
        a["ts"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["ts"].as_f64().unwrap_or(0.0))
    });
    meta.extend(events);
    json!({
        "traceEvents": meta,
        "displayTimeUnit": "ms",
        "otherData": {"demo": t.demo, "wall_ms": crate::lab::units::ms(t.wall)},
    })
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Waiting => "waiting",
        State::Holding => "holding",
        State::Sleeping => "sleeping",
    }
}
