//! `--output-format text|json|markdown|junit|compact` and `--output FILE`: the links' results
//! for a person, a tool, a CI job summary, a CI test panel, or a compiler-style error list.
//!
//! Compact and JSON stream: each row is written as it comes (in input order). Markdown and
//! JUnit need the totals first, so they keep the rows they print (Markdown: the failures
//! only) and write at the end. A file named with `--output` is written beside its place and
//! renamed over it when complete: a run that fails or is interrupted never leaves half a
//! report where CI looks for one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::docs::LinkResult;
use crate::report::export::ResultStream;

/// How the results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The lab's narrative, table and evidence (on a file: a line per link).
    #[default]
    Text,
    /// One JSON document: every result with its location, then the summary.
    Json,
    /// A Markdown report for a CI job summary: the totals and a table of failures.
    Markdown,
    /// JUnit XML: a test case per link, for CI test panels.
    Junit,
    /// Only the failures, one a line: `file:line:col: url: reason`, as compilers print errors.
    Compact,
}

/// The totals every format ends with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub links: usize,
    pub ok: usize,
    pub failed: usize,
    pub excluded: usize,
    /// Distinct targets (web URLs, local files, excluded and broken links).
    pub distinct: usize,
    /// Distinct web URLs: each requested once (retries aside).
    pub requested: usize,
    pub files: usize,
    /// Rows answered from `--cache`.
    pub cached: usize,
    pub wall_ms: f64,
}

/// Where the results go, and what a format keeps until the end.
pub struct Results {
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    /// JSON: the `results` array, written as the rows come (the report's own streamer).
    stream: Option<ResultStream<Box<dyn Write + Send>>>,
    /// `--output`: the scratch file renamed over it at the end (none for a device or a
    /// pipe, written directly), and the path.
    file: Option<(Option<PathBuf>, PathBuf)>,
    kept: Vec<LinkResult>,
    /// `--json`: the rows are the lab report's `results`, and its exporter ends the document.
    in_report: bool,
}

impl Results {
    /// Opens the destination: `path` (written beside it, renamed at the end; a device or a
    /// pipe written directly) or stdout.
    /// With text on stdout nothing is written here (the lab's report is the text).
    pub fn open(format: OutputFormat, path: Option<&Path>, json: bool) -> anyhow::Result<Self> {
        let in_report = json && path.is_none();
        anyhow::ensure!(
            !in_report || matches!(format, OutputFormat::Text | OutputFormat::Json),
            "--json and --output-format {} would both write stdout: add --output FILE",
            serde_json::to_value(format)?.as_str().unwrap_or_default()
        );
        let format = if in_report { OutputFormat::Json } else { format };
        let (out, file): (Box<dyn Write + Send>, _) = match path {
            // `/dev/stdout`, `/dev/null`, a pipe: written as they are, never renamed over.
            Some(p) if std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()) => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("--output {}: {e}", p.display()))?;
                (
                    Box::new(std::io::BufWriter::new(f)),
                    Some((None, p.to_path_buf())),
                )
            }
            Some(p) => {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                let scratch = p.with_file_name(format!(
                    ".{}.{}.partial",
                    name.unwrap_or_default(),
                    std::process::id()
                ));
                let f = std::fs::File::create(&scratch)
                    .map_err(|e| anyhow::anyhow!("--output {}: {e}", p.display()))?;
                (
                    Box::new(std::io::BufWriter::new(f)),
                    Some((Some(scratch), p.to_path_buf())),
                )
            }
            None => (Box::new(std::io::BufWriter::new(std::io::stdout())), None),
        };
        let mut results = Results {
            format,
            out: Box::new(std::io::sink()),
            stream: None,
            file,
            kept: Vec::new(),
            in_report,
        };
        if format == OutputFormat::Json {
            results.stream = Some(ResultStream::begin(out, "results")?);
        } else {
            results.out = out;
        }
        Ok(results)
    }

    /// Whether this destination shows anything of its own on stdout (then the lab's text
    /// report goes to stderr).
    pub fn owns_stdout(&self) -> bool {
        self.file.is_none() && self.format != OutputFormat::Text && !self.in_report
    }

    /// Whether the rows went into the lab report's JSON (`--json`).
    pub fn in_report(&self) -> bool {
        self.in_report
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if let Err(e) = self.out.write_all(bytes) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                crate::lab::signals::pipe_closed();
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// One link's row, in input order.
    pub fn row(&mut self, r: &LinkResult) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Text if self.file.is_some() => {
                let line = format!("{} {}: {}: {}\n", r.mark(), r.place(), r.url, r.reason());
                self.write(line.as_bytes())
            }
            OutputFormat::Text => Ok(()),
            OutputFormat::Compact if r.failed() => {
                let line = format!("{}: {}: {}\n", r.place(), r.url, r.reason());
                self.write(line.as_bytes())
            }
            OutputFormat::Compact => Ok(()),
            OutputFormat::Json => {
                let Some(stream) = self.stream.as_mut() else {
                    return Ok(());
                };
                if let Err(e) = stream.push(r) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        crate::lab::signals::pipe_closed();
                    }
                    return Err(e.into());
                }
                Ok(())
            }
            OutputFormat::Markdown if !r.failed() => Ok(()),
            OutputFormat::Markdown | OutputFormat::Junit => {
                self.kept.push(r.clone());
                Ok(())
            }
        }
    }

    /// Ends the document with the totals and puts a file in its place.
    pub fn finish(mut self, totals: &Totals) -> anyhow::Result<()> {
        if let Some(stream) = self.stream.take() {
            self.out = stream.end()?;
        }
        let tail = match self.format {
            OutputFormat::Json if self.in_report => String::new(),
            OutputFormat::Json => format!(
                ",\n  \"summary\": {}\n}}\n",
                serde_json::to_string(totals)?
            ),
            OutputFormat::Markdown => markdown(totals, &self.kept),
            OutputFormat::Junit => junit(totals, &self.kept),
            OutputFormat::Text | OutputFormat::Compact => String::new(),
        };
        self.write(tail.as_bytes())?;
        self.out.flush()?;
        self.out = Box::new(std::io::sink()); // closes the file
        if let Some((Some(scratch), path)) = &self.file {
            std::fs::rename(scratch, path)
                .map_err(|e| anyhow::anyhow!("--output {}: {e}", path.display()))?;
        }
        self.file = None;
        Ok(())
    }
}

impl Drop for Results {
    /// A run that ended early leaves no partial file behind.
    fn drop(&mut self) {
        if let Some((Some(scratch), _)) = &self.file {
            let _ = std::fs::remove_file(scratch);
        }
    }
}

/// The Markdown report: a headline, the counts, and a table of the failures.
fn markdown(t: &Totals, failures: &[LinkResult]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let mark = if t.failed == 0 { "✅" } else { "❌" };
    let _ = writeln!(
        s,
        "## {mark} url-check: {} of {} checked links ok ({} excluded)\n",
        t.ok,
        t.links - t.excluded,
        t.excluded
    );
    let _ = writeln!(
        s,
        "| links | ok | failed | excluded | distinct targets | web URLs requested | files |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        t.links, t.ok, t.failed, t.excluded, t.distinct, t.requested, t.files
    );
    if !failures.is_empty() {
        let _ = writeln!(s, "### Failures\n\n| where | link | why |\n|---|---|---|");
        for r in failures {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} |",
                r.place(),
                md_cell(&r.url),
                md_cell(&r.reason())
            );
        }
    }
    s
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// JUnit XML: one test suite, a test case per link (a failure, or skipped when excluded).
fn junit(t: &Totals, rows: &[LinkResult]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"url-check\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        t.links,
        t.failed,
        t.excluded,
        t.wall_ms / 1000.0
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"links\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
        t.links, t.failed, t.excluded
    );
    for r in rows {
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml(&r.file),
            xml(&format!("{}:{} {}", r.line, r.col, r.url)),
            r.elapsed_ms / 1000.0
        );
        if r.failed() {
            let _ = writeln!(
                s,
                "><failure type=\"{}\" message=\"{}\"/></testcase>",
                xml(r.kind.map_or("failed", |k| k.as_str())),
                xml(&r.reason())
            );
        } else if let Some(why) = &r.excluded {
            let _ = writeln!(s, "><skipped message=\"{}\"/></testcase>", xml(why));
        } else {
            let _ = writeln!(s, "/>");
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// Text for an XML attribute: the five markup characters escaped, and the control
/// characters XML 1.0 forbids dropped.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
