//! What the threads did, as one picture: the [`Timeline`] built from the recorder after a
//! run, and its terminal drawing (`--timeline`). The Perfetto trace (`super::trace`) and the
//! SVG (`super::svg`) draw the same model.
//!
//! A lane per thread, in spawn order, MainThread first; each lane is a list of spans
//! (waiting for or holding a primitive, sleeping) inside the thread's life. Causes are
//! joined to their effects as [`Flow`]s: a release to the acquire it enabled (the waiter's
//! wait ends as it starts holding), a `put` or `set` to the wait it ended. The marks are the
//! moments worth pointing at: what a demo marked (a lost update, a barrier phase, a timer
//! firing), every deadlock the detector found, and each primitive's first hand-over.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::lab::record::{Moment, MomentKind, Recorder, Sample, Span, State};
use crate::lab::units;
use crate::lab::waitgraph::{Cycle, Kind};

/// One thread's lane.
#[derive(Debug, Clone)]
pub struct Lane {
    /// The thread's name (threads that share a name share a lane: their lives do not
    /// overlap in any demo).
    pub name: Arc<str>,
    /// When it was alive: (start, end); a thread still running at the end ends there.
    pub lives: Vec<(Duration, Duration)>,
    /// Its waits, holds and sleeps, by start.
    pub spans: Vec<Span>,
}

/// What caused a wait to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// A release, and the acquire it enabled.
    Handover,
    /// A `put`, `set` or notify, and the wait it ended.
    Signal,
}

/// An arrow from a cause on one thread to its effect on another.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Hand-over or signal.
    pub kind: FlowKind,
    /// The primitive.
    pub primitive: Arc<str>,
    /// The thread that released or signalled, and when.
    pub from: (Arc<str>, Duration),
    /// The thread whose wait it ended, and when.
    pub to: (Arc<str>, Duration),
}

/// A moment worth pointing at.
#[derive(Debug, Clone)]
pub struct MarkAt {
    /// When.
    pub at: Duration,
    /// On which thread.
    pub thread: Arc<str>,
    /// What happened.
    pub text: String,
}

/// Everything the pictures draw.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The demo's name.
    pub demo: String,
    /// How long the run took.
    pub wall: Duration,
    /// MainThread first, then the lab's threads in spawn order.
    pub lanes: Vec<Lane>,
    /// Every primitive waited for or held, in the order first used: the legend.
    pub primitives: Vec<Arc<str>>,
    /// The moments worth pointing at, by time.
    pub marks: Vec<MarkAt>,
    /// The narrative lines, as recorded.
    pub narrative: Vec<Moment>,
    /// Quantities that change (permits available, queue depth).
    pub samples: Vec<Sample>,
    /// Causes and their effects.
    pub flows: Vec<Flow>,
    /// Moments past the recorder's bound, not kept (so not drawn).
    pub moments_dropped: usize,
    /// The demo's parts, as its main thread announced them ("Part 2: …"): when each began
    /// and its header. Lanes never join threads of two parts; the pictures band them.
    pub parts: Vec<(Duration, String)>,
    /// The deadlock cycles the detector found, to draw as arrows between their waits.
    pub cycles: Vec<Cycle>,
    /// The lesson's own steps (race's reads and writes), to draw as ticks on the lanes.
    pub steps: Vec<Moment>,
}

/// Each part's start and header, from the main thread's narrative (a part announced twice,
/// as lock's Part 1 is, starts at its first line).
fn parts_of(moments: &[Moment]) -> Vec<(Duration, String)> {
    let mut parts: Vec<(Duration, u32, String)> = Vec::new();
    for m in moments
        .iter()
        .filter(|m| m.kind == MomentKind::Narrative && &*m.thread == "MainThread")
    {
        if let Some(n) = crate::lab::pause::part_number(&m.text)
            && parts.last().is_none_or(|p| p.1 != n)
        {
            let header = m.text.split(';').next().unwrap_or(&m.text).to_string();
            parts.push((m.at, n, header));
        }
    }
    parts.into_iter().map(|(at, _, h)| (at, h)).collect()
}

/// A part's short name, "Part 2", from its header.
pub fn part_label(header: &str) -> &str {
    header.split([':', ',']).next().unwrap_or(header)
}

/// Which part (its index in `parts`) was under way at `at`.
pub fn part_at(parts: &[(Duration, String)], at: Duration) -> Option<usize> {
    parts.iter().rposition(|(start, _)| *start <= at)
}

/// How close (in time) a wait's end and a hold's start must be to be one acquire.
const SAME_MOMENT: Duration = Duration::from_millis(2);

/// MainThread's lane, then a lane per thread in spawn order; a later thread of the same
/// name shares the lane when their lives do not overlap (the tellers of each part of
/// deadlock), and gets a lane of its own when they do (worker-pool's daemon workers, still
/// alive when the fixed pool's workers of the same names start). Returns the lanes and each
/// recorder slot's lane.
/// Under `threadlab py` the lab's own main thread only watches the program: no lane (the
/// program's MainThread is a stand-in, with a lane of its own like every other thread).
fn thread_lanes(
    rec: &Recorder,
    wall: Duration,
    parts: &[(Duration, String)],
    main_lane: bool,
) -> (Vec<Lane>, Vec<usize>) {
    let mut lanes = Vec::new();
    if main_lane {
        lanes.push(Lane {
            name: "MainThread".into(),
            lives: vec![(Duration::ZERO, wall)],
            spans: Vec::new(),
        });
    }
    let mut lane_of_slot: Vec<usize> = Vec::new();
    for t in rec.threads() {
        let life = (t.started, t.finished.unwrap_or(wall).max(t.started));
        let free = lanes.iter().position(|l| {
            *l.name == *t.name
                && &*l.name != "MainThread"
                && l.lives.iter().all(|(a, b)| life.1 < *a || life.0 > *b)
                // Part 1's tellers are not Part 2's, whatever their names.
                && part_at(parts, l.lives[0].0) == part_at(parts, life.0)
        });
        match free {
            Some(i) => lanes[i].lives.push(life),
            None => lanes.push(Lane {
                name: t.name.as_str().into(),
                lives: vec![life],
                spans: Vec::new(),
            }),
        }
        lane_of_slot.push(free.unwrap_or(lanes.len() - 1));
    }
    (lanes, lane_of_slot)
}

/// Puts each span (sorted by time) on its thread's lane, adding a lane for a thread the lab
/// did not spawn (alive while it acted). Returns the primitives for the legend: in name
/// order, numbers by value (fork-2 before fork-10); the joins, not a primitive of the
/// lesson, last.
fn place_spans(lanes: &mut Vec<Lane>, lane_of_slot: &[usize], spans: &[Span]) -> Vec<Arc<str>> {
    let mut primitives: Vec<Arc<str>> = Vec::new();
    for s in spans {
        if s.state != State::Sleeping && !primitives.contains(&s.primitive) {
            primitives.push(Arc::clone(&s.primitive));
        }
        let known = match s.slot {
            Some(slot) => lane_of_slot.get(slot).copied(),
            None => lanes.iter().position(|l| l.name == s.thread),
        };
        let i = known.unwrap_or_else(|| {
            lanes.push(Lane {
                name: Arc::clone(&s.thread),
                lives: vec![(s.start, s.end)],
                spans: Vec::new(),
            });
            lanes.len() - 1
        });
        let lane = &mut lanes[i];
        if s.slot.is_none() && &*lane.name != "MainThread" {
            let life = &mut lane.lives[0];
            *life = (life.0.min(s.start), life.1.max(s.end));
        }
        lane.spans.push(s.clone());
    }
    primitives.sort_by_key(|p| (&**p == "join", natural_key(p)));
    primitives
}

/// The mark of a deadlock found: who, over what, when it formed.
fn deadlock_mark(c: &Cycle) -> MarkAt {
    let quoted: Vec<String> = c.locks.iter().map(|l| format!("'{l}'")).collect();
    let text = match c.kind {
        Kind::Cycle if c.threads.len() == 2 => format!(
            "deadlock: {} ⇄ {} over {}",
            c.threads[0],
            c.threads[1],
            quoted.join(", ")
        ),
        Kind::Cycle => format!(
            "deadlock: a ring {} → … over {}",
            c.threads.join(" → "),
            quoted.join(", ")
        ),
        Kind::Stall => format!(
            "stall: {} waits for {}, nobody left to signal",
            c.threads.first().map_or("", String::as_str),
            quoted.first().map_or("", String::as_str)
        ),
    };
    MarkAt {
        at: Duration::from_secs_f64(c.at_ms / 1000.0),
        thread: c
            .threads
            .first()
            .map_or_else(|| "?".into(), |t| t.as_str().into()),
        text,
    }
}

/// Each primitive's first hand-over: a release, and the acquire it enabled.
fn first_handovers(flows: &[Flow]) -> Vec<MarkAt> {
    let mut seen: Vec<&str> = Vec::new();
    let mut marks = Vec::new();
    for f in flows.iter().filter(|f| f.kind == FlowKind::Handover) {
        if !seen.contains(&&*f.primitive) {
            seen.push(&f.primitive);
            marks.push(MarkAt {
                at: f.to.1,
                thread: Arc::clone(&f.to.0),
                text: format!(
                    "'{}': {} released, {} acquired",
                    f.primitive, f.from.0, f.to.0
                ),
            });
        }
    }
    marks
}

impl Timeline {
    /// The picture of a run recorded by `rec`, which lasted `wall`.
    pub fn build(demo: &str, rec: &Recorder, deadlocks: &[Cycle], wall: Duration) -> Self {
        let moments = rec.moments();
        let parts = parts_of(&moments);
        let rec_steps: Vec<Moment> = moments
            .iter()
            .filter(|m| m.kind == MomentKind::Step)
            .cloned()
            .collect();
        let (mut lanes, lane_of_slot) = thread_lanes(rec, wall, &parts, demo != "py");
        let mut spans = rec.spans();
        spans.sort_by_key(|s| (s.start, s.end));
        let primitives = place_spans(&mut lanes, &lane_of_slot, &spans);
        let flows = flows(&spans, &moments);
        let mut marks: Vec<MarkAt> = moments
            .iter()
            .filter(|m| m.kind == MomentKind::Mark)
            .map(|m| MarkAt {
                at: m.at,
                thread: Arc::clone(&m.thread),
                text: m.text.clone(),
            })
            .collect();
        marks.extend(deadlocks.iter().map(deadlock_mark));
        marks.extend(first_handovers(&flows));
        marks.sort_by_key(|m| m.at);
        let mut samples = rec.samples();
        samples.sort_by_key(|s| s.at);
        Self {
            demo: demo.to_string(),
            wall,
            lanes,
            primitives,
            marks,
            narrative: moments
                .into_iter()
                .filter(|m| m.kind == MomentKind::Narrative)
                .collect(),
            samples,
            flows,
            moments_dropped: rec.moments_dropped(),
            parts,
            steps: rec_steps,
            cycles: deadlocks
                .iter()
                .filter(|c| c.kind == Kind::Cycle)
                .cloned()
                .collect(),
        }
    }

    /// The lane of the thread named `name` alive at `at` (the first of that name if none
    /// was): two threads may share a name.
    pub fn lane_at(&self, name: &str, at: Duration) -> Option<usize> {
        let named = || {
            self.lanes
                .iter()
                .enumerate()
                .filter(|(_, l)| &*l.name == name)
        };
        named()
            .find(|(_, l)| l.lives.iter().any(|(a, b)| at >= *a && at <= *b))
            .or_else(|| named().next())
            .map(|(i, _)| i)
    }

    /// The letter of primitive `name` in the legend: a, b, c … (then `?`).
    pub fn letter(&self, name: &str) -> char {
        self.primitives
            .iter()
            .position(|p| &**p == name)
            .map_or('?', letter)
    }
}

/// Possible causes on one primitive (a release, a `put`): when, by whom, of what kind.
type Causes<'a> = Vec<(Duration, &'a Arc<str>, &'a str)>;

/// Joins each wait's end to its cause. A wait for a signal that was answered: the latest
/// signal by another thread of a kind that answers it (a `get` is answered by a `put` or a
/// `close`, never by another consumer's `get`); one that gave up (timed out, refused) has
/// no cause. A wait that ends as the same thread starts holding the primitive: the latest
/// release of it by another thread. Any other wait: the latest signal by another thread.
fn flows(spans: &[Span], moments: &[Moment]) -> Vec<Flow> {
    let mut releases: HashMap<&str, Causes> = HashMap::new();
    let mut holds: HashMap<(&str, &str), Vec<Duration>> = HashMap::new();
    for s in spans.iter().filter(|s| s.state == State::Holding) {
        releases
            .entry(&s.primitive)
            .or_default()
            .push((s.end, &s.thread, "release"));
        holds
            .entry((&s.primitive, &s.thread))
            .or_default()
            .push(s.start);
    }
    for v in releases.values_mut() {
        v.sort_by_key(|(t, _, _)| *t);
    }
    // Signals by primitive, each with its kind (`put`, `get`, `set`: the text's first word).
    let mut signals: HashMap<&str, Causes> = HashMap::new();
    for m in moments.iter().filter(|m| m.kind == MomentKind::Signal) {
        if let Some(p) = &m.primitive {
            let verb = m.text.split_whitespace().next().unwrap_or("");
            signals.entry(p).or_default().push((m.at, &m.thread, verb));
        }
    }
    for v in signals.values_mut() {
        v.sort_by_key(|(t, _, _)| *t);
    }
    // The latest event in `list` by another thread than `me`, at or before `t`, of a kind
    // `accept`s.
    let latest = |list: Option<&Causes>, t: Duration, me: &str, accept: &dyn Fn(&str) -> bool| {
        let list = list?;
        let upto = list.partition_point(|(at, _, _)| *at <= t + SAME_MOMENT);
        list[..upto]
            .iter()
            .rev()
            .find(|(_, who, verb)| &***who != me && accept(verb))
            .map(|(at, who, _)| (Arc::clone(who), *at))
    };
    // How signal waits ended (answered, and by which kinds of signal; or given up), by
    // primitive and thread.
    let mut ends: HashMap<(&str, &str), Vec<&Moment>> = HashMap::new();
    for m in moments
        .iter()
        .filter(|m| matches!(m.kind, MomentKind::GaveUp | MomentKind::Answered))
    {
        if let Some(p) = &m.primitive {
            ends.entry((&**p, &*m.thread)).or_default().push(m);
        }
    }
    // Recorded just before the span closes, so inside it (however late the thread ran).
    let end_of = |w: &Span| {
        ends.get(&(&*w.primitive, &*w.thread))?
            .iter()
            .find(|m| m.at >= w.start && m.at <= w.end + SAME_MOMENT)
            .copied()
    };
    let mut out = Vec::new();
    for w in spans.iter().filter(|s| s.state == State::Waiting) {
        let acquired = holds
            .get(&(&*w.primitive, &*w.thread))
            .is_some_and(|starts| {
                let i = starts.partition_point(|s| *s + SAME_MOMENT < w.end);
                starts.get(i).is_some_and(|s| *s <= w.end + SAME_MOMENT)
            });
        let signals_of = signals.get(&*w.primitive);
        let cause = match end_of(w) {
            // Timed out or refused: nothing answered it.
            Some(m) if m.kind == MomentKind::GaveUp => None,
            // Answered: by the latest signal of a kind that answers it (a `get` by a `put`
            // or a `close`, never by another consumer's `get`).
            Some(m) => {
                let accept = |verb: &str| m.text.split_whitespace().any(|a| a == verb);
                latest(signals_of, w.end, &w.thread, &accept).map(|c| (FlowKind::Signal, c))
            }
            None if acquired => latest(releases.get(&*w.primitive), w.end, &w.thread, &|_| true)
                .map(|c| (FlowKind::Handover, c)),
            None => latest(signals_of, w.end, &w.thread, &|_| true).map(|c| (FlowKind::Signal, c)),
        };
        if let Some((kind, (who, at))) = cause
            && at >= w.start.saturating_sub(SAME_MOMENT)
        {
            out.push(Flow {
                kind,
                primitive: Arc::clone(&w.primitive),
                from: (who, at.min(w.end)),
                to: (Arc::clone(&w.thread), w.end),
            });
        }
    }
    out
}

/// What one cell of a lane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Not alive.
    Gone,
    /// Running (alive, not waiting, not sleeping).
    Running,
    /// In simulated work.
    Sleeping,
    /// Waiting for primitive i.
    Waiting(usize),
    /// Holding primitive i.
    Holding(usize),
}

/// Lane `lane` cut into `cols` cells over `wall`: each cell shows what took most of it, a
/// wait or a hold winning when it took a quarter of the cell or more (so short waits in a
/// long run still show).
pub fn cells(t: &Timeline, lane: &Lane, cols: usize) -> Vec<Cell> {
    let n = t.primitives.len();
    let dt = t.wall.as_secs_f64().max(1e-9) / cols as f64;
    // Per cell: waiting per primitive, holding per primitive, sleeping, alive (seconds).
    let mut acc = vec![vec![0.0f64; 2 * n + 2]; cols];
    let mut add = |a: Duration, b: Duration, slot: usize| {
        let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
        if b <= a {
            // An instant: a sliver, so a wait that took no time still shows where it was.
            let c = ((a / dt) as usize).min(cols - 1);
            acc[c][slot] += dt * 0.01;
            return;
        }
        let first = ((a / dt) as usize).min(cols - 1);
        let last = ((b / dt) as usize).min(cols - 1);
        for (c, cell) in acc.iter_mut().enumerate().take(last + 1).skip(first) {
            let lo = a.max(c as f64 * dt);
            let hi = b.min((c + 1) as f64 * dt);
            if hi > lo {
                cell[slot] += hi - lo;
            }
        }
    };
    for (a, b) in &lane.lives {
        add(*a, *b, 2 * n + 1);
    }
    for s in &lane.spans {
        let slot = match s.state {
            State::Sleeping => 2 * n,
            State::Waiting | State::Holding => {
                let Some(p) = t.primitives.iter().position(|p| *p == s.primitive) else {
                    continue;
                };
                if s.state == State::Waiting { p } else { n + p }
            }
        };
        add(s.start, s.end, slot);
    }
    let mut out: Vec<Cell> = acc
        .iter()
        .map(|c| {
            let alive = c[2 * n + 1];
            if alive < dt * 0.25 {
                return Cell::Gone;
            }
            let best = |range: std::ops::Range<usize>| {
                range
                    .map(|i| (i, c[i]))
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                    .filter(|(_, v)| *v >= dt * 0.25)
            };
            if let Some((i, _)) = best(0..n) {
                Cell::Waiting(i)
            } else if let Some((i, _)) = best(n..2 * n) {
                Cell::Holding(i - n)
            } else if c[2 * n] >= alive * 0.5 {
                Cell::Sleeping
            } else {
                Cell::Running
            }
        })
        .collect();
    // A wait that closed a cycle is drawn, however short: the cell of the moment shows it.
    for c in drawn_cycles(t) {
        let at = Duration::from_secs_f64(c.at_ms / 1e3);
        let Some(i) = c.threads.iter().position(|who| **who == *lane.name) else {
            continue;
        };
        if !lane.lives.iter().any(|(a, b)| at >= *a && at <= *b) {
            continue;
        }
        let lock = c.locks.get(i).map(|l| l.to_string()).unwrap_or_default();
        let lock = lock.trim_matches('\'');
        if let Some(p) = t.primitives.iter().position(|p| &**p == lock) {
            let col = ((at.as_secs_f64() / dt) as usize).min(cols - 1);
            out[col] = Cell::Waiting(p);
        }
    }
    out
}

/// The deadlock cycles the pictures draw: every one the detector broke (it named a
/// victim), and the first of each part it only observed (timed waits end the others; drawn
/// all, they would hide each other).
pub fn drawn_cycles(t: &Timeline) -> Vec<&Cycle> {
    let mut seen_parts: Vec<Option<usize>> = Vec::new();
    t.cycles
        .iter()
        .filter(|c| {
            let part = part_at(&t.parts, Duration::from_secs_f64(c.at_ms / 1e3));
            let first = !seen_parts.contains(&part);
            seen_parts.push(part);
            c.victim.is_some() || first
        })
        .take(6)
        .collect()
}

/// A tick spacing for an axis of `wall` over `cols` columns: 1, 2 or 5 × 10ⁿ seconds, at
/// least 12 columns apart.
pub fn tick_step(wall: Duration, cols: usize) -> f64 {
    let per_col = wall.as_secs_f64().max(1e-6) / cols.max(1) as f64;
    let want = per_col * 12.0;
    let mut step = 10f64.powf(want.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if step * m >= want {
            step *= m;
            break;
        }
    }
    step
}

/// A tick's label: `0`, `2 µs` (a scheduled run's steps), `250 ms`, `1.5 s`.
pub fn tick_label(secs: f64) -> String {
    if secs == 0.0 {
        "0".into()
    } else if secs < 1e-3 {
        format!("{} µs", (secs * 1e6).round())
    } else if secs < 1.0 {
        format!("{} ms", (secs * 1000.0).round())
    } else {
        let s = format!("{secs:.2}");
        format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// A column's width of time: as [`units::duration`], and in ns below a microsecond (a
/// scheduled run's steps take a microsecond of virtual time each).
fn column(d: Duration) -> String {
    match d.as_nanos() {
        0..1000 => format!("{} ns", d.as_nanos()),
        _ => units::duration(d),
    }
}

/// The terminal timeline: lanes, axis, marks, legend; `width` columns; colour or glyphs.
pub struct Terminal {
    /// ANSI colours (else distinct glyphs only: it reads in black and white too).
    pub color: bool,
    /// Columns to fit.
    pub width: usize,
}

impl crate::report::export::Exporter for Terminal {
    fn export(
        &self,
        report: &crate::report::Report,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        match &report.timeline {
            Some(t) => out.write_all(self.render(t).as_bytes()),
            None => Ok(()),
        }
    }
}

/// How many marks the terminal lists (the trace has them all).
const MARKS_SHOWN: usize = 9;

impl Terminal {
    /// The drawing, as text.
    pub fn render(&self, t: &Timeline) -> String {
        let label_w = t
            .lanes
            .iter()
            .map(|l| l.name.chars().count())
            .max()
            .unwrap_or(10)
            .clamp(6, 15);
        let cols = self.width.saturating_sub(label_w + 4).max(10);
        let mut out = String::new();
        let _ = writeln!(
            out,
            " timeline of {}: {}, one column = {}",
            t.demo,
            units::duration(t.wall),
            column(t.wall / cols as u32)
        );
        let style = |cell: Cell| -> String {
            let (glyph, code) = match cell {
                Cell::Gone => (" ".to_string(), ""),
                Cell::Running => ("━".to_string(), "\x1b[36m"),
                Cell::Sleeping => ("·".to_string(), "\x1b[2m"),
                Cell::Waiting(i) => (letter(i).to_string(), "\x1b[97;41m"),
                Cell::Holding(i) => (letter(i).to_ascii_uppercase().to_string(), "\x1b[30;42m"),
            };
            if self.color && !code.is_empty() {
                format!("{code}{glyph}\x1b[0m")
            } else {
                glyph
            }
        };
        for lane in &t.lanes {
            let name = format!("{:>label_w$}", units::clip(&lane.name, label_w));
            // In colour, each thread's name in its own (as `--class` shows it in the narrative).
            let name = if self.color {
                let style = crate::lab::output::thread_style(&lane.name);
                style.force_styling(true).apply_to(name).to_string()
            } else {
                name
            };
            let _ = write!(out, " {name} │");
            for c in cells(t, lane, cols) {
                out.push_str(&style(c));
            }
            out.push_str("│\n");
        }
        // The axis: ticks, then their labels, none running past the end.
        let step = tick_step(t.wall, cols);
        let wall = t.wall.as_secs_f64().max(1e-9);
        let mut axis: Vec<char> = vec!['─'; cols];
        let mut labels: Vec<char> = vec![' '; cols + 8];
        let mut k = 0.0;
        while k * step <= wall + 1e-12 {
            let col = ((k * step / wall) * cols as f64).round() as usize;
            if col < cols {
                axis[col] = '┬';
                let text = tick_label(k * step);
                let start = col.min(cols.saturating_sub(text.chars().count()));
                if labels[start..]
                    .iter()
                    .take(text.chars().count() + 1)
                    .all(|c| *c == ' ')
                {
                    for (i, ch) in text.chars().enumerate() {
                        labels[start + i] = ch;
                    }
                }
            }
            k += 1.0;
        }
        let pad = " ".repeat(label_w + 1);
        let _ = writeln!(out, "{pad} └{}┘", axis.iter().collect::<String>());
        let _ = writeln!(
            out,
            "{pad}  {}",
            labels.iter().collect::<String>().trim_end()
        );
        // Marks: a number where each happened, then the list. At most three of a kind (the
        // text before its first colon), so a run of lost updates leaves room for the rest.
        let mut shown: Vec<&MarkAt> = Vec::new();
        let kind = |m: &MarkAt| m.text.split(':').next().unwrap_or("").to_string();
        for m in &t.marks {
            if shown.len() < MARKS_SHOWN && shown.iter().filter(|s| kind(s) == kind(m)).count() < 3
            {
                shown.push(m);
            }
        }
        if !shown.is_empty() {
            let mut row: Vec<char> = vec![' '; cols];
            for (i, m) in shown.iter().enumerate() {
                let mut col = ((m.at.as_secs_f64() / wall) * cols as f64) as usize;
                col = col.min(cols - 1);
                while col < cols - 1 && row[col] != ' ' {
                    col += 1;
                }
                row[col] = char::from_digit(i as u32 + 1, 10).unwrap_or('+');
            }
            let _ = writeln!(
                out,
                " {:>label_w$}  {}",
                "marks",
                row.iter().collect::<String>().trim_end()
            );
            for (i, m) in shown.iter().enumerate() {
                let line = format!(
                    "{} {} {}: {}",
                    i + 1,
                    at_label(m.at, t.wall),
                    m.thread,
                    m.text
                );
                let _ = writeln!(
                    out,
                    "   {}",
                    units::clip(&line, self.width.saturating_sub(4))
                );
            }
            if t.marks.len() > shown.len() {
                let _ = writeln!(
                    out,
                    "   … and {} more marks (every one is in --trace)",
                    t.marks.len() - shown.len()
                );
            }
        }
        if t.moments_dropped > 0 {
            let _ = writeln!(
                out,
                "   ({} more moments past the recorder's bound of {} were not kept)",
                t.moments_dropped,
                crate::lab::record::MOST_MOMENTS
            );
        }
        // The legend.
        let mut legend = vec![
            format!("{} running", style(Cell::Running)),
            format!("{} sleeping (simulated work)", style(Cell::Sleeping)),
            "lower case: waiting for · UPPER CASE: holding".to_string(),
        ];
        for (i, p) in t.primitives.iter().enumerate().take(26) {
            legend.push(format!(
                "{}{} '{}'",
                style(Cell::Waiting(i)),
                style(Cell::Holding(i)),
                p
            ));
        }
        if t.primitives.len() > 26 {
            legend.push(format!("? {} more primitives", t.primitives.len() - 26));
        }
        let mut line = String::from(" ");
        for item in legend {
            let visible =
                console::measure_text_width(&line) + console::measure_text_width(&item) + 3;
            if visible > self.width && line.trim().len() > 1 {
                let _ = writeln!(out, "{}", line.trim_end());
                line = String::from(" ");
            }
            line.push_str(&item);
            line.push_str("   ");
        }
        if !line.trim().is_empty() {
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// A sort key that orders the numbers inside a name by value: `fork-2` before `fork-10`.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = u64::from(c as u8 - b'0');
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n = n
                    .saturating_mul(10)
                    .saturating_add(u64::from(*d as u8 - b'0'));
                chars.next();
            }
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

/// When a mark happened, to the precision the run's length calls for: `+51.3 ms`, `+12.35 s`.
pub fn at_label(at: Duration, wall: Duration) -> String {
    if wall < Duration::from_secs(10) {
        format!("+{:.1} ms", at.as_secs_f64() * 1000.0)
    } else {
        format!("+{:.2} s", at.as_secs_f64())
    }
}

/// The legend letter of primitive `i`.
fn letter(i: usize) -> char {
    if i < 26 {
        (b'a' + i as u8) as char
    } else {
        '?'
    }
}

/// The accounting `--timeline` shows under the picture: per thread, the time running,
/// sleeping, waiting and holding (each wait and hold by primitive, by its legend letter);
/// per primitive, the waits, the longest and by whom, the most waiting and holding at once,
/// and a starving thread if there is one.
pub fn accounting(report: &crate::report::Report, t: &Timeline) -> Vec<crate::report::Table> {
    let ms = |v: f64| crate::lab::units::duration(std::time::Duration::from_secs_f64(v / 1000.0));
    let by_letter = |m: &serde_json::Map<String, serde_json::Value>| -> String {
        let mut parts: Vec<(f64, String)> = m
            .iter()
            .map(|(p, v)| {
                (
                    v.as_f64().unwrap_or(0.0),
                    format!("{} {}", t.letter(p), ms(v.as_f64().unwrap_or(0.0))),
                )
            })
            .collect();
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        // The two largest, and how many more: the table fits a 100-column screen.
        let shown: Vec<String> = parts.iter().take(2).map(|(_, s)| s.clone()).collect();
        let more = parts.len().saturating_sub(2);
        match (shown.is_empty(), more) {
            (true, _) => "-".into(),
            (false, 0) => shown.join(", "),
            (false, n) => format!("{} +{n}", shown.join(", ")),
        }
    };
    let mut threads = crate::report::Table::new([
        "thread",
        "alive",
        "running",
        "sleeping",
        "waiting (by primitive)",
        "holding (by primitive)",
    ])
    .titled("time per thread (letters as in the timeline's legend)");
    for th in &report.threads {
        let alive = th.finished_ms.unwrap_or(report.wall_ms) - th.started_ms;
        // In a demo of parts, each thread with the part it ran in (names repeat).
        let started = std::time::Duration::from_secs_f64(th.started_ms.max(0.0) / 1e3);
        let name = match part_at(&t.parts, started) {
            Some(i) if t.parts.len() > 1 && th.name != "MainThread" => {
                format!("{} ({})", th.name, part_label(&t.parts[i].1))
            }
            _ => th.name.clone(),
        };
        threads.row([
            name,
            ms(alive.max(0.0)),
            ms(th.running_ms),
            ms(th.sleeping_ms),
            by_letter(&th.waiting_on),
            by_letter(&th.holding_on),
        ]);
    }
    let mut prims = crate::report::Table::new([
        "",
        "primitive",
        "waits",
        "total wait",
        "longest wait",
        "most waiting",
        "most holding",
    ])
    .titled("per primitive");
    // In the legend's order.
    let mut by_letter: Vec<&crate::report::PrimitiveReport> = report.primitives.iter().collect();
    by_letter.sort_by_key(|p| t.letter(&p.name));
    for p in by_letter {
        prims.row([
            t.letter(&p.name).to_string(),
            crate::lab::units::clip(&p.name, 24),
            p.waits.to_string(),
            ms(p.total_wait_ms),
            match &p.longest_waiter {
                Some(who) => format!("{} ({who})", ms(p.longest_wait_ms)),
                None => "-".into(),
            },
            p.most_waiting.to_string(),
            p.most_holding.to_string(),
        ]);
    }
    let mut out = vec![threads];
    if !report.primitives.is_empty() {
        out.push(prims);
    }
    let starving: Vec<String> = report
        .primitives
        .iter()
        .filter_map(|p| {
            p.starving
                .as_ref()
                .map(|who| format!("{who} on '{}'", p.name))
        })
        .collect();
    if !starving.is_empty() {
        let mut s = crate::report::Table::new(["starving: longest wait ≥ 5× the median waiter's"]);
        for line in starving {
            s.row([line]);
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn span(thread: &str, p: &str, state: State, a: u64, b: u64) -> Span {
        Span {
            waits_for: crate::lab::record::WaitsFor::Other,
            thread: thread.into(),
            slot: None,
            primitive: p.into(),
            state,
            start: ms(a),
            end: ms(b),
        }
    }

    /// A moment on the primitive 'queue'.
    fn on_queue(at: u64, who: &str, kind: MomentKind, text: &str) -> Moment {
        Moment {
            thread: who.into(),
            at: ms(at),
            kind,
            primitive: Some("queue".into()),
            text: text.into(),
        }
    }

    /// A signal on 'queue' of the kind `verb` (`put`, `get`, `task_done`).
    fn signal(at: u64, who: &str, verb: &str) -> Moment {
        on_queue(at, who, MomentKind::Signal, &format!("{verb} 'queue'"))
    }

    fn timeline(spans: Vec<Span>) -> Timeline {
        let mut t = Timeline::build("t", &Recorder::new(crate::lab::now()), &[], ms(1000));
        for s in spans {
            if s.state != State::Sleeping && !t.primitives.contains(&s.primitive) {
                t.primitives.push(Arc::clone(&s.primitive));
            }
            match t.lanes.iter_mut().find(|l| l.name == s.thread) {
                Some(l) => l.spans.push(s),
                None => t.lanes.push(Lane {
                    name: Arc::clone(&s.thread),
                    lives: vec![(ms(0), ms(1000))],
                    spans: vec![s],
                }),
            }
        }
        t
    }

    #[test]
    fn cells_show_waiting_over_holding_and_sleeping_over_running() {
        let t = timeline(vec![
            span("A", "lock", State::Holding, 0, 500),
            span("A", "sleep", State::Sleeping, 100, 400),
            span("B", "lock", State::Waiting, 0, 500),
            span("B", "lock", State::Holding, 500, 700),
            span("B", "sleep", State::Sleeping, 800, 1000),
        ]);
        let a = cells(&t, &t.lanes[1], 10);
        assert_eq!(a[0], Cell::Holding(0));
        assert_eq!(
            a[2],
            Cell::Holding(0),
            "holding while it sleeps shows the hold"
        );
        assert_eq!(a[7], Cell::Running);
        let b = cells(&t, &t.lanes[2], 10);
        assert_eq!(b[0], Cell::Waiting(0));
        assert_eq!(b[5], Cell::Holding(0));
        assert_eq!(b[9], Cell::Sleeping);
    }

    #[test]
    fn a_release_is_joined_to_the_acquire_it_enabled() {
        let spans = vec![
            span("A", "lock", State::Holding, 0, 500),
            span("B", "lock", State::Waiting, 100, 500),
            span("B", "lock", State::Holding, 500, 600),
        ];
        let f = flows(&spans, &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FlowKind::Handover);
        assert_eq!((&*f[0].from.0, f[0].from.1), ("A", ms(500)));
        assert_eq!((&*f[0].to.0, f[0].to.1), ("B", ms(500)));
    }

    #[test]
    fn a_wait_is_joined_to_the_signal_that_ended_it() {
        let spans = vec![span("C", "queue", State::Waiting, 100, 300)];
        let put = |at: u64| signal(at, "P", "put");
        let f = flows(&spans, &[put(50), put(300), put(900)]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FlowKind::Signal);
        assert_eq!(
            f[0].from.1,
            ms(300),
            "the put that ended it, not an earlier one"
        );
    }

    #[test]
    fn a_wait_that_gave_up_has_no_cause() {
        let spans = vec![span("W", "queue", State::Waiting, 100, 1100)];
        // Another worker's item came and went during W's timed get, which then ran out.
        let moments = [
            signal(500, "P", "put"),
            signal(501, "V", "get"),
            on_queue(1100, "W", MomentKind::GaveUp, "gave up on 'queue'"),
        ];
        assert!(flows(&spans, &moments).is_empty());
        assert_eq!(
            flows(&spans, &moments[..2]).len(),
            1,
            "without the give-up: an arrow"
        );
    }

    #[test]
    fn a_wait_is_joined_to_a_signal_of_a_kind_that_answers_it() {
        // P puts at 250; C-2 takes something at 290 and W-3 marks a task done at 295; C-1,
        // answered by a put or a close, wakes at 300.
        let spans = vec![span("C-1", "queue", State::Waiting, 100, 300)];
        let moments = [
            signal(250, "P", "put"),
            signal(290, "C-2", "get"),
            signal(295, "W-3", "task_done"),
            on_queue(300, "C-1", MomentKind::Answered, "put close"),
        ];
        let f = flows(&spans, &moments);
        assert_eq!(f.len(), 1);
        assert_eq!((&*f[0].from.0, f[0].from.1), ("P", ms(250)));
        // Without knowing what answers it, the latest signal by another thread is taken.
        let f = flows(&spans, &moments[..3]);
        assert_eq!((&*f[0].from.0, f[0].from.1), ("W-3", ms(295)));
        // A join answered by task_done: the last task done, not the puts and gets around it.
        let spans = vec![span("Main", "queue", State::Waiting, 100, 300)];
        let moments = [
            signal(280, "W-1", "task_done"),
            signal(290, "P", "put"),
            on_queue(299, "Main", MomentKind::Answered, "task_done"),
        ];
        let f = flows(&spans, &moments);
        assert_eq!((&*f[0].from.0, f[0].from.1), ("W-1", ms(280)));
    }

    #[test]
    fn the_legend_orders_numbers_by_value() {
        let mut names = vec!["fork-10", "join", "fork-2", "account-B", "account-A"];
        names.sort_by_key(|p| (*p == "join", natural_key(p)));
        assert_eq!(
            names,
            ["account-A", "account-B", "fork-2", "fork-10", "join"]
        );
    }

    #[test]
    fn the_axis_ticks_are_round_and_spaced() {
        assert_eq!(tick_step(Duration::from_secs(2), 80), 0.5);
        assert_eq!(tick_step(Duration::from_secs(60), 80), 10.0);
        assert_eq!(tick_label(0.25), "250 ms");
        assert_eq!(tick_label(0.000_002), "2 µs");
        assert_eq!(tick_label(1.5), "1.5 s");
    }

    #[test]
    fn the_drawing_fits_its_width_and_reads_without_colour() {
        let t = timeline(vec![
            span("Worker-1", "permits", State::Holding, 0, 500),
            span("Worker-2", "permits", State::Waiting, 0, 500),
        ]);
        let text = Terminal {
            color: false,
            width: 100,
        }
        .render(&t);
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        let lane = text.lines().find(|l| l.contains("Worker-2 │")).unwrap();
        assert!(lane.contains('a') && !lane.contains('\x1b'), "{text}");
        assert!(text.contains("aA 'permits'"), "{text}");
    }
}
