//! Exporters: one small trait, one implementation per format.

use std::io::{self, Write};

use super::report::{Report, Table};

/// Renders a finished report.
pub trait Exporter {
    /// Writes `report` to `out`.
    fn export(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

/// The JSON document of DESIGN.md §4, pretty-printed, one per run.
pub struct Json;

impl Exporter for Json {
    fn export(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
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
                check.name, check.expected, check.observed
            )?;
        }
        for note in &report.notes {
            writeln!(out, " → {note}")?;
        }
        Ok(())
    }
}

/// Writes a table with columns padded to their widest cell (counted in characters).
pub fn write_table(table: &Table, out: &mut dyn Write) -> io::Result<()> {
    if let Some(title) = &table.title {
        writeln!(out, " {title}")?;
    }
    let columns = table.headers.len();
    let mut widths: Vec<usize> = table.headers.iter().map(|h| h.chars().count()).collect();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &[String], out: &mut dyn Write| -> io::Result<()> {
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
