//! Driving scheduled runs: one run by a strategy or a token, an exploration of every
//! schedule (a census), a search for the first schedule that shows the bug, and stepping.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::bail;

use super::{Base, Spec, Token, args_hash};
use crate::cli::GlobalArgs;
use crate::demos::Demo;
use crate::lab::sched::{self, Choice, Decision, Plan, Session, Summary};
use crate::lab::{Lab, Output, Report, Settings};
use crate::report::ScheduleReport;

/// A demo run that `job` makes in a lab.
pub type Job<'a> = dyn Fn(&Lab) -> anyhow::Result<Report> + 'a;

/// Most schedules `--explore` runs; a configuration estimated above it is refused.
pub const EXPLORE_LIMIT: u64 = 20_000;

/// A scheduled run's setting: the demo, its arguments' hash, the seed of its durations.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The demo's name.
    pub demo: String,
    /// The hash of its arguments, `--pace` and the seed (see [`args_hash`]).
    pub hash: String,
    /// The seed of its random durations: `--seed`, or 0 (a schedule replays exactly only
    /// with the same durations).
    pub seed: u64,
    /// `--pace`.
    pub pace: f64,
    /// `--part`.
    pub part: Option<u32>,
}

impl Setting {
    /// The setting of `demo` under the global flags `g`; an error naming the flag when the
    /// demo refuses the scheduler.
    pub fn of(g: &GlobalArgs, demo: &Demo) -> anyhow::Result<Setting> {
        let entry = demo.entry();
        if let Some(why) = entry.unscheduled {
            bail!(
                "{}: {} runs on the operating system's schedule only: {why}",
                g.schedule_flag(),
                entry.name
            );
        }
        let seed = g.seed.map_or(0, u64::from);
        Ok(Setting {
            hash: args_hash(
                &entry.name,
                &format!("{}{}", demo.args_json(), g.hashed()),
                g.pace,
                seed,
            ),
            demo: entry.name,
            seed,
            pace: g.pace,
            part: g.part,
        })
    }

    /// The base strategy and the token to replay (if any) that `--schedule` names for this
    /// demo: a token for another demo or other arguments is an error naming the flag.
    pub fn read(&self, spec: Option<&Spec>) -> anyhow::Result<(Base, Option<Token>)> {
        match spec {
            None | Some(Spec::Os) => Ok((Base::Default, None)),
            Some(Spec::Base(base)) => Ok((*base, None)),
            Some(Spec::Token(t)) if t.demo != self.demo => bail!(
                "--schedule: this token is for `{}`, not `{}`",
                t.demo,
                self.demo
            ),
            Some(Spec::Token(t)) if t.hash != self.hash => bail!(
                "--schedule: this token was made with other arguments (its hash {}, these flags' \
                 {}): run it with the flags, --pace and --seed of the run that printed it",
                t.hash,
                self.hash
            ),
            Some(Spec::Token(t)) => Ok((t.base, Some(t.clone()))),
        }
    }

    /// A silent lab for one run of an exploration or a search.
    fn quiet_lab(&self) -> Lab {
        let settings = Settings {
            pace: self.pace,
            seed: Some(self.seed),
            record: true,
            pictures: false,
            part: self.part,
        };
        Lab::new(settings, Output::silent())
    }

    /// The token of a run from `base` that made `choices`.
    pub fn token(&self, base: Base, choices: &[Choice], upto: Option<u32>) -> Token {
        Token::of_run(&self.demo, &self.hash, base, choices, upto)
    }

    /// The JSON's `schedule` for a run from `base`.
    pub fn report(&self, base: Base, summary: &Summary) -> ScheduleReport {
        ScheduleReport {
            strategy: base.to_string(),
            token: self.token(base, &summary.choices, None).to_string(),
            points: summary.steps,
            preemptions: summary.preemptions(),
        }
    }

    /// One silent run of `job` by `plan`: its report (with the lab's own checks) and what
    /// the scheduler did.
    pub fn silent_run(&self, job: &Job<'_>, plan: impl Into<Plan>) -> (Option<Report>, Summary) {
        let session = Session::begin(plan, "MainThread");
        let lab = self.quiet_lab();
        let report = job(&lab).ok().map(|mut r| {
            lab.finish(&mut r);
            r
        });
        (report, session.end())
    }
}

/// A census's key: the outcome in the lesson's words, and the checks that failed.
type Key = (String, bool, Vec<String>);

fn key_of(report: Option<&Report>) -> Key {
    let Some(r) = report else {
        return ("the run ended in an error".into(), true, Vec::new());
    };
    let failed: Vec<String> = r
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.id.clone())
        .collect();
    match &r.outcome {
        Some(o) => (o.text.clone(), o.bug, failed),
        // Otherwise the deadlocks and stalls the detector found, or none.
        None if r.deadlocks.is_empty() => ("no deadlock".into(), false, failed),
        None => {
            let found: Vec<String> = r.deadlocks.iter().map(short).collect();
            (found.join("; then "), true, failed)
        }
    }
}

/// A deadlock or stall in one line: "cycle: Teller-1 waits for 'account-B', Teller-2 …".
fn short(c: &crate::lab::waitgraph::Cycle) -> String {
    let kind = match c.kind {
        crate::lab::waitgraph::Kind::Stall => "stall",
        crate::lab::waitgraph::Kind::Cycle => "cycle",
    };
    let waits: Vec<String> = c
        .threads
        .iter()
        .zip(&c.locks)
        .map(|(t, w)| format!("{t} waits for '{w}'"))
        .collect();
    format!("{kind}: {}", waits.join(", "))
}

/// `--explore`: every schedule of the run (within `--preemptions`), as a census printed on
/// stdout (`--json`: one JSON document). Refused with the estimate when it would run more
/// than [`EXPLORE_LIMIT`] schedules.
pub fn explore(g: &GlobalArgs, setting: &Setting, job: &Job<'_>) -> anyhow::Result<i32> {
    let estimate = estimate(setting, job, g.preemptions);
    if estimate > EXPLORE_LIMIT as f64 {
        bail!(
            "--explore: about {} schedules for these flags (the limit is {}): make the run \
             smaller (fewer --iterations, items or threads; one --strategy or --fix) or bound \
             the preemptions (--preemptions 2)",
            crate::lab::units::count(estimate as u64),
            crate::lab::units::count(EXPLORE_LIMIT)
        );
    }
    eprintln!(
        "threadlab: --explore: about {} schedules to run",
        crate::lab::units::count(estimate.round() as u64)
    );
    let began = Instant::now();
    let (census, stopped) = every_schedule(setting, job, g.preemptions);
    let took = began.elapsed();
    let rate = census.schedules as f64 / took.as_secs_f64().max(1e-9);
    let rows: Vec<CensusRow> = census
        .outcomes
        .iter()
        .map(|((text, bug, failed), (count, first))| CensusRow {
            outcome: text.clone(),
            bug: *bug,
            schedules: *count,
            failed_checks: failed.clone(),
            token: replay_token(setting, job, first),
        })
        .collect();
    let out = CensusReport {
        demo: setting.demo.clone(),
        schedules: census.schedules,
        pruned: census.pruned,
        preemptions: g.preemptions,
        schedules_per_sec: rate.round(),
        outcomes: rows,
    };
    print_census(g.json, &out)?;
    match stopped {
        Some(why) => bail!("--explore: the census above is partial: {why}"),
        None => Ok(0),
    }
}

/// Most schedules an exploration runs, whatever its estimate said: past it, the census so
/// far is printed, said to be partial.
pub const EXPLORE_STOP: u64 = 5 * EXPLORE_LIMIT;

/// Every schedule of the run (within `bound` preemptions), as [`sched::explore`] finds
/// them; stopped early, with the reason, by Ctrl-C or a SIGTERM or at [`EXPLORE_STOP`].
fn every_schedule(
    setting: &Setting,
    job: &Job<'_>,
    bound: Option<u32>,
) -> (sched::Census<Key>, Option<String>) {
    let mut ran = 0;
    let mut stopped = None;
    let census = sched::explore(u64::MAX, bound, |strategy| {
        let (report, summary) = setting.silent_run(job, strategy);
        ran += 1;
        if crate::lab::signals::interrupted() {
            stopped = Some(String::from("the run was stopped"));
        } else if ran >= EXPLORE_STOP {
            stopped = Some(format!(
                "it stopped at {} schedules; make the run smaller or bound the preemptions",
                crate::lab::units::count(EXPLORE_STOP)
            ));
        }
        // No choice left to try: the exploration ends here.
        let choices = match stopped {
            Some(_) => Vec::new(),
            None => summary.choices,
        };
        (key_of(report.as_ref()), choices)
    });
    (census.expect("no limit but EXPLORE_STOP's"), stopped)
}

/// The token of the schedule whose choices were `first`, from the default strategy (the
/// run is made again to learn each choice's default).
fn replay_token(setting: &Setting, job: &Job<'_>, first: &[u32]) -> String {
    let (_, summary) = setting.silent_run(job, sched::Strategy::Replay(first.to_vec()));
    setting
        .token(Base::Default, &summary.choices, None)
        .to_string()
}

/// Knuth's estimate of a search tree's size: along random paths, the product of the
/// branching; the mean of a few. Under a preemption bound, the paths' preemptible choices
/// bound it instead.
fn estimate(setting: &Setting, job: &Job<'_>, bound: Option<u32>) -> f64 {
    let probes: u32 = 6;
    let mut total = 0.0;
    for seed in 0..probes {
        // A probe stops choosing once the tree is far past the limit: its size is known.
        let plan = Plan {
            cap: Some(EXPLORE_LIMIT as f64 * 1e3),
            ..Plan::from(sched::Strategy::Random(u64::from(seed)))
        };
        let (_, summary) = setting.silent_run(job, plan);
        let tree = match bound {
            Some(k) => summary.tree.min(bounded(&summary.choices, k)),
            None => summary.tree,
        };
        if tree > EXPLORE_LIMIT as f64 * 1e3 {
            return tree;
        }
        total += tree;
    }
    total / f64::from(probes)
}

/// The schedules of a run shaped like `choices` with at most `k` preemptions: the choices
/// where no thread was running multiply; of the others at most `k` depart from the default.
fn bounded(choices: &[Choice], k: u32) -> f64 {
    let free: f64 = choices
        .iter()
        .filter(|c| c.stay.is_none())
        .map(|c| f64::from(c.of))
        .product();
    let points: Vec<f64> = choices
        .iter()
        .filter(|c| c.stay.is_some())
        .map(|c| f64::from(c.of - 1))
        .collect();
    let n = points.len() as f64;
    let branch = points.iter().sum::<f64>() / n.max(1.0);
    let mut ways = 0.0;
    let mut binom = 1.0;
    for j in 0..=k {
        ways += binom * branch.powi(j as i32);
        binom = binom * (n - f64::from(j)) / f64::from(j + 1);
        if binom <= 0.0 {
            break;
        }
    }
    free * ways
}

/// One outcome of a census.
#[derive(Debug, serde::Serialize)]
struct CensusRow {
    outcome: String,
    bug: bool,
    schedules: u64,
    failed_checks: Vec<String>,
    token: String,
}

/// `--explore`'s result (its JSON under `--json`).
#[derive(Debug, serde::Serialize)]
struct CensusReport {
    demo: String,
    schedules: u64,
    pruned: u64,
    preemptions: Option<u32>,
    schedules_per_sec: f64,
    outcomes: Vec<CensusRow>,
}

fn print_census(json: bool, c: &CensusReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "census": c }))?;
        writeln!(out)?;
        return Ok(());
    }
    let bound = c
        .preemptions
        .map_or(String::from("no preemption bound"), |k| match k {
            1 => String::from("at most 1 preemption"),
            k => format!("at most {k} preemptions"),
        });
    writeln!(
        out,
        "{}: {} schedules explored ({bound}; {} pruned), {} outcomes, {} schedules/s",
        c.demo,
        c.schedules,
        c.pruned,
        c.outcomes.len(),
        c.schedules_per_sec
    )?;
    writeln!(
        out,
        "each outcome: the schedules that reach it, what the demo's checks say of it, a replay"
    )?;
    for row in &c.outcomes {
        let share = crate::lab::units::percent(row.schedules as f64, c.schedules as f64);
        let kind = if row.bug {
            "the lesson's bug"
        } else {
            "no bug"
        };
        let checks = if row.failed_checks.is_empty() {
            String::from("checks: ✔ all hold")
        } else {
            format!("checks: ✘ {}", row.failed_checks.join(", "))
        };
        let lines = [
            format!("{} — {kind}", row.outcome),
            format!(
                "{} of {} schedules ({share}) · {checks}",
                row.schedules, c.schedules
            ),
        ];
        writeln!(out)?;
        for (lead, text) in ["  ", "    "].iter().zip(lines) {
            let width = crate::report::export::screen_width() - lead.len() - 2;
            for (j, l) in crate::report::export::wrap(&text, width).iter().enumerate() {
                writeln!(out, "{lead}{}{l}", if j == 0 { "" } else { "  " })?;
            }
        }
        writeln!(out, "    --schedule {}", row.token)?;
    }
    out.flush()?;
    Ok(())
}

/// Whether a run shows what `--search` looks for: the failure its demo says the lesson is
/// about (a lost update, an empty take), or, for a demo that says none, a deadlock or a
/// failed check.
fn shows_the_bug(report: Option<&Report>) -> bool {
    match report {
        None => true,
        Some(r) => match &r.outcome {
            Some(o) => o.bug,
            None => !r.deadlocks.is_empty() || r.checks.iter().any(|c| !c.ok),
        },
    }
}

/// `--search N`: runs of `base` from its seed on, silent, until one shows the lesson's
/// failure or fails a check; its token, or `None` after `n` runs. Prints what it did.
pub fn search(
    setting: &Setting,
    job: &Job<'_>,
    base: Base,
    n: u32,
) -> anyhow::Result<Option<Token>> {
    let mut base = match base {
        // PCT draws its change points over the run's length: measured first.
        Base::Pct { seed, depth, .. } => {
            let (_, summary) = setting.silent_run(job, Base::Default.strategy());
            Base::Pct {
                seed,
                depth,
                steps: summary.steps.max(1),
            }
        }
        Base::Default => Base::Random(0),
        b => b,
    };
    let began = Instant::now();
    for tried in 1..=n {
        if crate::lab::signals::interrupted() {
            bail!(
                "--search: stopped after {} schedules, none of them the bug",
                tried - 1
            );
        }
        let (report, summary) = setting.silent_run(job, base.strategy());
        if shows_the_bug(report.as_ref()) {
            let token = setting.token(base, &summary.choices, None);
            eprintln!(
                "threadlab: --search: schedule {tried} of at most {n} ({base}) shows it, found in {}",
                crate::lab::units::duration(began.elapsed())
            );
            return Ok(Some(token));
        }
        base = base.next_seed();
    }
    eprintln!(
        "threadlab: --search: none of {n} schedules showed the bug or failed a check ({})",
        crate::lab::units::duration(began.elapsed())
    );
    Ok(None)
}

/// Whether `--step` can run: stdin, stderr (the prompts) and the narrative's stream (stdout,
/// or stderr with `--json`) on a terminal.
pub fn can_step(json: bool) -> bool {
    let narrative = json || std::io::stdout().is_terminal();
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && narrative
}

/// `--step`'s picker: each decision on stderr, the student's choice from stdin. Choices
/// before `upto` (a token's) are taken as they are. `u` undoes (the run starts again with
/// every choice but the last, through a token), `t` prints the token, `q` quits with it.
pub fn picker(setting: Setting, base: Base, upto: u32, args: Vec<String>) -> sched::Picker {
    let mut made: Vec<Choice> = Vec::new();
    Box::new(move |d: &Decision<'_>| {
        let pick = if (d.made as u32) < upto {
            d.proposed
        } else {
            ask(d, &setting, base, &made, &args)
        };
        made.push(Choice {
            chosen: pick,
            of: d.threads.iter().filter(|t| t.2.is_some()).count() as u32,
            stay: d.stay,
            proposed: d.own,
        });
        pick
    })
}

/// Shows decision `d` and reads the student's answer until it is a choice.
fn ask(d: &Decision<'_>, setting: &Setting, base: Base, made: &[Choice], args: &[String]) -> u32 {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\n── step {} ── who runs next?", d.made + 1);
    for (name, next, index) in &d.threads {
        let next = if next.is_empty() { "run" } else { next };
        match index {
            Some(i) => {
                let mark = if *i == d.proposed { "  ← Enter" } else { "" };
                let _ = writeln!(err, "  [{}] {name}: {next}{mark}", i + 1);
            }
            None => {
                let _ = writeln!(err, "   -  {name}: {next}");
            }
        }
    }
    let runnable = d.threads.iter().filter(|t| t.2.is_some()).count() as u32;
    loop {
        let _ = write!(err, "  1-{runnable}, Enter, u(ndo), t(oken), q(uit) > ");
        let _ = err.flush();
        let Some(line) = crate::lab::pause::read_answer() else {
            quit(setting, base, made)
        };
        match line.trim() {
            "" => return d.proposed,
            "q" => quit(setting, base, made),
            "t" => {
                let t = setting.token(base, made, Some(made.len() as u32));
                let _ = writeln!(err, "  token: {t}");
            }
            "u" => undo(setting, base, made, args),
            n => match n.parse::<u32>() {
                Ok(k) if (1..=runnable).contains(&k) => return k - 1,
                _ => {
                    let _ = writeln!(err, "  '{n}' is not a thread's number (1-{runnable})");
                }
            },
        }
    }
}

fn quit(setting: &Setting, base: Base, made: &[Choice]) -> ! {
    let t = setting.token(base, made, Some(made.len() as u32));
    let choices = match made.len() {
        1 => String::from("1 choice"),
        n => format!("{n} choices"),
    };
    eprintln!("\nthreadlab: --step: stopped after {choices}; replay with --schedule {t}");
    // 0 for `q`; 130 or 143 when Ctrl-C or a SIGTERM stopped it.
    std::process::exit(crate::lab::signals::exit_code().unwrap_or(0))
}

/// Starts the run again with every choice but the last (the same command, with a token),
/// stepping from there.
fn undo(setting: &Setting, base: Base, made: &[Choice], args: &[String]) -> ! {
    let keep = &made[..made.len().saturating_sub(1)];
    let t = setting.token(base, keep, Some(keep.len() as u32));
    let mut argv: Vec<String> = Vec::new();
    let mut skip = false;
    for a in args.iter().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        if a == "--schedule" || a == "--search" {
            skip = true;
            continue;
        }
        if a.starts_with("--schedule=") || a.starts_with("--search=") {
            continue;
        }
        argv.push(a.clone());
    }
    argv.push("--schedule".into());
    argv.push(t.to_string());
    eprintln!("\n── undo: replaying the first {} choices ──", keep.len());
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap_or_else(|_| args[0].clone().into());
    let e = std::process::Command::new(exe).args(argv).exec();
    eprintln!("threadlab: error: --step: could not start again: {e}");
    std::process::exit(1)
}
