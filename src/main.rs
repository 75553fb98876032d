//! kubelab: parse the command line, run it, map errors to exit codes.

mod apply;
mod cli;
mod cluster;
mod commands;
mod probe;
mod report;
mod runner;
mod scenario;
mod ui;
mod versions;
mod wait;
mod workload;

use std::process::ExitCode;

use clap::Parser;

/// The top-level error: one variant per layer, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    #[error(transparent)]
    Scenario(#[from] scenario::Error),
    #[error("{0}")]
    Environment(String),
}

impl AppError {
    fn exit_code(&self) -> u8 {
        match self {
            AppError::Cluster(cluster::Error::Interrupted) => 130,
            AppError::Cluster(_) | AppError::Environment(_) => 3,
            AppError::Scenario(_) => 2,
        }
    }
}

fn main() -> ExitCode {
    // clap exits with 2 on usage errors, as documented in --help.
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
