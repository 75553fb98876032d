//! `kubelab run`: start or reuse the cluster the provider names, choose where probes
//! run, run the labs, report, and take down a cluster this run started.

use std::process::ExitCode;
use std::sync::Arc;

use super::{image_map, labs::lab_images, labs_of};
use crate::AppError;
use crate::cli::{ExecMode, Format, RunArgs};
use crate::cluster::{self, Choice, Connection, Ensured, UpOptions, existing, local};
use crate::engine::{self, Finished, Settings, Target};
use crate::images::ImageMap;
use crate::probe::{Execution, host::HostTools};
use crate::report::{self, RunReport};
use crate::scenario::{self, LoadedLab};
use crate::ui::Ui;

pub async fn run_labs(args: RunArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let (labs, from) = labs_of(&args.dir)?;
    let labs = scenario::select(labs, &args.labs, &from)?;
    let images = image_map(&args.images)?;
    let named_cluster = args.kubeconfig.is_some() || args.context.is_some();
    if named_cluster
        && matches!(
            args.provider,
            crate::cli::Provider::Local | crate::cli::Provider::Kind
        )
    {
        return Err(AppError::Usage(
            "--kubeconfig and --context are for --provider kubeconfig (or leave --provider out: they imply it)".into(),
        ));
    }
    let choice = Choice {
        kind: args.provider,
        name: args.name.clone(),
        named: false,
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        yes: args.yes,
    };
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
            args.name,
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
                args.name
            ));
        } else {
            provider.teardown(ui).await?;
        }
    }
    let report = outcome?;
    emit(&report, &args)?;
    Ok(ExitCode::from(report.exit_code()))
}

async fn run_connected(
    connection: &Connection,
    labs: Vec<LoadedLab>,
    args: &RunArgs,
    images: ImageMap,
    ui: &Ui,
) -> Result<RunReport, AppError> {
    let execution = choose_execution(args.exec, connection).await?;
    let version = connection
        .client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .map_err(|source| cluster::Error::Kube {
            context: format!("reading /version of {}", connection.server),
            source,
        })?;
    let target = Target {
        client: connection.client.clone(),
        config: connection.config.clone(),
        execution,
        provider: connection.provider.to_string(),
        server: connection.server.clone(),
        kubernetes_version: version,
        resources: Arc::new(engine::resources::Resources::new(connection.client.clone())),
    };
    let settings = Settings {
        jobs: args.jobs as usize,
        keep: args.keep,
        explain: args.explain || args.output == Format::Json,
        images,
        part: crate::scenario::Part::All,
        pace: engine::Pace::Run,
    };
    let run_id = engine::new_run_id();
    let mode = if target.execution.runs_pods() {
        "probes in pods"
    } else {
        "probes on the host for each pod"
    };
    ui.info(format!(
        "run {run_id}: {} labs on {} ({}, {mode})",
        labs.len(),
        target.server,
        target.provider
    ));
    match engine::run_labs(&target, labs, &settings, &run_id, ui).await {
        Finished::Completed(report) => Ok(report),
        Finished::Interrupted => Err(AppError::Cluster(cluster::Error::Interrupted)),
    }
}

/// In pods where a node runs them; otherwise (or when asked) on the host for them.
async fn choose_execution(mode: ExecMode, connection: &Connection) -> Result<Execution, AppError> {
    let has_node = existing::has_ready_node(&connection.client, &connection.server).await?;
    match (mode, has_node) {
        (ExecMode::Pod, false) => Err(AppError::Environment(format!(
            "--exec pod: no node of {} is Ready, so lab pods cannot run; use --exec host (or auto)",
            connection.server
        ))),
        (ExecMode::Pod, true) | (ExecMode::Auto, true) => Ok(Execution::InPod),
        (ExecMode::Host, _) | (ExecMode::Auto, false) => {
            let curl = crate::system::on_path("curl").ok_or_else(|| {
                AppError::Environment(
                    "curl is not installed: the probes run the real curl (apt-get install curl)"
                        .into(),
                )
            })?;
            let kubectl = connection
                .kubectl
                .clone()
                .or_else(|| Some(local::cache_bin_dir().join("kubectl")).filter(|p| p.is_file()))
                .or_else(|| crate::system::on_path("kubectl"))
                .ok_or_else(|| {
                    AppError::Environment(
                        "kubectl is not installed: kubectl probes on the host run the real kubectl"
                            .into(),
                    )
                })?;
            Ok(Execution::Host(HostTools {
                apiserver: connection.apiserver.clone(),
                kubectl,
                curl,
            }))
        }
    }
}

fn emit(report: &RunReport, args: &RunArgs) -> Result<(), AppError> {
    if let Some(path) = &args.junit {
        report::write_junit(report, path).map_err(|e| {
            AppError::Environment(format!("writing JUnit report {}: {e}", path.display()))
        })?;
    }
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        ),
        Format::Text => report::print_summary(report),
    }
    Ok(())
}
