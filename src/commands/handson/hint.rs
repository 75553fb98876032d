//! `kubelab hint`: the next hint, one at a time; which were shown is remembered.

use std::process::ExitCode;

use super::{Session, hands_on, task};
use crate::AppError;
use crate::cli::LabArgs;

pub fn hint(args: LabArgs) -> Result<ExitCode, AppError> {
    let mut session = Session::open(args.lab.as_deref())?;
    hands_on(&session.loaded)?;
    let hints = session.loaded.lab.hints.clone();
    // Counted in the file as it is now: hints shown in another terminal count too.
    let shown = session.update(|entry| {
        let shown = entry.hints_shown;
        entry.hints_shown = (shown + 1).min(hints.len());
        shown
    })?;
    if shown >= hints.len() {
        // All used: show them together again, and what comes after hints.
        for (n, hint) in hints.iter().enumerate() {
            println!("Hint {} of {}:", n + 1, hints.len());
            task::print_markdown(hint);
            println!();
        }
        println!("No more hints: `kubelab solution` shows the solution.");
        return Ok(ExitCode::SUCCESS);
    }
    println!("Hint {} of {}:", shown + 1, hints.len());
    task::print_markdown(&hints[shown]);
    if shown + 1 < hints.len() {
        println!("\n`kubelab hint` again for the next one.");
    }
    Ok(ExitCode::SUCCESS)
}
