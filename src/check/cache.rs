//! `url-check --cache`: results kept between runs, for CI.
//!
//! Only what is settled is kept: an accepted URL, and the definitive failures (404, 410, a
//! host name that does not exist). Never a timeout, a connection error, a 429 or a 5xx: they
//! say how the server was that minute, and a cached one would hide its recovery (the
//! trouble lychee's users met until it stopped caching errors). An entry older than
//! `--max-cache-age` is checked again.
//!
//! The file is one JSON document with the cache's version, written to a scratch file beside
//! it and renamed over it: a crash or a Ctrl-C mid-write leaves the old file whole. A file
//! that cannot be read as this version's cache is ignored with a warning and replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Kind, Outcome};

/// Written in every cache file; another version's file is not read.
pub const VERSION: &str = "threadlab-cache 1";
/// The cache file's default name, in the current folder.
pub const DEFAULT_FILE: &str = ".threadlab-cache";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    status: Option<u16>,
    kind: Option<String>,
    error: Option<String>,
    ok: bool,
    /// Seconds since the Unix epoch.
    checked_at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: String,
    entries: HashMap<String, Entry>,
}

/// The cache of one run: what was read (fresh entries only) and what this run settled.
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    entries: HashMap<String, Entry>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Cache {
    /// Reads `path` (a missing file is an empty cache); entries older than `max_age` are
    /// dropped. A file that is not this version's cache is ignored: `Err` says why, for a
    /// warning, with the empty cache that replaces it.
    pub fn load(path: &Path, max_age: Duration) -> (Cache, Option<String>) {
        let mut cache = Cache {
            path: path.to_path_buf(),
            entries: HashMap::new(),
        };
        let text = match read_state(path).map(|b| b.map(String::from_utf8)) {
            Ok(Some(Ok(t))) => t,
            Ok(None) => return (cache, None),
            Ok(Some(Err(_))) => {
                let why = format!("{}: not a cache file (not UTF-8): ignored", path.display());
                return (cache, Some(why));
            }
            Err(e) => return (cache, Some(format!("{}: {e}: ignored", path.display()))),
        };
        let file: File = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("{}: not a cache file ({e}): ignored", path.display());
                return (cache, Some(why));
            }
        };
        if file.version != VERSION {
            let why = format!(
                "{}: a cache of another version ({:?}, this is {VERSION:?}): ignored",
                path.display(),
                file.version
            );
            return (cache, Some(why));
        }
        let oldest = now().saturating_sub(max_age.as_secs());
        cache.entries = file
            .entries
            .into_iter()
            .filter(|(_, e)| e.checked_at >= oldest)
            .collect();
        (cache, None)
    }

    /// The kept result for `url`, if fresh.
    pub fn get(&self, url: &str) -> Option<Outcome> {
        let e = self.entries.get(url)?;
        Some(Outcome {
            status: e.status,
            kind: e.kind.as_deref().and_then(Kind::named),
            error: e.error.clone(),
            ok: e.ok,
            elapsed: Duration::ZERO,
            attempts: 0,
        })
    }

    /// Keeps `outcome` for `url` if it is settled (see the module's docs).
    pub fn put(&mut self, url: &str, outcome: &Outcome) {
        if !settled(outcome) {
            self.entries.remove(url);
            return;
        }
        self.entries.insert(
            url.to_string(),
            Entry {
                status: outcome.status,
                kind: outcome.kind.map(|k| k.as_str().to_string()),
                error: outcome.error.clone(),
                ok: outcome.ok,
                checked_at: now(),
            },
        );
    }

    /// Writes the cache whole, then renames it into place.
    pub fn save(&self) -> anyhow::Result<()> {
        let file = File {
            version: VERSION.into(),
            entries: self.entries.clone(),
        };
        replace_file(&self.path, "--cache-file", &serde_json::to_vec(&file)?)
    }
}

/// Largest state file read (a cache, a cookie jar).
const MAX_STATE: u64 = 64 * 1024 * 1024;

/// The bytes of a state file kept between runs (the cache, a cookie jar): `None` when there
/// is none yet. Anything but a regular file of at most 64 MiB is an error, never read: a
/// FIFO would block the run and `/dev/zero` would never end.
pub fn read_state(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::{Error, ErrorKind};
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > MAX_STATE {
        let why = format!(
            "{} MiB, more than {} MiB",
            meta.len() >> 20,
            MAX_STATE >> 20
        );
        return Err(Error::new(ErrorKind::InvalidInput, why));
    }
    std::fs::read(path).map(Some)
}

/// Writes `bytes` beside `path` and renames the scratch file over it: a crash or a Ctrl-C
/// mid-write leaves the old file whole. Anything but a regular file (or none) at `path` is
/// an error, never replaced. An error names `flag` and the file.
pub fn replace_file(path: &Path, flag: &str, bytes: &[u8]) -> anyhow::Result<()> {
    // A device, a pipe, a folder: never renamed over (`/dev/null` stays a device).
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        anyhow::bail!(
            "{flag} {}: not a regular file: not replaced",
            path.display()
        );
    }
    let scratch = path.with_extension(format!("partial.{}", std::process::id()));
    let written = std::fs::write(&scratch, bytes).and_then(|()| std::fs::rename(&scratch, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&scratch);
        anyhow::bail!("{flag} {}: {e}", path.display());
    }
    Ok(())
}

/// An outcome worth keeping: accepted, or a failure that will not change on its own soon.
pub fn settled(o: &Outcome) -> bool {
    o.ok || matches!(o.status, Some(404 | 410)) || o.kind == Some(Kind::DnsFailure)
}

/// `--max-cache-age`: seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d (got {s})")),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * scale <= 3.2e9 => {
            Ok(Duration::from_secs_f64(n * scale))
        }
        _ => Err(format!(
            "expected an age such as 90s, 30m, 12h or 1d (got {s})"
        )),
    }
}

/// An age as `--max-cache-age` takes it: the largest whole unit (`1d`, `12h`, `90s`).
pub fn show_age(age: Duration) -> String {
    let secs = age.as_secs_f64();
    for (unit, scale) in [('d', 86_400.0), ('h', 3600.0), ('m', 60.0)] {
        if secs >= scale && (secs / scale).fract() == 0.0 {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_show_as_they_are_given() {
        for given in ["1d", "12h", "30m", "90s", "1.5s"] {
            assert_eq!(show_age(parse_age(given).unwrap()), given);
        }
    }

    fn outcome(status: Option<u16>, kind: Option<Kind>) -> Outcome {
        Outcome {
            status,
            kind,
            error: kind.map(|k| k.to_string()),
            ok: kind.is_none(),
            elapsed: Duration::ZERO,
            attempts: 1,
        }
    }

    #[test]
    fn only_settled_results_are_kept_and_a_bad_file_is_ignored() {
        assert!(settled(&outcome(Some(200), None)));
        assert!(settled(&outcome(Some(404), Some(Kind::Status))));
        assert!(settled(&outcome(None, Some(Kind::DnsFailure))));
        for o in [
            outcome(Some(429), Some(Kind::Status)),
            outcome(Some(503), Some(Kind::Status)),
            outcome(None, Some(Kind::Timeout)),
            outcome(None, Some(Kind::ConnectionRefused)),
        ] {
            assert!(!settled(&o), "{o:?}");
        }
        let dir = std::env::temp_dir().join(format!("tl-cache-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c");
        std::fs::write(&path, "{not json").unwrap();
        let (mut cache, warning) = Cache::load(&path, Duration::from_secs(60));
        assert!(warning.unwrap().contains("not a cache file"));
        cache.put("https://a.example/", &outcome(Some(200), None));
        cache.put("https://b.example/", &outcome(None, Some(Kind::Timeout)));
        cache.save().unwrap();
        let (cache, warning) = Cache::load(&path, Duration::from_secs(60));
        assert!(warning.is_none());
        assert_eq!(cache.get("https://a.example/").unwrap().status, Some(200));
        assert!(cache.get("https://b.example/").is_none());
        assert_eq!(parse_age("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert!(parse_age("3w").is_err());
        assert!(parse_age("-1h").is_err());
    }
}
