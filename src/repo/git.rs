//! Reading the declared state from git: any revision through libgit2
//! (without touching the worktree), the commit of HEAD, and whether the
//! worktree has uncommitted changes.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Repository, StatusOptions};

use super::source::RepoSource;

/// A git failure with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct GitError {
    context: String,
    #[source]
    source: git2::Error,
}

fn ctx(context: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    let context = context.into();
    move |source| GitError { context, source }
}

/// The git repository holding a tenantctl repository, which may be a
/// subdirectory of it (`prefix`).
pub struct GitRepo {
    repo: Repository,
    prefix: PathBuf,
}

impl GitRepo {
    /// Finds the git repository containing `root`.
    pub fn discover(root: &Path) -> Result<Self, GitError> {
        let repo = Repository::discover(root).map_err(ctx(format!(
            "{} is not inside a git repository",
            root.display()
        )))?;
        let workdir = repo
            .workdir()
            .and_then(|w| w.canonicalize().ok())
            .ok_or_else(|| GitError {
                context: "bare git repositories are not supported".into(),
                source: git2::Error::from_str("no worktree"),
            })?;
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let prefix = root
            .strip_prefix(&workdir)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Self { repo, prefix })
    }

    /// Where the tenantctl repository is inside the git worktree (empty at its root).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The root of the git worktree.
    pub fn workdir(&self) -> std::path::PathBuf {
        self.repo
            .workdir()
            .and_then(|w| w.canonicalize().ok())
            .unwrap_or_default()
    }

    /// The full commit id `rev` (a branch, tag, `HEAD~1`, a sha…) names.
    pub fn resolve(&self, rev: &str) -> Result<String, GitError> {
        let commit = self
            .repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(ctx(format!("cannot resolve git revision {rev:?}")))?;
        Ok(commit.id().to_string())
    }

    /// The commit HEAD points at, if any.
    pub fn head(&self) -> Option<String> {
        self.resolve("HEAD").ok()
    }

    /// Files under the tenantctl repository that differ from HEAD (modified,
    /// staged, or untracked and not ignored).
    pub fn dirty_files(&self) -> Result<Vec<String>, GitError> {
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        if !self.prefix.as_os_str().is_empty() {
            options.pathspec(self.prefix.to_string_lossy().as_ref());
        }
        let statuses = self
            .repo
            .statuses(Some(&mut options))
            .map_err(ctx("reading git status"))?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_ignored())
            .filter_map(|s| s.path().map(str::to_string))
            .collect())
    }

    /// The tenantctl repository's files as of `rev`.
    pub fn at(&self, rev: &str) -> Result<GitRevision<'_>, GitError> {
        let commit = self.resolve(rev)?;
        Ok(GitRevision { git: self, commit })
    }
}

/// The files of a tenantctl repository at one commit.
pub struct GitRevision<'a> {
    git: &'a GitRepo,
    /// Full commit id.
    pub commit: String,
}

impl GitRevision<'_> {
    fn tree(&self) -> std::io::Result<git2::Tree<'_>> {
        let oid = git2::Oid::from_str(&self.commit).map_err(std::io::Error::other)?;
        self.git
            .repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(std::io::Error::other)
    }

    fn object(&self, path: &Path) -> std::io::Result<Option<git2::Object<'_>>> {
        let full = self.git.prefix.join(path);
        let tree = self.tree()?;
        if full.as_os_str().is_empty() {
            return Ok(Some(tree.into_object()));
        }
        match tree.get_path(&full) {
            Ok(entry) => entry
                .to_object(&self.git.repo)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

impl RepoSource for GitRevision<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Option<String>> {
        match self.object(path)? {
            Some(obj) if obj.kind() == Some(ObjectType::Blob) => {
                let blob = obj.peel_to_blob().map_err(std::io::Error::other)?;
                String::from_utf8(blob.content().to_vec())
                    .map(Some)
                    .map_err(|_| std::io::Error::other(format!("{} is not UTF-8", path.display())))
            }
            _ => Ok(None),
        }
    }

    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        match self.object(dir)? {
            Some(obj) if obj.kind() == Some(ObjectType::Tree) => {
                let tree = obj.peel_to_tree().map_err(std::io::Error::other)?;
                let mut names: Vec<String> = tree
                    .iter()
                    .filter_map(|e| e.name().map(str::to_string))
                    .collect();
                names.sort();
                Ok(names)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn is_dir(&self, dir: &Path) -> bool {
        matches!(self.object(dir), Ok(Some(obj)) if obj.kind() == Some(ObjectType::Tree))
    }
}
