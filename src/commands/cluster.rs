//! `kubelab cluster up|down|status|kubeconfig`, for whichever provider is chosen.

use std::process::ExitCode;

use super::{image_map, labs::lab_images};
use crate::AppError;
use crate::cli::{ClusterCommand, Format, UpArgs};
use crate::cluster::{self, Choice, Ensured, UpOptions};
use crate::scenario;
use crate::ui::Ui;

fn choice(kind: crate::cli::Provider, name: &str, named: bool) -> Choice {
    Choice {
        kind,
        name: name.to_string(),
        named,
        kubeconfig: None,
        context: None,
        yes: false,
        kubeconfig_env: false,
    }
}

pub async fn run(command: ClusterCommand, ui: &Ui) -> Result<ExitCode, AppError> {
    match command {
        ClusterCommand::Up(args) => up(args, ui).await,
        ClusterCommand::Down(args) => {
            let name = args.name.clone().unwrap_or_else(|| "kubelab".into());
            let provider =
                cluster::existing_provider(&choice(args.provider, &name, args.name.is_some()))
                    .await;
            provider.teardown(ui).await?;
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Status(args) => {
            let provider = cluster::existing_provider(&choice(
                args.cluster.provider,
                &args.cluster.name.name,
                true,
            ))
            .await;
            let status = provider.status().await?;
            match args.output {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&status.json).expect("status serializes")
                ),
                Format::Text => println!("{}", status.text),
            }
            Ok(if status.ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        ClusterCommand::Kubeconfig(args) => {
            let provider =
                cluster::existing_provider(&choice(args.provider, &args.name.name, true)).await;
            let (path, context) = provider.kubeconfig()?;
            println!("{}", path.display());
            if let Some(context) = context {
                ui.info(format!("context: {context}"));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn up(args: UpArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let name = args.name.name.clone();
    let provider = cluster::to_start(&choice(args.provider, &name, true), args.node).await;
    if provider.name() == "kubeconfig" {
        return Err(AppError::Usage(
            "the kubeconfig provider uses a cluster that already runs: there is nothing to start; run labs on it with `kubelab run --provider kubeconfig`".into(),
        ));
    }
    let images = if provider.name() == "kind" {
        lab_images(
            &scenario::load_suite(scenario::SUITES[0])?,
            &image_map(&args.images)?,
        )
        .into_keys()
        .collect()
    } else {
        Vec::new()
    };
    let options = UpOptions {
        wait_timeout: args.wait_timeout,
        node: args.node,
        port: args.port,
        apiserver_args: args.apiserver_args,
        controller_manager_args: args.controller_manager_args,
        kind_image: args.image,
        kind_config: args.config,
        images,
    };
    let ensured = provider.ensure(&options, ui).await?;
    let how = if ensured == Ensured::Reused {
        "reused"
    } else {
        "created"
    };
    let ready = match ready_message(provider.as_ref(), &name, how).await {
        Ok(ready) => ready,
        Err(error) if ensured == Ensured::Started => {
            provider.teardown(ui).await?;
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    // Interrupted as the start finished: what this up started goes, as at any other
    // moment of it (a reused cluster stays: it was there before). Past this point the
    // cluster is kept, and a signal is too late to change that.
    if ensured == Ensured::Started && !crate::system::keep_result() {
        provider.teardown(ui).await?;
        return Err(AppError::Cluster(cluster::Error::Interrupted));
    }
    if ensured == Ensured::Reused {
        ui.info(format!(
            "cluster '{name}' is already running and healthy: reusing it"
        ));
    }
    println!("{ready}");
    Ok(ExitCode::SUCCESS)
}

/// What `cluster up` prints once the cluster is ready: where it is, and what to type.
async fn ready_message(
    provider: &dyn cluster::Provider,
    name: &str,
    how: &str,
) -> Result<String, AppError> {
    let (kubeconfig, context) = provider.kubeconfig()?;
    Ok(match context {
        Some(context) => format!(
            "{} cluster '{name}' is ready ({how}).\n  kubectl --context {context} get nodes\n  kubelab run --provider {}",
            provider.name(),
            provider.name()
        ),
        None => {
            let server = provider.connect().await?.server;
            format!(
                "Cluster '{name}' is ready ({how}) at {server}.\n  export KUBECONFIG={}\n  kubectl get namespaces",
                kubeconfig.display()
            )
        }
    })
}
