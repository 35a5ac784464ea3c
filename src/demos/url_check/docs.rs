//! `url-check` on documents: a README, a docs folder, globs, stdin, URLs given directly.
//!
//! The pool is the lesson's (threads `Checker_N`), the unit of work is a distinct target:
//! each URL is requested once, however many places link to it, and each place gets its row,
//! in input order, as soon as its target's result is in. A target's turn comes in order of
//! first appearance, so the rows up to the next new target can always be written.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tracing::info;

use super::report_formats::{OutputFormat, Results, Totals};
use super::{AtOnce, Args, this_thread};
use crate::check::corpus::{self, Base, Corpus, Filter, Reading, Target};
use crate::check::cache::Cache;
use crate::check::{Checker, Kind, Outcome, extract};
use crate::lab::{self, Lab, Report, Table, units};

/// The exclude file read when present in the current folder (as lychee reads `.lycheeignore`).
pub const DEFAULT_EXCLUDE_FILE: &str = ".threadlab-ignore";

/// One link at one place, and its target's result (`results` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub struct LinkResult {
    pub file: String,
    /// 1-based; 0 for a whole-input problem.
    pub line: u32,
    pub col: u32,
    /// The target as checked (credentials masked; a local path as resolved).
    pub url: String,
    pub status: Option<u16>,
    pub kind: Option<Kind>,
    pub error: Option<String>,
    pub ok: bool,
    /// Left out on purpose: the rule that did it.
    pub excluded: Option<String>,
    pub elapsed_ms: f64,
    pub thread: Option<Arc<str>>,
    /// Requests made for the target (shared by every place that links to it).
    pub attempts: u32,
    /// The first place that links to this target: the one its request stands for.
    pub first: bool,
    /// Answered from `--cache`, not requested.
    pub cached: bool,
}

impl LinkResult {
    /// `file:line:col` (just `file` for a whole-input problem).
    pub fn place(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.col)
        }
    }

    pub fn failed(&self) -> bool {
        !self.ok && self.excluded.is_none()
    }

    /// The result in words: the status, why it failed, or why it was left out.
    pub fn reason(&self) -> String {
        match (&self.excluded, &self.error, self.status) {
            (Some(why), _, _) => why.clone(),
            (_, Some(e), _) => e.clone(),
            (_, None, Some(code)) => code.to_string(),
            (_, None, None) => "exists".into(),
        }
    }

    pub fn mark(&self) -> &'static str {
        match (self.failed(), self.excluded.is_some()) {
            (true, _) => "✘",
            (_, true) => "-",
            _ => "✔",
        }
    }
}

/// The anchors of the local Markdown and HTML files fragments point into, each file read once.
#[derive(Default)]
struct Anchors(Mutex<HashMap<PathBuf, Arc<HashSet<String>>>>);

impl Anchors {
    fn of(&self, path: &Path) -> Arc<HashSet<String>> {
        if let Some(a) = crate::sync::lock(&self.0).get(path) {
            return Arc::clone(a);
        }
        let text = std::fs::read(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let found = Arc::new(match extract::Format::of(path) {
            extract::Format::Html => crate::check::html::anchors(&text),
            _ => extract::anchors(&text),
        });
        crate::sync::lock(&self.0).insert(path.to_path_buf(), Arc::clone(&found));
        found
    }
}

/// A local target: there or not, and its anchor in a Markdown or HTML file.
fn check_local(path: &Path, fragment: Option<&str>, anchors: &Anchors) -> Outcome {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Outcome::failed(Kind::MissingFile, "no such file".into()),
    };
    let ok = Outcome {
        status: None,
        kind: None,
        error: None,
        ok: true,
        elapsed: Duration::ZERO,
        attempts: 0,
    };
    let Some(fragment) = fragment.filter(|f| !f.is_empty()) else {
        return ok;
    };
    let document = matches!(
        extract::Format::of(path),
        extract::Format::Markdown | extract::Format::Html
    );
    if !meta.is_file() || !document {
        return ok; // anchors are looked for in Markdown and HTML files only
    }
    // A document too large to read (the inputs' own cap) cannot be searched: said, not read.
    if meta.len() > corpus::MAX_FILE {
        return Outcome::failed(
            Kind::UnreadableInput,
            format!(
                "{} MiB, too large to look for #{fragment} in",
                meta.len() >> 20
            ),
        );
    }
    let anchors = anchors.of(path);
    let decoded = fragment.replace("%20", " ");
    if anchors.contains(fragment) || anchors.contains(&decoded.to_lowercase()) {
        ok
    } else {
        Outcome::failed(
            Kind::MissingAnchor,
            format!("no heading or anchor #{fragment} in it"),
        )
    }
}

/// How the links are read: format, base, filter (patterns compiled, exclude file read).
pub(super) fn reading(args: &Args) -> anyhow::Result<Reading> {
    let mut filter = Filter {
        private: args.exclude_private,
        loopback: args.exclude_loopback,
        ..Filter::default()
    };
    for p in &args.exclude {
        filter
            .exclude
            .push((corpus::compile(p, "--exclude")?, format!("--exclude {p:?}")));
    }
    for p in &args.include {
        filter.include.push(corpus::compile(p, "--include")?);
    }
    let file = match &args.exclude_file {
        Some(f) => Some(f.clone()),
        None => Some(PathBuf::from(DEFAULT_EXCLUDE_FILE)).filter(|p| p.is_file()),
    };
    if let Some(f) = file {
        filter.exclude.extend(corpus::exclude_file(&f)?);
    }
    let base = match &args.base {
        Some(b) => Some(Base::parse(b).map_err(|e| anyhow::anyhow!("--base {b}: {e}"))?),
        None => None,
    };
    Ok(Reading {
        format: args.format_in,
        base,
        filter,
    })
}

/// Checks target `i` on the calling worker (a fresh cached result stands for a web
/// request); true when it came from the cache.
fn check_target(
    target: &Target,
    shown: &str,
    checker: &Checker,
    anchors: &Anchors,
    at_once: &AtOnce,
    cache: Option<&Mutex<Cache>>,
) -> (Outcome, bool) {
    if let (Target::Web(url), Some(cache)) = (target, cache)
        && let Some(kept) = crate::sync::lock(cache).get(url.as_str())
    {
        return (kept, true);
    }
    let outcome = match target {
        Target::Web(url) => at_once.check(checker, url, shown),
        Target::Local { path, fragment } => check_local(path, fragment.as_deref(), anchors),
        // Left out: no kind of failure (the row says which rule in `excluded`).
        Target::Excluded { .. } => Outcome {
            kind: None,
            error: None,
            ..Outcome::failed(Kind::NotChecked, String::new())
        },
        Target::Broken { kind, why } => Outcome::failed(*kind, why.clone()),
    };
    (outcome, false)
}

/// The rows of every place, in input order, from each target's outcome (given in target
/// order). Counts as it goes.
struct Rows<'c> {
    corpus: &'c Corpus,
    next: usize,
    seen: Vec<bool>,
    totals: Totals,
    table: Vec<[String; 5]>,
    left_out: usize,
    excluded: Vec<String>,
    by_kind: std::collections::BTreeMap<Kind, u64>,
    verbose: bool,
}

/// A target's outcome, the worker that made it, and whether the cache answered.
type Done = (Outcome, Option<Arc<str>>, bool);

/// Most rows the text table shows.
const TABLE_ROWS: usize = 200;

impl<'c> Rows<'c> {
    fn new(corpus: &'c Corpus, verbose: bool) -> Self {
        Rows {
            corpus,
            next: 0,
            seen: vec![false; corpus.targets.len()],
            totals: Totals::default(),
            table: Vec::new(),
            left_out: 0,
            excluded: Vec::new(),
            by_kind: Default::default(),
            verbose,
        }
    }

    /// Target `t`'s outcome is in: write every place up to the next target not yet known.
    fn flush(
        &mut self,
        outcomes: &HashMap<u32, Done>,
        results: &mut Results,
    ) -> anyhow::Result<()> {
        while let Some(o) = self.corpus.occurrences.get(self.next) {
            let Some((outcome, thread, cached)) = outcomes.get(&o.target) else {
                break;
            };
            let (shown, target) = &self.corpus.targets[o.target as usize];
            let first = !std::mem::replace(&mut self.seen[o.target as usize], true);
            let row = LinkResult {
                file: self.corpus.sources[o.source as usize].name.clone(),
                line: o.line,
                col: o.col,
                url: shown.clone(),
                status: outcome.status,
                kind: outcome.kind,
                error: outcome.error.clone(),
                ok: outcome.ok,
                excluded: match target {
                    Target::Excluded { why } => Some(why.clone()),
                    _ => None,
                },
                elapsed_ms: units::ms(outcome.elapsed),
                thread: thread.clone(),
                attempts: outcome.attempts,
                first,
                cached: *cached,
            };
            self.count(&row);
            results.row(&row)?;
            self.next += 1;
        }
        Ok(())
    }

    fn count(&mut self, r: &LinkResult) {
        self.totals.links += 1;
        if r.excluded.is_some() {
            self.totals.excluded += 1;
            if self.verbose {
                self.excluded.push(format!("{}: {} ({})", r.place(), r.url, r.reason()));
            }
            return;
        }
        if r.cached {
            self.totals.cached += 1;
        }
        if r.ok {
            self.totals.ok += 1;
        } else {
            self.totals.failed += 1;
            *self.by_kind.entry(r.kind.unwrap_or(Kind::ProtocolError)).or_default() += 1;
        }
        if r.failed() || self.corpus.occurrences.len() <= TABLE_ROWS {
            if self.table.len() < TABLE_ROWS {
                self.table.push([
                    r.place(),
                    r.url.clone(),
                    r.reason(),
                    format!("{:.0} ms", r.elapsed_ms),
                    r.thread.as_deref().unwrap_or_default().to_string(),
                ]);
            } else {
                self.left_out += 1;
            }
        }
    }
}

/// `--cache`: the cache file read (a bad one ignored with a warning naming it).
fn open_cache(args: &Args) -> Option<Cache> {
    if !args.cache {
        return None;
    }
    let path = args
        .cache_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::check::cache::DEFAULT_FILE));
    let (cache, warning) = Cache::load(&path, args.max_cache_age);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    Some(cache)
}

/// Runs url-check over documents.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    anyhow::ensure!(
        !args.compare && args.sweep.is_none(),
        "--compare and --sweep time a plain list of URLs (one file, one URL a line)"
    );
    let mut report = Report::new("url-check");
    report.params_from(args);
    let reading = Arc::new(reading(args)?);
    let corpus = Arc::new(Corpus::read(&args.inputs, &reading));
    let files = corpus.sources.iter().filter(|s| s.dir.is_some()).count();
    let checked = corpus.checked();
    info!(
        "url-check: {} in {} (each target once: {} to check) on {} workers",
        plural(corpus.occurrences.len(), "link"),
        plural(corpus.sources.len(), "input"),
        checked,
        args.workers
    );
    let mut options = super::options(args);
    options.retries = args.retries.unwrap_or(2);
    options.hosts = crate::check::hosts::Limits {
        concurrency: Some(args.host_concurrency.unwrap_or(4)),
        interval: args.host_interval.map(Duration::from_secs_f64),
    };
    let checker = Arc::new(Checker::new(options)?);
    checker.set_narrate(lab.output().narrative != lab::output::Narrative::Off);
    let mut results = Results::open(
        args.output_format,
        args.output.as_deref(),
        lab.output().json,
    )?;
    report.summary_to_stderr = results.owns_stdout();
    report.results_streamed = results.in_report();
    let anchors = Arc::new(Anchors::default());
    let at_once = Arc::new(AtOnce::default());
    let mut rows = Rows::new(&corpus, lab.output().verbose);
    let mut outcomes: HashMap<u32, Done> = HashMap::new();
    let cache = open_cache(args).map(|c| Arc::new(Mutex::new(c)));
    let progress = lab.progress(corpus.targets.len() as u64, "checked");
    let job = {
        let (corpus, checker, anchors, at_once, cache) = (
            Arc::clone(&corpus),
            Arc::clone(&checker),
            anchors,
            Arc::clone(&at_once),
            cache.clone(),
        );
        Arc::new(move |i: usize| {
            let (shown, target) = &corpus.targets[i];
            let (outcome, cached) =
                check_target(target, shown, &checker, &anchors, &at_once, cache.as_deref());
            (outcome, Some(this_thread()), cached)
        })
    };
    let mut settled: Vec<(u32, Outcome)> = Vec::new();
    let wall = super::in_order(
        corpus.targets.len(),
        args.workers,
        lab,
        job,
        |_| {
            let outcome = Outcome::failed(Kind::NotChecked, "not checked (interrupted)".into());
            (outcome, None, false)
        },
        |i, done| {
            progress.inc(1);
            if !done.2 && matches!(corpus.targets[i].1, Target::Web(_)) {
                settled.push((i as u32, done.0.clone()));
            }
            outcomes.insert(i as u32, done);
            rows.flush(&outcomes, &mut results)
        },
    )?;
    if let Some(cache) = &cache {
        let mut cache = crate::sync::lock(cache);
        for (i, outcome) in &settled {
            if let Target::Web(url) = &corpus.targets[*i as usize].1 {
                cache.put(url.as_str(), outcome);
            }
        }
        cache.save()?;
    }
    super::keep_cookies(&checker, &mut report)?;
    progress.finish_and_clear();
    rows.totals.files = files;
    rows.totals.distinct = corpus.targets.len();
    rows.totals.requested = corpus.web();
    rows.totals.wall_ms = units::ms(wall);
    let totals = rows.totals.clone();
    results.finish(&totals)?;
    finish(args, &corpus, rows, &checker, &at_once, &mut report, lab);
    Ok(report)
}

fn plural(n: usize, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// The table, the notes, the checks and the exit code.
fn finish(
    args: &Args,
    corpus: &Corpus,
    rows: Rows<'_>,
    checker: &Checker,
    at_once: &AtOnce,
    report: &mut Report,
    lab: &Lab,
) {
    let mut table = Table::new(["where", "link", "result", "time", "thread"]);
    for row in rows.table {
        table.row(row);
    }
    // No rows (nothing failed, with the results elsewhere): no empty table either.
    if !table.rows.is_empty() {
        report.tables.push(table);
    }
    let t = &rows.totals;
    let kinds: Vec<String> = rows.by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    if args.cache {
        report.note(format!(
            "{} answered from the cache (kept results under {} old; errors are never kept).",
            plural(t.cached, "link"),
            crate::check::cache::show_age(args.max_cache_age)
        ));
    }
    report.note(format!(
        "{} in {}: {} ok, {} failed{}, {} excluded; {}, each checked once; {}",
        plural(t.links, "link"),
        plural(t.files, "file"),
        t.ok,
        t.failed,
        if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) },
        t.excluded,
        plural(t.distinct, "distinct target"),
        units::duration(Duration::from_secs_f64(t.wall_ms / 1000.0)),
    ));
    if rows.left_out > 0 {
        report.note(format!(
            "{} more rows are left out of the table (--output-format json lists every link).",
            rows.left_out
        ));
    }
    if t.excluded > 0 && rows.excluded.is_empty() {
        report.note(format!(
            "{} excluded: -v lists each with the rule that left it out.",
            plural(t.excluded, "link")
        ));
    }
    for line in &rows.excluded {
        report.note(format!("excluded: {line}"));
    }
    if lab.output().verbose {
        host_table(checker, report);
    }
    super::warn_insecure(args, report);
    for (k, v) in [
        ("links", t.links),
        ("ok", t.ok),
        ("failed", t.failed),
        ("excluded", t.excluded),
        ("distinct", t.distinct),
    ] {
        report.metric(k, v as u64);
    }
    report.check(
        "link-found-has-exactly-row",
        "every link found has exactly one row, in input order",
        format!(
            "{} found in {}",
            plural(corpus.occurrences.len(), "link"),
            plural(corpus.sources.len(), "input")
        ),
        plural(t.links, "row"),
        t.links == corpus.occurrences.len(),
    );
    // The host limit, judged where some host was asked at all.
    if t.requested > 0 {
        at_once.judge(args.host_concurrency.unwrap_or(4), report);
    }
    report.exit_code = Some(if lab.interrupted() {
        130
    } else if !report.ok {
        1
    } else if t.failed > 0 {
        2
    } else {
        0
    });
}

/// `-v`: what each host saw.
fn host_table(checker: &Checker, report: &mut Report) {
    let stats = checker.host_stats();
    if stats.is_empty() {
        return;
    }
    let mut table = Table::new(["host", "requests", "429s", "mean latency"]);
    for h in stats {
        table.row([
            h.host,
            h.requests.to_string(),
            h.too_many.to_string(),
            units::duration(h.mean_latency),
        ]);
    }
    report.tables.push(table);
}

/// Whether a run reads documents rather than a plain list: more than one input, a folder,
/// a glob, a URL, a Markdown or text input, or any option only documents have.
pub fn wanted(args: &Args) -> bool {
    let docs_flags = !args.exclude.is_empty()
        || !args.include.is_empty()
        || args.exclude_file.is_some()
        || args.exclude_private
        || args.exclude_loopback
        || args.base.is_some()
        || args.output.is_some()
        || args.output_format != OutputFormat::Text
        || args.host_concurrency.is_some()
        || args.host_interval.is_some()
        || args.cache;
    let [input] = args.inputs.as_slice() else {
        return !args.inputs.is_empty();
    };
    if docs_flags {
        return true;
    }
    if input == "-" {
        return args.format_in.is_some_and(|f| f != extract::Format::List);
    }
    if input.starts_with("http://") || input.starts_with("https://") {
        return true;
    }
    let path = Path::new(input);
    if path.is_dir() {
        return true;
    }
    if !path.exists() {
        // A glob is documents; a missing file keeps the plain list's own "cannot read" line.
        return input.contains(['*', '?', '[']);
    }
    // A file, a device or a pipe: a list unless its name or --format-in says otherwise.
    args.format_in.unwrap_or_else(|| extract::Format::of(path)) != extract::Format::List
}
