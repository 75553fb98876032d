//! `kubelab cluster up|down|status|kubeconfig` for the local and kind providers.

use std::process::ExitCode;

use super::{image_map, labs::lab_images, provider_of_existing, provider_to_start};
use crate::AppError;
use crate::cli::{ClusterCommand, Format, Provider, UpArgs};
use crate::cluster::kind;
use crate::cluster::local::{self, DownOutcome, UpOptions, UpOutcome};
use crate::scenario;
use crate::ui::Ui;

pub async fn run(command: ClusterCommand, ui: &Ui) -> Result<ExitCode, AppError> {
    match command {
        ClusterCommand::Up(args) => match provider_to_start(args.provider).await {
            Provider::Kind => kind_up(args, ui).await,
            Provider::Kubeconfig => Err(AppError::Usage(
                "the kubeconfig provider uses a cluster that already runs: there is nothing to start; run labs on it with `kubelab run --provider kubeconfig`".into(),
            )),
            _ => local_up(args, ui).await,
        },
        ClusterCommand::Down(args) => {
            let name = args.name.clone().unwrap_or_else(|| "kubelab".into());
            match provider_of_existing(args.provider, &name).await {
                Provider::Kind => {
                    let tools = kind::detect().await?;
                    match kind::down(&tools, &name, args.name.is_some(), ui).await? {
                        kind::DownOutcome::NothingToDo => ui.info(format!("no kind cluster named '{name}': nothing to delete")),
                        kind::DownOutcome::Deleted => {}
                    }
                }
                _ => local_down(&name, ui).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Status(args) => {
            let name = &args.cluster.name.name;
            match provider_of_existing(args.cluster.provider, name).await {
                Provider::Kind => kind_status(name).await,
                _ => local_status(name, args.output).await,
            }
        }
        ClusterCommand::Kubeconfig(args) => {
            let name = &args.name.name;
            match provider_of_existing(args.provider, name).await {
                Provider::Kind => {
                    // kind merges into KUBECONFIG (its first file) or ~/.kube/config.
                    let file = std::env::var_os("KUBECONFIG")
                        .and_then(|v| std::env::split_paths(&v).next())
                        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".kube/config")))
                        .unwrap_or_default();
                    println!("{}", file.display());
                    ui.info(format!("context: {}", kind::context(name)));
                }
                _ => println!("{}", local::kubeconfig_path(name)?.display()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn local_up(args: UpArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    if args.image.is_some() || args.config.is_some() {
        return Err(AppError::Usage(
            "--image and --config are for --provider kind".into(),
        ));
    }
    let options = UpOptions {
        name: args.name.name,
        wait_timeout: args.wait_timeout,
        apiserver_port: args.port,
        extra_apiserver_args: args.apiserver_args,
        extra_controller_manager_args: args.controller_manager_args,
        node: args.node,
    };
    let record = match local::up(&options, ui).await? {
        UpOutcome::Started(record) => record,
        UpOutcome::Reused(record) => {
            ui.info(format!(
                "cluster '{}' is already running and healthy: reusing it",
                record.name
            ));
            record
        }
    };
    let kubeconfig = local::kubeconfig_path(&record.name)?;
    println!(
        "Cluster '{}' (Kubernetes {}) is ready at {}.\n  export KUBECONFIG={}\n  kubectl get namespaces",
        record.name,
        record.kubernetes_version,
        record.server,
        kubeconfig.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn kind_up(args: UpArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    if args.node
        || args.port.is_some()
        || !args.apiserver_args.is_empty()
        || !args.controller_manager_args.is_empty()
    {
        return Err(AppError::Usage(
            "--node, --port, --apiserver-arg and --controller-manager-arg are for --provider local; for kind, put them in a kind config (--config)".into(),
        ));
    }
    let tools = kind::detect().await?;
    let labs = scenario::load_dir(&scenario::default_dir())?;
    let images = lab_images(&labs, &image_map(&args.images)?)
        .into_keys()
        .collect();
    let name = args.name.name;
    let options = kind::UpOptions {
        name: name.clone(),
        config: args.config,
        node_image: args.image,
        images,
    };
    let outcome = kind::up(&tools, &options, ui).await?;
    if !outcome.not_local.is_empty() {
        ui.info(format!(
            "not in the local {} (the nodes will pull them): {}",
            tools.engine.binary(),
            outcome.not_local.join(", ")
        ));
    }
    println!(
        "kind cluster '{name}' is ready ({}).\n  kubectl --context {} get nodes\n  kubelab run --provider kind",
        if outcome.created { "created" } else { "reused" },
        kind::context(&name)
    );
    Ok(ExitCode::SUCCESS)
}

async fn local_down(name: &str, ui: &Ui) -> Result<(), AppError> {
    match local::down(name, ui).await? {
        DownOutcome::NothingToDo(dir) => ui.info(format!(
            "no local cluster named '{name}' (nothing in {}): nothing to stop",
            dir.display()
        )),
        DownOutcome::Removed { killed } if !killed.is_empty() => ui.info(format!(
            "note: {} did not stop on SIGTERM and was killed",
            killed.join(", ")
        )),
        DownOutcome::Removed { .. } => {}
    }
    Ok(())
}

async fn kind_status(name: &str) -> Result<ExitCode, AppError> {
    let tools = kind::detect().await?;
    let exists = kind::clusters(&tools).await?.iter().any(|c| c == name);
    if !exists {
        println!("no kind cluster named '{name}'");
        return Ok(ExitCode::from(3));
    }
    println!(
        "kind cluster '{name}' ({}), context {}, engine {}",
        if kind::created_by_kubelab(name) {
            "created by kubelab"
        } else {
            "not created by kubelab"
        },
        kind::context(name),
        tools.engine.binary()
    );
    Ok(ExitCode::SUCCESS)
}

async fn local_status(name: &str, output: Format) -> Result<ExitCode, AppError> {
    let status = local::status(name).await?;
    match output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("status serializes")
        ),
        Format::Text => print_status(&status),
    }
    Ok(if status.apiserver_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn print_status(status: &local::Status) {
    println!(
        "cluster '{}': Kubernetes {}, etcd {}, apiserver {} at {}",
        status.name,
        status.kubernetes_version,
        status.etcd_version,
        if status.apiserver_ready {
            "ready"
        } else {
            "NOT ready"
        },
        status.server
    );
    println!(
        "{:<24} {:<8} {:>8} {:>6}  LOG",
        "COMPONENT", "STATE", "PID", "PORT"
    );
    for c in &status.components {
        println!(
            "{:<24} {:<8} {:>8} {:>6}  {}",
            c.component,
            if c.running { "running" } else { "exited" },
            c.pid,
            c.port,
            c.log.display()
        );
    }
    println!("kubeconfig: {}", status.kubeconfig.display());
}
