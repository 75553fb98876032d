//! `kubelab run`: connect to the cluster the provider names, choose where probes run,
//! run the labs, report, and take down a cluster this run started.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{image_map, labs::lab_images, labs_dir, provider_to_start};
use crate::AppError;
use crate::cli::{ExecMode, Format, Provider, RunArgs};
use crate::cluster::existing;
use crate::cluster::kind::{self, KindTools};
use crate::cluster::kubeconfig;
use crate::cluster::local;
use crate::images::ImageMap;
use crate::probe::{Execution, host::HostTools};
use crate::report::{self, RunReport};
use crate::runner::{self, Finished, Settings, Target};
use crate::scenario::{self, LoadedLab};
use crate::ui::Ui;

/// A cluster this run started, to take down when it ends (unless --keep).
enum StartedHere {
    Nothing,
    Local(String),
    Kind(KindTools, String),
}

struct Connected {
    client: kube::Client,
    provider: &'static str,
    server: String,
    /// host:port of the API server as this machine reaches it.
    apiserver: String,
    /// The kubectl matching the cluster, when kubelab knows one.
    kubectl: Option<PathBuf>,
    started_here: StartedHere,
}

pub async fn run_labs(args: RunArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let dir = labs_dir(&args.dir);
    let labs = scenario::select(scenario::load_dir(&dir)?, &args.labs, &dir)?;
    let images = image_map(&args.images)?;
    let provider = provider_to_start(args.provider).await;
    if provider != Provider::Kubeconfig && (args.kubeconfig.is_some() || args.context.is_some()) {
        return Err(AppError::Usage(
            "--kubeconfig and --context are for --provider kubeconfig".into(),
        ));
    }
    let connected = connect(provider, &args, &labs, &images, ui).await?;
    let outcome = run_connected(&connected, labs, &args, images, ui).await;
    if args.keep {
        if let StartedHere::Local(name) | StartedHere::Kind(_, name) = &connected.started_here {
            ui.info(format!(
                "keeping the cluster '{name}' this run started: `kubelab cluster down` removes it"
            ));
        }
    } else {
        take_down(&connected.started_here, ui).await?;
    }
    let report = outcome?;
    emit(&report, &args)?;
    Ok(ExitCode::from(report.exit_code()))
}

async fn run_connected(
    connected: &Connected,
    labs: Vec<LoadedLab>,
    args: &RunArgs,
    images: ImageMap,
    ui: &Ui,
) -> Result<RunReport, AppError> {
    let execution = choose_execution(args.exec, connected).await?;
    let version = connected
        .client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .map_err(|source| crate::cluster::Error::Kube {
            context: format!("reading /version of {}", connected.server),
            source,
        })?;
    let target = Target {
        client: connected.client.clone(),
        execution,
        provider: connected.provider.to_string(),
        server: connected.server.clone(),
        kubernetes_version: version,
    };
    let settings = Settings {
        jobs: args.jobs as usize,
        keep: args.keep,
        explain: args.explain || args.output == Format::Json,
        images,
    };
    let run_id = runner::new_run_id();
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
    match runner::run_labs(&target, labs, &settings, &run_id, ui).await {
        Finished::Completed(report) => Ok(report),
        Finished::Interrupted => Err(AppError::Cluster(crate::cluster::Error::Interrupted)),
    }
}

async fn connect(
    provider: Provider,
    args: &RunArgs,
    labs: &[LoadedLab],
    images: &ImageMap,
    ui: &Ui,
) -> Result<Connected, AppError> {
    match provider {
        Provider::Kubeconfig => {
            let cluster =
                existing::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
            existing::confirm(&cluster, args.context.is_some(), args.yes)?;
            Ok(Connected {
                apiserver: cluster.authority(),
                client: cluster.client,
                provider: "kubeconfig",
                server: cluster.server,
                kubectl: None,
                started_here: StartedHere::Nothing,
            })
        }
        Provider::Kind => {
            let tools = kind::detect().await?;
            let exists = kind::clusters(&tools)
                .await?
                .iter()
                .any(|c| c == &args.name);
            let started_here = if exists {
                StartedHere::Nothing
            } else {
                ui.info(format!(
                    "no kind cluster '{}': creating one for this run",
                    args.name
                ));
                let options = kind::UpOptions {
                    name: args.name.clone(),
                    config: None,
                    node_image: None,
                    images: lab_images(labs, images).into_keys().collect(),
                };
                kind::up(&tools, &options, ui).await?;
                StartedHere::Kind(tools, args.name.clone())
            };
            let cluster = existing::connect(None, Some(&kind::context(&args.name))).await?;
            Ok(Connected {
                apiserver: cluster.authority(),
                client: cluster.client,
                provider: "kind",
                server: cluster.server,
                kubectl: None,
                started_here,
            })
        }
        Provider::Local | Provider::Auto => {
            let running = local::ensure_running(&args.name, ui).await?;
            Ok(Connected {
                client: kubeconfig::client(&running.kubeconfig).await?,
                provider: "local",
                server: running.record.server.clone(),
                apiserver: format!("127.0.0.1:{}", running.record.ports.apiserver),
                kubectl: Some(running.record.kubectl.clone()),
                started_here: if running.started_here {
                    StartedHere::Local(args.name.clone())
                } else {
                    StartedHere::Nothing
                },
            })
        }
    }
}

/// In pods where a node runs them; otherwise (or when asked) on the host for them.
async fn choose_execution(mode: ExecMode, connected: &Connected) -> Result<Execution, AppError> {
    let has_node = existing::has_ready_node(&connected.client, &connected.server).await?;
    match (mode, has_node) {
        (ExecMode::Pod, false) => Err(AppError::Environment(format!(
            "--exec pod: no node of {} is Ready, so lab pods cannot run; use --exec host (or auto)",
            connected.server
        ))),
        (ExecMode::Pod, true) | (ExecMode::Auto, true) => Ok(Execution::InPod),
        (ExecMode::Host, _) | (ExecMode::Auto, false) => {
            let curl = crate::system::on_path("curl").ok_or_else(|| {
                AppError::Environment(
                    "curl is not installed: the probes run the real curl (apt-get install curl)"
                        .into(),
                )
            })?;
            let kubectl = connected
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
                apiserver: connected.apiserver.clone(),
                kubectl,
                curl,
            }))
        }
    }
}

async fn take_down(started_here: &StartedHere, ui: &Ui) -> Result<(), AppError> {
    match started_here {
        StartedHere::Nothing => {}
        StartedHere::Local(name) => {
            local::down(name, ui).await?;
        }
        StartedHere::Kind(tools, name) => {
            kind::down(tools, name, false, ui).await?;
        }
    }
    Ok(())
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
