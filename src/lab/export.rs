//! Exporters: one small trait, one implementation per format.

use std::io::{self, Write};

use super::report::{Report, Table};
use super::units::printable;

/// Renders a finished report.
pub trait Exporter {
    /// Writes `report` to `out`.
    fn export(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

/// The JSON document of DESIGN.md §4, pretty-printed, one per run. When a
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
}

impl<W: Write> ResultStream<W> {
    /// Opens the document and the array named `field`.
    pub fn begin(mut out: W, field: &str) -> io::Result<Self> {
        write!(out, "{{\n  {}: [", serde_json::to_string(field)?)?;
        Ok(Self { out, count: 0 })
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
        Ok(())
    }

    /// Closes the array (the document stays open for [`Json`]) and flushes.
    pub fn end(mut self) -> io::Result<()> {
        self.out.write_all(b"\n  ]")?;
        self.out.flush()
    }
}

/// The human summary: the demo's tables, the checks with ✔/✘, then notes.
pub struct Summary {
    /// ANSI colour on the check marks.
    pub color: bool,
}

impl Exporter for Summary {
    fn export(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out)?;
        for table in &report.tables {
            write_table(table, out)?;
            writeln!(out)?;
        }
        let seed = report
            .params
            .get("seed")
            .map(|s| s.to_string())
            .unwrap_or_default();
        writeln!(
            out,
            " {}: wall {} · seed {}",
            report.demo,
            super::units::duration(std::time::Duration::from_secs_f64(report.wall_ms / 1e3)),
            seed
        )?;
        for check in &report.checks {
            let (mark, style) = if check.ok {
                ("✔", console::Style::new().green())
            } else {
                ("✘", console::Style::new().red().bold())
            };
            let mark = if self.color {
                style.force_styling(true).apply_to(mark).to_string()
            } else {
                mark.to_string()
            };
            writeln!(
                out,
                " {mark} {}  (expected {}, observed {})",
                printable(&check.name),
                printable(&check.expected),
                printable(&check.observed)
            )?;
        }
        for note in &report.notes {
            writeln!(out, " → {}", printable(note))?;
        }
        Ok(())
    }
}

/// Writes a table with columns padded to their widest cell (counted in characters).
pub fn write_table(table: &Table, out: &mut dyn Write) -> io::Result<()> {
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
    let line = |cells: &[String], out: &mut dyn Write| -> io::Result<()> {
        let cells: Vec<_> = cells.iter().map(|c| printable(c)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_to_the_widest_cell() {
        let mut t = Table::new(["a", "bb"]);
        t.row(["long", "x"]);
        let mut out = Vec::new();
        write_table(&t, &mut out).unwrap();
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
        r.check_eq("mutex counter is exact", 200_000u64, 200_000u64);
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
