//! Exporters: one small trait, one implementation per format.

use std::io::{self, Write};

use super::{Check, Report, Table};
use crate::lab::units::printable;

/// Renders a finished report.
pub trait Exporter {
    /// Writes `report` to `out`.
    fn export(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

/// The JSON document (README, "The JSON report"), pretty-printed, one per run. When a
/// [`ResultStream`] has already written the document's opening and its `results`, this
/// writes the rest of the same document.
pub struct Json;

impl Exporter for Json {
    fn export(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(report)?;
        if report.results_streamed {
            // `{` was written by the stream: continue its object after the results.
            out.write_all(b",")?;
            out.write_all(text.strip_prefix(b"{").unwrap_or(&text))?;
        } else {
            out.write_all(&text)?;
        }
        writeln!(out)
    }
}

/// A JSON array written item by item as a run produces it, as the first field of the
/// report's document: `{"results": [ … ]` and then [`Json`] writes the rest. A list of
/// 100 000 results thus never sits in memory whole.
pub struct ResultStream<W: Write> {
    out: W,
    count: usize,
    flushed: std::time::Instant,
}

/// How long a streamed result may wait in the buffer: results appear promptly even when
/// they come slowly, and a reader that went away (`| head`) is noticed promptly.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl<W: Write> ResultStream<W> {
    /// Opens the document and the array named `field`.
    pub fn begin(mut out: W, field: &str) -> io::Result<Self> {
        write!(out, "{{\n  {}: [", serde_json::to_string(field)?)?;
        Ok(Self {
            out,
            count: 0,
            flushed: std::time::Instant::now(),
        })
    }

    /// Appends one item, on a line of its own.
    pub fn push(&mut self, item: &impl serde::Serialize) -> io::Result<()> {
        self.out.write_all(if self.count == 0 {
            b"\n    "
        } else {
            b",\n    "
        })?;
        serde_json::to_writer(&mut self.out, item)?;
        self.count += 1;
        if self.flushed.elapsed() >= FLUSH_EVERY {
            self.out.flush()?;
            self.flushed = std::time::Instant::now();
        }
        Ok(())
    }

    /// Closes the array (the document stays open for [`Json`] or the caller's next field)
    /// and flushes; hands the writer back.
    pub fn end(mut self) -> io::Result<W> {
        self.out.write_all(b"\n  ]")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The human summary: the demo's tables, the checks with ✔/✘, then notes.
pub struct Summary {
    /// ANSI colour on the check marks.
    pub color: bool,
    /// Columns to fit checks and notes in (tables are as wide as their cells).
    pub width: usize,
    /// `Some(ids)`: show only the checks whose ids (without the demo's prefix) are listed,
    /// and any that did not hold; the rest are counted on one line.
    pub fold: Option<&'static [&'static str]>,
}

/// The terminal's width when stdout is one, else `COLUMNS` if set, else 100 (a projector's
/// usual width).
pub fn screen_width() -> usize {
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
        .or_else(crate::lab::output::columns_asked)
        .unwrap_or(100)
        .clamp(40, 400)
}

/// `text` broken into lines of at most `width` characters, at spaces where it can be (a
/// word longer than the line is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(10);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        loop {
            let used = line.chars().count();
            let need = word.chars().count() + usize::from(used > 0);
            if used + need <= width {
                if used > 0 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line: cut it.
            let cut: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(cut);
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Writes `first` then `text` wrapped to `width`, continuation lines indented by `indent`.
fn write_wrapped(
    out: &mut dyn Write,
    first: &str,
    text: &str,
    indent: usize,
    width: usize,
) -> io::Result<()> {
    for (i, line) in wrap(text, width.saturating_sub(indent)).iter().enumerate() {
        if i == 0 {
            writeln!(out, "{first}{line}")?;
        } else {
            writeln!(out, "{:indent$}{line}", "")?;
        }
    }
    Ok(())
}

impl Summary {
    /// The checks to print, and how many the lesson's fold left out. A claim made once per
    /// run of a demo (`none.meals-eaten…`, `ordering.meals-eaten…`: ids `DEMO.RUN.CLAIM`,
    /// names "RUN: claim") that holds in every run, with one expectation, is printed once
    /// with each run's measured value; a ✘ among them prints them all.
    fn checks_shown(&self, report: &Report) -> (Vec<Check>, usize) {
        let lesson = |c: &Check| match self.fold {
            None => true,
            Some(ids) => !c.ok || ids.iter().any(|id| c.id == format!("{}.{id}", report.demo)),
        };
        let folded = report.checks.iter().filter(|c| !lesson(c)).count();
        let mut shown: Vec<Check> = Vec::new();
        let mut merged: Vec<(String, usize)> = Vec::new();
        for c in report.checks.iter().filter(|c| lesson(c)) {
            let Some((run, claim_id, claim)) = per_run(c) else {
                shown.push(c.clone());
                continue;
            };
            let key = format!("{claim_id}\u{0}{claim}\u{0}{}", c.expected);
            let same = report.checks.iter().filter(|o| {
                per_run(o).is_some_and(|(_, i, n)| i == claim_id && n == claim)
                    && o.expected == c.expected
            });
            let (count, all_ok) = same.fold((0, true), |(n, ok), o| (n + 1, ok && o.ok));
            if count < 2 || !all_ok {
                shown.push(c.clone());
            } else if let Some((_, at)) = merged.iter().find(|(k, _)| *k == key) {
                let into = &mut shown[*at];
                into.observed = format!("{} · {run} {}", into.observed, whole(&c.observed));
            } else {
                merged.push((key, shown.len()));
                let mut first = c.clone();
                first.name = format!("{claim} (each run)");
                first.observed = format!("{run} {}", whole(&c.observed));
                shown.push(first);
            }
        }
        (shown, folded)
    }

    /// One check: on one line when it fits, else the claim, then expected and observed.
    fn write_check(&self, check: &Check, out: &mut dyn Write) -> io::Result<()> {
        let mark = if check.ok {
            self.mark("✔", console::Style::new().green())
        } else if check.inconclusive.is_some() {
            self.mark("?", console::Style::new().yellow())
        } else {
            self.mark("✘", console::Style::new().red().bold())
        };
        let (name, expected, observed) = (
            printable(&check.name),
            printable(&check.expected),
            printable(&check.observed),
        );
        let one_line = format!(" ✔ {name}  (expected {expected}, observed {observed})");
        if one_line.chars().count() <= self.width {
            writeln!(
                out,
                " {mark} {name}  (expected {expected}, observed {observed})"
            )?;
        } else {
            write_wrapped(out, &format!(" {mark} "), &name, 3, self.width)?;
            write_wrapped(out, "     expected: ", &expected, 15, self.width)?;
            write_wrapped(out, "     observed: ", &observed, 15, self.width)?;
        }
        if let Some(why) = &check.inconclusive {
            write_wrapped(out, "     inconclusive: ", &printable(why), 19, self.width)?;
        }
        Ok(())
    }

    /// A check mark, in its colour when the summary has colour.
    fn mark(&self, mark: &str, style: console::Style) -> String {
        if self.color {
            style.force_styling(true).apply_to(mark).to_string()
        } else {
            mark.to_string()
        }
    }
}

/// `text` with the spaces inside its numbers ("4 000 000") made no-break, so a wrapped list
/// of runs' values never breaks a number across lines.
fn whole(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    (0..chars.len())
        .map(|i| match chars[i] {
            ' ' if i > 0 && digit(i - 1) && digit(i + 1) => '\u{a0}',
            ch => ch,
        })
        .collect()
}

/// A claim made once per run: the run's label, the claim's id and its sentence, when the
/// id is `DEMO.RUN.CLAIM` and the name "RUN: claim" (the run as the id spells it, letters
/// and digits compared).
fn per_run(c: &Check) -> Option<(String, String, String)> {
    let mut parts = c.id.splitn(3, '.');
    let (_, run, claim_id) = (parts.next()?, parts.next()?, parts.next()?);
    let (label, claim) = c.name.split_once(": ")?;
    let plain = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|ch| ch.to_ascii_lowercase())
            .collect()
    };
    (plain(label) == plain(run))
        .then(|| (label.to_string(), claim_id.to_string(), claim.to_string()))
}

impl Exporter for Summary {
    fn export(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out)?;
        for table in &report.tables {
            write_table(table, Some(self.width), out)?;
            writeln!(out)?;
        }
        // A run with no seed of the lab's (`threadlab py`) says none.
        let seed = report
            .params
            .get("seed")
            .map(|s| format!(" · seed {s}"))
            .unwrap_or_default();
        writeln!(
            out,
            " {}: wall {}{seed}",
            report.demo,
            crate::lab::units::duration(std::time::Duration::from_secs_f64(report.wall_ms / 1e3)),
        )?;
        let (checks, folded) = self.checks_shown(report);
        for check in &checks {
            self.write_check(check, out)?;
        }
        if folded > 0 {
            let plural = if folded == 1 {
                "check holds"
            } else {
                "checks hold"
            };
            let mark = self.mark("✔", console::Style::new().green());
            writeln!(
                out,
                " {mark} {folded} more {plural} (--checks all shows them)"
            )?;
        }
        for note in &report.notes {
            write_wrapped(out, " → ", &printable(note), 3, self.width)?;
        }
        if let Some(s) = &report.schedule {
            let plural = |n: u32, one: &str| match n {
                1 => format!("1 {one}"),
                n => format!("{n} {one}s"),
            };
            let points = format!(
                "{}, {}",
                plural(s.points, "point"),
                plural(s.preemptions, "preemption")
            );
            writeln!(out, " ↻ schedule {}: {points}; replay it:", s.strategy)?;
            writeln!(out, "   --schedule {}", s.token)?;
        }
        Ok(())
    }
}

/// Writes a table with columns padded to their widest cell (counted in characters). With
/// `fit`, a table wider than that has its widest columns cut, each cut cell losing its middle
/// to `…`: a path keeps its file name and `line:col`, a URL its last segment, a reason its
/// beginning and end (a link checker's long cells: the JSON keeps them whole).
pub fn write_table(table: &Table, fit: Option<usize>, out: &mut dyn Write) -> io::Result<()> {
    if let Some(title) = &table.title {
        writeln!(out, " {}", printable(title))?;
    }
    let columns = table.headers.len();
    let mut widths: Vec<usize> = table.headers.iter().map(|h| h.chars().count()).collect();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(printable(cell).chars().count());
        }
    }
    if let Some(fit) = fit {
        fit_widths(&mut widths, fit);
    }
    let line = |cells: &[String], out: &mut dyn Write| -> io::Result<()> {
        let cells: Vec<_> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| clip_middle(&printable(c), w))
            .collect();
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate().take(columns) {
            s.push(' ');
            s.push_str(cell);
            if i + 1 < columns {
                let pad = widths[i] - cell.chars().count() + 1;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(&table.headers, out)?;
    for row in &table.rows {
        line(row, out)?;
    }
    Ok(())
}

/// `cell` in at most `width` characters: whole if it fits, else its first third and its
/// end around `…` (the end of a place or a URL says the most).
fn clip_middle(cell: &str, width: usize) -> String {
    let n = cell.chars().count();
    if n <= width {
        return cell.to_string();
    }
    let room = width.saturating_sub(1);
    let head = room / 3;
    let tail = room - head;
    let start: String = cell.chars().take(head).collect();
    let end: String = cell.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// Narrows the widest columns, one character at a time, until a row fits `width` (a space
/// before each cell and two between cells); no column below 12 characters.
fn fit_widths(widths: &mut [usize], width: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len() - 1;
    while total(widths) > width {
        let Some((i, &w)) = widths.iter().enumerate().max_by_key(|&(_, w)| *w) else {
            return;
        };
        if w <= 12 {
            return;
        }
        widths[i] -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_spaces_within_the_width() {
        assert_eq!(wrap("aaaa bbbb cccc", 10), vec!["aaaa bbbb", "cccc"]);
        assert_eq!(wrap("abcdefghijkl", 10), vec!["abcdefghij", "kl"]);
        assert_eq!(wrap("", 10), vec![""]);
        for line in wrap(&"word ".repeat(100), 37) {
            assert!(line.chars().count() <= 37);
        }
    }

    #[test]
    fn long_checks_and_notes_fit_the_width() {
        let mut r = Report::new("x");
        r.check(
            "claim",
            "a claim ".repeat(12),
            "e ".repeat(40),
            "o ".repeat(40),
            true,
        );
        r.check_eq("short", "short", 1, 1);
        r.note("note ".repeat(40));
        let mut out = Vec::new();
        Summary {
            color: false,
            width: 100,
            fold: None,
        }
        .export(&r, &mut out)
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        assert!(text.contains(" ✔ short  (expected 1, observed 1)"));
        assert!(text.contains("     expected: e e"));
    }

    #[test]
    fn a_table_too_wide_for_the_screen_cuts_its_widest_cells() {
        let mut t = Table::new(["where", "result"]);
        t.row(["a.md:1:1".to_string(), "x".repeat(120)]);
        t.row(["b.md:22:7".to_string(), "short".to_string()]);
        let mut out = Vec::new();
        write_table(&t, Some(60), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
        assert!(text.contains("xxx…xxx"), "{text}");
        assert!(text.contains(" b.md:22:7  short"), "{text}");
        // A place keeps its file name and line:col.
        assert_eq!(
            clip_middle("demos/docs/index.html:12:44", 20),
            "demos/…ex.html:12:44"
        );
        assert_eq!(clip_middle("short", 20), "short");
    }

    #[test]
    fn tables_pad_columns_to_the_widest_cell() {
        let mut t = Table::new(["a", "bb"]);
        t.row(["long", "x"]);
        let mut out = Vec::new();
        write_table(&t, None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, " a     bb\n long  x\n");
    }

    #[test]
    fn a_streamed_array_and_the_report_make_one_json_document() {
        let mut out = Vec::new();
        let mut stream = ResultStream::begin(&mut out, "results").unwrap();
        stream.push(&serde_json::json!({"line": 1})).unwrap();
        stream.push(&serde_json::json!({"line": 2})).unwrap();
        stream.end().unwrap();
        let mut r = Report::new("url-check");
        r.results_streamed = true;
        Json.export(&r, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["results"][1]["line"], 2);
        assert_eq!(v["demo"], "url-check");
    }

    #[test]
    fn json_keeps_the_contract_field_names() {
        let mut r = Report::new("race-condition");
        r.metric("mutex.final", 200_000u64);
        r.check_eq(
            "mutex-counter-exact",
            "mutex counter is exact",
            200_000u64,
            200_000u64,
        );
        let mut out = Vec::new();
        Json.export(&r, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for key in [
            "demo", "params", "wall_ms", "threads", "metrics", "checks", "ok",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["checks"][0]["ok"], true);
        assert_eq!(v["metrics"]["mutex.final"], 200_000);
    }
}
