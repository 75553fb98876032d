//! kubelab: hands-on Kubernetes labs about in-cluster API access, run against a real
//! API server. The binary (src/main.rs) parses arguments and maps errors to exit codes;
//! everything else lives in these modules.

pub mod class;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod completion;
pub mod engine;
pub mod expect;
pub mod images;
pub mod names;
pub mod probe;
pub mod progress;
pub mod rbac;
pub mod report;
pub mod scenario;
pub mod setup;
pub mod system;
pub mod ui;
pub mod versions;

/// The top-level error: one variant per layer, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    #[error(transparent)]
    Scenario(#[from] scenario::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    Progress(#[from] progress::Error),
    #[error(transparent)]
    Class(#[from] class::Error),
    #[error(transparent)]
    Setup(#[from] setup::Error),
    #[error("{0}")]
    Environment(String),
    /// Writing kubelab's own output failed (a closed pipe among others).
    #[error("writing {what}: {source}")]
    Output {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Cluster(
                cluster::Error::Interrupted | cluster::Error::InterruptedLeaving { .. },
            ) => 130,
            AppError::Cluster(
                cluster::Error::NeedsConfirmation { .. }
                | cluster::Error::Declined { .. }
                | cluster::Error::Usage(_),
            ) => 2,
            AppError::Usage(_) => 2,
            AppError::Class(class::Error::Roster { .. } | class::Error::Usage(_)) => 2,
            AppError::Class(_) => 3,
            AppError::Cluster(_)
            | AppError::Environment(_)
            | AppError::Output { .. }
            | AppError::Progress(_) => 3,
            AppError::Scenario(_) => 2,
            AppError::Setup(setup::Error::UnknownComponent { .. }) => 2,
            AppError::Setup(_) => 3,
            AppError::Engine(e) if e.outcome() == report::Outcome::Invalid => 2,
            AppError::Engine(_) => 3,
        }
    }
}
