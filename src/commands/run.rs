//! `kubelab run`: start or reuse the cluster the provider names, choose where probes
//! run, run the labs, report, and take down a cluster this run started.

use std::process::ExitCode;

use super::{connect, image_map, labs::lab_images, labs_of};
use crate::AppError;
use crate::cli::{Format, RunArgs};
use crate::cluster::{self, Connection, Ensured, UpOptions};
use crate::engine::{self, Finished, Settings};
use crate::images::ImageMap;
use crate::report::{self, RunReport};
use crate::scenario::{self, LoadedLab};
use crate::ui::Ui;

pub async fn run_labs(args: RunArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let (labs, from) = labs_of(&args.dir)?;
    let labs = scenario::select(labs, &args.labs, &from)?;
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
    };
    let run_id = engine::new_run_id();
    // A cluster kubelab did not make is someone else's: each lab gets its own copy.
    let isolate = args.isolate || (!args.no_isolate && target.provider == "kubeconfig");
    let labs = if isolate {
        scenario::copy::isolated(labs, &run_id)?
    } else {
        labs
    };
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
    match engine::run_labs(&target, labs, &settings, &run_id, ui).await {
        Finished::Completed(report) => Ok(report),
        Finished::Interrupted => Err(AppError::Cluster(cluster::Error::Interrupted)),
    }
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
