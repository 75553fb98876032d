//! A problem in a lab file, and the scenario layer's error (exit code 2).

use std::fmt;
use std::path::PathBuf;

use super::locate::Position;

/// One thing wrong with a lab: where (file:line:col), which field, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub at: Position,
    /// The field's path, e.g. `steps[0].probes[1].expect.status` (empty: the file).
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.at)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}\n{} problem{} found", render(.0), .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Problem>),

    #[error("no lab matches '{wanted}'; labs in {from}: {}", available.join(", "))]
    NoSuchLab {
        wanted: String,
        from: String,
        available: Vec<String>,
    },

    #[error("no suite '{wanted}'; the built-in suites are {}", available.join(", "))]
    NoSuchSuite {
        wanted: String,
        available: Vec<String>,
    },

    #[error("lab {lab}: its isolated copy could not be made (a bug, please report it): {message}")]
    Copy { lab: String, message: String },

    /// A request that cannot be carried out as given (`kubelab new` with a bad name).
    #[error("{0}")]
    Usage(String),

    #[error("no labs in {}: a lab is a folder with a lab.yaml", .0.display())]
    NoLabs(PathBuf),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
