//! `--schedule`, `--explore`, `--search` and `--step`: the lab decides who runs.
//!
//! A demo run under a schedule other than `os` runs its threads one at a time through the
//! scheduler of [`crate::lab::sched`]; this module reads the flag, makes and reads replay
//! tokens, and drives explorations, searches and stepping (see `drive`).
//!
//! A token is `DEMO.HASH.STRATEGY[.CHOICES[.UPTO]]`:
//! - `DEMO` the demo's name, `HASH` four base-36 digits of a hash of its arguments, `--pace`
//!   and `--seed` (a token for other arguments is refused, not run differently);
//! - `STRATEGY` `r<seed>` random, `p<seed>-<depth>-<steps>` PCT, `d` the default (the running
//!   thread goes on while it can, else the first runnable: what exploration and stepping
//!   start from);
//! - `CHOICES` only the choices that differ from the strategy's own, each `<gap>-<choice>`
//!   (the gap: how many choices since the previous one listed), joined by `_`: a random
//!   run's token is its seed alone, whatever its length;
//! - `UPTO` (stepping) how many choices were made when the token was taken: `--step` asks
//!   from there.

pub mod drive;

use std::collections::BTreeMap;
use std::fmt;

use crate::lab::sched::{Choice, Plan, Strategy};

/// The strategy a run starts from (a token's base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Uniformly random choices from a seed.
    Random(u64),
    /// PCT from a seed, a depth, and the steps its change points are drawn among.
    Pct {
        /// The seed.
        seed: u64,
        /// The bug depth aimed at.
        depth: u32,
        /// The steps change points are drawn among.
        steps: u32,
    },
    /// The running thread goes on while it can, else the first runnable.
    Default,
}

/// PCT's depth when none is given: bugs of depth 3 (most need 1 or 2).
pub const PCT_DEPTH: u32 = 3;
/// PCT's steps when the run's length is unknown (`--search` measures it first).
pub const PCT_STEPS: u32 = 64;

impl Base {
    /// The scheduler's strategy.
    pub fn strategy(self) -> Strategy {
        match self {
            Base::Random(seed) => Strategy::Random(seed),
            Base::Pct { seed, depth, steps } => Strategy::Pct { seed, depth, steps },
            Base::Default => Strategy::Replay(Vec::new()),
        }
    }

    /// What this strategy chose at `c` by itself.
    fn own(self, c: &Choice) -> u32 {
        match self {
            Base::Default => c.default_choice(),
            _ => c.proposed,
        }
    }

    /// The same strategy from the next seed (`--search`).
    pub fn next_seed(self) -> Base {
        match self {
            Base::Random(seed) => Base::Random(seed.wrapping_add(1)),
            Base::Pct { seed, depth, steps } => Base::Pct {
                seed: seed.wrapping_add(1),
                depth,
                steps,
            },
            Base::Default => Base::Default,
        }
    }
}

impl fmt::Display for Base {
    /// As the flag takes it: `random:42`, `pct:7:3`, `default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Random(seed) => write!(f, "random:{seed}"),
            Base::Pct { seed, depth, .. } => write!(f, "pct:{seed}:{depth}"),
            Base::Default => write!(f, "default"),
        }
    }
}

/// A run's plan as a token holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The demo it is for.
    pub demo: String,
    /// The hash of the arguments it was made with.
    pub hash: String,
    /// The strategy.
    pub base: Base,
    /// Choices that differ from the strategy's: decision index → choice.
    pub overrides: BTreeMap<u32, u32>,
    /// How many choices had been made when it was taken (stepping), if said.
    pub upto: Option<u32>,
}

/// What `--schedule` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// The operating system's schedule (no scheduler).
    Os,
    /// A strategy, fresh.
    Base(Base),
    /// A replay.
    Token(Token),
}

impl Spec {
    /// Parses the flag's value: `os`, `random[:SEED]`, `pct[:SEED[:DEPTH]]`, `default` (the
    /// running thread goes on while it can), or a token. A missing seed is drawn now (the
    /// token prints it).
    pub fn parse(s: &str) -> Result<Spec, String> {
        let mut parts = s.split(':');
        let head = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let number = |text: &str, what: &str| -> Result<u64, String> {
            text.parse::<u64>()
                .ok()
                .filter(|n| *n <= u64::from(u32::MAX))
                .ok_or_else(|| {
                    format!("{what} must be a whole number from 0 to 4294967295, not '{text}'")
                })
        };
        let seed = |i: usize| match rest.get(i) {
            Some(t) => number(t, "the seed"),
            None => Ok(u64::from(rand::random::<u16>())),
        };
        match (head, rest.len()) {
            ("os", 0) => Ok(Spec::Os),
            ("default", 0) => Ok(Spec::Base(Base::Default)),
            ("random", 0 | 1) => Ok(Spec::Base(Base::Random(seed(0)?))),
            ("pct", 0..=2) => {
                let depth = match rest.get(1) {
                    Some(t) => number(t, "PCT's depth").and_then(|d| {
                        (1..=16)
                            .contains(&d)
                            .then_some(d as u32)
                            .ok_or_else(|| format!("PCT's depth must be from 1 to 16, not {d}"))
                    })?,
                    None => PCT_DEPTH,
                };
                Ok(Spec::Base(Base::Pct {
                    seed: seed(0)?,
                    depth,
                    steps: PCT_STEPS,
                }))
            }
            _ if s.contains('.') => parse_token(s).map(Spec::Token),
            _ => Err(format!(
                "'{s}' is not a schedule: os, random[:SEED], pct[:SEED[:DEPTH]], default, or a replay \
                 token printed by a scheduled run"
            )),
        }
    }
}

/// Reads a token (see the module's documentation).
fn parse_token(s: &str) -> Result<Token, String> {
    let bad = |why: &str| format!("'{s}' is not a replay token: {why}");
    let fields: Vec<&str> = s.split('.').collect();
    if !(3..=5).contains(&fields.len()) {
        return Err(bad("expected DEMO.HASH.STRATEGY[.CHOICES[.UPTO]]"));
    }
    let base = parse_base(fields[2]).ok_or_else(|| bad("its strategy is not r, p or d"))?;
    let mut overrides = BTreeMap::new();
    if let Some(list) = fields.get(3).filter(|l| !l.is_empty()) {
        let mut at = 0u32;
        for (i, item) in list.split('_').enumerate() {
            let (gap, choice) = item
                .split_once('-')
                .and_then(|(g, c)| Some((g.parse::<u32>().ok()?, c.parse::<u32>().ok()?)))
                .ok_or_else(|| bad("its choices are not GAP-CHOICE pairs"))?;
            at = if i == 0 {
                gap
            } else {
                gap.checked_add(1)
                    .and_then(|g| at.checked_add(g))
                    .ok_or_else(|| bad("too long"))?
            };
            overrides.insert(at, choice);
        }
    }
    let upto = match fields.get(4) {
        Some(u) => Some(
            u.parse::<u32>()
                .map_err(|_| bad("its last field is not a count"))?,
        ),
        None => None,
    };
    Ok(Token {
        demo: fields[0].to_string(),
        hash: fields[1].to_string(),
        base,
        overrides,
        upto,
    })
}

fn parse_base(s: &str) -> Option<Base> {
    if s == "d" {
        return Some(Base::Default);
    }
    if let Some(seed) = s.strip_prefix('r') {
        return seed.parse().ok().map(Base::Random);
    }
    let mut p = s.strip_prefix('p')?.split('-');
    let (seed, depth, steps) = (p.next()?, p.next()?, p.next()?);
    Some(Base::Pct {
        seed: seed.parse().ok()?,
        depth: depth.parse().ok().filter(|d| (1..=16).contains(d))?,
        steps: steps.parse().ok().filter(|n| *n >= 1)?,
    })
}

impl Token {
    /// The token of a run of `demo` (arguments hashed as `hash`) from `base` that made
    /// `choices`; `upto` for a stepping session's.
    pub fn of_run(
        demo: &str,
        hash: &str,
        base: Base,
        choices: &[Choice],
        upto: Option<u32>,
    ) -> Token {
        let overrides = choices
            .iter()
            .enumerate()
            .filter(|(_, c)| c.chosen != base.own(c))
            .map(|(i, c)| (i as u32, c.chosen))
            .collect();
        Token {
            demo: demo.to_string(),
            hash: hash.to_string(),
            base,
            overrides,
            upto,
        }
    }

    /// The scheduler's plan for this token.
    pub fn plan(&self) -> Plan {
        Plan {
            overrides: self.overrides.clone(),
            ..Plan::from(self.base.strategy())
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.", self.demo, self.hash)?;
        match self.base {
            Base::Random(seed) => write!(f, "r{seed}")?,
            Base::Pct { seed, depth, steps } => write!(f, "p{seed}-{depth}-{steps}")?,
            Base::Default => write!(f, "d")?,
        }
        if !self.overrides.is_empty() || self.upto.is_some() {
            let mut prev: Option<u32> = None;
            let items: Vec<String> = self
                .overrides
                .iter()
                .map(|(at, choice)| {
                    let gap = prev.map_or(*at, |p| at - p - 1);
                    prev = Some(*at);
                    format!("{gap}-{choice}")
                })
                .collect();
            write!(f, ".{}", items.join("_"))?;
        }
        if let Some(upto) = self.upto {
            write!(f, ".{upto}")?;
        }
        Ok(())
    }
}

/// Small configurations whose every schedule `--explore` runs in about a second: one list
/// for the README's censuses, the tests, `make bench` and `make mutants`, so they agree.
pub mod examples {
    /// Race's lost update, 2 increments each: 70 schedules.
    pub const RACE: &[&str] = &["race", "--iterations", "2", "--strategy", "unsynchronized"];
    /// The two tellers with no hold: 163 schedules, 12 close the cycle.
    pub const TELLERS: &[&str] = &["deadlock", "--part", "1", "--hold", "0"];
    /// Condition's bounded buffer, 2 items, 2 consumers, a slot of 1 (add `--bug if`).
    pub const CONDITION: &[&str] = &[
        "condition",
        "--items",
        "2",
        "--consumers",
        "2",
        "--capacity",
        "1",
        "--produce-time",
        "0",
    ];
}

/// Four base-36 digits of a hash (FNV-1a, stable across builds and machines) of what a run
/// depends on besides its schedule: the demo, its arguments, `--pace` and `--seed`.
pub fn args_hash(demo: &str, args_json: &str, pace: f64, seed: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{demo}\0{args_json}\0{pace}\0{seed}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::new();
    for _ in 0..4 {
        out.push(char::from_digit((h % 36) as u32, 36).unwrap_or('0'));
        h /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(chosen: u32, of: u32, stay: Option<u32>, proposed: u32) -> Choice {
        Choice {
            chosen,
            of,
            stay,
            proposed,
        }
    }

    #[test]
    fn flags_parse_and_malformed_ones_say_why() {
        assert_eq!(Spec::parse("os"), Ok(Spec::Os));
        assert_eq!(Spec::parse("default"), Ok(Spec::Base(Base::Default)));
        assert_eq!(Spec::parse("random:42"), Ok(Spec::Base(Base::Random(42))));
        assert_eq!(
            Spec::parse("pct:7:2"),
            Ok(Spec::Base(Base::Pct {
                seed: 7,
                depth: 2,
                steps: PCT_STEPS
            }))
        );
        assert!(matches!(
            Spec::parse("random"),
            Ok(Spec::Base(Base::Random(_)))
        ));
        for bad in [
            "",
            "fifo",
            "random:x",
            "random:-1",
            "pct:1:0",
            "pct:1:99",
            "a.b",
            "x.y.q",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_lists_only_the_choices_that_differ_and_reads_back() {
        let choices = [
            choice(1, 2, None, 1),    // as the random draw: not listed
            choice(0, 2, Some(1), 1), // differs
            choice(1, 3, None, 1),
            choice(2, 3, None, 0), // differs
        ];
        let t = Token::of_run("race-condition", "k3f9", Base::Random(42), &choices, None);
        assert_eq!(t.to_string(), "race-condition.k3f9.r42.1-0_1-2");
        assert_eq!(parse_token(&t.to_string()), Ok(t.clone()));
        // From the default: the running thread going on (stay) or the first.
        let d = Token::of_run("deadlock", "0000", Base::Default, &choices, Some(4));
        assert_eq!(d.to_string(), "deadlock.0000.d.0-1_0-0_0-1_0-2.4");
        assert_eq!(parse_token(&d.to_string()), Ok(d));
        let plain = Token::of_run("x", "0000", Base::Random(1), &[], None);
        assert_eq!(plain.to_string(), "x.0000.r1");
        assert_eq!(
            parse_token("x.0000.p3-2-40"),
            Ok(Token {
                base: Base::Pct {
                    seed: 3,
                    depth: 2,
                    steps: 40
                },
                ..plain
            })
        );
    }

    #[test]
    fn a_tokens_plan_replays_the_run_it_was_taken_from() {
        use crate::lab::sched::counter_model;
        let _bound = crate::sync::bounded_test(30);
        for seed in 0..20 {
            let (value, choices) = counter_model(Base::Random(seed).strategy(), 3);
            let chosen: Vec<u32> = choices.iter().map(|c| c.chosen).collect();
            // From its seed (no choice listed), and from the default (its choices listed).
            for base in [Base::Random(seed), Base::Default] {
                let token = Token::of_run("race-condition", "0000", base, &choices, None);
                let read = parse_token(&token.to_string()).expect("reads back");
                let (again, replayed) = counter_model(read.plan(), 3);
                let again_chosen: Vec<u32> = replayed.iter().map(|c| c.chosen).collect();
                assert_eq!((again, again_chosen), (value, chosen.clone()), "{token}");
            }
        }
    }

    #[test]
    fn hostile_tokens_are_refused_or_read_never_a_panic() {
        let max = u32::MAX;
        assert!(parse_token(&format!("x.0000.d.{max}-1_{max}-1")).is_err());
        assert!(parse_token("x.0000.d.1-99999999999").is_err());
        let far = parse_token(&format!("x.0000.r{}", u64::MAX)).expect("a seed");
        assert_eq!(far.base.next_seed(), Base::Random(0));
    }

    #[test]
    fn the_hash_changes_with_any_argument() {
        let a = args_hash("race-condition", r#"{"iterations":2}"#, 1.0, 0);
        assert_eq!(a.len(), 4);
        assert_ne!(
            a,
            args_hash("race-condition", r#"{"iterations":3}"#, 1.0, 0)
        );
        assert_ne!(
            a,
            args_hash("race-condition", r#"{"iterations":2}"#, 0.5, 0)
        );
        assert_ne!(
            a,
            args_hash("race-condition", r#"{"iterations":2}"#, 1.0, 1)
        );
        assert_ne!(a, args_hash("deadlock", r#"{"iterations":2}"#, 1.0, 0));
        assert_eq!(
            a,
            args_hash("race-condition", r#"{"iterations":2}"#, 1.0, 0)
        );
    }
}
