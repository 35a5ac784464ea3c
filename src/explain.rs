//! `threadlab explain`: a demo's page (Markdown, `src/demos/pages/`), rendered for the
//! terminal (headings, emphasis and code styled, paragraphs and tables re-flowed to the
//! screen, never wrapped mid-word, at most 100 columns when piped), or as a printable HTML
//! handout (`--html`) with the page's checked transcript and its Python-beside-Rust table.

use console::Style;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::demos::{self, Entry};
use crate::report::export::wrap;

/// Flags of `threadlab explain`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The demo (a name or alias from `threadlab list`); `all` with --html for every page.
    #[arg(value_name = "DEMO")]
    pub demo: String,
    /// Print a printable HTML handout instead (one page, or every page with `all`).
    #[arg(long)]
    pub html: bool,
}

/// Runs `explain`: the page rendered, or the handout.
pub fn run(args: &Args, color: bool) -> anyhow::Result<String> {
    if args.demo == "py" {
        return Ok(if args.html {
            html(&[py_entry()])
        } else {
            terminal(PY_PAGE, crate::report::export::screen_width(), color)
        });
    }
    let pages: Vec<Entry> = if args.demo == "all" && args.html {
        demos::registry()
    } else {
        vec![demos::find(&args.demo).ok_or_else(|| {
            let names: Vec<String> = demos::registry().into_iter().map(|d| d.name).collect();
            let all = if args.demo == "all" {
                "; `all` goes with --html"
            } else {
                ""
            };
            anyhow::anyhow!(
                "no demo '{}' (the demos: {}){all}",
                args.demo,
                names.join(", ")
            )
        })?]
    };
    if args.html {
        return Ok(html(&pages));
    }
    let width = crate::report::export::screen_width();
    Ok(terminal(pages[0].page, width, color))
}

/// The page of `threadlab py` (a tool beside the demos, not one of them).
pub const PY_PAGE: &str = include_str!("py/page.md");

/// `threadlab py` as a page entry, for the handout.
fn py_entry() -> Entry {
    Entry {
        name: "py".into(),
        aliases: Vec::new(),
        about: "your own Python program, under the lab".into(),
        module: "py",
        page: PY_PAGE,
        quick: &[],
        long: None,
        unscheduled: None,
        parts: 0,
        lesson: &[],
    }
}

/// Inline text with its style: plain, emphasis, strong, or code.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Em,
    Strong,
    Code,
}

/// The page for a terminal `width` columns wide, in colour or not.
pub fn terminal(page: &str, width: usize, color: bool) -> String {
    let mut r = Renderer {
        out: String::new(),
        words: Vec::new(),
        spaced: true,
        kind: Kind::Plain,
        items: Vec::new(),
        code: None,
        table: None,
        width: width.clamp(40, 400),
        color,
    };
    for event in Parser::new_ext(page, Options::ENABLE_TABLES) {
        r.event(event);
    }
    r.flush(0, "");
    r.out.trim_end().to_string() + "\n"
}

/// Walks the Markdown events into lines.
struct Renderer {
    out: String,
    /// The block being collected: its words, each of pieces with their style.
    words: Vec<Vec<(String, Kind)>>,
    /// Whether the last text ended with a space (the next piece starts a word).
    spaced: bool,
    kind: Kind,
    /// Open list items' depth (a bullet each).
    items: Vec<bool>,
    /// A code block being collected.
    code: Option<String>,
    /// A table being collected: rows of cells (the first row is the head).
    table: Option<Vec<Vec<String>>>,
    width: usize,
    color: bool,
}

impl Renderer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(Tag::Heading { .. }) => self.flush_item(),
            Event::End(TagEnd::Heading(_)) => self.heading(),
            Event::Start(Tag::Item) => {
                self.flush_item();
                self.items.push(true);
            }
            Event::End(TagEnd::Item) => {
                self.flush_item();
                self.items.pop();
            }
            Event::End(TagEnd::Paragraph) => {
                self.flush_item();
                if self.items.is_empty() {
                    self.out.push('\n');
                }
            }
            Event::End(TagEnd::List(_)) if self.items.is_empty() => self.out.push('\n'),
            Event::Start(Tag::Emphasis) => self.kind = Kind::Em,
            Event::Start(Tag::Strong) => self.kind = Kind::Strong,
            Event::End(TagEnd::Emphasis | TagEnd::Strong) => self.kind = Kind::Plain,
            Event::Start(Tag::CodeBlock(_)) => self.code = Some(String::new()),
            Event::End(TagEnd::CodeBlock) => self.code_block(),
            Event::Start(Tag::Table(_)) => self.table = Some(Vec::new()),
            Event::Start(Tag::TableHead | Tag::TableRow) => {
                if let Some(t) = &mut self.table {
                    t.push(Vec::new());
                }
            }
            Event::Start(Tag::TableCell) => {
                if let Some(row) = self.table.as_mut().and_then(|t| t.last_mut()) {
                    row.push(String::new());
                }
            }
            Event::End(TagEnd::Table) => self.table_out(),
            Event::Text(t) => self.text(&t, self.kind),
            Event::Code(t) => self.text(&t, Kind::Code),
            Event::SoftBreak | Event::HardBreak => self.text(" ", self.kind),
            _ => {}
        }
    }

    /// Text into the code block, the table cell or the paragraph being collected. A piece
    /// that follows another with no space between (`join()` then "'s") joins its word.
    fn text(&mut self, t: &str, kind: Kind) {
        if let Some(code) = &mut self.code {
            code.push_str(t);
            return;
        }
        if let Some(cell) = self
            .table
            .as_mut()
            .and_then(|t| t.last_mut())
            .and_then(|r| r.last_mut())
        {
            cell.push_str(t);
            return;
        }
        for (i, piece) in t.split(' ').enumerate() {
            let glue = i == 0 && !self.spaced && !self.words.is_empty();
            match self.words.last_mut() {
                Some(word) if glue => word.push((piece.to_string(), kind)),
                _ if piece.is_empty() => {}
                _ => self.words.push(vec![(piece.to_string(), kind)]),
            }
        }
        self.spaced = t.ends_with(' ');
    }

    fn style(&self, kind: Kind) -> Style {
        match kind {
            Kind::Plain => Style::new(),
            Kind::Em => Style::new().italic(),
            Kind::Strong => Style::new().bold(),
            Kind::Code => Style::new().cyan(),
        }
    }

    /// Ends the block being collected as a paragraph or a list item.
    fn flush_item(&mut self) {
        let depth = self.items.len();
        if depth == 0 {
            self.flush(0, "");
        } else {
            let bullet = if self.items.last() == Some(&true) {
                "• "
            } else {
                "  "
            };
            let lead = format!("{}{bullet}", "  ".repeat(depth));
            self.flush(lead.chars().count(), &lead);
            if let Some(last) = self.items.last_mut() {
                *last = false;
            }
        }
    }

    /// The collected words, wrapped to the width with `lead` before the first line and
    /// `indent` spaces before the others; a line breaks only between words.
    fn flush(&mut self, indent: usize, lead: &str) {
        let words = std::mem::take(&mut self.words);
        self.spaced = true;
        if words.is_empty() {
            return;
        }
        let room = self.width.saturating_sub(indent).max(20);
        let len = |w: &Vec<(String, Kind)>| w.iter().map(|(p, _)| p.chars().count()).sum();
        let mut lines: Vec<Vec<&Vec<(String, Kind)>>> = vec![Vec::new()];
        let mut used = 0;
        for w in &words {
            let l: usize = len(w);
            if used > 0 && used + 1 + l > room {
                lines.push(Vec::new());
                used = 0;
            }
            used += l + usize::from(used > 0);
            if let Some(line) = lines.last_mut() {
                line.push(w);
            }
        }
        for (n, line) in lines.iter().enumerate() {
            self.out.push_str(if n == 0 { lead } else { "" });
            if n > 0 {
                self.out.push_str(&" ".repeat(indent));
            }
            let text: Vec<String> = line
                .iter()
                .map(|w| w.iter().map(|(p, k)| self.paint(p, *k)).collect())
                .collect();
            self.out.push_str(&text.join(" "));
            self.out.push('\n');
        }
    }

    fn paint(&self, text: &str, kind: Kind) -> String {
        if self.color && kind != Kind::Plain {
            self.style(kind)
                .force_styling(true)
                .apply_to(text)
                .to_string()
        } else {
            text.to_string()
        }
    }

    /// A heading: bold, underlined by a rule, a blank line before.
    fn heading(&mut self) {
        let text: String = std::mem::take(&mut self.words)
            .into_iter()
            .map(|w| w.into_iter().map(|(p, _)| p).collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        self.spaced = true;
        let rule = "─".repeat(text.chars().count().min(self.width));
        let title = if self.color {
            Style::new()
                .bold()
                .force_styling(true)
                .apply_to(&text)
                .to_string()
        } else {
            text
        };
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
        self.out.push_str(&format!("{title}\n{rule}\n"));
    }

    /// A code block (a transcript): each line as it is, a long one wrapped at spaces with a
    /// hanging indent under its message, as the narrative wraps on a terminal.
    fn code_block(&mut self) {
        let Some(code) = self.code.take() else {
            return;
        };
        for line in code.lines() {
            if line.chars().count() <= self.width {
                self.out.push_str(&self.paint(line, Kind::Code));
                self.out.push('\n');
                continue;
            }
            let indent = line
                .find(") ")
                .filter(|_| line.starts_with('+'))
                .map_or(3, |i| i + 2);
            for (n, part) in wrap(line, self.width.saturating_sub(indent).max(20))
                .iter()
                .enumerate()
            {
                let text = if n == 0 {
                    part.clone()
                } else {
                    format!("{}{part}", " ".repeat(indent))
                };
                self.out.push_str(&self.paint(&text, Kind::Code));
                self.out.push('\n');
            }
        }
        self.out.push('\n');
    }

    /// A table re-flowed to the width: columns shrunk (the widest first, never below their
    /// longest word) and each cell wrapped at spaces within its column.
    fn table_out(&mut self) {
        let Some(rows) = self.table.take() else {
            return;
        };
        let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
        let Some(widths) = fit_columns(&rows, cols, self.width.saturating_sub(1)) else {
            // Too many long words for columns: each row as a record, "head: cell" a line.
            for row in rows.iter().skip(1) {
                for (c, cell) in row.iter().enumerate() {
                    let head = rows[0].get(c).map_or("", |h| h.as_str());
                    self.text(&format!("{head}: "), Kind::Strong);
                    self.text(cell, Kind::Plain);
                    let lead = if c == 0 { " • " } else { "   " };
                    self.flush(3, lead);
                }
            }
            self.out.push('\n');
            return;
        };
        for (r, row) in rows.iter().enumerate() {
            let cells: Vec<Vec<String>> = (0..cols)
                .map(|c| wrap(row.get(c).map_or("", |s| s.as_str()), widths[c]))
                .collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(1);
            for k in 0..height {
                let mut line = String::from(" ");
                for (c, cell) in cells.iter().enumerate() {
                    let text = cell.get(k).map_or("", |s| s.as_str());
                    let pad = widths[c].saturating_sub(text.chars().count());
                    let text = if r == 0 && self.color {
                        Style::new()
                            .bold()
                            .force_styling(true)
                            .apply_to(text)
                            .to_string()
                    } else {
                        text.to_string()
                    };
                    line.push_str(&text);
                    if c + 1 < cols {
                        line.push_str(&" ".repeat(pad + 2));
                    }
                }
                self.out.push_str(line.trim_end());
                self.out.push('\n');
            }
            if r == 0 {
                let total: usize = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
                self.out.push_str(&format!(" {}\n", "─".repeat(total)));
            }
        }
        self.out.push('\n');
    }
}

/// Column widths that fit `width` (separators of 2 included): each column as wide as its
/// longest cell, then the widest shrunk one column at a time, never below its longest word;
/// `None` when even that is too wide.
fn fit_columns(rows: &[Vec<String>], cols: usize, width: usize) -> Option<Vec<usize>> {
    let len = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| len(s))
                .max()
                .unwrap_or(1)
        })
        .collect();
    let floor: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .flat_map(|s| s.split(' '))
                .map(len)
                .max()
                .unwrap_or(1)
                .max(10)
        })
        .collect();
    let room = width.saturating_sub(2 * cols.saturating_sub(1));
    while widths.iter().sum::<usize>() > room {
        let Some((c, _)) = widths
            .iter()
            .enumerate()
            .filter(|(c, w)| **w > floor[*c])
            .max_by_key(|(_, w)| **w)
        else {
            break;
        };
        widths[c] -= 1;
    }
    (widths.iter().sum::<usize>() <= room).then_some(widths)
}

/// The printable handout: each page in turn, its transcript and tables as they are, with a
/// print style (one page per demo).
pub fn html(pages: &[Entry]) -> String {
    let mut body = String::new();
    for e in pages {
        body.push_str(&format!(
            "<section><p class=\"lesson\">threadlab {} — {}</p>\n",
            e.name,
            html_escape(&e.about)
        ));
        let mut page = String::new();
        let parser = Parser::new_ext(e.page, Options::ENABLE_TABLES);
        pulldown_cmark::html::push_html(&mut page, parser);
        body.push_str(&page);
        body.push_str("</section>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>threadlab: {}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        pages
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The handout's look: readable on paper, a demo per printed page, transcripts that wrap.
const STYLE: &str = "body{font:11pt/1.45 Georgia,serif;max-width:46em;margin:2em auto;color:#111}\
h1{font-size:14pt;margin-top:1.6em;border-bottom:1px solid #999}\
p.lesson{font:bold 16pt sans-serif;margin-bottom:0.2em}\
code{font:9.5pt ui-monospace,monospace;background:#f3f3f3;padding:0 2px}\
pre{font:8.5pt/1.35 ui-monospace,monospace;background:#f7f7f7;padding:0.6em;\
white-space:pre-wrap;border-left:3px solid #888}\
pre code{background:none;padding:0}\
table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #bbb;padding:2px 6px;\
vertical-align:top;font-size:10pt}\
section{page-break-after:always}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_fits_the_width_without_a_word_cut_and_keeps_every_word() {
        for e in demos::registry() {
            for width in [100, 72] {
                let text = terminal(e.page, width, false);
                for line in text.lines() {
                    assert!(
                        line.chars().count() <= width,
                        "{} at {width}: {line}",
                        e.name
                    );
                }
                // Every word of the page's prose is there, whole (Markdown marks aside).
                let words: std::collections::HashSet<&str> = text.split_whitespace().collect();
                for word in ["What", "watch", "Python"] {
                    assert!(words.iter().any(|w| w.contains(word)), "{}: {word}", e.name);
                }
            }
        }
    }

    #[test]
    fn tables_reflow_at_spaces_and_code_is_styled_in_colour() {
        let page = "# Python and Rust\n| Python | Rust | where they differ |\n|---|---|---|\n\
                    | `threading.Lock()` and a very long explanation of it | `Mutex<T>` | \
                    the lock owns the data in Rust, so nobody can forget to take it |\n";
        let text = terminal(page, 40, false);
        assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
        assert!(text.contains("threading.Lock()"), "{text}");
        assert!(!text.contains('`'), "{text}");
        let coloured = terminal("Call `join()` **now**.\n", 80, true);
        assert!(coloured.contains("\u{1b}[36mjoin()"), "{coloured:?}");
        assert!(coloured.contains("\u{1b}[1mnow"), "{coloured:?}");
    }

    #[test]
    fn the_handout_has_every_page_transcript_and_table() {
        let all = html(&demos::registry());
        assert_eq!(all.matches("<section>").count(), demos::registry().len());
        assert!(all.contains("<table>") && all.contains("<pre><code"));
        assert!(all.contains("$ threadlab race --iterations 100000 --seed 7"));
    }
}
