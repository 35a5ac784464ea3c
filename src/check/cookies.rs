//! `--cookie-jar FILE`: cookies sent with every request and kept between runs.
//!
//! The jar is read before the run (a missing file is an empty jar), given to the client as
//! its cookie store (so a `Set-Cookie` from one check is sent with the next to the same
//! site, as a browser would), and written back whole at the end, beside the file and then
//! renamed over it. The format is the cookie_store crate's JSON, the one lychee's
//! `--cookie-jar` writes too. A jar that cannot be read is an error naming the file: a run
//! without the cookies would report pages behind a login as failures. Cookie values are
//! credentials: they are never printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest_cookie_store::{CookieStore, CookieStoreMutex};

/// A cookie jar: the client's store, and the file it is kept in.
#[derive(Debug)]
pub struct Jar {
    path: PathBuf,
    store: Arc<CookieStoreMutex>,
}

impl Jar {
    /// The jar in `path`; empty if there is no such file yet.
    pub fn open(path: &Path) -> anyhow::Result<Jar> {
        let store = match super::cache::read_state(path) {
            Ok(Some(bytes)) => cookie_store::serde::json::load(bytes.as_slice()).map_err(|e| {
                anyhow::anyhow!("--cookie-jar {}: not a cookie jar: {e}", path.display())
            })?,
            Ok(None) => CookieStore::default(),
            Err(e) => anyhow::bail!("--cookie-jar {}: {e}", path.display()),
        };
        Ok(Jar {
            path: path.to_path_buf(),
            store: Arc::new(CookieStoreMutex::new(store)),
        })
    }

    /// The store the HTTP client reads and fills.
    pub fn store(&self) -> Arc<CookieStoreMutex> {
        Arc::clone(&self.store)
    }

    /// How many cookies it holds.
    pub fn len(&self) -> usize {
        self.store.lock().map_or(0, |s| s.iter_unexpired().count())
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the jar back whole (session cookies too: the next run is the same session).
    pub fn save(&self) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        {
            let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            cookie_store::serde::json::save_incl_expired_and_nonpersistent(&store, &mut bytes)
                .map_err(|e| anyhow::anyhow!("--cookie-jar {}: {e}", self.path.display()))?;
        }
        super::cache::replace_file(&self.path, "--cookie-jar", &bytes)
    }
}
