//! Links found in documents, each with where it is: `file:line:column`.
//!
//! Markdown is read with a real Markdown parser (pulldown-cmark), so a link is what a
//! Markdown renderer would make a link: inline links and images, autolinks (`<https://…>`),
//! links through a reference definition (reported where they are used); never the text of a
//! code span or a fenced block. A plain list (one URL per line, as url-check has always read)
//! gives one link per line that is not blank or a `#` comment. Plain text (`--format-in
//! text`) gives the URLs a URL finder (linkify) sees in running prose.

use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag};

/// One link and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link's target as written (a URL, or a relative path).
    pub url: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

/// How a file's links are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One URL per line (url-check's own lists).
    List,
    /// Markdown: its links, images, autolinks and reference links.
    Markdown,
    /// HTML: `href`, `src`, `srcset` and the other attributes that hold links.
    Html,
    /// Running text: the http(s) URLs in it.
    Text,
}

impl Format {
    /// The format a file's name says: `.md`, `.markdown`, `.mdown`, `.mkd` are Markdown;
    /// `.html`, `.htm`, `.xhtml` are HTML; anything else is a plain list.
    pub fn of(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("md" | "markdown" | "mdown" | "mkd") => Format::Markdown,
            Some("html" | "htm" | "xhtml") => Format::Html,
            _ => Format::List,
        }
    }
}

/// Byte offset → (line, column), both 1-based, the column in characters.
struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    fn at(&self, offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let mut end = offset.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line as u32 + 1, col as u32)
    }
}

/// Links gathered from a text, each placed by its byte offset (Markdown's and HTML's).
pub(super) struct Gathered<'t> {
    lines: Lines<'t>,
    pub(super) links: Vec<Link>,
}

impl<'t> Gathered<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Gathered {
            lines: Lines::new(text),
            links: Vec::new(),
        }
    }

    /// `url` (trimmed; an empty one is no link) found at byte `at`.
    pub(super) fn push(&mut self, url: &str, at: usize) {
        let url = url.trim();
        if !url.is_empty() {
            let (line, col) = self.lines.at(at);
            self.links.push(Link {
                url: url.to_string(),
                line,
                col,
            });
        }
    }
}

/// The links of a Markdown text, in document order.
pub fn markdown(text: &str) -> Vec<Link> {
    let mut gathered = Gathered::new(text);
    // Where `piece` sits in the source slice of an event (escapes can make them differ).
    let place = |range: &std::ops::Range<usize>, piece: &str| {
        text.get(range.clone())
            .and_then(|src| src.find(piece))
            .map_or(range.start, |i| range.start + i)
    };
    let (mut in_link, mut in_code) = (0, false);
    let options = Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES;
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                in_link += 1;
                gathered.push(&dest_url, range.start);
            }
            Event::End(pulldown_cmark::TagEnd::Link | pulldown_cmark::TagEnd::Image) => {
                in_link -= 1;
            }
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => in_code = false,
            // A bare URL in the prose is a link too, as GitHub renders it (GFM's autolink
            // literals); not inside a link's own text.
            Event::Text(t) if in_link == 0 && !in_code && t.contains("://") => {
                for url in urls(&t) {
                    gathered.push(url, place(&range, url));
                }
            }
            // Raw HTML in Markdown: its `href` and `src` attributes.
            Event::Html(h) | Event::InlineHtml(h) => {
                for url in html_attributes(&h) {
                    gathered.push(url, place(&range, url));
                }
            }
            _ => {}
        }
    }
    gathered.links
}

/// The http(s) URLs a URL finder sees in `text`, the sentence's punctuation left out.
fn urls(text: &str) -> impl Iterator<Item = &str> {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    finder
        .links(text)
        .map(|l| l.as_str())
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
        .collect::<Vec<_>>()
        .into_iter()
}

/// The quoted values of the `href` and `src` attributes in a piece of raw HTML.
fn html_attributes(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    for name in [" href=", " src=", "\nhref=", "\nsrc=", "\thref=", "\tsrc="] {
        for (i, _) in lower.match_indices(name) {
            let rest = &html[i + name.len()..];
            match rest.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    if let Some(end) = rest[1..].find(quote) {
                        found.push((i, rest[1..1 + end].trim()));
                    }
                }
                // An unquoted value ends at a space or the tag's end.
                Some(_) => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '>')
                        .unwrap_or(rest.len());
                    found.push((i, &rest[..end]));
                }
                None => {}
            }
        }
    }
    found.sort_by_key(|&(i, _)| i);
    found.into_iter().map(|(_, v)| v).collect()
}

/// The http(s) URLs in running text, as a URL finder sees them (trailing punctuation of the
/// sentence left out).
pub fn text(text: &str) -> Vec<Link> {
    let lines = Lines::new(text);
    let base = text.as_ptr() as usize;
    urls(text)
        .map(|url| {
            // The finder's pieces are slices of `text`: their offset is where they start.
            let (line, col) = lines.at(url.as_ptr() as usize - base);
            Link {
                url: url.to_string(),
                line,
                col,
            }
        })
        .collect()
}

/// The links of a plain list: each line that is not blank or a `#` comment, trimmed.
pub fn list(text: &str) -> Vec<Link> {
    let mut links = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches('\u{feff}');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let col = line.chars().take_while(|c| c.is_whitespace()).count() + 1;
        links.push(Link {
            url: trimmed.to_string(),
            line: i as u32 + 1,
            col: col as u32,
        });
    }
    links
}

/// The files an input names: the file itself, or a folder's Markdown and HTML files, walked in name
/// order with `.gitignore`, `.ignore` and hidden-file rules honoured (ripgrep's walker, in or
/// out of a git repository). An error names the input that could not be read; a folder
/// that cannot be read inside the walk is skipped with a warning naming it.
pub fn files(input: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(input)
        .map_err(|e| anyhow::anyhow!("{}: {}", input.display(), e.kind()))?;
    if !meta.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut found = Vec::new();
    let walk = ignore::WalkBuilder::new(input)
        .sort_by_file_name(|a, b| a.cmp(b))
        .require_git(false)
        .follow_links(true)
        .build();
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                if matches!(Format::of(e.path()), Format::Markdown | Format::Html) {
                    found.push(e.into_path());
                }
            }
            Ok(_) => {}
            // A loop of symbolic links, an unreadable folder: said, and the walk goes on.
            Err(e) => tracing::warn!("{}: {}", input.display(), e),
        }
    }
    Ok(found)
}

/// The links of a text read as `format`.
pub fn links_in(text: &str, format: Format) -> Vec<Link> {
    match format {
        Format::Markdown => markdown(text),
        Format::Html => super::html::links(text),
        Format::List => list(text),
        Format::Text => self::text(text),
    }
}

/// The anchors a Markdown text offers a `#fragment`: each heading's id as GitHub makes it
/// (lower case, spaces to `-`, punctuation dropped; a repeated heading gets `-1`, `-2`), an
/// explicit `{#id}`, and the `id`/`name` of raw HTML anchors.
pub fn anchors(text: &str) -> std::collections::HashSet<String> {
    use std::collections::{HashMap, HashSet};
    let mut found = HashSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heading: Option<String> = None;
    let options = Options::ENABLE_HEADING_ATTRIBUTES | Options::ENABLE_TABLES;
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(Tag::Heading { id, .. }) => {
                if let Some(id) = id {
                    found.insert(id.to_string());
                }
                heading = Some(String::new());
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(pulldown_cmark::TagEnd::Heading(_)) => {
                let slug = slug(&heading.take().unwrap_or_default());
                let n = seen.entry(slug.clone()).or_default();
                found.insert(if *n == 0 {
                    slug.clone()
                } else {
                    format!("{slug}-{n}")
                });
                *n += 1;
            }
            Event::Html(h) | Event::InlineHtml(h) => {
                for attr in ["id=\"", "name=\""] {
                    for (i, _) in h.match_indices(attr) {
                        let rest = &h[i + attr.len()..];
                        if let Some(end) = rest.find('"') {
                            found.insert(rest[..end].to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// A heading's id as GitHub makes it.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// (url, line, col) of each link: what the tests compare (HTML's too).
    pub(in crate::check) fn urls(links: &[Link]) -> Vec<(String, u32, u32)> {
        links
            .iter()
            .map(|l| (l.url.clone(), l.line, l.col))
            .collect()
    }

    #[test]
    fn markdown_bare_urls_and_raw_html_links_count_as_github_renders_them() {
        let md = "See https://a.example/x. and [https://b.example/](https://b.example/)\n\
                  <img src=\"logo.png\"> <a href='https://c.example/'>c</a> <a href=d.html>\n\
                  \n```\nhttps://not.a.link/\n```\n";
        assert_eq!(
            urls(&markdown(md)),
            [
                ("https://a.example/x".to_string(), 1, 5),
                ("https://b.example/".to_string(), 1, 30),
                ("logo.png".to_string(), 2, 11),
                ("https://c.example/".to_string(), 2, 31),
                ("d.html".to_string(), 2, 65),
            ]
        );
    }

    #[test]
    fn anchors_are_github_heading_ids_explicit_ids_and_html_anchors() {
        let md = "# Getting Started!\n## Install `threadlab`\n## FAQ\n## FAQ\n### Custom {#mine}\n<a name=\"old\"></a>\n";
        let a = anchors(md);
        for id in [
            "getting-started",
            "install-threadlab",
            "faq",
            "faq-1",
            "mine",
            "old",
        ] {
            assert!(a.contains(id), "{id} missing from {a:?}");
        }
        assert!(!a.contains("Getting-Started"));
    }

    #[test]
    fn markdown_links_images_autolinks_and_references_not_code() {
        let md = "# Title\n\
                  See [the docs](https://a.example/docs) and ![logo](img/logo.png).\n\
                  \n\
                  `https://not.a.link/in-code` and <https://b.example/auto>.\n\
                  \n\
                  ```\n\
                  [nope](https://c.example/in-fence)\n\
                  ```\n\
                  \n\
                  Use [the guide][g].\n\
                  \n\
                  [g]: https://d.example/guide\n";
        assert_eq!(
            urls(&markdown(md)),
            [
                ("https://a.example/docs".into(), 2, 5),
                ("img/logo.png".into(), 2, 44),
                ("https://b.example/auto".into(), 4, 34),
                ("https://d.example/guide".into(), 10, 5),
            ]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let md = "é → [x](https://e.example/)\n";
        assert_eq!(urls(&markdown(md)), [("https://e.example/".into(), 1, 5)]);
    }

    #[test]
    fn running_text_gives_its_http_urls_without_the_sentence_s_punctuation() {
        let t = "Docs: https://a.example/guide. Mail me@b.example or see\n(https://c.example/x).\n";
        assert_eq!(
            urls(&text(t)),
            [
                ("https://a.example/guide".into(), 1, 7),
                ("https://c.example/x".into(), 2, 2)
            ]
        );
    }

    #[test]
    fn a_plain_list_skips_blanks_and_comments_and_keeps_line_numbers() {
        let text = "\u{feff}https://a.example/\n\n# comment\n  https://b.example/  \n";
        assert_eq!(
            urls(&list(text)),
            [
                ("https://a.example/".into(), 1, 1),
                ("https://b.example/".into(), 4, 3)
            ]
        );
    }
}
