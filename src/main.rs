//! kubelab: parse the command line, run it, map errors to exit codes.

mod cli;
mod cluster;
mod commands;
mod ui;
mod versions;

use std::process::ExitCode;

use clap::Parser;

/// The top-level error: one variant per layer, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
}

impl AppError {
    fn exit_code(&self) -> u8 {
        match self {
            AppError::Cluster(cluster::Error::Interrupted) => 130,
            AppError::Cluster(_) => 3,
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
