//! url-check on documents, against a counting server the tests start on 127.0.0.1 (and
//! 127.0.0.2, and `localhost`): every link with its place and kind, each URL requested once,
//! per-host limits counted by the server, excludes, outputs, request headers, bad inputs.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_usage_error, threadlab, threadlab_env};
use serde_json::Value;
use threadlab_tools::counting::Counting;

/// An empty scratch folder of this test process, named after `tag`.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("threadlab-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of `tests/linkcheck` with the server's port in every link, plus a folder its
/// `.gitignore` leaves out (a link there would be a failure if it were read).
fn corpus(tag: &str, port: u16) -> PathBuf {
    let root = std::env::temp_dir().join(format!("threadlab-links-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/linkcheck");
    copy(&from, &root, port);
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::write(
        root.join("build/out.md"),
        format!("[ignored](http://127.0.0.1:{port}/missing-ignored)\n"),
    )
    .unwrap();
    std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
    root
}

fn copy(from: &Path, to: &Path, port: u16) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy(&path, &target, port);
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(target, text.replace("PORT", &port.to_string())).unwrap();
        }
    }
}

/// (place relative to the corpus, kind or "ok" or "excluded") of every row of a JSON run.
fn rows(results: &Value, root: &Path) -> Vec<(String, String)> {
    let prefix = format!("{}/", root.display());
    results
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let file = r["file"].as_str().unwrap().trim_start_matches(&prefix);
            let what = if r["excluded"].is_string() {
                "excluded".to_string()
            } else if r["ok"].as_bool().unwrap() {
                "ok".to_string()
            } else {
                r["kind"].as_str().unwrap().to_string()
            };
            (format!("{file}:{}:{}", r["line"], r["col"]), what)
        })
        .collect()
}

/// Every link of the corpus, with its place and its kind, in input order; the same URL
/// linked twice is requested once (counted by the server); hidden and .gitignored files
/// are not read; a 429 with Retry-After is retried and passes.
#[test]
fn each_link_has_its_place_and_kind_and_each_url_is_requested_once() {
    let server = Counting::start().unwrap();
    let root = corpus("kinds", server.port());
    let out = root.join("results.json");
    let run = threadlab(&[
        "url-check",
        root.to_str().unwrap(),
        "--exclude",
        r"excluded\.example",
        "--output-format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "failures exit 2\n{}{}", run.stdout, run.stderr);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let got = rows(&doc["results"], &root);
    // Each link's column, found in the file as the test wrote it (the port's digits move
    // them): the `[` of a link, the `<` of an autolink.
    let want = [
        ("README.md", 3, "[ok]", "ok"),
        ("README.md", 3, "[missing page]", "status"),
        ("README.md", 4, "<http", "ok"),
        ("README.md", 4, "[slow one]", "ok"),
        ("README.md", 6, "[busy host]", "ok"),
        ("README.md", 7, "[Moved]", "ok"),
        ("README.md", 7, "[gone]", "status"),
        ("README.md", 9, "[the guide]", "ok"),
        ("README.md", 9, "[a wrong anchor]", "missing anchor"),
        ("README.md", 10, "[nowhere]", "missing file"),
        ("README.md", 10, "[this file]", "ok"),
        ("README.md", 12, "[me]", "excluded"),
        ("README.md", 13, "[excluded one]", "excluded"),
        ("README.md", 15, "[site]", "ok"),
        ("README.md", 15, "[its missing anchor]", "missing anchor"),
        ("guide/intro.md", 5, "[127.0.0.2]", "ok"),
        ("guide/intro.md", 5, "[back]", "ok"),
        // HTML: the value's first character; a preconnect hint, a comment, text: no links.
        ("site/index.html", 4, "style.css", "ok"),
        ("site/index.html", 6, "missing.js", "missing file"),
        ("site/index.html", 10, "http://127.0.0.1:PORT/ok", "ok"),
        (
            "site/index.html",
            10,
            "http://127.0.0.1:PORT/gone",
            "status",
        ),
        ("site/index.html", 11, "logo.svg\"", "ok"),
        ("site/index.html", 11, "logo.svg 1x", "ok"),
        ("site/index.html", 11, "logo-2x.svg", "missing file"),
        ("site/index.html", 12, "#top", "ok"),
        ("site/index.html", 12, "#nowhere", "missing anchor"),
        ("site/index.html", 12, "../guide", "ok"),
    ];
    let port = server.port().to_string();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(file, line, needle, kind)| {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let l = text.lines().nth(line - 1).unwrap();
            let col = l[..l.find(&needle.replace("PORT", &port)).unwrap()]
                .chars()
                .count()
                + 1;
            (format!("{file}:{line}:{col}"), kind.to_string())
        })
        .collect();
    assert_eq!(got, want);
    let seen = server.seen();
    let asked = |host: &str, path: &str| {
        seen.iter()
            .filter(|s| s.host == host && s.path == path)
            .count()
    };
    assert_eq!(
        asked("127.0.0.1", "/ok"),
        2,
        "linked twice, asked once; once more by /moved"
    );
    assert_eq!(asked("127.0.0.1", "/busy/a"), 2, "429 then the retry");
    assert_eq!(
        asked("127.0.0.1", "/gone"),
        1,
        "in Markdown and in HTML, asked once"
    );
    assert_eq!(asked("127.0.0.1", "/preconnect-is-no-link"), 0);
    assert_eq!(
        asked("127.0.0.1", "/error"),
        0,
        "a comment and text are no links"
    );
    assert_eq!(asked("127.0.0.2", "/ok"), 1);
    assert!(
        seen.iter()
            .all(|s| !s.path.contains("hidden") && !s.path.contains("ignored"))
    );
    let summary = &doc["summary"];
    assert_eq!(summary["links"], 27);
    assert_eq!(summary["failed"], 9);
    assert_eq!(summary["excluded"], 2);
}

/// `--host-concurrency` and `--host-interval`, proved by the server: per host name, never
/// more requests in progress than the limit, and the starts at least the interval apart.
#[test]
fn per_host_limits_hold_as_the_server_counts_them() {
    let server = Counting::start().unwrap();
    let port = server.port();
    let dir = scratch("hosts");
    let mut md = String::new();
    for host in ["localhost", "127.0.0.1", "127.0.0.2"] {
        for i in 0..12 {
            md.push_str(&format!("- <http://{host}:{port}/slow/{i}>\n"));
        }
    }
    let file = dir.join("many.md");
    std::fs::write(&file, md).unwrap();
    let run = threadlab(&[
        "url-check",
        file.to_str().unwrap(),
        "--workers",
        "24",
        "--host-concurrency",
        "2",
        "-q",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let most = server.most_at_once();
    for host in ["localhost", "127.0.0.1", "127.0.0.2"] {
        assert_eq!(most.get(host), Some(&2), "{host}: {most:?}");
    }
    // A row's time is its request's (150 ms), not the wait for its host's gate (up to
    // 5 × 150 ms for the last of 12 at 2 at once).
    for r in run.json()["results"].as_array().unwrap() {
        let ms = r["elapsed_ms"].as_f64().unwrap();
        assert!(ms < 600.0, "{r}");
    }
    // Spacing: 4 requests to one host at least 0.2 s apart, as the server saw them start.
    let server = Counting::start().unwrap();
    let md: String = (0..4)
        .map(|i| format!("- <http://127.0.0.1:{}/ok/{i}>\n", server.port()))
        .collect();
    std::fs::write(&file, md).unwrap();
    let run = threadlab(&[
        "url-check",
        file.to_str().unwrap(),
        "--host-interval",
        "0.2",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let mut starts: Vec<_> = server.seen().iter().map(|s| s.began).collect();
    starts.sort();
    assert_eq!(starts.len(), 4);
    // Without the limiter they would come within a millisecond or two; the bounds leave
    // room for a busy machine's jitter on either side of each request.
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap.as_secs_f64() >= 0.1, "requests {gap:?} apart");
    }
    let span = starts[3] - starts[0];
    assert!(span.as_secs_f64() >= 0.5, "4 requests within {span:?}");
}

/// compact: only failures, `file:line:col: url: reason`, nothing else on stdout; markdown:
/// the totals and the failures' table; JUnit: well-formed XML, a test case per link.
#[test]
fn outputs_compact_markdown_and_junit() {
    let server = Counting::start().unwrap();
    let root = corpus("outputs", server.port());
    let dir = root.to_str().unwrap();
    let run = threadlab(&[
        "url-check",
        dir,
        "--output-format",
        "compact",
        "--exclude-loopback",
        "--exclude",
        "excluded",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // (file, line, the text the column points at, target, reason): the local failures.
    let failures = [
        (
            "README.md",
            9,
            "[a wrong",
            "guide/intro.md#nope",
            "no heading or anchor #nope in it",
        ),
        ("README.md", 10, "[nowhere", "missing.md", "no such file"),
        (
            "README.md",
            15,
            "[its missing",
            "site/index.html#gone",
            "no heading or anchor #gone in it",
        ),
        (
            "site/index.html",
            6,
            "missing.js",
            "site/missing.js",
            "no such file",
        ),
        (
            "site/index.html",
            11,
            "logo-2x",
            "site/logo-2x.svg",
            "no such file",
        ),
        (
            "site/index.html",
            12,
            "#nowhere",
            "site/index.html#nowhere",
            "no heading or anchor #nowhere in it",
        ),
    ];
    let mut want = String::new();
    for (file, line, needle, target, reason) in failures {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let l = text.lines().nth(line - 1).unwrap();
        let col = l[..l.find(needle).unwrap()].chars().count() + 1;
        want += &format!("{dir}/{file}:{line}:{col}: {dir}/{target}: {reason}\n");
    }
    assert_eq!(run.stdout, want);
    assert!(server.seen().is_empty(), "--exclude-loopback sent requests");
    let run = threadlab(&[
        "url-check",
        dir,
        "--output-format",
        "markdown",
        "--exclude",
        "excluded",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("## ❌ url-check: 16 of 25 checked links ok (2 excluded)\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("| 27 | 16 | 9 | 2 | 22 | 7 | 3 |"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("| `"), "{}", run.stdout);
    let xml_file = root.join("junit.xml");
    let run = threadlab(&[
        "url-check",
        dir,
        "--output-format",
        "junit",
        "--output",
        xml_file.to_str().unwrap(),
        "--exclude",
        "excluded",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let xml = std::fs::read_to_string(&xml_file).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed JUnit XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 27);
    let failures = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .count();
    assert_eq!(failures, 9);
    // Nothing beside the report: the scratch file was renamed over it.
    let partial = std::fs::read_dir(&root)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")
        })
        .count();
    assert_eq!(partial, 0);
}

/// `--header` is sent with every request and never printed; a GitHub token goes to GitHub's
/// hosts only (not to this server).
#[test]
fn headers_are_sent_and_never_shown_and_a_github_token_stays_with_github() {
    let server = Counting::start().unwrap();
    let url = format!("http://127.0.0.1:{}/needs-header", server.port());
    let run = threadlab_env(
        &["url-check", &url, "--header", "X-Test: yes", "--json"],
        &[("GITHUB_TOKEN", "ghp_secret_token")],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("ghp_secret_token"), "{all}");
    assert!(!all.contains("X-Test: yes"), "{all}");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .headers
            .iter()
            .any(|(n, v)| n == "x-test" && v == "yes")
    );
    assert!(seen[0].headers.iter().all(|(n, _)| n != "authorization"));
    let run = threadlab(&["url-check", &url]);
    assert_eq!(run.code, 2, "without the header: 401\n{}", run.stdout);
}

/// A document linking to servers that misbehave (silence, headers dripped a byte at a time,
/// a reset, bytes that are not HTTP): each link its row and kind, each bounded by the
/// timeout, and the run over within its bound however the servers behave.
#[test]
fn hostile_servers_in_a_document_each_cost_at_most_the_timeout() {
    use threadlab_tools::hostile::{Behaviour, Hostile};
    let servers = [
        (Hostile::start(Behaviour::Silent).unwrap(), "timeout"),
        (
            Hostile::start(Behaviour::DripHeaders {
                every: std::time::Duration::from_millis(100),
            })
            .unwrap(),
            "timeout",
        ),
        (
            Hostile::start(Behaviour::Reset).unwrap(),
            "connection error",
        ),
        (
            Hostile::start(Behaviour::Garbage).unwrap(),
            "protocol error",
        ),
    ];
    let dir = scratch("hostile-doc");
    let text: String = servers
        .iter()
        .enumerate()
        .map(|(i, (s, _))| format!("- [server {i}]({})\n", s.url("/page")))
        .collect();
    let doc = dir.join("hostile.md");
    std::fs::write(&doc, text).unwrap();
    let started = std::time::Instant::now();
    let run = threadlab(&[
        "url-check",
        doc.to_str().unwrap(),
        "--timeout",
        "1",
        "--retries",
        "0",
        "--json",
    ]);
    let took = started.elapsed();
    assert_eq!(run.code, 2, "{}", run.stderr);
    let results = run.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 4);
    for (i, (r, (_, kind))) in results.iter().zip(&servers).enumerate() {
        assert_eq!(r["line"], i + 1, "{r}");
        assert_eq!(r["kind"], *kind, "{r}");
        assert!(
            r["elapsed_ms"].as_f64().unwrap() < 3000.0,
            "bounded by the timeout: {r}"
        );
    }
    // Four checks at once on four workers: about one timeout in all, far from four.
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--cookie-jar`: a cookie a server sets in one run is sent in the next (as the server
/// saw it), its value never shown; without the jar the page is refused; a file that is not a
/// jar is one line naming it.
#[test]
fn a_cookie_jar_keeps_a_session_between_runs() {
    let server = Counting::start().unwrap();
    let dir = scratch("jar");
    let jar = dir.join("jar.json");
    let jar_arg = jar.to_str().unwrap();
    let base = format!("http://127.0.0.1:{}", server.port());
    let run = threadlab(&[
        "url-check",
        &format!("{base}/login"),
        "--cookie-jar",
        jar_arg,
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("1 cookie kept for the next run"), "{all}");
    assert!(
        !all.contains("s3cr3t"),
        "a cookie's value was shown:\n{all}"
    );
    let members = format!("{base}/members");
    let run = threadlab(&["url-check", &members, "--cookie-jar", jar_arg]);
    assert_eq!(
        run.code, 0,
        "with the jar: 200\n{}{}",
        run.stdout, run.stderr
    );
    assert!(!format!("{}{}", run.stdout, run.stderr).contains("s3cr3t"));
    let run = threadlab(&["url-check", &members]);
    assert_eq!(run.code, 2, "without the jar: 403\n{}", run.stdout);
    let cookies: Vec<bool> = server
        .seen()
        .iter()
        .filter(|s| s.path == "/members")
        .map(|s| {
            s.headers
                .iter()
                .any(|(n, v)| n == "cookie" && v.contains("s3cr3t"))
        })
        .collect();
    assert_eq!(cookies, [true, false]);
    std::fs::write(&jar, "this is no jar\n").unwrap();
    assert_usage_error(
        &["url-check", &members, "--cookie-jar", jar_arg],
        "--cookie-jar",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Files kept or written are never renamed over a pipe (nor a device): a cache or a cookie
/// jar that is a FIFO is one line, and no run waits on it; `--output` into a FIFO writes into
/// it. (`/dev/null` itself is never used here: a regression would replace it.)
#[cfg(unix)]
#[test]
fn a_pipe_as_cache_jar_or_output_is_written_into_or_refused_never_replaced() {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let server = Counting::start().unwrap();
    let dir = scratch("fifos");
    let fifo = |name: &str| {
        let p = dir.join(name);
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(made.success());
        p
    };
    let is_fifo = |p: &Path| std::fs::symlink_metadata(p).unwrap().file_type().is_fifo();
    let url = format!("http://127.0.0.1:{}/ok", server.port());
    let jar = fifo("jar");
    assert_usage_error(
        &["url-check", &url, "--cookie-jar", jar.to_str().unwrap()],
        "not a regular file",
    );
    assert!(is_fifo(&jar));
    let cache = fifo("cache");
    let run = threadlab(&[
        "url-check",
        &url,
        "--cache",
        "--cache-file",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a regular file: not replaced"),
        "{}",
        run.stderr
    );
    assert!(is_fifo(&cache));
    let out = fifo("out");
    let reader = {
        let out = out.clone();
        std::thread::spawn(move || std::fs::read_to_string(out).unwrap())
    };
    let missing = format!("http://127.0.0.1:{}/missing", server.port());
    let run = threadlab(&[
        "url-check",
        &missing,
        "--output",
        out.to_str().unwrap(),
        "--output-format",
        "compact",
    ]);
    // Had the run not opened it, this frees the reader (no reader: an error, never a wait).
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&out);
    let got = reader.join().unwrap();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(got.contains(&format!("{missing}: status 404")), "{got:?}");
    assert!(is_fifo(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad inputs: each a clear line, and the rest of the run goes on (a binary file, a file
/// that is not UTF-8, a missing input, a symlink loop); bad flags are one line naming them.
#[test]
fn bad_documents_are_each_a_row_and_the_rest_goes_on() {
    let server = Counting::start().unwrap();
    let dir = scratch("bad-docs");
    std::fs::write(
        dir.join("binary.md"),
        b"\x00\x01\x02 [x](http://a.example/)",
    )
    .unwrap();
    let mut latin1 = format!("[ok](http://127.0.0.1:{}/ok) caf", server.port()).into_bytes();
    latin1.extend_from_slice(b"\xe9\n");
    std::fs::write(dir.join("latin1.md"), latin1).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();
    let missing = dir.join("nope.md");
    let run = threadlab(&[
        "url-check",
        dir.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--output-format",
        "compact",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let d = dir.display();
    assert_eq!(
        run.stdout,
        format!(
            "{d}/binary.md: {d}/binary.md: a binary file (a NUL byte in its first 8 KiB): not read\n\
             {d}/nope.md: {d}/nope.md: no such file or folder\n"
        )
    );
    assert!(
        run.stderr.contains("latin1.md: not valid UTF-8"),
        "{}",
        run.stderr
    );
    // A #fragment into a document over the cap: one line, the file never read whole.
    let big = dir.join("huge");
    std::fs::create_dir_all(&big).unwrap();
    let f = std::fs::File::create(big.join("big.md")).unwrap();
    f.set_len(65 * 1024 * 1024).unwrap(); // sparse: no disk, no memory
    std::fs::write(big.join("index.md"), "[x](big.md#part)\n").unwrap();
    let run = threadlab(&[
        "url-check",
        big.join("index.md").to_str().unwrap(),
        "--output-format",
        "compact",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout
            .ends_with("big.md#part: 65 MiB, too large to look for #part in\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        server.seen().len(),
        1,
        "the latin-1 file's link was checked"
    );
    assert_usage_error(
        &["url-check", "tests/linkcheck", "--exclude", "a(b"],
        "--exclude",
    );
    assert_usage_error(
        &["url-check", "tests/linkcheck", "--header", "NoColon"],
        "--header",
    );
    assert_usage_error(
        &["url-check", "tests/linkcheck", "--base", "ftp://x/"],
        "--base",
    );
}

/// The README's sample of a docs check (`console` blocks that run `threadlab url-check`) is
/// what the binary prints on stdout, line for line: a sample that cannot drift.
#[test]
fn the_readme_docs_check_sample_is_what_the_binary_prints() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut shown = 0;
    for block in readme.split("```console\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let mut lines = block.lines();
        let command = lines.next().unwrap();
        let Some(args) = command.strip_prefix("$ threadlab url-check ") else {
            continue;
        };
        let args: Vec<&str> = std::iter::once("url-check")
            .chain(args.split_whitespace().filter(|a| *a != "2>/dev/null"))
            .collect();
        let run = threadlab(&args);
        let expected: String = lines.map(|l| format!("{l}\n")).collect();
        assert_eq!(run.stdout, expected, "README: {command}");
        shown += 1;
    }
    assert!(shown >= 1, "no url-check sample found in the README");
}

/// `--cache`: a second run requests no cached success or 404 (counted by the server), asks
/// again for what failed on the server's side (a 500), refreshes an entry older than
/// `--max-cache-age`, and ignores a corrupt cache file with a warning.
#[test]
fn the_cache_spares_settled_links_and_never_keeps_errors() {
    let server = Counting::start().unwrap();
    let port = server.port();
    let dir = scratch("cache");
    let doc = dir.join("links.md");
    std::fs::write(
        &doc,
        format!(
            "<http://127.0.0.1:{port}/ok> <http://127.0.0.1:{port}/missing> \
             <http://127.0.0.1:{port}/error>\n"
        ),
    )
    .unwrap();
    let cache = dir.join("cache.json");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "url-check",
            doc.to_str().unwrap(),
            "--cache",
            "--cache-file",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(cache.to_str().unwrap().into());
        a.extend(["--retries".to_string(), "0".to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run_with = |extra: &[&str]| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        threadlab(&a)
    };
    let asked = |path: &str| server.seen().iter().filter(|s| s.path == path).count();
    let run = run_with(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        (asked("/ok"), asked("/missing"), asked("/error")),
        (1, 1, 1)
    );
    let run = run_with(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stdout.contains("2 links answered from the cache"),
        "{}",
        run.stdout
    );
    assert_eq!(
        (asked("/ok"), asked("/missing"), asked("/error")),
        (1, 1, 2)
    );
    // Entries older than the bound are asked for again.
    let mut kept: Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    for entry in kept["entries"].as_object_mut().unwrap().values_mut() {
        entry["checked_at"] = 0.into();
    }
    std::fs::write(&cache, kept.to_string()).unwrap();
    let run = run_with(&["--max-cache-age", "1h"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        (asked("/ok"), asked("/missing"), asked("/error")),
        (2, 2, 3)
    );
    // A corrupt file: said, ignored, replaced by a good one.
    std::fs::write(&cache, "{ half a file").unwrap();
    let run = run_with(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("not a cache file"), "{all}");
    assert_eq!(asked("/ok"), 3);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(saved["version"], "threadlab-cache 1");
    assert_eq!(
        saved["entries"].as_object().unwrap().len(),
        2,
        "the 500 is never kept"
    );
}
