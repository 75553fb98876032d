//! `kubelab reset`: what the lab and the student made in the lab's namespaces goes,
//! then the starting state is set up again (with a new run id).

use std::process::ExitCode;
use std::time::Duration;

use super::{Session, hands_on, passed, target};
use crate::AppError;
use crate::cli::{ExecMode, ResetArgs};
use crate::engine::{self, Keep};
use crate::scenario::Part;
use crate::ui::Ui;

/// Namespaces take the namespace controller a few seconds to empty.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn reset(args: ResetArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let mut session = Session::open(args.lab.lab.as_deref())?;
    hands_on(&session.loaded)?;
    let connection = session.connect(&args.cluster).await?;
    let target = target(&connection, ExecMode::Auto).await?;
    let previous_run = session.entry().run_id.clone();
    let removed = take_away(&mut session, &target, args.consent.yes, true, ui).await?;
    // Until the start is set up again, the lab is not set up: an interrupted or failed
    // reset must not leave a record of objects that are gone.
    let now = target.server_now();
    let run_id = engine::new_run_id();
    engine::reset::hand_over(
        &target.client,
        &session.loaded.lab.namespaces,
        &previous_run,
        &run_id,
    )
    .await?;
    let step = ui.step(format!("setting up lab {} again", session.id()));
    {
        // The new run, for this run only until it is set up.
        let entry = session.progress.labs.get_mut(&session.key).expect("open");
        entry.run_id = run_id.clone();
        entry.started_at = now;
    }
    let report = session
        .run(&target, Part::Start, Keep::WhenPassed, &Ui::new(true))
        .await?;
    let report = passed(
        report,
        &format!("setting up lab {} again", session.id()),
        &connection.server,
    )?;
    step.done(format!(
        "lab {} set up: {}",
        session.id(),
        super::actions(&report)
    ));
    session.update(|entry| {
        entry.run_id = run_id;
        entry.started_at = now;
    })?;
    println!(
        "Lab {} is back at its start{}. `kubelab check` grades it; the task again: `kubelab start {}`.",
        session.id(),
        removed_note(&removed),
        session.id()
    );
    Ok(ExitCode::SUCCESS)
}

/// `kubelab stop`: the lab's objects and the student's go; the lab is not set up.
pub async fn stop(args: ResetArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let mut session = Session::open(args.lab.lab.as_deref())?;
    hands_on(&session.loaded)?;
    session.require_set_up()?;
    let connection = session.connect(&args.cluster).await?;
    let target = target(&connection, ExecMode::Auto).await?;
    let removed = take_away(&mut session, &target, args.consent.yes, false, ui).await?;
    println!(
        "Lab {} is stopped{}; its progress stays (`kubelab progress`), `kubelab start {}` sets it up again.",
        session.id(),
        removed_note(&removed),
        session.id()
    );
    Ok(ExitCode::SUCCESS)
}

/// " (removed Pod default/mydemo, ...)", or nothing.
fn removed_note(removed: &[String]) -> String {
    if removed.is_empty() {
        String::new()
    } else {
        format!(" (removed {})", removed.join(", "))
    }
}

/// Removes what the lab and the student made (asking first on a cluster kubelab did
/// not make), and records that the lab is not set up. Returns what went. A reset
/// (`keep_namespaces`) empties the lab's own namespaces instead of deleting them.
async fn take_away(
    session: &mut Session,
    target: &engine::Target,
    yes: bool,
    keep_namespaces: bool,
    ui: &Ui,
) -> Result<Vec<String>, AppError> {
    let entry = session.entry().clone();
    let others = session.others();
    let namespaces = session.loaded.lab.namespaces.clone();
    let scope = engine::reset::Scope {
        namespaces: &namespaces,
        run_id: &entry.run_id,
        since: entry.started_at,
        others: &others,
        keep_namespaces,
    };
    let doomed = engine::reset::plan(&target.client, &target.resources, &scope).await?;
    let names: Vec<String> = doomed.iter().map(|c| c.describe()).collect();
    // A class's student works in their own copy: nobody else's work is there.
    if entry.cluster.provider == "kubeconfig"
        && entry.copy_of.is_none()
        && !yes
        && !names.is_empty()
    {
        confirm(session.id(), &entry.cluster.describe(), &names)?;
    }
    let step = ui.step(format!(
        "removing what lab {} and you made in {} since it started",
        session.id(),
        namespaces.join(", ")
    ));
    engine::reset::remove(&target.client, &doomed, REMOVE_TIMEOUT).await?;
    step.done(if names.is_empty() {
        "nothing to remove".to_string()
    } else {
        format!("removed {}", names.join(", "))
    });
    session.update(|entry| entry.run_id.clear())?;
    Ok(names)
}

/// On a cluster kubelab did not make, what was made in the lab's namespaces since it
/// started may be someone else's: the person says yes to the list first.
fn confirm(lab: &str, cluster: &str, names: &[String]) -> Result<(), AppError> {
    let list = names.join(", ");
    match crate::ui::ask(&format!(
        "On {cluster}, kubelab will delete:\n  {list}\nContinue?"
    )) {
        Some(true) => Ok(()),
        Some(false) => Err(AppError::Usage(format!(
            "nothing was removed: lab {lab} stays as it is"
        ))),
        None => Err(AppError::Usage(format!(
            "lab {lab} is on {cluster}, which kubelab did not make; this removes what was made in its namespaces since the lab started: {list}. Confirm with --yes"
        ))),
    }
}
