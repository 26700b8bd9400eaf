//! `file:line:col: message` diagnostics, collected rather than thrown so that
//! `validate` can report every mistake in a repository at once.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem found in a file of the repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    /// Path relative to the repository root.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: impl AsRef<Path>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.as_ref().to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// A problem with a whole file (missing, unreadable).
    pub fn file(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (self.line, self.column) {
            (0, _) => write!(f, "{file}: {}", self.message),
            (line, 0) => write!(f, "{file}:{line}: {}", self.message),
            (line, col) => write!(f, "{file}:{line}:{col}: {}", self.message),
        }
    }
}

/// A non-empty list of diagnostics, returned when a repository cannot be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn render(list: &[Diagnostic]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where in a file a value came from: 1-based line and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}
