//! The engine's error: why an operation could not do its job, typed so the exit code
//! follows (a lab the cluster rejects is the lab's fault, exit 2; a cluster that fails
//! is the environment's, exit 3).

use std::time::Duration;

use crate::report::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server rejected what the lab asked for, and the lab did not expect it.
    #[error("{what}: the API server rejected it: {code} {reason}: {message}")]
    Rejected {
        what: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// The lab names something this cluster does not have, or may not be touched.
    #[error("{0}")]
    Lab(String),
    /// The object an operation changes is not there.
    #[error("{0} does not exist")]
    Missing(String),
    #[error(
        "{object} already exists and was not made by this run (another run's, or not kubelab's): refusing to change it; `kubelab run --isolate` gives each lab namespaces of its own, or delete it"
    )]
    NotOurs { object: String },
    #[error(
        "{object} belongs to hands-on lab {lab}, which is set up on this cluster: refusing to change it; `kubelab stop {lab}` ends that lab (removing what it and its student made), or use another cluster"
    )]
    InProgress { object: String, lab: String },
    #[error("{what}: not {until} after {}: {state}", crate::ui::format_duration(*timeout))]
    Timeout {
        what: String,
        until: String,
        timeout: Duration,
        state: String,
    },
    /// A state that does not fix itself (an image that may not be pulled, a bad name).
    #[error("{what} cannot start: {state}")]
    Stuck { what: String, state: String },
    /// The API server refused kubelab itself (its own credentials, a server error):
    /// its words, without the client library's debug dump.
    #[error("{doing}: the API server answered {code} {reason}: {message}")]
    Refused {
        doing: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{doing}: {source}")]
    Cluster {
        doing: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Probe(#[from] crate::probe::Error),
}

impl Error {
    /// An error from the API server while doing `doing`: a rejection of the lab's
    /// content (4xx but authentication and authorization of kubelab itself), or a
    /// cluster problem.
    pub fn from_kube(doing: impl Into<String>, source: kube::Error) -> Error {
        let doing = doing.into();
        match source {
            kube::Error::Api(status) if matches!(status.code, 400 | 404 | 409 | 410 | 422) => {
                Error::Rejected {
                    what: doing,
                    code: status.code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                }
            }
            kube::Error::Api(status) => Error::Refused {
                doing,
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            source => Error::Cluster { doing, source },
        }
    }

    /// Like [`Error::from_kube`], for a request made as an identity kubelab
    /// impersonates: a 401 or 403 is then the lab's outcome, not kubelab's problem.
    pub fn from_kube_as(
        doing: impl Into<String>,
        source: kube::Error,
        impersonating: bool,
    ) -> Error {
        match source {
            kube::Error::Api(status) if impersonating && matches!(status.code, 401 | 403) => {
                Error::Rejected {
                    what: doing.into(),
                    code: status.code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                }
            }
            source => Error::from_kube(doing, source),
        }
    }

    /// What an operation that failed this way means for its lab.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Rejected { .. } | Error::Lab(_) | Error::Missing(_) => Outcome::Invalid,
            Error::Probe(crate::probe::Error::Unsupported(_)) => Outcome::Skipped,
            _ => Outcome::Error,
        }
    }
}
