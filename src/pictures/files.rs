//! The picture files (`--trace`, `--svg`): checked and opened before the run, written after
//! it, each replaced whole or not at all (as hyperfine's `ExportManager` does for its exports).
//!
//! Every path is judged before a demo starts, so a long run never ends in "cannot write":
//! - it must be, or become, a regular file: a FIFO would block the open beyond any watchdog,
//!   `/dev/full` fails only at the end, `/dev/stdout` would mix a second document into
//!   `--json`'s stdout. Such a path is one line naming the flag.
//! - the two flags may not name the same file (each would overwrite the other's picture).
//! - the picture goes into a fresh file beside the target, renamed over it once complete:
//!   a run that fails, a refused flag or a full disk leaves the old file as it was.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Every scratch file of this process not yet renamed or removed: an exit that skips the
/// destructors (a closed pipe, a second Ctrl-C, the watchdog) still leaves no litter.
static LIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every scratch picture file still open: for the paths that end the process at
/// once. The targets stay as they were.
pub fn discard_scratch() {
    for path in crate::sync::lock(&LIVE).drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

fn forget(scratch: &Path) {
    crate::sync::lock(&LIVE).retain(|p| p != scratch);
}

/// One picture file being written: where it goes, and the scratch file beside it.
struct Pending {
    flag: &'static str,
    target: PathBuf,
    scratch: PathBuf,
    file: Option<BufWriter<File>>,
}

/// The picture files of one run. Dropped without [`PictureFiles::commit`], it removes its
/// scratch files and leaves every target untouched.
#[derive(Default)]
pub struct PictureFiles {
    pending: Vec<Pending>,
}

impl PictureFiles {
    /// Judges and opens every `(flag, path)` given, before the run: one clear error naming
    /// the flag for a path that is not a regular file, a folder that does not exist, a file
    /// that cannot be created, or two flags naming the same file.
    pub fn open(paths: &[(&'static str, Option<&Path>)]) -> anyhow::Result<Self> {
        let mut files = Self::default();
        let given: Vec<(&'static str, &Path)> = paths
            .iter()
            .filter_map(|(f, p)| p.map(|p| (*f, p)))
            .collect();
        if let [(f1, p1), (f2, p2)] = given[..]
            && same_file(p1, p2)
        {
            anyhow::bail!(
                "{f1} and {f2} both name {}: give each picture a file of its own",
                p1.display()
            );
        }
        for (flag, path) in given {
            files.pending.push(open_one(flag, path)?);
        }
        Ok(files)
    }

    /// Whether any picture file was asked for.
    pub fn any(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The writer for `flag`'s picture, if it was asked for.
    pub fn writer(&mut self, flag: &str) -> Option<(&Path, &mut BufWriter<File>)> {
        self.pending
            .iter_mut()
            .find(|p| p.flag == flag)
            .and_then(|p| p.file.as_mut().map(|f| (p.target.as_path(), f)))
    }

    /// Flushes every picture and moves it over its target. On an error the targets not yet
    /// replaced stay as they were, and the scratch files go.
    pub fn commit(mut self) -> anyhow::Result<()> {
        for p in &mut self.pending {
            let what = || format!("{} {}: cannot write the file", p.flag, p.target.display());
            if let Some(mut f) = p.file.take() {
                f.flush().with_context(what)?;
                f.get_ref().sync_all().with_context(what)?;
            }
            std::fs::rename(&p.scratch, &p.target).with_context(what)?;
            forget(&p.scratch);
        }
        self.pending.clear();
        Ok(())
    }
}

impl Drop for PictureFiles {
    fn drop(&mut self) {
        for p in &mut self.pending {
            drop(p.file.take());
            let _ = std::fs::remove_file(&p.scratch);
            forget(&p.scratch);
        }
    }
}

/// Whether two paths name one file (the same path, or the same existing file).
fn same_file(a: &Path, b: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if absolute(a) == absolute(b) {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn open_one(flag: &'static str, target: &Path) -> anyhow::Result<Pending> {
    let shown = target.display();
    if let Ok(meta) = std::fs::metadata(target)
        && !meta.is_file()
    {
        let kind = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, a pipe or a socket)"
        };
        anyhow::bail!("{flag} {shown}: {kind}; a picture is written to a regular file");
    }
    let name = target
        .file_name()
        .with_context(|| format!("{flag} {shown}: names no file"))?;
    let scratch = target.with_file_name(format!(
        ".{}.threadlab-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = File::create(&scratch)
        .map(BufWriter::new)
        .with_context(|| format!("{flag} {shown}: cannot write the file"))?;
    crate::sync::lock(&LIVE).push(scratch.clone());
    Ok(Pending {
        flag,
        target: target.to_path_buf(),
        scratch,
        file: Some(file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("threadlab-pf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_refused_second_file_leaves_the_first_target_untouched() {
        let d = scratch_dir("refused");
        let keep = d.join("keep.json");
        std::fs::write(&keep, "old picture").unwrap();
        let missing = d.join("missing").join("x.svg");
        let err = PictureFiles::open(&[("--trace", Some(&keep)), ("--svg", Some(&missing))])
            .err()
            .expect("refused");
        assert!(err.to_string().contains("--svg"), "{err}");
        assert_eq!(std::fs::read_to_string(&keep).unwrap(), "old picture");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no scratch file left"
        );
    }

    #[test]
    fn the_same_file_for_both_pictures_is_refused() {
        let d = scratch_dir("same");
        let p = d.join("p.out");
        let err = PictureFiles::open(&[("--trace", Some(&p)), ("--svg", Some(&p))])
            .err()
            .expect("refused");
        assert!(err.to_string().contains("--trace and --svg"), "{err}");
    }

    #[test]
    fn devices_and_folders_are_refused_before_anything_is_opened() {
        for path in ["/dev/full", "/dev/null", "/tmp"] {
            let err = PictureFiles::open(&[("--trace", Some(Path::new(path)))])
                .err()
                .expect(path);
            assert!(err.to_string().starts_with("--trace"), "{err}");
        }
    }

    #[test]
    fn a_committed_picture_replaces_its_target_whole_and_a_dropped_one_changes_nothing() {
        let d = scratch_dir("commit");
        let t = d.join("t.json");
        std::fs::write(&t, "old").unwrap();
        let mut files = PictureFiles::open(&[("--trace", Some(&t))]).unwrap();
        files
            .writer("--trace")
            .unwrap()
            .1
            .write_all(b"half")
            .unwrap();
        drop(files);
        assert_eq!(std::fs::read_to_string(&t).unwrap(), "old");
        let mut files = PictureFiles::open(&[("--trace", Some(&t))]).unwrap();
        files
            .writer("--trace")
            .unwrap()
            .1
            .write_all(b"new")
            .unwrap();
        files.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&t).unwrap(), "new");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }
}
