//! `kubelab run`: start or reuse the cluster the provider names, choose where probes
//! run, run the labs, report, and take down a cluster this run started.

use std::process::ExitCode;

use super::{connect, image_map, labs::lab_images, labs_of};
use crate::AppError;
use crate::cli::{Format, RunArgs};
use crate::cluster::{self, Connection, Ensured, UpOptions};
use crate::engine::{self, Settings, Target, liveness};
use crate::images::ImageMap;
use crate::report::{self, RunReport};
use crate::scenario::{self, LoadedLab};
use crate::ui::Ui;

pub async fn run_labs(args: RunArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let (labs, _) = labs_of(&args.dir, &args.labs)?;
    let images = image_map(&args.images)?;
    let choice = connect::choice(&args.cluster, Some(args.consent))?;
    let provider = cluster::to_start(&choice, false).await;
    let options = UpOptions {
        images: lab_images(&labs, &images).into_keys().collect(),
        ..Default::default()
    };
    let ensured = provider.ensure(&options, ui).await?;
    if ensured == Ensured::Started {
        ui.info(format!(
            "started the {} cluster '{}' for this run; it stops when the run ends{}",
            provider.name(),
            args.cluster.name,
            if args.keep { ", unless --keep" } else { "" }
        ));
    }
    let outcome = match provider.connect().await {
        Ok(connection) => run_connected(&connection, labs, &args, images, ui).await,
        Err(e) => Err(e.into()),
    };
    if ensured == Ensured::Started {
        if args.keep {
            ui.info(format!(
                "keeping the cluster '{}' this run started: `kubelab cluster down` removes it",
                args.cluster.name
            ));
        } else {
            provider.teardown(ui).await?;
        }
    }
    let report = outcome?;
    emit(&report, &args)?;
    if args.timings {
        eprint!("{}", report::timings::table(&report));
    }
    Ok(ExitCode::from(report.exit_code()))
}

async fn run_connected(
    connection: &Connection,
    labs: Vec<LoadedLab>,
    args: &RunArgs,
    images: ImageMap,
    ui: &Ui,
) -> Result<RunReport, AppError> {
    let target = connect::target(connection, args.exec).await?;
    let settings = Settings {
        jobs: args.jobs as usize,
        keep: if args.keep {
            engine::Keep::Everything
        } else {
            engine::Keep::Nothing
        },
        // The JSON and HTML reports carry explanations; the terminal only with --explain.
        explain: args.explain || args.output == Format::Json || args.html.is_some(),
        images,
        part: crate::scenario::Part::All,
        adopt_since: None,
        // Hands-on labs in progress on this cluster are students' work: a run leaves
        // them alone. (An unreadable progress file protects nothing, and says so.)
        protected: std::sync::Arc::new(match crate::progress::Progress::load() {
            Ok(progress) => progress
                .set_up_on(&connect::cluster_uid(connection).await?, None)
                .into_iter()
                .map(|lab| (lab.run_id, lab.key))
                .collect(),
            Err(e) => {
                ui.info(format!("{e}: hands-on labs in progress are not protected"));
                Default::default()
            }
        }),
        pace: engine::Pace::Run,
        wait_for_namespaces: !args.no_wait,
        cleanup_timeout: args.cleanup_timeout,
    };
    let run_id = engine::new_run_id();
    // A cluster kubelab did not make is someone else's: each lab gets its own copy.
    let isolate = args.isolate || (!args.no_isolate && target.provider == "kubeconfig");
    let labs = if isolate {
        scenario::copy::isolated(labs, &run_id)?
    } else {
        labs
    };
    connect::consent_to_cluster_wide(&target, &labs, &args.consent).await?;
    let mode = if target.execution.runs_pods() {
        "probes in pods"
    } else {
        "probes on the host for each pod"
    };
    ui.info(format!(
        "run {run_id}: {} labs on {} ({}, {mode}{})",
        labs.len(),
        target.server,
        target.provider,
        if isolate {
            ", each lab in its own namespaces"
        } else {
            ""
        }
    ));
    offer_leftovers(&target, args, ui).await?;
    // The run's proof of life: if kubelab dies, a later run knows what it left.
    let lease = match liveness::hold(&target.client, &run_id, target.clock_offset).await {
        Ok(lease) => Some(lease),
        Err(e) => {
            ui.info(format!(
                "{}: if this run is killed, later runs cannot tell what it left",
                crate::report::error_chain(&e)
            ));
            None
        }
    };
    let finished = engine::run_labs(&target, labs, &settings, &run_id, ui).await;
    // Cleaned up: the Lease goes. A run that could not remove everything (a server
    // that stopped serving, an interrupt whose cleanup failed) keeps it, so a later run
    // finds what it left.
    let left = match &finished {
        engine::Finished::Interrupted { left } => *left,
        engine::Finished::ServerDown(outage) => outage.left.max(1),
        // A lab whose cleanup failed left something.
        engine::Finished::Completed(report) => report
            .labs
            .iter()
            .filter(|lab| {
                lab.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("cleanup:"))
            })
            .count(),
    };
    let offered = lease.is_some();
    if let Some(lease) = lease
        && left == 0
    {
        lease.release().await;
    }
    super::completed(finished, &target, &run_id, offered)
}

/// What runs that crashed left on this cluster: removed with --remove-leftovers or a
/// yes on the terminal; otherwise listed, with how to remove them.
async fn offer_leftovers(target: &Target, args: &RunArgs, ui: &Ui) -> Result<(), AppError> {
    let now = target.server_now() as i64;
    let crashed = match liveness::crashed_runs(&target.client, &target.resources, now).await {
        Ok(crashed) => crashed,
        Err(e) => {
            ui.info(format!(
                "not looking for what crashed runs left: {}",
                crate::report::error_chain(&e)
            ));
            return Ok(());
        }
    };
    if crashed.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = crashed
        .iter()
        .map(|c| format!("  {}", c.describe()))
        .collect();
    let list = list.join("\n");
    let remove = args.remove_leftovers
        || match crate::ui::ask(&format!(
            "Runs that stopped without cleaning up left on {}:\n{list}\nRemove them?",
            target.server
        )) {
            Some(yes) => yes,
            None => {
                ui.info(format!(
                    "runs that stopped without cleaning up left on {}:\n{list}\n  `kubelab run --remove-leftovers` removes them",
                    target.server
                ));
                false
            }
        };
    if remove {
        let step = ui.step("removing what crashed runs left");
        liveness::remove(&target.client, &crashed, args.cleanup_timeout).await?;
        let count: usize = crashed.iter().map(|c| c.objects.len()).sum();
        step.done(format!(
            "removed {count} objects that {} crashed runs left",
            crashed.len()
        ));
    }
    Ok(())
}

fn emit(report: &RunReport, args: &RunArgs) -> Result<(), AppError> {
    let written = |what: &str, path: &std::path::Path, result: std::io::Result<()>| {
        result.map_err(|e| AppError::Environment(format!("writing {what} {}: {e}", path.display())))
    };
    if let Some(path) = &args.junit {
        written("the JUnit report", path, report::write_junit(report, path))?;
    }
    if let Some(path) = &args.html {
        written(
            "the HTML report",
            path,
            std::fs::write(path, report::html::page(report)),
        )?;
    }
    if let Some(path) = &args.markdown {
        let summary = report::markdown::summary(report);
        written("the Markdown summary", path, std::fs::write(path, summary))?;
    }
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        ),
        Format::Text => report::print_summary(report, args.explain),
    }
    Ok(())
}
