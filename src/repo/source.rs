//! Where repository files are read from: the worktree now, a git revision
//! later, behind one small interface so the loader does not care.

use std::path::{Path, PathBuf};

/// Read access to the files of a repository.
pub trait RepoSource {
    /// Contents of a file (path relative to the root), `None` when absent.
    fn read(&self, path: &Path) -> std::io::Result<Option<String>>;
    /// Names of the entries of a directory, sorted; empty when absent.
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>>;
    /// Whether `dir` exists and is a directory.
    fn is_dir(&self, dir: &Path) -> bool;
}

/// The files on disk under a root directory.
pub struct Worktree {
    pub root: PathBuf,
}

impl RepoSource for Worktree {
    fn read(&self, path: &Path) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(self.root.join(path)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let mut names = match std::fs::read_dir(self.root.join(dir)) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        names.sort();
        Ok(names)
    }

    fn is_dir(&self, dir: &Path) -> bool {
        self.root.join(dir).is_dir()
    }
}
