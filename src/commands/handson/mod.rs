//! Hands-on mode: the student does the lab. kubelab sets up its starting state
//! (`start`), grades the cluster as it is (`check`), gives hints one at a time
//! (`hint`), shows or applies the solution (`solution`), starts over (`reset`), opens a
//! shell in the lab's pod (`shell`) and keeps progress (`progress`).

mod check;
mod hint;
mod progress;
mod reset;
mod shell;
mod solution;
mod start;
mod task;

pub use check::check;
pub use hint::hint;
pub use progress::show as progress;
pub use reset::{reset, stop};
pub use shell::shell;
pub use solution::solution;
pub use start::start;

use std::collections::BTreeMap;

use super::connect;
use crate::AppError;
use crate::cli::{ClusterArgs, ExecMode};
use crate::cluster::{self, Connection};
use crate::engine::{self, Keep, Pace, Settings, Target};
use crate::images::ImageMap;
use crate::progress::{InProgress, LabProgress, Progress};
use crate::report::{LabReport, Outcome};
use crate::scenario::{self, LoadedLab, Part};
use crate::ui::Ui;

/// A started lab: its progress and its files.
pub struct Session {
    pub progress: Progress,
    pub key: String,
    pub loaded: LoadedLab,
}

impl Session {
    /// The lab `wanted` names among those started, else the one started last.
    pub fn open(wanted: Option<&str>) -> Result<Session, AppError> {
        let progress = Progress::load()?;
        let key = match wanted {
            Some(wanted) => find(&progress, wanted)?,
            None => progress.current.clone().ok_or_else(|| {
                AppError::Usage(
                    "no lab is started: `kubelab start 02` starts lab 02 (`kubelab list` shows the labs)"
                        .into(),
                )
            })?,
        };
        let entry = progress.labs.get(&key).ok_or_else(|| {
            AppError::Environment(format!(
                "the progress file names lab {key} as current but has no record of it: `kubelab start` it again"
            ))
        })?;
        let loaded = load(entry)?;
        Ok(Session {
            progress,
            key,
            loaded,
        })
    }

    pub fn entry(&self) -> &LabProgress {
        &self.progress.labs[&self.key]
    }

    /// Changes the lab's record in the progress file (as the file is now: other
    /// commands may have written to it meanwhile), and here.
    pub fn update<T>(&mut self, change: impl FnOnce(&mut LabProgress) -> T) -> Result<T, AppError> {
        let key = self.key.clone();
        let (written, result) =
            Progress::update(|progress| progress.labs.get_mut(&key).map(change))?;
        self.progress = written;
        result.ok_or_else(|| {
            AppError::Environment(format!(
                "the record of lab {key} left the progress file while this command ran: `kubelab start` it again"
            ))
        })
    }

    /// The lab's id, as the student typed it into commands.
    pub fn id(&self) -> &str {
        &self.loaded.lab.id
    }

    /// Commands that work on the lab's objects need them there.
    pub fn require_set_up(&self) -> Result<(), AppError> {
        if self.entry().is_set_up() {
            return Ok(());
        }
        Err(AppError::Usage(format!(
            "lab {} is not set up on its cluster (it was stopped, or a reset did not finish): `kubelab start {}` sets it up",
            self.id(),
            self.id()
        )))
    }

    /// The cluster the lab was started on (or the one the flags name, if it is the
    /// same), checked to be that very cluster still (by its kube-system uid).
    pub async fn connect(&self, args: &ClusterArgs) -> Result<Connection, AppError> {
        let recorded = &self.entry().cluster;
        let id = self.id();
        if connect::names_a_cluster(args) {
            let choice = connect::choice(args, None)?;
            let connection = cluster::existing_provider(&choice).await.connect().await?;
            if connect::cluster_uid(&connection).await? != recorded.uid {
                return Err(AppError::Usage(format!(
                    "lab {id} was started on {}, but the flags or KUBECONFIG name the cluster at {}: use the lab's cluster (unset KUBECONFIG, or leave out --kubeconfig, --context and --provider), or start the lab there: `kubelab start {id}`",
                    recorded.describe(),
                    connection.server,
                )));
            }
            return Ok(connection);
        }
        let provider = cluster::existing_provider(&recorded.choice()).await;
        let connection = provider.connect().await.map_err(|e| {
            AppError::Environment(format!(
                "lab {id} was started on {}, which cannot be reached ({}): `kubelab start {id}` starts a cluster and sets the lab up again",
                recorded.describe(),
                crate::report::error_chain(&e),
            ))
        })?;
        if connect::cluster_uid(&connection).await? != recorded.uid {
            return Err(AppError::Environment(format!(
                "{} was made again since lab {id} was started, so the lab's starting state is gone: `kubelab start {id}` sets it up again",
                recorded.describe(),
            )));
        }
        Ok(connection)
    }

    /// The other labs set up on this lab's cluster.
    pub fn others(&self) -> Vec<InProgress> {
        self.progress
            .set_up_on(&self.entry().cluster.uid, Some(&self.key))
    }

    /// Runs `part` of the lab on `target` with the lab's run id.
    pub async fn run(
        &self,
        target: &Target,
        part: Part,
        keep: Keep,
        ui: &Ui,
    ) -> Result<LabReport, AppError> {
        let entry = self.entry();
        let settings = settings(
            part,
            keep,
            ImageMap(entry.images.clone()),
            // A solution replaces what the student made since the start.
            (part == Part::Solution).then_some(entry.started_at),
            &self.others(),
        );
        run_part(target, &self.loaded, &settings, &entry.run_id, ui).await
    }
}

/// The started lab a name means: its key ("seed/02"), id or folder name; the current
/// lab first when several match.
fn find(progress: &Progress, wanted: &str) -> Result<String, AppError> {
    let matches: Vec<&String> = progress
        .labs
        .iter()
        .filter(|(key, lab)| {
            *key == wanted
                || lab.id == wanted
                || lab.folder == wanted
                || lab.folder.starts_with(&format!("{wanted}-"))
        })
        .map(|(key, _)| key)
        .collect();
    if let Some(current) = progress.current.as_ref().filter(|c| matches.contains(c)) {
        return Ok(current.clone());
    }
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(AppError::Usage(format!(
            "lab {wanted} is not started: `kubelab start {wanted}` sets it up{}",
            if progress.labs.is_empty() {
                String::new()
            } else {
                format!(
                    " (started: {})",
                    progress.labs.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        ))),
        many => Err(AppError::Usage(format!(
            "lab {wanted} was started from several places ({}): name one of them",
            many.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The lab's files, from its built-in suite or its folder.
fn load(entry: &LabProgress) -> Result<LoadedLab, AppError> {
    let dir = match (&entry.suite, &entry.dir) {
        (Some(suite), _) => crate::cli::DirArgs {
            dir: None,
            suite: suite.clone(),
        },
        (None, Some(dir)) => crate::cli::DirArgs {
            dir: Some(dir.clone()),
            suite: String::new(),
        },
        (None, None) => {
            return Err(AppError::Environment(format!(
                "the progress of lab {} says neither its suite nor its folder: `kubelab start` it again",
                entry.id
            )));
        }
    };
    let loaded = super::labs_of(&dir, std::slice::from_ref(&entry.folder))?
        .0
        .remove(0);
    Ok(match &entry.copy_of {
        Some(student) => scenario::copy::Copy::of(&loaded, student).lab(&loaded)?,
        None => loaded,
    })
}

/// The target for a lab command (probes in pods when a node runs them).
async fn target(connection: &Connection, exec: ExecMode) -> Result<Target, AppError> {
    connect::target(connection, exec).await
}

/// How one part of a hands-on lab runs: checks look at the cluster as it is; a
/// solution replaces what the student made since `adopt_since`.
fn settings(
    part: Part,
    keep: Keep,
    images: ImageMap,
    adopt_since: Option<u64>,
    others: &[InProgress],
) -> Settings {
    Settings {
        jobs: 1,
        keep,
        explain: false,
        images,
        part,
        adopt_since,
        protected: std::sync::Arc::new(protected(others)),
        pace: if part == Part::Checks {
            Pace::Check
        } else {
            Pace::Run
        },
        wait_for_namespaces: true,
        cleanup_timeout: engine::CLEANUP_TIMEOUT,
    }
}

/// The run ids of other labs set up on the cluster, with their keys: never changed.
fn protected(others: &[InProgress]) -> BTreeMap<String, String> {
    others
        .iter()
        .map(|o| (o.run_id.clone(), o.key.clone()))
        .collect()
}

/// A part that must pass (a start, a solution): what it did, or why it did not.
fn passed(report: LabReport, doing: &str, server: &str) -> Result<LabReport, AppError> {
    let message = |why: Option<&String>| {
        format!(
            "{doing} on {server} did not work (what it made is removed): {}",
            why.map(String::as_str)
                .unwrap_or("one of its operations failed")
        )
    };
    match report.outcome {
        Outcome::Passed => Ok(report),
        Outcome::Invalid => Err(AppError::Usage(message(report.error.as_ref()))),
        _ => Err(AppError::Environment(message(report.error.as_ref()))),
    }
}

/// Runs one part of one lab: its start, its solution or its checks.
async fn run_part(
    target: &Target,
    loaded: &LoadedLab,
    settings: &Settings,
    run_id: &str,
    ui: &Ui,
) -> Result<LabReport, AppError> {
    let finished = engine::run_labs(target, vec![loaded.clone()], settings, run_id, ui).await;
    Ok(super::completed(finished, target, run_id, false)?
        .labs
        .into_iter()
        .next()
        .expect("one lab ran, one report"))
}

/// What a part of the lab did, in one line: "applied Pod default/mydemo, ...".
fn actions(report: &LabReport) -> String {
    let actions: Vec<String> = report.steps.iter().flat_map(|s| s.actions()).collect();
    if actions.is_empty() {
        "nothing to set up".into()
    } else {
        actions.join(", ")
    }
}

/// Whether a hands-on command can work on this lab.
fn hands_on(loaded: &LoadedLab) -> Result<(), AppError> {
    if loaded.lab.is_hands_on() {
        return Ok(());
    }
    Err(AppError::Usage(format!(
        "lab {} runs by itself, it has no task for you: `kubelab run {}` runs it (hands-on labs have a task; `kubelab list` marks them)",
        loaded.lab.id, loaded.lab.id
    )))
}
