//! What each subcommand does with its arguments: calls into the layers and prints.

mod class;
mod cluster;
mod connect;
mod handson;
mod labs;
mod rbac;
mod run;
mod tools;

use std::process::ExitCode;

use crate::AppError;
use crate::cli::{Cli, Command, DirArgs, ImageArgs};
use crate::engine::{Finished, RUN_LABEL, Target};
use crate::images::ImageMap;
use crate::report::RunReport;
use crate::scenario::{self, LoadedLab};
use crate::ui::Ui;

pub async fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let ui = Ui::new(cli.quiet);
    match cli.command {
        Command::Cluster(command) => cluster::run(command, &ui).await,
        Command::Class(command) => class::run(command, &ui).await,
        Command::Run(args) => run::run_labs(args, &ui).await,
        Command::Start(args) => handson::start(args, &ui).await,
        Command::Check(args) => handson::check(args, &ui).await,
        Command::Hint(args) => handson::hint(args),
        Command::Solution(args) => handson::solution(args, &ui).await,
        Command::Reset(args) => handson::reset(args, &ui).await,
        Command::Stop(args) => handson::stop(args, &ui).await,
        Command::Shell(args) => handson::shell(args, &ui).await,
        Command::Progress(args) => handson::progress(args),
        Command::List(args) => labs::list(&args),
        Command::Show(args) => labs::show(&args),
        Command::Lint(args) => labs::lint(&args),
        Command::Schema(args) => labs::schema(args.kind),
        Command::New(args) => labs::new_lab(&args),
        Command::Setup(args) => tools::setup(&args, &ui).await,
        Command::Completions(args) => tools::completions(&args),
        Command::Man(args) => tools::man(&args),
        Command::Images(args) => labs::images(&args).await,
        Command::Why(args) => rbac::why(args, &ui).await,
        Command::Rbac(command) => rbac::run(command, &ui).await,
    }
}

/// The labs a command means (`wanted`; all when none): from a folder (`--dir`), or a
/// built-in suite; and how to name where they come from in messages.
fn labs_of(args: &DirArgs, wanted: &[String]) -> Result<(Vec<LoadedLab>, String), AppError> {
    let from = match &args.dir {
        Some(dir) => dir.display().to_string(),
        None => format!("the built-in suite '{}'", args.suite),
    };
    let labs = scenario::load_selected(args.dir.as_deref(), &args.suite, wanted, &from)?;
    Ok((labs, from))
}

fn image_map(args: &ImageArgs) -> Result<ImageMap, AppError> {
    ImageMap::from_args(
        args.curl_image.as_deref(),
        args.kubectl_image.as_deref(),
        &args.use_images,
    )
    .map_err(AppError::Usage)
}

/// A run's end as the command's result: an interrupt exits 130, a server that stopped
/// serving exits 3 with what to do next. `offered`: whether this run holds a Lease, so
/// a later run offers to remove what it left.
fn completed(
    finished: Finished,
    target: &Target,
    run_id: &str,
    offered: bool,
) -> Result<RunReport, AppError> {
    let selector = format!("{RUN_LABEL}={run_id}");
    let removal = if offered {
        format!("the next `kubelab run` on this cluster offers to remove it ({selector})")
    } else {
        format!(
            "`kubectl delete all,roles,rolebindings,serviceaccounts,namespaces -A -l {selector}` removes it"
        )
    };
    match finished {
        Finished::Completed(report) => Ok(report),
        Finished::Interrupted { left: 0 } => {
            Err(AppError::Cluster(crate::cluster::Error::Interrupted))
        }
        Finished::Interrupted { left } => Err(AppError::Cluster(
            crate::cluster::Error::InterruptedLeaving {
                left,
                selector: format!("{selector}; {removal}"),
            },
        )),
        Finished::ServerDown(outage) => {
            let left = if outage.left == 0 {
                "nothing this run made is left".to_string()
            } else {
                format!(
                    "{} objects this run made are still there, labelled {selector}",
                    outage.left
                )
            };
            let next = if target.provider == "local" {
                "`kubelab cluster status` shows which component stopped; `kubelab cluster up` replaces a dead local cluster (and what was in it)".to_string()
            } else if outage.left == 0 {
                "check the cluster (`kubectl get --raw '/readyz?verbose'`), then run again"
                    .to_string()
            } else {
                format!(
                    "check the cluster (`kubectl get --raw '/readyz?verbose'`); once it answers, {removal}"
                )
            };
            Err(AppError::Cluster(crate::cluster::Error::ServerDown {
                server: target.server.clone(),
                doing: outage.doing,
                cause: outage.cause,
                left,
                next,
            }))
        }
    }
}
