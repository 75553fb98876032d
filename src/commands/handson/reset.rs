//! `kubelab reset`: what the lab and the student made in the lab's namespaces goes,
//! then the starting state is set up again (with a new run id).

use std::process::ExitCode;
use std::time::Duration;

use super::{Session, hands_on, target};
use crate::AppError;
use crate::cli::{ExecMode, ResetArgs};
use crate::engine::{self, Keep};
use crate::progress;
use crate::report::Outcome;
use crate::scenario::Part;
use crate::ui::Ui;

/// Namespaces take the namespace controller a few seconds to empty.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn reset(args: ResetArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let mut session = Session::open(args.lab.lab.as_deref())?;
    hands_on(&session.loaded)?;
    let connection = session.connect(&args.cluster).await?;
    let target = target(&connection, ExecMode::Auto).await?;
    let namespaces = session.loaded.lab.namespaces.clone();
    let entry = session.entry().clone();
    let step = ui.step(format!(
        "removing what lab {} and you made in {} since it started",
        session.id(),
        namespaces.join(", ")
    ));
    let others = session.progress.runs_on(&target.server, Some(&session.key));
    let scope = engine::reset::Scope {
        namespaces: &namespaces,
        run_id: &entry.run_id,
        since: entry.started_at,
        others: &others,
    };
    let removed =
        engine::reset::remove(&target.client, &target.resources, &scope, REMOVE_TIMEOUT).await?;
    step.done(if removed.is_empty() {
        "nothing to remove".to_string()
    } else {
        format!("removed {}", removed.join(", "))
    });
    // A new run id: nothing of the old one may pass for the new start.
    let now = progress::now();
    {
        let entry = session.entry_mut();
        entry.run_id = engine::new_run_id();
        entry.started_at = now;
    }
    let step = ui.step(format!("setting up lab {} again", session.id()));
    let report = session
        .run(&target, Part::Start, Keep::WhenPassed, &Ui::new(true))
        .await?;
    if report.outcome == Outcome::Passed {
        step.done(format!(
            "lab {} set up: {}",
            session.id(),
            super::actions(&report)
        ));
    } else {
        return Err(AppError::Environment(format!(
            "lab {} could not be set up again on {} (what it had made is removed): {}",
            session.id(),
            connection.server,
            report
                .error
                .unwrap_or_else(|| "an operation of its start failed".into())
        )));
    }
    session.save()?;
    println!(
        "Lab {} is back at its start{}. `kubelab check` grades it; the task again: `kubelab start {}`.",
        session.id(),
        if removed.is_empty() {
            String::new()
        } else {
            format!(" (removed {})", removed.join(", "))
        },
        session.id()
    );
    Ok(ExitCode::SUCCESS)
}
