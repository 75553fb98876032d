//! The cluster layer's error: everything here is an environment problem (exit code 3).

use std::path::PathBuf;
use std::time::Duration;

use crate::ui::format_duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot find {} (searched {})\n  hint: {hint}",
        missing.join(", "),
        searched.join(", ")
    )]
    MissingBinaries {
        missing: Vec<String>,
        searched: Vec<String>,
        hint: String,
    },

    #[error("port 127.0.0.1:{port} is already in use; free it or choose another with {flag}")]
    PortInUse { port: u16, flag: &'static str },

    #[error(
        "{component} exited during start ({status}); last lines of its log {}:\n{tail}",
        log.display()
    )]
    ExitedDuringStart {
        component: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "{what} not ready after {} (last check: {last_error}); log {}; raise the limit with --wait-timeout\n{tail}",
        format_duration(*timeout),
        log.display()
    )]
    NotReady {
        what: String,
        timeout: Duration,
        last_error: String,
        log: PathBuf,
        tail: String,
    },

    #[error("no local cluster named '{name}' (no state in {}); start one with `kubelab cluster up`", dir.display())]
    NoCluster { name: String, dir: PathBuf },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),

    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },

    #[error("state file {}: {message}", path.display())]
    BadState { path: PathBuf, message: String },

    #[error("interrupted; stopped and removed what this run had started")]
    Interrupted,

    /// Interrupted, and the cleanup could not remove everything.
    #[error(
        "interrupted; {left} objects this run made could not be removed: they are labelled {selector}"
    )]
    InterruptedLeaving { left: usize, selector: String },

    /// The API server went away (or lost etcd) in the middle of a command.
    #[error(
        "the API server at {server} stopped serving while kubelab was at {doing}\n  the server: {cause}\n  {left}\n  next: {next}"
    )]
    ServerDown {
        server: String,
        doing: String,
        cause: String,
        /// What the run made that is still there, and how to find it.
        left: String,
        next: String,
    },

    /// Flags that do not apply to this provider (exit 2).
    #[error("{0}")]
    Usage(String),

    #[error("kubeconfig: {0}")]
    Kubeconfig(String),

    #[error("local node: {0}")]
    Node(String),

    #[error("the kind provider cannot run here: {missing}\n  hint: {how}")]
    KindUnavailable { missing: String, how: String },

    #[error("`{command}` failed:\n{output}")]
    Kind { command: String, output: String },

    #[error(
        "kind cluster '{name}' was not created by kubelab, so kubelab leaves it alone; to delete it anyway, name it: kubelab cluster down --provider kind --name {name}"
    )]
    NotCreatedByKubelab { name: String },

    #[error(
        "kubelab would create and delete objects (labelled kubelab.dev/lab) in context '{context}' (server {server}); confirm with --yes, or choose the context explicitly with --context"
    )]
    NeedsConfirmation { context: String, server: String },

    #[error("not confirmed: nothing was changed in context '{context}'")]
    Declined { context: String },
}

/// Adds what was being done to an I/O error, so the message names the file.
pub trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}
