//! What `url-check` checks when given documents: every link of every input, where it is,
//! and the targets they name, each target once.
//!
//! An input is a file, a folder (its Markdown files, walked in name order with `.gitignore`
//! and hidden-file rules honoured, as ripgrep does), a glob, `-` for stdin, or a URL given
//! directly. Each link is an [`Occurrence`] (its place) of a [`Target`]: a web URL (its
//! fragment left off: a server never sees it), a local file (a relative link, resolved
//! against `--base` or the file's folder, with its `#fragment` checked against the file's
//! headings), a link that is left out on purpose (an exclude rule, a scheme nobody can
//! check over HTTP: said, never dropped), or one that is broken before any check (not a
//! URL, an unreadable input). Targets are numbered in order of first appearance, so the
//! results can stream in input order while each URL is requested once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Url;

use super::Kind;
use super::extract::{self, Format, Link};
use crate::pool::ordered::InOrder;

/// Largest document read; a larger file is one failed row naming its size.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Where links come from: a file, stdin or the command line.
#[derive(Debug, Clone)]
pub struct Source {
    /// As shown in every row (`docs/guide.md`, `-`, `(arguments)`).
    pub name: String,
    /// The folder relative links resolve against (none for stdin and arguments: the
    /// current folder).
    pub dir: Option<PathBuf>,
}

/// One link at one place.
#[derive(Debug, Clone, Copy)]
pub struct Occurrence {
    /// Index into [`Corpus::sources`].
    pub source: u32,
    /// 1-based line and column (characters); 0 for a whole-file problem.
    pub line: u32,
    pub col: u32,
    /// Index into [`Corpus::targets`].
    pub target: u32,
}

/// What a link points at, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A web URL, requested once for every place it appears.
    Web(Url),
    /// A local file or folder, and the anchor asked for in it.
    Local {
        path: PathBuf,
        fragment: Option<String>,
    },
    /// Left out on purpose; `why` names the rule.
    Excluded { why: String },
    /// Broken before any check.
    Broken { kind: Kind, why: String },
}

/// The links of all inputs: places, and the targets they name (each once).
#[derive(Debug, Default)]
pub struct Corpus {
    pub sources: Vec<Source>,
    pub occurrences: Vec<Occurrence>,
    /// (the target as shown, the target), in order of first appearance.
    pub targets: Vec<(String, Target)>,
    index: HashMap<String, u32>,
}

/// How links are read and resolved.
#[derive(Debug, Default)]
pub struct Reading {
    /// Read every input as this format (else each file's name says).
    pub format: Option<Format>,
    /// What relative links resolve against: a folder, or a URL.
    pub base: Option<Base>,
    /// Which links are left out.
    pub filter: Filter,
}

/// `--base`: a folder (local links stay local) or a URL (relative links become web URLs).
#[derive(Debug, Clone)]
pub enum Base {
    Folder(PathBuf),
    Url(Url),
}

impl Base {
    /// A URL if it parses as http(s), else a folder.
    pub fn parse(s: &str) -> Result<Base, String> {
        match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Base::Url(u)),
            Ok(u) => Err(format!(
                "a base URL must be http or https, not {}:",
                u.scheme()
            )),
            Err(_) => Ok(Base::Folder(PathBuf::from(s))),
        }
    }
}

/// `--exclude`, `--include`, `--exclude-file`, `--exclude-private`, `--exclude-loopback`.
#[derive(Debug, Default)]
pub struct Filter {
    /// (the pattern as given, its regex, where it came from: `--exclude` or `FILE:LINE`).
    pub exclude: Vec<(regex::Regex, String)>,
    /// A link matching one of these is checked even if an exclude matches.
    pub include: Vec<regex::Regex>,
    pub private: bool,
    pub loopback: bool,
}

impl Filter {
    /// Why `url` is left out, if it is.
    pub fn excludes(&self, url: &Url) -> Option<String> {
        let text = url.as_str();
        if self.include.iter().any(|r| r.is_match(text)) {
            return None;
        }
        if let Some((_, from)) = self.exclude.iter().find(|(r, _)| r.is_match(text)) {
            return Some(format!("excluded by {from}"));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        };
        let named_loopback = url.host_str() == Some("localhost");
        if self.loopback && (named_loopback || ip.is_some_and(|ip| ip.is_loopback())) {
            return Some("excluded by --exclude-loopback".into());
        }
        if self.private && ip.is_some_and(is_private) {
            return Some("excluded by --exclude-private".into());
        }
        None
    }
}

/// A private or link-local address (RFC 1918, RFC 4193, 169.254/16, fe80::/10).
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Compiles `--exclude`/`--include` patterns; an invalid one is one line naming the flag,
/// the pattern and what is wrong where.
pub fn compile(pattern: &str, from: &str) -> anyhow::Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| {
        let why = e.to_string();
        let last = why.lines().last().unwrap_or("invalid").trim().to_string();
        anyhow::anyhow!("{from}: invalid regex {pattern:?}: {last}")
    })
}

/// The patterns of an exclude file: one regex a line, `#` comments and blank lines skipped;
/// each remembered as `FILE:LINE` for the rows it excludes.
pub fn exclude_file(path: &Path) -> anyhow::Result<Vec<(regex::Regex, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--exclude-file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let from = format!("{}:{}", path.display(), i + 1);
        out.push((compile(line, &from)?, from));
    }
    Ok(out)
}

/// One piece of input, in the order given: a document to read, the URLs given directly, or
/// why an input cannot be read.
enum Piece {
    File(PathBuf),
    Stdin(Vec<u8>),
    Direct(Vec<String>),
    Broken { name: String, why: String },
}

/// A document read (on a reader thread): its name, the folder its relative links resolve
/// against, and its links resolved, or why it could not be read.
pub struct Document {
    pub name: String,
    pub dir: Option<PathBuf>,
    pub links: Result<Vec<Found>, String>,
}

/// A link at its place, resolved, with its target as every row shows it.
pub struct Found {
    pub link: Link,
    pub shown: String,
    pub target: Target,
}

impl Found {
    /// What makes two links one target: the same text; an excluded or broken link is keyed
    /// by its reason too, so each keeps its own.
    pub fn key(&self) -> String {
        match &self.target {
            Target::Excluded { why } | Target::Broken { why, .. } => {
                format!("{}\n{why}", self.shown)
            }
            _ => self.shown.clone(),
        }
    }
}

/// How many documents the readers may read ahead of the one being merged: memory stays
/// bounded by this many documents' links, whatever the number of files.
const READ_WINDOW: usize = 32;

/// The pieces the inputs name, in order; the URLs given directly come last, together.
fn pieces(inputs: &[String]) -> Vec<Piece> {
    let (mut pieces, mut direct) = (Vec::new(), Vec::new());
    for input in inputs {
        if input.starts_with("http://") || input.starts_with("https://") {
            direct.push(input.clone());
        } else if input == "-" {
            pieces.push(stdin_piece());
        } else {
            match expand(input) {
                Ok(files) => pieces.extend(files.into_iter().map(Piece::File)),
                Err(why) => pieces.push(Piece::Broken {
                    name: input.clone(),
                    why,
                }),
            }
        }
    }
    if !direct.is_empty() {
        pieces.push(Piece::Direct(direct));
    }
    pieces
}

fn stdin_piece() -> Piece {
    use std::io::Read;
    let mut bytes = Vec::new();
    let broken = |why: String| Piece::Broken {
        name: "-".into(),
        why,
    };
    match std::io::stdin().take(MAX_FILE + 1).read_to_end(&mut bytes) {
        Err(e) => broken(e.to_string()),
        Ok(_) if bytes.len() as u64 > MAX_FILE => {
            broken(format!("more than {} MiB: not read", MAX_FILE >> 20))
        }
        Ok(_) => Piece::Stdin(bytes),
    }
}

impl Piece {
    fn name(&self) -> String {
        match self {
            Piece::File(path) => path.display().to_string(),
            Piece::Stdin(_) => "-".into(),
            Piece::Direct(_) => "(arguments)".into(),
            Piece::Broken { name, .. } => name.clone(),
        }
    }

    /// Reads the piece and resolves its links (a reader thread's job).
    fn read(&self, reading: &Reading) -> Document {
        let name = self.name();
        let failed = |why: String| Document {
            name: name.clone(),
            dir: None,
            links: Err(why),
        };
        let (dir, text, format) = match self {
            Piece::Broken { why, .. } => return failed(why.clone()),
            Piece::Direct(urls) => {
                let links = urls.iter().enumerate().map(|(i, url)| Link {
                    url: url.clone(),
                    line: 1,
                    col: i as u32 + 1,
                });
                return Document {
                    links: Ok(found(links.collect(), None, reading)),
                    name,
                    dir: None,
                };
            }
            Piece::Stdin(bytes) => (
                None,
                lossy(&name, bytes),
                reading.format.unwrap_or(Format::List),
            ),
            Piece::File(path) => match document(path) {
                Ok(bytes) => (
                    path.parent().map(Path::to_path_buf),
                    owned_text(&name, bytes),
                    reading.format.unwrap_or_else(|| Format::of(path)),
                ),
                Err(why) => return failed(why),
            },
        };
        let own = dir.clone().map(|d| (PathBuf::from(&name), d));
        let links = extract::links_in(&text, format);
        Document {
            links: Ok(found(links, own, reading)),
            name,
            dir,
        }
    }
}

/// A document's text; invalid UTF-8 read as U+FFFD, with a warning naming it.
fn lossy<'b>(name: &str, bytes: &'b [u8]) -> std::borrow::Cow<'b, str> {
    let text = String::from_utf8_lossy(bytes);
    if let std::borrow::Cow::Owned(_) = text {
        tracing::warn!("{name}: not valid UTF-8: its bad bytes read as U+FFFD");
    }
    text
}

/// A document's bytes as text, without a copy when they are UTF-8 already.
fn owned_text(name: &str, bytes: Vec<u8>) -> std::borrow::Cow<'static, str> {
    match String::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(e) => lossy(name, e.as_bytes()).into_owned().into(),
    }
}

/// Links resolved: against `--base`, or `own` (the file they are in, and its folder).
fn found(links: Vec<Link>, own: Option<(PathBuf, PathBuf)>, reading: &Reading) -> Vec<Found> {
    let (file, dir) = own.map_or((None, None), |(f, d)| (Some(f), Some(d)));
    links
        .into_iter()
        .map(|link| {
            let target = resolve(&link.url, dir.as_deref(), file.as_deref(), reading);
            let shown = shown(&link.url, &target);
            Found {
                link,
                shown,
                target,
            }
        })
        .collect()
}

/// A target as every row shows it: credentials masked, a local path with its fragment.
fn shown(raw: &str, target: &Target) -> String {
    match target {
        Target::Web(u) => super::input::mask_credentials(u),
        Target::Local { path, fragment } => match fragment {
            Some(f) => format!("{}#{f}", path.display()),
            None => path.display().to_string(),
        },
        _ => crate::lab::units::printable(raw).into_owned(),
    }
}

/// Reads every input and hands each document to `each`, in input order: the documents are
/// read on reader threads (`Reader_N`, one a core), at most [`READ_WINDOW`] ahead. A
/// problem with one input (missing, unreadable, binary, too large) is a document that says
/// why, and the rest goes on.
pub fn read_each(inputs: &[String], reading: &Arc<Reading>, mut each: impl FnMut(Document)) {
    let pieces = Arc::new(pieces(inputs));
    let job = {
        let (pieces, reading) = (Arc::clone(&pieces), Arc::clone(reading));
        Arc::new(move |i: usize| pieces[i].read(&reading))
    };
    let interrupted = |i: usize| Document {
        name: pieces[i].name(),
        dir: None,
        links: Err("not read (interrupted)".into()),
    };
    let readers = InOrder {
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        prefix: "Reader",
        recorder: None,
        window: Some(READ_WINDOW),
    };
    let merged = readers.run(pieces.len(), job, interrupted, |_, document| {
        each(document);
        Ok(())
    });
    debug_assert!(merged.is_ok(), "handing on never fails");
}

impl Corpus {
    /// Reads every input ([`read_each`]) and numbers the targets in order of first
    /// appearance.
    pub fn read(inputs: &[String], reading: &Arc<Reading>) -> Corpus {
        let mut corpus = Corpus::default();
        read_each(inputs, reading, |document| corpus.merge(document));
        corpus
    }

    fn source(&mut self, name: &str, dir: Option<PathBuf>) -> u32 {
        self.sources.push(Source {
            name: name.to_string(),
            dir,
        });
        self.sources.len() as u32 - 1
    }

    /// A document's links, numbered against the targets seen so far (in input order).
    fn merge(&mut self, document: Document) {
        match document.links {
            Ok(links) => {
                let source = self.source(&document.name, document.dir);
                for found in links {
                    let target = self.target(found.key(), found.target);
                    self.occurrences.push(Occurrence {
                        source,
                        line: found.link.line,
                        col: found.link.col,
                        target,
                    });
                }
            }
            Err(why) => {
                let source = self.source(&document.name, None);
                let key = format!("{}\n{why}", document.name);
                let kind = Kind::UnreadableInput;
                let target = self.target(key, Target::Broken { kind, why });
                self.occurrences.push(Occurrence {
                    source,
                    line: 0,
                    col: 0,
                    target,
                });
            }
        }
    }

    fn target(&mut self, key: String, target: Target) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.targets.len() as u32;
        let shown = key.split('\n').next().unwrap_or_default().to_string();
        self.targets.push((shown, target));
        self.index.insert(key, i);
        i
    }

    /// The distinct web URLs: each requested once.
    pub fn web(&self) -> usize {
        self.targets
            .iter()
            .filter(|(_, t)| matches!(t, Target::Web(_)))
            .count()
    }

    /// The distinct targets that are requested or looked at (not excluded, not broken).
    pub fn checked(&self) -> usize {
        self.targets
            .iter()
            .filter(|(_, t)| matches!(t, Target::Web(_) | Target::Local { .. }))
            .count()
    }
}

/// The bytes of a document, or why not: not a regular file, too large, binary.
fn document(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{} MiB, more than the {} MiB a document may be: not read",
            meta.len() >> 20,
            MAX_FILE >> 20
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err("a binary file (a NUL byte in its first 8 KiB): not read".into());
    }
    Ok(bytes)
}

/// The files an input names: itself, a folder's documents, or a glob's matches (in name
/// order); or why none.
fn expand(input: &str) -> Result<Vec<PathBuf>, String> {
    let path = Path::new(input);
    if path.exists() {
        return extract::files(path).map_err(|e| e.to_string());
    }
    if input.contains(['*', '?', '[']) {
        let paths = glob::glob(input).map_err(|e| format!("invalid glob: {e}"))?;
        let mut files = Vec::new();
        for p in paths {
            let p = p.map_err(|e| e.to_string())?;
            files.extend(extract::files(&p).map_err(|e| e.to_string())?);
        }
        if files.is_empty() {
            return Err("the glob matches no file".into());
        }
        return Ok(files);
    }
    Err("no such file or folder".into())
}

/// A link as written, resolved: against `--base`, or against `dir` (the folder of the file
/// it is in; `own` is that file, for `#fragment` links).
pub fn resolve(raw: &str, dir: Option<&Path>, own: Option<&Path>, reading: &Reading) -> Target {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix("//") {
        return web(&format!("https://{rest}"), reading);
    }
    if let Some(colon) = raw.find(':') {
        let scheme = &raw[..colon];
        let is_scheme = !scheme.is_empty()
            && scheme.len() > 1 // `C:` is a drive, not a scheme
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if is_scheme && !raw[..colon].contains('/') {
            return match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" => web(raw, reading),
                other => Target::Excluded {
                    why: format!("{other}: links are not checked"),
                },
            };
        }
    }
    let (path, fragment) = match raw.split_once('#') {
        Some((p, f)) => (p, Some(f.to_string())),
        None => (raw, None),
    };
    // A query names the same file (`page.html?highlight=x`): a static server ignores it.
    let path = percent_decode(path.split_once('?').map_or(path, |(p, _)| p));
    if path.is_empty() {
        // `#section`: in this very file.
        return match own {
            Some(file) => Target::Local {
                path: file.to_path_buf(),
                fragment,
            },
            None => Target::Broken {
                kind: Kind::InvalidUrl,
                why: "a #fragment outside a file".into(),
            },
        };
    }
    match (&reading.base, path.starts_with('/')) {
        (Some(Base::Url(base)), _) => match base.join(raw) {
            Ok(u) => web(u.as_str(), reading),
            Err(e) => Target::Broken {
                kind: Kind::InvalidUrl,
                why: e.to_string(),
            },
        },
        (Some(Base::Folder(root)), true) => Target::Local {
            path: root.join(path.trim_start_matches('/')),
            fragment,
        },
        (None, true) => Target::Broken {
            kind: Kind::NeedsBase,
            why: "a link from the site's root: give --base".into(),
        },
        (_, false) => Target::Local {
            path: dir.map_or_else(|| PathBuf::from(&path), |d| d.join(&path)),
            fragment,
        },
    }
}

/// A web link, parsed and filtered; its fragment is the browser's, not the server's.
fn web(raw: &str, reading: &Reading) -> Target {
    match super::input::parse_target(raw) {
        Ok(mut url) => {
            url.set_fragment(None);
            match reading.filter.excludes(&url) {
                Some(why) => Target::Excluded { why },
                None => Target::Web(url),
            }
        }
        Err((kind, why)) => Target::Broken { kind, why },
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> Reading {
        Reading::default()
    }

    #[test]
    fn links_resolve_to_web_local_excluded_or_broken() {
        let dir = Path::new("docs/guide");
        let own = Path::new("docs/guide/intro.md");
        let r = reading();
        let t = |raw| resolve(raw, Some(dir), Some(own), &r);
        assert!(
            matches!(t("https://a.example/x#frag"), Target::Web(u) if u.as_str() == "https://a.example/x")
        );
        assert_eq!(
            t("../README.md#usage"),
            Target::Local {
                path: PathBuf::from("docs/guide/../README.md"),
                fragment: Some("usage".into())
            }
        );
        assert_eq!(
            t("#intro"),
            Target::Local {
                path: own.to_path_buf(),
                fragment: Some("intro".into())
            }
        );
        assert_eq!(
            t("my%20notes.md"),
            Target::Local {
                path: PathBuf::from("docs/guide/my notes.md"),
                fragment: None
            }
        );
        // A query names the same file (the Rust book links `page.html?highlight=x#id`).
        assert_eq!(
            t("../ch20.html?highlight=macro#derive"),
            Target::Local {
                path: PathBuf::from("docs/guide/../ch20.html"),
                fragment: Some("derive".into())
            }
        );
        assert!(matches!(t("mailto:a@b.example"), Target::Excluded { .. }));
        assert!(matches!(
            t("/abs/page"),
            Target::Broken {
                kind: Kind::NeedsBase,
                ..
            }
        ));
        let based = Reading {
            base: Some(Base::parse("https://site.example/docs/").unwrap()),
            ..Reading::default()
        };
        assert!(matches!(resolve("/abs/page", Some(dir), Some(own), &based),
            Target::Web(u) if u.as_str() == "https://site.example/abs/page"));
    }

    #[test]
    fn excludes_name_their_rule_and_include_wins() {
        let filter = Filter {
            exclude: vec![(
                compile("example\\.org", "--exclude").unwrap(),
                "--exclude 'example\\.org'".into(),
            )],
            include: vec![compile("keep", "--include").unwrap()],
            private: true,
            loopback: true,
        };
        let u = |s| Url::parse(s).unwrap();
        assert_eq!(
            filter.excludes(&u("https://example.org/a")).as_deref(),
            Some("excluded by --exclude 'example\\.org'")
        );
        assert_eq!(filter.excludes(&u("https://example.org/keep")), None);
        assert!(
            filter
                .excludes(&u("http://127.0.0.2:8/"))
                .unwrap()
                .contains("loopback")
        );
        assert!(
            filter
                .excludes(&u("http://localhost/"))
                .unwrap()
                .contains("loopback")
        );
        assert!(
            filter
                .excludes(&u("http://192.168.1.1/"))
                .unwrap()
                .contains("private")
        );
        assert_eq!(filter.excludes(&u("https://a.example/")), None);
        let e = compile("a(b", "--exclude").unwrap_err().to_string();
        assert!(e.starts_with("--exclude: invalid regex \"a(b\""), "{e}");
    }
}
