//! `--svg FILE`: the timeline as a standalone SVG for slides: lanes, states, primitive
//! labels, the time axis, the marks and a legend, readable when projected.

use std::fmt::Write as _;
use std::time::Duration;

use super::timeline::{Timeline, tick_label, tick_step};
use crate::lab::record::State;

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
    let lanes_h = LANE * t.lanes.len() as f64;
    let axis_y = TOP + lanes_h + 6.0;
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
    let _ = writeln!(
        s,
        r##"<text x="20" y="52" font-size="14" fill="#555">one lane per thread; red: waiting for, green: holding, grey: sleeping (simulated work), blue: running</text>"##
    );
    for (i, lane) in t.lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
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
        // Sleeps, then holds, then waits on top; neighbours closer than half a pixel merge,
        // so a hot loop's thousands of holds draw as the band they are.
        for state in [State::Sleeping, State::Holding, State::Waiting] {
            let mut run: Option<(f64, f64, &str)> = None;
            let mut spans: Vec<&crate::lab::record::Span> =
                lane.spans.iter().filter(|sp| sp.state == state).collect();
            spans.sort_by_key(|sp| sp.start);
            for sp in spans {
                let (a, b) = (x(sp.start), x(sp.end).max(x(sp.start) + 0.6));
                match &mut run {
                    Some((_, end, p)) if a - *end < 0.5 && *p == &*sp.primitive => {
                        *end = end.max(b);
                    }
                    _ => {
                        if let Some((ra, rb, p)) = run.take() {
                            span_rect(&mut s, t, state, ra, rb, y, p);
                        }
                        run = Some((a, b, &sp.primitive));
                    }
                }
            }
            if let Some((ra, rb, p)) = run {
                span_rect(&mut s, t, state, ra, rb, y, p);
            }
        }
        let _ = writeln!(s, "</g>");
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
    // The marks: a numbered line through the lanes, and the list under the axis.
    // Numbered circles above the lanes; marks close in time get their circles side by side,
    // each joined to its moment by a short leader.
    let mut last_cx = f64::MIN;
    for (i, m) in t.marks.iter().take(12).enumerate() {
        let mx = x(m.at);
        let cx = mx.max(last_cx + 20.0);
        last_cx = cx;
        let _ = writeln!(
            s,
            r##"<g class="mark"><line x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{:.1}" stroke="#7b3294" stroke-dasharray="4 3"/><line x1="{cx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{:.1}" stroke="#7b3294"/><circle cx="{cx:.1}" cy="{:.1}" r="9" fill="#7b3294"/><text x="{cx:.1}" y="{:.1}" font-size="12" fill="white" text-anchor="middle">{}</text></g>"##,
            TOP - 4.0,
            TOP + lanes_h,
            TOP - 4.0,
            TOP - 4.0,
            TOP - 4.0,
            TOP,
            i + 1
        );
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
    for (i, (colour, label)) in [
        (RUNNING, "running"),
        (SLEEPING, "sleeping"),
        (WAITING, "waiting for (letter: which)"),
        (HOLDING, "holding (letter: which)"),
    ]
    .iter()
    .enumerate()
    {
        let lx = 20.0 + 260.0 * i as f64;
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
