//! What each subcommand does with its arguments: calls into the layers and prints.

use std::process::ExitCode;

use crate::AppError;
use crate::cli::{Cli, ClusterCommand, Command, Format, Provider, UpArgs};
use crate::cluster::local::{self, DownOutcome, UpOptions, UpOutcome};
use crate::ui::Ui;

pub async fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let ui = Ui::new(cli.quiet);
    match cli.command {
        Command::Cluster(command) => cluster(command, &ui).await,
    }
}

async fn cluster(command: ClusterCommand, ui: &Ui) -> Result<ExitCode, AppError> {
    match command {
        ClusterCommand::Up(args) => cluster_up(args, ui).await,
        ClusterCommand::Down(args) => {
            match local::down(&args.name, ui).await? {
                DownOutcome::NothingToDo(dir) => ui.info(format!(
                    "no local cluster named '{}' (nothing in {}): nothing to stop",
                    args.name,
                    dir.display()
                )),
                DownOutcome::Removed { killed, .. } if !killed.is_empty() => ui.info(format!(
                    "note: {} did not stop on SIGTERM and was killed",
                    killed.join(", ")
                )),
                DownOutcome::Removed { .. } => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Status(args) => {
            let status = local::status(&args.name.name).await?;
            match args.output {
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
        ClusterCommand::Kubeconfig(args) => {
            println!("{}", local::kubeconfig_path(&args.name)?.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn cluster_up(args: UpArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    match args.provider {
        Provider::Local => {}
    }
    let options = UpOptions {
        name: args.name.name,
        wait_timeout: args.wait_timeout,
        apiserver_port: args.port,
        extra_apiserver_args: args.apiserver_args,
        extra_controller_manager_args: args.controller_manager_args,
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
