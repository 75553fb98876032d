//! `kubelab start LAB`: the cluster (started or reused), the lab's starting state, the
//! task, and how to reach the cluster.

use std::process::ExitCode;

use super::super::{connect, image_map, labs::lab_images, labs_of};
use super::{actions, hands_on, passed, run_part, settings, target, task};
use crate::AppError;
use crate::cli::{ExecMode, StartArgs};
use crate::cluster::{self, Ensured, UpOptions};
use crate::engine::{self, Keep};
use crate::progress::{ClusterRef, LabProgress, Progress};
use crate::scenario::{self, Part};
use crate::ui::Ui;

pub async fn start(args: StartArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let loaded = labs_of(&args.dir, std::slice::from_ref(&args.lab))?
        .0
        .remove(0);
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
    // A class's student does their own copy of the lab, in the namespaces of their fence.
    let seat = crate::class::Seat::in_kubeconfig(&kubeconfig, context.as_deref());
    let loaded = match &seat {
        Some(seat) => scenario::copy::Copy::of(&loaded, &seat.student).lab(&loaded)?,
        None => {
            connect::consent_to_cluster_wide(&target, std::slice::from_ref(&loaded), &args.consent)
                .await?;
            loaded
        }
    };
    let here = ClusterRef::of(
        &connection,
        Some(kubeconfig.clone()),
        connect::cluster_uid(&connection).await?,
    );
    let progress = Progress::load()?;
    // Later commands may run from another directory.
    let dir = args
        .dir
        .dir
        .as_ref()
        .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()));
    let key = Progress::key(loaded.suite, dir.as_deref(), &loaded.lab.id);
    let previous = progress.labs.get(&key).cloned();
    // The server's clock: creation timestamps are compared with it.
    let now = target.server_now();
    let entry = match previous {
        // Set up on this very cluster: the student's work is there; go on with it.
        Some(previous) if previous.cluster.uid == here.uid && previous.is_set_up() => {
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
            let others = progress.set_up_on(&here.uid, Some(&key));
            let settings = settings(Part::Start, Keep::WhenPassed, images.clone(), None, &others);
            let step = ui.step(format!("setting up lab {}", loaded.lab.id));
            // One line for the setup: its operations are not the student's business.
            let report = run_part(&target, &loaded, &settings, &run_id, &Ui::new(true)).await?;
            let report = passed(
                report,
                &format!("setting up lab {}", loaded.lab.id),
                &connection.server,
            )?;
            step.done(format!(
                "lab {} set up: {}",
                loaded.lab.id,
                actions(&report)
            ));
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
                namespaces: loaded.lab.namespaces.clone(),
                images: images.0.clone(),
                copy_of: seat.as_ref().map(|s| s.student.clone()),
                ..earlier
            }
        }
    };
    Progress::update(|progress| {
        progress.current = Some(key.clone());
        progress.labs.insert(key, entry.clone());
    })?;
    if seat.is_some()
        && let Some(namespace) = loaded.lab.namespaces.first()
    {
        crate::class::identity::set_namespace(&kubeconfig, namespace)?;
        ui.info(format!(
            "kubectl now works in {namespace} (set in {})",
            kubeconfig.display()
        ));
    }
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
