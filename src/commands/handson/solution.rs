//! `kubelab solution [--apply]`: the solution as a person would type it (manifests and
//! kubectl commands); `--apply` applies it, and progress says so.

use std::process::ExitCode;

use super::{Session, hands_on, target};
use crate::AppError;
use crate::cli::{ExecMode, SolutionArgs};
use crate::engine::Keep;
use crate::report::Outcome;
use crate::scenario::{Action, LoadedLab, Part, kubectl};
use crate::ui::Ui;

pub async fn solution(args: SolutionArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let mut session = Session::open(args.lab.lab.as_deref())?;
    hands_on(&session.loaded)?;
    print_solution(&session.loaded);
    if !args.apply {
        println!(
            "\n`kubelab solution --apply` applies it (progress then records that the lab was solved with the solution)."
        );
        return Ok(ExitCode::SUCCESS);
    }
    session.require_set_up()?;
    let connection = session.connect(&args.cluster).await?;
    let target = target(&connection, ExecMode::Auto).await?;
    // What the solution applied stays, whatever happens after (it replaced the
    // student's attempt, which no cleanup could bring back).
    let report = session
        .run(&target, Part::Solution, Keep::Everything, ui)
        .await?;
    if report.outcome != Outcome::Passed {
        return Err(AppError::Environment(format!(
            "the solution of lab {} did not finish on {} (what it applied stays; `kubelab reset` starts over): {}",
            session.id(),
            connection.server,
            report.error.unwrap_or_else(|| "an operation failed".into())
        )));
    }
    // A lab solved alone stays solved alone.
    session.update(|entry| {
        if !entry.solved {
            entry.solved_with_solution = true;
        }
    })?;
    println!("\nApplied. `kubelab check` grades the cluster now.");
    Ok(ExitCode::SUCCESS)
}

/// Each operation of the solution: a manifest's text, or the kubectl command.
fn print_solution(loaded: &LoadedLab) {
    let lab = &loaded.lab;
    println!("Solution of lab {} · {}", lab.id, lab.title);
    for op in &lab.solution {
        let namespace = op.namespace.as_deref().unwrap_or(&lab.namespaces[0]);
        if let Some(name) = &op.name {
            println!("\n# {name}");
        }
        if let Action::Apply(apply) | Action::Create(apply) = &op.action {
            for file in apply.all_files() {
                println!("\n# {file}");
                println!("{}", loaded.manifests[file].text.trim_end());
            }
        }
        if let Some(command) = kubectl::command(&op.action, namespace) {
            println!("\n$ {command}");
        }
    }
}
