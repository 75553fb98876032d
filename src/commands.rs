//! What each subcommand does with its arguments: calls into the layers and prints.

use std::process::ExitCode;

use std::path::PathBuf;

use crate::AppError;
use crate::cli::{
    Cli, ClusterCommand, Command, DirArgs, Format, Provider, RunArgs, ShowArgs, UpArgs,
};
use crate::cluster::kubeconfig;
use crate::cluster::local::{self, DownOutcome, UpOptions, UpOutcome};
use crate::probe::{Execution, host::HostTools};
use crate::report::{self, RunReport};
use crate::runner::{self, Finished, Settings, Target};
use crate::scenario::{self, LoadedLab};
use crate::ui::Ui;

pub async fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let ui = Ui::new(cli.quiet);
    match cli.command {
        Command::Cluster(command) => cluster(command, &ui).await,
        Command::Run(args) => run_labs(args, &ui).await,
        Command::List(args) => list(&args),
        Command::Show(args) => show(&args),
        Command::Lint(args) => lint(&args),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&scenario::schema()).expect("schema serializes")
            );
            Ok(ExitCode::SUCCESS)
        }
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

fn labs_dir(args: &DirArgs) -> PathBuf {
    args.dir.clone().unwrap_or_else(scenario::default_dir)
}

fn list(args: &DirArgs) -> Result<ExitCode, AppError> {
    let labs = scenario::load_dir(&labs_dir(args))?;
    for loaded in &labs {
        let lab = &loaded.lab;
        println!("{:<4} {:<32} {}", lab.id, loaded.folder, lab.title);
        println!("     {}", lab.summary.trim());
        println!(
            "     namespaces: {}; from: {}",
            lab.namespaces.join(", "),
            lab.source
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn lint(args: &DirArgs) -> Result<ExitCode, AppError> {
    let dir = labs_dir(args);
    let labs = scenario::load_dir(&dir)?;
    let probes: usize = labs
        .iter()
        .flat_map(|l| &l.lab.steps)
        .map(|s| s.probes.len())
        .sum();
    println!(
        "{} labs, {probes} probes in {}: no problems",
        labs.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn show(args: &ShowArgs) -> Result<ExitCode, AppError> {
    let dir = labs_dir(&args.dir);
    let labs = scenario::select(
        scenario::load_dir(&dir)?,
        std::slice::from_ref(&args.lab),
        &dir,
    )?;
    for loaded in &labs {
        print_lab(loaded);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_lab(loaded: &LoadedLab) {
    let lab = &loaded.lab;
    println!("{} {} ({})", lab.id, lab.title, loaded.folder);
    println!(
        "{}\nfrom: {}\nnamespaces: {}\n",
        lab.summary.trim(),
        lab.source,
        lab.namespaces.join(", ")
    );
    let default_ns = &lab.namespaces[0];
    for (n, step) in lab.steps.iter().enumerate() {
        println!("step {} [{}]: {}", n + 1, step.id, step.name);
        for file in &step.apply {
            for doc in &loaded.manifests[file].documents {
                let kind = doc["kind"].as_str().unwrap_or_default();
                let name = doc["metadata"]["name"].as_str().unwrap_or_default();
                let place = match (doc["metadata"]["namespace"].as_str(), kind) {
                    (Some(ns), _) => format!("{ns}/{name}"),
                    (None, "Namespace" | "ClusterRole" | "ClusterRoleBinding") => name.to_string(),
                    (None, _) => format!("{default_ns}/{name}"),
                };
                println!("  apply {file}: {kind} {place}");
            }
        }
        for wait in &step.wait {
            let what = match (&wait.pod, &wait.deployment) {
                (Some(pod), _) => format!("pod {pod}"),
                (None, Some(deployment)) => format!("deployment {deployment}"),
                (None, None) => String::new(),
            };
            println!("  wait for {what} ({:?})", wait.until);
        }
        for probe in &step.probes {
            let namespace = probe.namespace.as_deref().unwrap_or(default_ns);
            let from = match &probe.pod {
                Some(pod) => format!("in pod {namespace}/{pod}"),
                None => "as kubelab".to_string(),
            };
            println!("  probe [{}] {} ({from})", probe.id, probe.name);
            println!("    $ {}", crate::probe::shown_command(probe, namespace));
            let expect = serde_json::to_value(&probe.expect).expect("expect serializes");
            println!("    expect {expect}");
        }
        println!();
    }
}

async fn run_labs(args: RunArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let dir = labs_dir(&args.dir);
    let labs = scenario::select(scenario::load_dir(&dir)?, &args.labs, &dir)?;
    match args.provider {
        Provider::Local => {}
    }
    let curl = find_on_path("curl").ok_or_else(|| {
        AppError::Environment(
            "curl is not installed: the probes run the real curl (apt-get install curl)".into(),
        )
    })?;
    let running = local::ensure_running(&args.name, ui).await?;
    let client = kubeconfig::client(&running.kubeconfig).await?;
    let target = Target {
        client,
        execution: Execution::Host(HostTools {
            apiserver_port: running.record.ports.apiserver,
            kubectl: running.record.kubectl.clone(),
            curl,
        }),
        provider: "local".into(),
        server: running.record.server.clone(),
        kubernetes_version: running.record.kubernetes_version.clone(),
    };
    let settings = Settings {
        jobs: args.jobs as usize,
        keep: args.keep,
        explain: args.explain || args.output == Format::Json,
    };
    let run_id = runner::new_run_id();
    ui.info(format!(
        "run {run_id}: {} labs on {} ({})",
        labs.len(),
        target.server,
        target.provider
    ));
    let finished = runner::run_labs(&target, labs, &settings, &run_id, ui).await;

    // A cluster this run started goes away with it, unless the user keeps things.
    if running.started_here && args.keep {
        ui.info(format!(
            "keeping the local cluster '{}' this run started: `kubelab cluster down` removes it",
            args.name
        ));
    }
    let stop_cluster = running.started_here && !args.keep;
    let report = match finished {
        Finished::Completed(report) => report,
        Finished::Interrupted => {
            if running.started_here {
                local::down(&args.name, ui).await?;
            }
            return Err(AppError::Cluster(crate::cluster::Error::Interrupted));
        }
    };
    if stop_cluster {
        local::down(&args.name, ui).await?;
    }
    emit(&report, &args)?;
    Ok(ExitCode::from(report.exit_code()))
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

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}
