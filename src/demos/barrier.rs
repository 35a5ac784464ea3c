#![doc = include_str!("pages/barrier.md")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use tracing::{info, warn};

use crate::lab::{self, Lab, Report, Table, units};
use crate::sync::{Barrier, BrokenBarrier, lock};

/// Flags of `threadlab barrier`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    /// Threads that meet at the barrier (2..=64).
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = crate::cli::whole::<usize>(2, 64))]
    pub parties: usize,
    /// Phases each thread works through, each ending at the barrier (1..=20).
    #[arg(long, default_value_t = 4, value_name = "P",
          value_parser = crate::cli::whole::<usize>(1, 20))]
    pub phases: usize,
    /// The longest phase of work in seconds; each is drawn (seeded) from 20 % to 100 % of
    /// it (scaled by --pace).
    #[arg(long, default_value_t = 1.0, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub work: f64,
    /// The timeout of the barrier a party never reaches, in part 2 (scaled by --pace).
    #[arg(long, default_value_t = 0.6, value_name = "SECS",
          value_parser = crate::cli::parse_secs, allow_negative_numbers = true)]
    pub timeout: f64,
}

/// The barrier action's own work, a simulated duration (scaled by --pace).
const ACTION_WORK: Duration = Duration::from_millis(50);

/// How long after the break every waiter must have heard of it: a wake-up's usual tens of
/// microseconds, with room for a busy machine.
const WAKE_BOUND: Duration = Duration::from_millis(100);

/// Runs the demo.
pub fn run(args: &Args, lab: &Lab) -> anyhow::Result<Report> {
    let mut report = Report::new("barrier");
    report.params_from(args);
    phases(args, lab, &mut report)?;
    if !lab.interrupted() {
        missing_party(args, lab, &mut report)?;
    }
    if !lab.interrupted() {
        abort_and_reset(lab, &mut report)?;
    }
    Ok(report)
}

/// One thread's passage through one phase, by its own clock.
#[derive(Debug, Clone, Copy)]
struct Passage {
    arrived: Instant,
    left: Instant,
}

/// Part 1: N threads, P phases of seeded work, a barrier at the end of each.
///
/// The evidence is the threads' own clocks: each notes when it arrived and when it left.
/// No thread may leave a phase before the last one arrived: min(left) >= max(arrived).
/// The action notes when it ran, so "once per phase, between the last arrival and the first
/// departure" is measured too.
fn phases(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!(
        "Part 1: {} workers × {} phases; nobody starts a phase",
        args.parties, args.phases
    );
    info!("        until all finished the one before");
    let (passages, actions) = observe_phases(args, lab)?;
    judge_phases(args, lab, &passages, &actions, report);
    Ok(())
}

/// Each worker's passages through every phase (its own clock), and when each action began
/// and ended (the action's own clock).
type Phases = (
    Vec<Vec<Result<Passage, BrokenBarrier>>>,
    Vec<(Instant, Instant)>,
);

fn observe_phases(args: &Args, lab: &Lab) -> anyhow::Result<Phases> {
    // When each action began and ended, by its own clock.
    let actions: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let ran = Arc::clone(&actions);
    let most = lab.scaled(Duration::from_secs_f64(args.work));
    // The action's own work (merging the phase's results): long enough that a thread let
    // go before the action ends would be seen leaving during it.
    let merge = lab.scaled(ACTION_WORK);
    // Bounded: a wait at the barrier outlasting the slowest phase by this much breaks it.
    let timeout = most * 2 + Duration::from_secs(5);
    let barrier = Barrier::new("phase-end", args.parties, timeout)
        .with_probe(lab.probe("phase-end"))
        .with_action(move || {
            let began = crate::lab::now();
            let phase = lock(&ran).len() + 1;
            info!("action: all arrived, phase {phase} over; merging its results");
            lab::sleep(merge);
            lock(&ran).push((began, crate::lab::now()));
        });
    let passages: Vec<Vec<Result<Passage, BrokenBarrier>>> =
        lab.scope(|s| -> anyhow::Result<_> {
            let workers: Vec<_> = (1..=args.parties)
                .map(|w| {
                    let barrier = &barrier;
                    let name = format!("Worker-{w}");
                    s.spawn(name.clone(), move || {
                        let mut rng = lab.rng(&name);
                        let mut mine = Vec::new();
                        for phase in 1..=args.phases {
                            let secs = args.work * rng.random_range(0.2..=1.0);
                            // One line per step: through the last phase and on to this one.
                            let work = lab.simulated(secs);
                            match phase {
                                1 => info!("phase 1: working {work}"),
                                _ => info!("phase {}: through; phase {phase}: working {work}", phase - 1),
                            }
                            lab.sleep_secs(secs);
                            let arrived = crate::lab::now();
                            info!("phase {phase}: done, waiting at 'phase-end'");
                            let result = barrier.wait();
                            let left = crate::lab::now();
                            match result {
                                Ok(_) if phase == args.phases => info!("phase {phase}: through"),
                                Ok(_) => {}
                                Err(e) => {
                                    warn!("phase {phase}: {e}");
                                    mine.push(Err(e));
                                    break;
                                }
                            }
                            mine.push(Ok(Passage { arrived, left }));
                        }
                        mine
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            workers.into_iter().map(lab::Handle::join).collect()
        })?;
    let actions = lock(&actions).clone();
    Ok((passages, actions))
}

/// An instant as the narrative shows it: "+1.234s" since the demo began.
fn elapsed_at(lab: &Lab, i: Instant) -> String {
    format!(
        "+{:.3}s",
        i.saturating_duration_since(lab.start()).as_secs_f64()
    )
}

/// Part 1's table and checks: no departure before the last arrival, each action between
/// the last arrival and the first departure.
fn judge_phases(
    args: &Args,
    lab: &Lab,
    passages: &[Vec<Result<Passage, BrokenBarrier>>],
    actions: &[(Instant, Instant)],
    report: &mut Report,
) {
    let mut table = Table::new([
        "phase",
        "first arrived",
        "last arrived",
        "first left",
        "action ran",
        "longest wait",
    ]);
    let at = |i: Instant| elapsed_at(lab, i);
    let mut early = 0usize;
    let mut complete = 0usize;
    let mut misplaced_actions = 0usize;
    for phase in 0..args.phases {
        let seen: Vec<(usize, Passage)> = passages
            .iter()
            .enumerate()
            .filter_map(|(w, p)| p.get(phase).and_then(|r| r.ok()).map(|p| (w, p)))
            .collect();
        if seen.len() != args.parties {
            break;
        }
        complete += 1;
        let last_arrival = seen
            .iter()
            .map(|(_, p)| p.arrived)
            .max()
            .unwrap_or(lab.start());
        let first_arrival = seen
            .iter()
            .map(|(_, p)| p.arrived)
            .min()
            .unwrap_or(lab.start());
        let first_left = seen
            .iter()
            .map(|(_, p)| p.left)
            .min()
            .unwrap_or(lab.start());
        early += seen.iter().filter(|(_, p)| p.left < last_arrival).count();
        let (waiter, wait) = seen
            .iter()
            .map(|(w, p)| (w + 1, p.left.saturating_duration_since(p.arrived)))
            .max_by_key(|(_, d)| *d)
            .unwrap_or_default();
        let action = actions.get(phase).copied();
        // After the last arrival, and over before anyone starts the next phase.
        if !action.is_some_and(|(began, ended)| began >= last_arrival && ended <= first_left) {
            misplaced_actions += 1;
        }
        table.row([
            (phase + 1).to_string(),
            at(first_arrival),
            at(last_arrival),
            at(first_left),
            action.map(|a| at(a.0)).unwrap_or_else(|| "—".into()),
            format!("{} (Worker-{waiter})", units::duration(wait)),
        ]);
    }
    report.tables.push(table);
    report.metric("phases_completed", complete as u64);
    report.metric("actions", actions.len() as u64);
    report.check_eq(
        "phases-worker-got-through",
        "phases every worker got through",
        args.phases.to_string(),
        complete.to_string(),
    );
    report.check(
        "departures-before-phase-last-arrival",
        "departures before the phase's last arrival (by the workers' own clocks)",
        "0 (min left >= max arrived, every phase)",
        early,
        early == 0 && complete == args.phases,
    );
    report.check(
        "barrier-action-runs-where-fell",
        "barrier action runs, and where each fell",
        format!(
            "{} (one per phase, begun after the last arrival, over before the first departure)",
            args.phases
        ),
        format!(
            "{}{}",
            actions.len(),
            if misplaced_actions > 0 {
                format!(", {misplaced_actions} out of place")
            } else {
                String::new()
            }
        ),
        actions.len() == args.phases && misplaced_actions == 0,
    );
}

/// Part 2: a barrier for three where only two come. The timeout breaks it: each waiter gets
/// the broken-barrier error, nobody hangs.
fn missing_party(args: &Args, lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    let timeout = lab.scaled(Duration::from_secs_f64(args.timeout));
    info!(
        "Part 2: 'meeting' waits for 3 with a {} timeout; Late comes halfway; the third never comes",
        lab.simulated(args.timeout)
    );
    let barrier = Barrier::new("meeting", 3, timeout).with_probe(lab.probe("meeting"));
    let (early_began_tx, early_began_rx) = crossbeam_channel::bounded::<Instant>(1);
    // (got the broken-barrier error, when it began waiting, when it heard)
    let outcomes: Vec<(bool, Instant, Instant)> = lab.scope(|s| -> anyhow::Result<_> {
        let waiters: Vec<_> = [("Early", Duration::ZERO), ("Late", timeout / 2)]
            .into_iter()
            .map(|(name, after)| {
                let (barrier, began_tx) = (&barrier, early_began_tx.clone());
                s.spawn(name, move || {
                    lab::sleep(after);
                    info!("waiting at 'meeting'");
                    let t = crate::lab::now();
                    // Never blocks: with `--timeout 0` both begin at once, and the channel
                    // holds one instant and is read only after both are done.
                    if after.is_zero() {
                        let _ = began_tx.try_send(t);
                    }
                    let result = barrier.wait();
                    let at = crate::lab::now();
                    match &result {
                        Ok(_) => warn!("went on without the third party"),
                        Err(e) => {
                            info!(
                                "{e} after waiting {}: BrokenBarrierError",
                                units::duration(at - t)
                            );
                            crate::lab::pause::moment("broken", "the barrier broke for all");
                        }
                    }
                    (result.is_err(), t, at)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        waiters.into_iter().map(lab::Handle::join).collect()
    })?;
    let began = early_began_rx.try_recv().unwrap_or_else(|_| crate::lab::now());
    let broken = outcomes.iter().filter(|(b, ..)| *b).count();
    let since = |at: &Instant| at.saturating_duration_since(began);
    let heard: Vec<Duration> = outcomes.iter().map(|(_, _, at)| since(at)).collect();
    let first = heard.iter().min().copied().unwrap_or_default();
    let last = heard.iter().max().copied().unwrap_or_default();
    // A waiter whose own sleep overran past the break (a busy machine) hears on arrival.
    let came_after: Vec<Duration> = outcomes
        .iter()
        .map(|(_, t, _)| since(t))
        .filter(|&arrived| arrived > timeout)
        .collect();
    let in_time = outcomes
        .iter()
        .all(|(_, t, at)| since(at) < since(t).max(timeout) + WAKE_BOUND);
    report.check(
        "waiters-barrier-party-never-reaches",
        "waiters at a barrier one party never reaches that got the broken-barrier error",
        "2 of 2",
        format!("{broken} of 2"),
        broken == 2,
    );
    report.check(
        "heard-after-early-began-waiting",
        "when each heard, after Early began waiting (Late came halfway)",
        format!(
            "from {} to {} + {} (Early's timeout breaks it for both; one arriving after the \
             break hears within {} of arriving)",
            units::duration(timeout),
            units::duration(timeout),
            units::duration(WAKE_BOUND),
            units::duration(WAKE_BOUND)
        ),
        match came_after.iter().max() {
            Some(arrived) => format!(
                "{} to {} (one arrived at {}, after the break)",
                units::duration(first),
                units::duration(last),
                units::duration(*arrived)
            ),
            None => format!("{} to {}", units::duration(first), units::duration(last)),
        },
        first >= timeout && in_time,
    );
    Ok(())
}

/// What two guests waiting at a barrier saw when another thread broke it: how many got the
/// broken-barrier error, and the slowest to hear (their clocks against the breaker's).
fn two_waiters_broken_by(
    lab: &Lab,
    barrier: &Barrier,
    what: &str,
    breaks: impl FnOnce(),
) -> anyhow::Result<(usize, Duration)> {
    let (heard, broke_at) = lab.scope(|s| -> anyhow::Result<_> {
        let waiters: Vec<_> = ["Guest-1", "Guest-2"]
            .into_iter()
            .map(|name| {
                s.spawn(name, move || {
                    let result = barrier.wait();
                    let at = crate::lab::now();
                    match &result {
                        Ok(_) => warn!("went on although the barrier was broken"),
                        Err(e) => {
                            info!("{e}: BrokenBarrierError");
                            crate::lab::pause::moment("broken", "the barrier broke for all");
                        }
                    }
                    (result.is_err(), at)
                })
            })
            .collect::<anyhow::Result<_>>()?;
        // Sequencing only (not evidence): break it once both are waiting, or after a bound.
        let deadline = crate::lab::now() + Duration::from_secs(5);
        while barrier.n_waiting() < 2 && crate::lab::now() < deadline {
            lab::pause(Duration::from_millis(1));
        }
        info!("{what}");
        let at = crate::lab::now();
        breaks();
        let heard: Vec<(bool, Instant)> = waiters
            .into_iter()
            .map(lab::Handle::join)
            .collect::<anyhow::Result<_>>()?;
        Ok((heard, at))
    })?;
    let broken = heard.iter().filter(|(b, _)| *b).count();
    let slowest = heard
        .iter()
        .map(|(_, at)| at.saturating_duration_since(broke_at))
        .max()
        .unwrap_or_default();
    Ok((broken, slowest))
}

/// Part 3: `abort()` breaks a barrier at once; `reset()` breaks the threads waiting at that
/// moment too, and makes it usable again.
fn abort_and_reset(lab: &Lab, report: &mut Report) -> anyhow::Result<()> {
    info!("Part 3: abort(), then reset(), while two wait at 'gate'; a round of 3");
    let barrier = Barrier::new("gate", 3, Duration::from_secs(10)).with_probe(lab.probe("gate"));
    let (broken, slowest) = two_waiters_broken_by(lab, &barrier, "abort()", || barrier.abort())?;
    report.check(
        "abort-waiters-got-broken-barrier",
        "abort(): waiters that got the broken-barrier error, and the slowest to hear",
        format!("2 of 2, within {}", units::duration(WAKE_BOUND)),
        format!("{broken} of 2, after {}", units::duration(slowest)),
        broken == 2 && slowest < WAKE_BOUND,
    );
    let refused = barrier.wait_timeout(Duration::ZERO).is_err();
    barrier.reset();
    let (broken, slowest) =
        two_waiters_broken_by(lab, &barrier, "reset() while two wait", || barrier.reset())?;
    report.check(
        "reset-two-wait-waiters-got",
        "reset() while two wait: waiters that got the broken-barrier error, and the slowest to hear",
        format!(
            "2 of 2, within {} (as in Python: a reset breaks the round in progress)",
            units::duration(WAKE_BOUND)
        ),
        format!("{broken} of 2, after {}", units::duration(slowest)),
        broken == 2 && slowest < WAKE_BOUND,
    );
    info!("reset(): a full round of three");
    let round: Vec<Option<usize>> = lab.scope(|s| -> anyhow::Result<_> {
        let guests: Vec<_> = ["Guest-1", "Guest-2"]
            .into_iter()
            .map(|name| {
                let barrier = &barrier;
                s.spawn(name, move || barrier.wait().ok())
            })
            .collect::<anyhow::Result<_>>()?;
        let mine = barrier.wait().ok();
        let mut all: Vec<Option<usize>> = guests
            .into_iter()
            .map(lab::Handle::join)
            .collect::<anyhow::Result<_>>()?;
        all.push(mine);
        Ok(all)
    })?;
    let mut indexes: Vec<usize> = round.iter().flatten().copied().collect();
    indexes.sort_unstable();
    info!("after reset(): arrival indexes {indexes:?}");
    report.check(
        "wait-aborted-barrier-then-round",
        "a wait on the aborted barrier, then a round of three after reset()",
        "refused; then all three through with indexes [0, 1, 2]",
        format!(
            "{}; then {} through with indexes {indexes:?}",
            if refused { "refused" } else { "let through" },
            indexes.len()
        ),
        refused && indexes == [0, 1, 2],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_worker_leaves_a_phase_early_and_broken_barriers_release_everyone() {
        let args = Args {
            parties: 4,
            phases: 3,
            work: 0.8,
            timeout: 0.6,
        };
        for report in lab::holding_over_seeds(run, &args, 0.05, 0..3) {
            assert_eq!(report.metric_u64("actions"), Some(3));
        }
    }
}
