//! `kubelab progress`: the labs started, solved or not, points, hints, time.

use std::process::ExitCode;
use std::time::Duration;

use console::style;

use crate::AppError;
use crate::cli::{Format, ProgressArgs};
use crate::progress::Progress;
use crate::ui::format_duration;

pub fn show(args: ProgressArgs) -> Result<ExitCode, AppError> {
    let progress = Progress::load().map_err(|e| AppError::Environment(e.to_string()))?;
    if args.output == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&progress).expect("progress serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if progress.labs.is_empty() {
        println!("No lab started yet: `kubelab start 02` starts one (`kubelab list` shows them).");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "  {:<14} {:<44} {:<22} {:>7} {:>6} {:>7} {:>8}",
        "lab", "title", "state", "points", "hints", "checks", "time"
    );
    for (key, lab) in &progress.labs {
        let current = if progress.current.as_ref() == Some(key) {
            "*"
        } else {
            " "
        };
        let state = match (lab.solved, lab.solved_with_solution) {
            (true, false) => style("solved".to_string()).green(),
            (true, true) => style("solved with solution".to_string()).yellow(),
            (false, true) => style("solution applied".to_string()).yellow(),
            (false, false) => style("in progress".to_string()),
        };
        let title: String = lab.title.chars().take(44).collect();
        println!(
            "{current} {:<14} {:<44} {:<22} {:>7} {:>6} {:>7} {:>8}",
            key,
            title,
            state,
            format!("{}/{}", lab.best_points, lab.max_points),
            lab.hints_shown,
            lab.checks_made,
            format_duration(Duration::from_secs(lab.seconds_spent))
        );
    }
    let solved = progress.labs.values().filter(|l| l.solved).count();
    let alone = progress
        .labs
        .values()
        .filter(|l| l.solved && !l.solved_with_solution)
        .count();
    println!(
        "\n{solved} of {} started labs solved ({alone} without the solution); * is the current lab. Stored in {}.",
        progress.labs.len(),
        Progress::path().display()
    );
    Ok(ExitCode::SUCCESS)
}
