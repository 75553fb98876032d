//! Commands that install and keep kubelab: setup, completions, man.

use std::process::ExitCode;

use crate::AppError;
use crate::cli::{CompletionsArgs, ManArgs, SetupArgs};
use crate::ui::Ui;

pub async fn setup(args: &SetupArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let request = crate::setup::Request {
        components: args.components.clone(),
        node: args.node,
        images: args.images,
    };
    // Interrupted, the build's futures are dropped: the go command is killed and its
    // half-built output removed with its temporary directory.
    tokio::select! {
        result = crate::setup::run(&request, ui) => result?,
        _ = crate::system::interrupted() => {
            return Err(AppError::Cluster(crate::cluster::Error::Interrupted));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn completions(args: &CompletionsArgs) -> Result<ExitCode, AppError> {
    crate::completion::write_script(args.shell, &mut std::io::stdout()).map_err(|source| {
        AppError::Output {
            what: "the completion script".into(),
            source,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: &ManArgs) -> Result<ExitCode, AppError> {
    crate::completion::write_man(args.dir.as_deref()).map_err(|source| AppError::Output {
        what: format!(
            "the man page{}",
            args.dir
                .as_ref()
                .map(|d| format!(" into {}", d.display()))
                .unwrap_or_default()
        ),
        source,
    })?;
    Ok(ExitCode::SUCCESS)
}
