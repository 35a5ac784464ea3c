//! `--svg FILE`: the timeline as a standalone SVG for slides: lanes, states, primitive
//! labels, the time axis, the marks and a legend, readable when projected.

use std::fmt::Write as _;
use std::time::Duration;

use super::timeline::{Timeline, tick_label, tick_step};
use crate::lab::record::{State, WaitsFor};

const WIDTH: f64 = 1400.0;
const LABEL: f64 = 190.0;
const RIGHT: f64 = 50.0;
const LANE: f64 = 30.0;
const BAR: f64 = 20.0;
const TOP: f64 = 64.0;

/// Colours of the states (a palette that survives a projector and colour blindness).
const RUNNING: &str = "#9ecae1";
const SLEEPING: &str = "#d9d9d9";
const WAITING: &str = "#d6604d";
const HOLDING: &str = "#1a9850";
/// A put waiting for room (the queue full), and a queue's join waiting for its tasks.
const PUTTING: &str = "#e08214";
const JOINING: &str = "#8073ac";

/// The SVG exporter: the run's timeline as a standalone SVG document.
pub struct Svg;

impl crate::report::export::Exporter for Svg {
    fn export(
        &self,
        report: &crate::report::Report,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        match &report.timeline {
            Some(t) => out.write_all(document(t).as_bytes()),
            None => Ok(()),
        }
    }
}

/// Escapes text for XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document of `t`.
pub fn document(t: &Timeline) -> String {
    let plot = WIDTH - LABEL - RIGHT;
    let wall = t.wall.as_secs_f64().max(1e-9);
    let x = |d: Duration| LABEL + (d.as_secs_f64() / wall).clamp(0.0, 1.0) * plot;
    // Marks sit at their instants, stacked in rows where they crowd; the parts' labels
    // above them.
    let groups = mark_groups(t, &x);
    let row_count = groups.iter().map(|g| g.3 + 1).max().unwrap_or(0);
    let part_h = if t.parts.len() > 1 { 24.0 } else { 0.0 };
    let top = TOP + part_h + 22.0 * row_count.saturating_sub(1) as f64;
    let lanes_h = LANE * t.lanes.len() as f64;
    let strips = gauge_tracks(t);
    let strips_h = STRIP * strips.len() as f64;
    let axis_y = top + lanes_h + strips_h + 6.0;
    let marks_y = axis_y + 44.0;
    let legend_y = marks_y + 22.0 * t.marks.len().min(12) as f64 + 18.0;
    let height = legend_y + 30.0 + 22.0 * (t.primitives.len().div_ceil(4)) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="20" y="30" font-size="22" font-weight="bold">threadlab {}: {}</text>"#,
        esc(&t.demo),
        esc(&crate::lab::units::duration(t.wall))
    );
    // The queue's kinds of wait are named only in a picture that has a queue.
    let queue_waits = t.lanes.iter().flat_map(|l| &l.spans).any(|sp| {
        matches!(
            sp.waits_for,
            WaitsFor::Room | WaitsFor::Item | WaitsFor::TasksDone
        )
    });
    let _ = writeln!(
        s,
        r##"<text x="20" y="52" font-size="14" fill="#555">one lane per thread; {}green: holding, grey: sleeping, blue: running</text>"##,
        if queue_waits {
            "red: waiting for (a get: the queue empty), orange: a put waiting for room, purple: a queue's join(), "
        } else {
            "red: waiting for, "
        }
    );
    part_bands(&mut s, t, &x, TOP - 6.0, axis_y);
    for (i, lane) in t.lanes.iter().enumerate() {
        let y = top + LANE * i as f64;
        let _ = writeln!(s, r#"<g class="lane" data-thread="{}">"#, esc(&lane.name));
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold" fill="{}" text-anchor="end">{}</text>"#,
            LABEL - 10.0,
            y + BAR * 0.75,
            // The thread's own colour, as `--class` shows its name in the narrative.
            crate::lab::output::thread_hex(&lane.name),
            esc(&lane.name)
        );
        for (a, b) in &lane.lives {
            rect(&mut s, x(*a), x(*b), y, RUNNING, "running", None);
        }
        // A lane of more spans than pixels (a hot loop's holds of a few hundred ns, the waits
        // between them): each pixel shows what took most of its time, so neither the holds
        // nor the waits vanish under the other.
        if lane.spans.len() > plot as usize {
            majority_bars(&mut s, t, lane, plot, y);
            let _ = writeln!(s, "</g>");
            continue;
        }
        // Sleeps, then holds, then waits on top; neighbours closer than half a pixel merge,
        // so a hot loop's thousands of holds draw as the band they are.
        for state in [State::Sleeping, State::Holding, State::Waiting] {
            let mut run: Option<(f64, f64, &str, WaitsFor)> = None;
            let mut spans: Vec<&crate::lab::record::Span> =
                lane.spans.iter().filter(|sp| sp.state == state).collect();
            spans.sort_by_key(|sp| sp.start);
            for sp in spans {
                let (a, b) = (x(sp.start), x(sp.end).max(x(sp.start) + 0.6));
                let by = sp.waits_for;
                match &mut run {
                    Some((_, end, p, k)) if a - *end < 0.5 && *p == &*sp.primitive && *k == by => {
                        *end = end.max(b);
                    }
                    _ => {
                        if let Some((ra, rb, p, k)) = run.take() {
                            span_bar(&mut s, t, (state, k), ra, rb, y, p);
                        }
                        run = Some((a, b, &sp.primitive, by));
                    }
                }
            }
            if let Some((ra, rb, p, k)) = run {
                span_bar(&mut s, t, (state, k), ra, rb, y, p);
            }
        }
        let _ = writeln!(s, "</g>");
    }
    cycle_arrows(&mut s, t, &x, top);
    step_ticks(&mut s, t, &x, top);
    for (k, track) in strips.iter().enumerate() {
        gauge_strip(&mut s, t, track, &x, top + lanes_h + STRIP * k as f64);
    }
    // The axis.
    let _ = writeln!(
        s,
        r##"<line x1="{LABEL}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="#333"/>"##,
        LABEL + plot
    );
    let step = tick_step(t.wall, (plot / 9.0) as usize);
    let mut k = 0.0;
    while k * step <= wall + 1e-12 {
        let tx = LABEL + (k * step / wall) * plot;
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="{axis_y:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#333"/><text x="{tx:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"##,
            axis_y + 6.0,
            axis_y + 22.0,
            tick_label(k * step)
        );
        k += 1.0;
    }
    // The marks: a numbered badge at each instant (marks that crowd share one, "3–12"),
    // a line from it through the lanes, and the list under the axis.
    for &(first, last, mx, row) in &groups {
        let cy = top - 4.0 - 22.0 * row as f64;
        let (label, w) = if first == last {
            ((first + 1).to_string(), 18.0)
        } else {
            (format!("{}–{}", first + 1, last + 1), 38.0)
        };
        let _ = writeln!(
            s,
            r##"<g class="mark"><line x1="{mx:.1}" y1="{cy:.1}" x2="{mx:.1}" y2="{:.1}" stroke="#7b3294" stroke-dasharray="4 3"/><rect x="{:.1}" y="{:.1}" width="{w}" height="18" rx="9" fill="#7b3294"/><text x="{mx:.1}" y="{:.1}" font-size="12" fill="white" text-anchor="middle">{label}</text></g>"##,
            top + lanes_h,
            mx - w / 2.0,
            cy - 9.0,
            cy + 4.0,
        );
    }
    for (i, m) in t.marks.iter().take(12).enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="20" y="{:.1}" font-size="14">{}  {}  {}: {}</text>"#,
            marks_y + 22.0 * i as f64,
            i + 1,
            super::timeline::at_label(m.at, t.wall),
            esc(&m.thread),
            esc(&crate::lab::units::clip(&m.text, 150))
        );
    }
    // The legend: the states, then each primitive's letter.
    let ly = legend_y;
    let states = [
        (RUNNING, "running"),
        (SLEEPING, "sleeping"),
        (WAITING, "waiting for (letter: which)"),
        (HOLDING, "holding (letter: which)"),
        (PUTTING, "put waiting for room (full)"),
        (JOINING, "queue.join(): tasks undone"),
    ];
    let shown = if queue_waits { 6 } else { 4 };
    for (i, (colour, label)) in states[..shown].iter().enumerate() {
        let lx = 20.0 + 225.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{:.1}" width="18" height="14" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="14">{label}</text>"#,
            ly - 12.0,
            lx + 24.0,
            ly
        );
    }
    for (i, p) in t.primitives.iter().enumerate() {
        let lx = 20.0 + 340.0 * (i % 4) as f64;
        let y = ly + 24.0 + 22.0 * (i / 4) as f64;
        let _ = writeln!(
            s,
            r#"<text x="{lx}" y="{y:.1}" font-size="14"><tspan font-weight="bold">{}</tspan> '{}'</text>"#,
            t.letter(p),
            esc(&crate::lab::units::clip(p, 36))
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// A dense lane drawn a pixel at a time: in each, the state (and primitive) that took most
/// of its time; neighbouring pixels alike are one bar.
fn majority_bars(s: &mut String, t: &Timeline, lane: &super::timeline::Lane, plot: f64, y: f64) {
    let cols = plot as usize;
    let dt = t.wall.as_secs_f64().max(1e-9) / cols as f64;
    // Per pixel: time per (state, primitive); running is what is left of the thread's life.
    let mut acc: Vec<std::collections::HashMap<(u8, &str), f64>> = vec![Default::default(); cols];
    for sp in &lane.spans {
        let key = match sp.state {
            State::Sleeping => (0, ""),
            State::Holding => (1, &*sp.primitive),
            State::Waiting => (2, &*sp.primitive),
        };
        let (a, b) = (sp.start.as_secs_f64(), sp.end.as_secs_f64());
        let first = ((a / dt) as usize).min(cols - 1);
        let last = ((b / dt) as usize).min(cols - 1);
        for (c, cell) in acc.iter_mut().enumerate().take(last + 1).skip(first) {
            let part = b.min((c + 1) as f64 * dt) - a.max(c as f64 * dt);
            *cell.entry(key).or_default() += part.max(0.0);
        }
    }
    fn pick<'a>(
        cell: &std::collections::HashMap<(u8, &'a str), f64>,
        dt: f64,
    ) -> Option<(u8, &'a str)> {
        let busy: f64 = cell.values().sum();
        cell.iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .filter(|(_, v)| **v > 0.0 && busy >= dt * 0.5)
            .map(|(k, _)| *k)
    }
    let mut run: Option<((u8, &str), usize)> = None;
    let x = |c: usize| LABEL + c as f64;
    // One more step past the last pixel closes the last bar.
    for c in 0..=cols {
        let now = acc.get(c).and_then(|cell| pick(cell, dt));
        match (run, now) {
            (Some((k, _)), Some(n)) if k == n => continue,
            (Some((k, from)), _) => {
                let state = [State::Sleeping, State::Holding, State::Waiting][k.0 as usize];
                span_rect(s, t, state, x(from), x(c), y, k.1);
                run = now.map(|n| (n, c));
            }
            (None, _) => run = now.map(|n| (n, c)),
        }
    }
}

/// The height of a gauge strip (permits in use, queue depth) under the lanes.
const STRIP: f64 = 34.0;

/// The first 12 marks in groups: marks closer than 20 px to a group's first share its
/// badge ("3–12", at the first one's instant); each group's row, 0 on the lanes' edge and
/// one more where its badge would overlap an earlier one.
fn mark_groups(t: &Timeline, x: &dyn Fn(Duration) -> f64) -> Vec<(usize, usize, f64, usize)> {
    let mut groups: Vec<(usize, usize, f64, usize)> = Vec::new();
    for (i, m) in t.marks.iter().take(12).enumerate() {
        let mx = x(m.at);
        match groups.last_mut() {
            Some(g) if mx - g.2 < 20.0 => g.1 = i,
            _ => groups.push((i, i, mx, 0)),
        }
    }
    let width = |g: &(usize, usize, f64, usize)| if g.0 == g.1 { 20.0 } else { 40.0 };
    for k in 0..groups.len() {
        let (here, w) = (groups[k].2, width(&groups[k]));
        let row = (0..)
            .find(|r| {
                groups[..k]
                    .iter()
                    .all(|g| g.3 != *r || (g.2 - here).abs() >= (w + width(g)) / 2.0)
            })
            .unwrap_or(0);
        groups[k].3 = row;
    }
    groups
}

/// Each part of the demo as a band behind the lanes, shaded in turn, its name above it.
fn part_bands(
    s: &mut String,
    t: &Timeline,
    x: &dyn Fn(Duration) -> f64,
    label_y: f64,
    bottom: f64,
) {
    if t.parts.len() < 2 {
        return;
    }
    for (i, (start, header)) in t.parts.iter().enumerate() {
        let end = t.parts.get(i + 1).map_or(t.wall, |p| p.0);
        let (a, b) = (x(*start), x(end));
        let fill = if i % 2 == 0 { "#eef1f7" } else { "#fbfbfd" };
        let _ = writeln!(
            s,
            r##"<g class="part"><rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/><text x="{:.1}" y="{:.1}" font-size="13" font-weight="bold" fill="#445">{}</text><title>{}</title></g>"##,
            label_y,
            (b - a).max(1.0),
            bottom - label_y,
            a + 4.0,
            label_y + 14.0,
            esc(super::timeline::part_label(header)),
            esc(header)
        );
    }
}

/// The deadlock cycles the detector found (see below which): every wait in it drawn at least
/// 8 px wide where it closed, and an arrow from each waiting thread to the thread holding
/// what it waits for, lane to lane, so the ring can be followed with a finger.
fn cycle_arrows(s: &mut String, t: &Timeline, x: &dyn Fn(Duration) -> f64, top: f64) {
    if t.cycles.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#67001f"/></marker></defs>"##
    );
    for c in super::timeline::drawn_cycles(t) {
        let at = Duration::from_secs_f64(c.at_ms / 1e3);
        let cx = x(at);
        let lane_y = |name: &str| {
            t.lane_at(name, at)
                .map(|i| top + LANE * i as f64 + (LANE - BAR) / 2.0 - 4.0)
        };
        let _ = writeln!(s, r#"<g class="cycle">"#);
        for (i, who) in c.threads.iter().enumerate() {
            let Some(y) = lane_y(who) else { continue };
            let lock = c.locks.get(i).map(|l| l.to_string()).unwrap_or_default();
            let _ = writeln!(
                s,
                r##"<rect class="cycle-wait" x="{:.1}" y="{y:.1}" width="8" height="{BAR}" fill="{WAITING}" stroke="#67001f" stroke-width="1.5"><title>{} waits for {}</title></rect>"##,
                cx - 8.0,
                esc(who),
                esc(&lock)
            );
            let next = &c.threads[(i + 1) % c.threads.len()];
            let Some(y2) = lane_y(next) else { continue };
            let (y1, y2) = (y + BAR / 2.0, y2 + BAR / 2.0);
            let bend = cx + 14.0 + 10.0 * i as f64;
            let _ = writeln!(
                s,
                r##"<path d="M{:.1},{y1:.1} C{bend:.1},{y1:.1} {bend:.1},{y2:.1} {:.1},{y2:.1}" fill="none" stroke="#67001f" stroke-width="1.8" marker-end="url(#arrow)"><title>{} waits for {}, held by {}</title></path>"##,
                cx,
                cx + 1.0,
                esc(who),
                esc(&lock),
                esc(next)
            );
        }
        let _ = writeln!(s, "</g>");
    }
}

/// The lesson's steps (race's reads and writes) as ticks on their lanes: a read thin and
/// blue, a write dark; and for each lost update marked, a dashed red line from the write it
/// overwrote (another thread's, of the value found) to the write that overwrote it.
fn step_ticks(s: &mut String, t: &Timeline, x: &dyn Fn(Duration) -> f64, top: f64) {
    let lane_y = |name: &str, at: Duration| {
        t.lane_at(name, at)
            .map(|i| top + LANE * i as f64 + (LANE - BAR) / 2.0 - 4.0)
    };
    for st in t.steps.iter().take(2_000) {
        let Some(y) = lane_y(&st.thread, st.at) else {
            continue;
        };
        let (colour, w) = if st.text.starts_with("read") {
            ("#08519c", 1.5)
        } else {
            ("#111111", 2.5)
        };
        let _ = writeln!(
            s,
            r#"<rect class="step" x="{:.1}" y="{:.1}" width="{w}" height="{:.1}" fill="{colour}"><title>{}: {}</title></rect>"#,
            x(st.at) - w / 2.0,
            y - 3.0,
            BAR + 6.0,
            esc(&st.thread),
            esc(&st.text)
        );
    }
    for m in t.marks.iter().filter(|m| m.text.starts_with("lost update")) {
        // "lost update: read R, found F when it wrote W: N lost"
        let found = m
            .text
            .split("found ")
            .nth(1)
            .and_then(|r| r.split(' ').next());
        let Some(found) = found else { continue };
        let overwritten = t.steps.iter().rev().find(|st| {
            st.at <= m.at && *st.thread != *m.thread && st.text == format!("wrote {found}")
        });
        let (Some(o), Some(y2)) = (overwritten, lane_y(&m.thread, m.at)) else {
            continue;
        };
        let Some(y1) = lane_y(&o.thread, o.at) else {
            continue;
        };
        let _ = writeln!(
            s,
            r##"<g class="lost"><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#b2182b" stroke-width="2" stroke-dasharray="5 3"/><text x="{:.1}" y="{:.1}" font-size="12" font-weight="bold" fill="#b2182b">lost</text><title>{}</title></g>"##,
            x(o.at),
            y1 + BAR / 2.0,
            x(m.at),
            y2 + BAR / 2.0,
            (x(o.at) + x(m.at)) / 2.0 + 4.0,
            (y1 + y2) / 2.0 + BAR / 2.0,
            esc(&m.text)
        );
    }
}

/// The quantities sampled during the run (permits in use, queue depth), each once.
fn gauge_tracks(t: &Timeline) -> Vec<std::sync::Arc<str>> {
    let mut tracks: Vec<std::sync::Arc<str>> = Vec::new();
    for sm in &t.samples {
        if !tracks.contains(&sm.track) {
            tracks.push(std::sync::Arc::clone(&sm.track));
        }
    }
    tracks.truncate(3);
    tracks
}

/// One sampled quantity as a step line in a strip under the lanes, its name and highest
/// value beside it.
fn gauge_strip(s: &mut String, t: &Timeline, track: &str, x: &dyn Fn(Duration) -> f64, y: f64) {
    let points: Vec<(Duration, f64)> = t
        .samples
        .iter()
        .filter(|sm| &*sm.track == track)
        .map(|sm| (sm.at, sm.value))
        .collect();
    let most = points.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1.0);
    let h = STRIP - 10.0;
    let level = |v: f64| y + 4.0 + h - h * (v / most);
    let mut d = format!("M{:.1},{:.1}", x(Duration::ZERO), level(0.0));
    let mut last = 0.0;
    for (at, v) in &points {
        let px = x(*at);
        let _ = write!(d, " L{px:.1},{:.1} L{px:.1},{:.1}", level(last), level(*v));
        last = *v;
    }
    let _ = write!(d, " L{:.1},{:.1}", x(t.wall), level(last));
    let _ = writeln!(
        s,
        r##"<g class="gauge" data-track="{}"><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#333">{} (max {})</text><path d="{d}" fill="none" stroke="#2b5c8a" stroke-width="1.6"/></g>"##,
        esc(track),
        LABEL - 10.0,
        y + STRIP / 2.0 + 4.0,
        esc(&crate::lab::units::clip(track, 22)),
        most
    );
}

/// A bar of a lane, from `a` to `b` (x pixels).
fn rect(s: &mut String, a: f64, b: f64, y: f64, fill: &str, class: &str, title: Option<&str>) {
    let w = (b - a).max(0.6);
    let _ = write!(
        s,
        r#"<rect class="{class}" x="{a:.1}" y="{:.1}" width="{w:.1}" height="{BAR}" fill="{fill}">"#,
        y + (LANE - BAR) / 2.0 - 4.0
    );
    if let Some(t) = title {
        let _ = write!(s, "<title>{}</title>", esc(t));
    }
    let _ = writeln!(s, "</rect>");
}

/// A wait for a signal as what it is: `put` (full, until a get), `get` (empty, until a
/// put) or a queue's `join()` (until every task_done); its fill, label and title.
fn wait_for_signal(kind: WaitsFor, p: &str) -> Option<(&'static str, String, String)> {
    match kind {
        WaitsFor::TasksDone => Some((
            JOINING,
            format!("{p}.join()"),
            format!("waiting in '{p}'.join() until every task_done()"),
        )),
        WaitsFor::Room => Some((
            PUTTING,
            format!("put: {p}"),
            format!("waiting to put into '{p}': full, until a get"),
        )),
        WaitsFor::Item => Some((
            WAITING,
            format!("get: {p}"),
            format!("waiting to get from '{p}': empty, until a put"),
        )),
        WaitsFor::Other => None,
    }
}

/// A bar that may be a wait for a signal (see [`wait_for_signal`]), else [`span_rect`].
fn span_bar(
    s: &mut String,
    t: &Timeline,
    (state, by): (State, WaitsFor),
    a: f64,
    b: f64,
    y: f64,
    p: &str,
) {
    let Some((fill, label, title)) = wait_for_signal(by, p) else {
        return span_rect(s, t, state, a, b, y, p);
    };
    rect(s, a, b, y, fill, "waiting", Some(&title));
    if b - a >= 9.0 * label.chars().count() as f64 + 8.0 {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" fill="white" text-anchor="middle">{}</text>"#,
            (a + b) / 2.0,
            y + (LANE - BAR) / 2.0 - 4.0 + BAR * 0.72,
            esc(&label)
        );
    }
}

/// A wait, hold or sleep bar, labelled with its primitive's letter (or name) if it fits.
fn span_rect(s: &mut String, t: &Timeline, state: State, a: f64, b: f64, y: f64, p: &str) {
    let (fill, class, what) = match state {
        State::Sleeping => (SLEEPING, "sleeping", "sleeping"),
        State::Waiting => (WAITING, "waiting", "waiting for"),
        State::Holding => (HOLDING, "holding", "holding"),
    };
    let title = if state == State::Sleeping {
        what.to_string()
    } else {
        format!("{what} '{p}'")
    };
    rect(s, a, b, y, fill, class, Some(&title));
    if state != State::Sleeping && b - a >= 12.0 {
        let label = if b - a >= 9.0 * p.chars().count() as f64 + 8.0 {
            p.to_string()
        } else {
            t.letter(p).to_string()
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" fill="white" text-anchor="middle">{}</text>"#,
            (a + b) / 2.0,
            y + (LANE - BAR) / 2.0 - 4.0 + BAR * 0.72,
            esc(&label)
        );
    }
}
