//! `threadlab tour`: the lessons in order, for a class. Each demo gets a title card (what it
//! teaches, what to watch for, from its explain page), then runs as its own process with
//! `--class` and, on a terminal, `--pause`; the next lesson is one key away.
//!
//! Each lesson is a child process of this one, on the same terminal: its pauses read the
//! same keyboard, and a Ctrl-C reaches it and ends the tour (exit 130), as it would a demo.

use std::io::{IsTerminal, Write};
use std::process::Command;

use crate::demos::{self, Entry};
use crate::lab::pause;
use crate::report::export::{screen_width, wrap};

/// Flags of `threadlab tour`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Start at this demo (a name or alias from `threadlab list`).
    #[arg(long, value_name = "DEMO")]
    pub from: Option<String>,
    /// Only these demos, in lesson order (names or aliases, comma-separated).
    #[arg(long, value_name = "DEMOS", value_delimiter = ',')]
    pub only: Vec<String>,
}

/// The lessons the flags choose, in lesson order; a name that is no demo is an error that
/// names it.
fn chosen(args: &Args) -> anyhow::Result<Vec<Entry>> {
    let find = |name: &str| {
        demos::find(name)
            .ok_or_else(|| anyhow::anyhow!("no demo '{name}' (see `threadlab list` for the demos)"))
    };
    let mut lessons = demos::registry();
    if let Some(from) = &args.from {
        let first = find(from)?;
        let at = lessons
            .iter()
            .position(|e| e.name == first.name)
            .unwrap_or(0);
        lessons.drain(..at);
    }
    if !args.only.is_empty() {
        let only: Vec<String> = args
            .only
            .iter()
            .map(|n| find(n.trim()).map(|e| e.name))
            .collect::<anyhow::Result<_>>()?;
        lessons.retain(|e| only.contains(&e.name));
    }
    anyhow::ensure!(
        !lessons.is_empty(),
        "--from and --only leave no lesson to run"
    );
    Ok(lessons)
}

/// Runs the tour: a card, the lesson, the next. Returns the exit code.
pub fn run(args: &Args, global: &crate::cli::GlobalArgs) -> anyhow::Result<i32> {
    let lessons = chosen(args)?;
    let interactive = pause::can_pause();
    if !interactive {
        eprintln!(
            "threadlab: tour: not on a terminal: the lessons run one after another, without pauses"
        );
    }
    let total = lessons.len();
    for (i, lesson) in lessons.iter().enumerate() {
        print_card(lesson, i + 1, total);
        if interactive {
            match ask("Enter runs it · s skips it · q ends the tour")? {
                Answer::Quit => return Ok(crate::lab::signals::exit_code().unwrap_or(0)),
                Answer::Skip => continue,
                Answer::Run => {}
            }
        }
        let code = run_lesson(lesson, global, interactive)?;
        // Ctrl-C (or SIGTERM) in a lesson ends the tour with it.
        if code == 130 || code == 143 {
            return Ok(code);
        }
    }
    say(&format!(
        "\n tour: {total} lesson{} done\n",
        if total == 1 { "" } else { "s" }
    ));
    Ok(0)
}

/// What the class answered at a title card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Run,
    Skip,
    Quit,
}

/// Asks on the terminal: Enter runs, `s` skips, `q` (or the input's end, or a signal) quits.
fn ask(prompt: &str) -> anyhow::Result<Answer> {
    let mut err = std::io::stderr().lock();
    write!(err, "   ▶  {prompt} ")?;
    err.flush()?;
    drop(err);
    Ok(match pause::read_answer().as_deref().map(str::trim) {
        None | Some("q") | Some("Q") => Answer::Quit,
        Some("s") | Some("S") => Answer::Skip,
        _ => Answer::Run,
    })
}

/// The title card: the lesson's number and name, what it teaches, what to watch for.
fn print_card(lesson: &Entry, n: usize, total: usize) {
    let width = screen_width().min(100);
    let title = format!(" Lesson {n} of {total}: {} ", lesson.name);
    let rule = "━".repeat(width.saturating_sub(title.chars().count() + 4));
    let mut out = String::new();
    out.push_str(&format!("\n━━━{title}{rule}\n"));
    for line in wrap(&lesson.about, width - 2) {
        out.push_str(&format!(" {line}\n"));
    }
    let watch = watch_for(lesson.page);
    if !watch.is_empty() {
        out.push_str("\n What to watch for:\n");
        for item in watch.iter().take(3) {
            for (k, line) in wrap(item, width - 5).iter().enumerate() {
                let lead = if k == 0 { "  • " } else { "    " };
                out.push_str(&format!("{lead}{line}\n"));
            }
        }
    }
    out.push_str(&format!(
        " (threadlab explain {} has the whole page)\n\n",
        lesson.name
    ));
    say(&out);
}

/// Writes `text` to stdout whole; a closed pipe (`tour | head`) ends the process quietly,
/// as it ends a demo.
fn say(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = written
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        crate::lab::signals::pipe_closed();
    }
}

/// The bullets of a page's "What to watch for" section, each joined onto one line.
pub fn watch_for(page: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    let mut inside = false;
    for line in page.lines() {
        if line.starts_with("# ") {
            inside = line.trim() == "# What to watch for";
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(item) = line.strip_prefix("- ") {
            items.push(item.trim().to_string());
        } else if let (Some(last), false) = (items.last_mut(), line.trim().is_empty()) {
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    items
}

/// Runs one lesson as a child process on this terminal; returns its exit code.
fn run_lesson(
    lesson: &Entry,
    global: &crate::cli::GlobalArgs,
    interactive: bool,
) -> anyhow::Result<i32> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg(&lesson.name);
    // url-check reads a list of URLs; offline, in a classroom, it checks its own demo list.
    if lesson.name == "url-check" {
        cmd.arg("--demo");
    }
    cmd.args(["--class", "--pace", &global.pace.to_string()]);
    if let Some(seed) = global.seed {
        cmd.args(["--seed", &seed.to_string()]);
    }
    if global.no_color || !std::io::stdout().is_terminal() {
        cmd.arg("--no-color");
    }
    if global.checks == Some(crate::cli::Checks::All) {
        cmd.args(["--checks", "all"]);
    }
    if interactive {
        cmd.arg("--pause");
    }
    let status = cmd.status()?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_things_to_watch_for_and_the_flags_choose_the_lessons() {
        for e in demos::registry() {
            assert!(!watch_for(e.page).is_empty(), "{}", e.name);
        }
        let only = Args {
            from: None,
            only: vec!["race".into(), "threads".into()],
        };
        let names: Vec<String> = chosen(&only).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["threads", "race-condition"]);
        let from = Args {
            from: Some("pool".into()),
            only: vec![],
        };
        let names: Vec<String> = chosen(&from).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["pool", "url-check"]);
        let bad = Args {
            from: None,
            only: vec!["nope".into()],
        };
        assert!(chosen(&bad).unwrap_err().to_string().contains("'nope'"));
    }
}
