//! What each subcommand does with its arguments: calls into the layers and prints.

mod cluster;
mod labs;
mod rbac;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::AppError;
use crate::cli::{Cli, Command, DirArgs, ImageArgs, Provider};
use crate::cluster::kind;
use crate::cluster::local;
use crate::images::ImageMap;
use crate::scenario;
use crate::ui::Ui;

pub async fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let ui = Ui::new(cli.quiet);
    match cli.command {
        Command::Cluster(command) => cluster::run(command, &ui).await,
        Command::Run(args) => run::run_labs(args, &ui).await,
        Command::List(args) => labs::list(&args),
        Command::Show(args) => labs::show(&args),
        Command::Lint(args) => labs::lint(&args),
        Command::Schema => labs::schema(),
        Command::Images(args) => labs::images(&args).await,
        Command::Why(args) => rbac::why(args, &ui).await,
        Command::Rbac(command) => rbac::run(command, &ui).await,
    }
}

fn labs_dir(args: &DirArgs) -> PathBuf {
    args.dir.clone().unwrap_or_else(scenario::default_dir)
}

fn image_map(args: &ImageArgs) -> Result<ImageMap, AppError> {
    ImageMap::from_args(
        args.curl_image.as_deref(),
        args.kubectl_image.as_deref(),
        &args.use_images,
    )
    .map_err(AppError::Usage)
}

/// What `--provider auto` means for starting or running: kind when kind and a working
/// engine are found (DESIGN.md), otherwise the local control plane.
async fn provider_to_start(requested: Provider) -> Provider {
    match requested {
        Provider::Auto if kind::detect().await.is_ok() => Provider::Kind,
        Provider::Auto => Provider::Local,
        other => other,
    }
}

/// What `--provider auto` means for an existing cluster: the local one of that name if
/// its state exists, else kind when it works, else local (which then says "none").
async fn provider_of_existing(requested: Provider, name: &str) -> Provider {
    match requested {
        Provider::Auto if local::state_root().join(name).exists() => Provider::Local,
        Provider::Auto if kind::detect().await.is_ok() => Provider::Kind,
        Provider::Auto => Provider::Local,
        other => other,
    }
}
