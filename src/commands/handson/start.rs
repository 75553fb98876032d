//! `kubelab start LAB`: the cluster (started or reused), the lab's starting state, the
//! task, and how to reach the cluster.

use std::process::ExitCode;

use super::super::{connect, image_map, labs::lab_images, labs_of};
use super::{actions, cluster_uid, hands_on, run_part, settings, target, task};
use crate::AppError;
use crate::cli::{ExecMode, StartArgs};
use crate::cluster::{self, Ensured, UpOptions};
use crate::engine::{self, Keep};
use crate::progress::{self, ClusterRef, LabProgress, Progress};
use crate::report::Outcome;
use crate::scenario::{self, Part};
use crate::ui::Ui;

pub async fn start(args: StartArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let (labs, from) = labs_of(&args.dir)?;
    let loaded = scenario::select(labs, std::slice::from_ref(&args.lab), &from)?.remove(0);
    hands_on(&loaded)?;
    let images = image_map(&args.images)?;
    let choice = connect::choice(&args.cluster, Some(args.consent))?;
    let provider = cluster::to_start(&choice, args.node).await;
    let options = UpOptions {
        node: args.node,
        images: lab_images(std::slice::from_ref(&loaded), &images)
            .into_keys()
            .collect(),
        ..Default::default()
    };
    if provider.ensure(&options, ui).await? == Ensured::Started {
        ui.info(format!(
            "started the {} cluster; it keeps running for the lab (`kubelab cluster down` stops it)",
            provider.name()
        ));
    }
    let connection = provider.connect().await?;
    let target = target(&connection, ExecMode::Auto).await?;
    if loaded.needs_node() && !target.execution.runs_pods() {
        return Err(AppError::Environment(format!(
            "lab {} needs a node that runs its pods, and no node of {} is Ready: `kubelab start {} --node`",
            loaded.lab.id, connection.server, loaded.lab.id
        )));
    }
    let (kubeconfig, context) = provider.kubeconfig()?;
    let here = ClusterRef::of(
        &connection,
        Some(kubeconfig.clone()),
        cluster_uid(&connection).await?,
    );
    let mut progress = Progress::load().map_err(|e| AppError::Environment(e.to_string()))?;
    // Later commands may run from another directory.
    let dir = args
        .dir
        .dir
        .as_ref()
        .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()));
    let key = Progress::key(loaded.suite, dir.as_deref(), &loaded.lab.id);
    let previous = progress.labs.get(&key).cloned();
    let now = progress::now();
    let entry = match previous {
        // Started on this very cluster: the student's work is there; go on with it.
        Some(previous) if previous.cluster == here => {
            ui.info(format!(
                "lab {} was started on this cluster {} ago: carrying on with it (`kubelab reset` starts over)",
                loaded.lab.id,
                crate::ui::format_duration(std::time::Duration::from_secs(
                    now.saturating_sub(previous.started_at)
                ))
            ));
            previous
        }
        previous => {
            let run_id = engine::new_run_id();
            let others = progress.runs_on(&connection.server, Some(&key));
            let settings = settings(Part::Start, Keep::WhenPassed, images.clone(), None, others);
            let step = ui.step(format!("setting up lab {}", loaded.lab.id));
            // One line for the setup: its operations are not the student's business.
            let report = run_part(&target, &loaded, &settings, &run_id, &Ui::new(true)).await?;
            if report.outcome == Outcome::Passed {
                step.done(format!(
                    "lab {} set up: {}",
                    loaded.lab.id,
                    actions(&report)
                ));
            }
            if report.outcome != Outcome::Passed {
                let why = report
                    .error
                    .unwrap_or_else(|| "an operation of its start failed".into());
                let message = format!(
                    "lab {} could not be set up on {} (what it had made is removed): {why}",
                    loaded.lab.id, connection.server
                );
                return Err(match report.outcome {
                    Outcome::Invalid => AppError::Usage(message),
                    _ => AppError::Environment(message),
                });
            }
            // Progress carries over from an earlier start (elsewhere): hints, points.
            let earlier = previous.unwrap_or_default();
            LabProgress {
                id: loaded.lab.id.clone(),
                folder: loaded.folder.clone(),
                title: loaded.lab.title.clone(),
                suite: loaded.suite.map(str::to_string),
                dir,
                cluster: here,
                run_id,
                started_at: now,
                first_started_at: if earlier.first_started_at == 0 {
                    now
                } else {
                    earlier.first_started_at
                },
                max_points: loaded.lab.max_points(),
                images: images.0.clone(),
                ..earlier
            }
        }
    };
    progress.current = Some(key.clone());
    progress.labs.insert(key, entry.clone());
    progress
        .save()
        .map_err(|e| AppError::Environment(e.to_string()))?;
    task::print_task(&loaded);
    task::print_reach(
        &loaded,
        &entry,
        &kubeconfig,
        context.as_deref(),
        target.execution.runs_pods(),
    );
    Ok(ExitCode::SUCCESS)
}
