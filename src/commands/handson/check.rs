//! `kubelab check`: the lab's checks against the cluster as it is now (nothing is
//! applied), ✓/✗ and points per check, what is still wrong, and progress recorded.

use std::process::ExitCode;

use console::style;

use super::{Session, hands_on, target};
use crate::AppError;
use crate::cli::{CheckArgs, Format};
use crate::engine::Keep;
use crate::progress;
use crate::report::{self, Grade};
use crate::scenario::Part;
use crate::ui::Ui;

pub async fn check(args: CheckArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let mut session = Session::open(args.lab.lab.as_deref())?;
    hands_on(&session.loaded)?;
    session.require_set_up()?;
    let connection = session.connect(&args.cluster).await?;
    let target = target(&connection, args.exec).await?;
    let step = ui.step(format!(
        "checking lab {} on {}",
        session.id(),
        connection.server
    ));
    // The engine's own lines would drown the grades: it runs quietly.
    let report = session
        .run(&target, Part::Checks, Keep::Everything, &Ui::new(true))
        .await?;
    let grade = report::grade(&session.loaded.lab, &report);
    step.done(format!(
        "checked lab {}: {}/{} points",
        session.id(),
        grade.points,
        grade.max_points
    ));
    let at = progress::now();
    let entry = session.update(|entry| {
        entry.record_check(grade.points, grade.max_points, at);
        entry.clone()
    })?;
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&grade).expect("a grade serializes")
        ),
        Format::Text => print(&grade, &entry, &session, args.verbose),
    }
    Ok(if grade.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print(grade: &Grade, entry: &progress::LabProgress, session: &Session, verbose: bool) {
    println!("Lab {} · {}", grade.lab, grade.title);
    let width = grade
        .checks
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0);
    for check in &grade.checks {
        let mark = if check.passed {
            style("✓").green()
        } else {
            style("✗").red()
        };
        println!(
            "  {mark} {:<width$}  {}/{}",
            check.title, check.points, check.max_points
        );
        if let Some(error) = &check.error {
            println!("      {error}");
        }
        let mut diagnoses = Vec::new();
        for problem in &check.problems {
            println!(
                "      {} → {} ({})",
                problem.name,
                report::observed_summary(problem),
                problem.ran
            );
            let lines = if verbose {
                report::details(problem)
            } else {
                report::brief(problem)
            };
            for line in lines {
                println!("        {line}");
            }
            for diagnosis in &problem.observed.diagnosis {
                if !diagnoses.contains(diagnosis) {
                    diagnoses.push(diagnosis.clone());
                }
            }
        }
        // Said once per check: its operations often fail for the same reason.
        if !verbose {
            for line in report::diagnosis_lines(&diagnoses) {
                println!("      {line}");
            }
        }
    }
    let lab = &session.loaded.lab;
    if grade.passed {
        let how = if entry.solved_with_solution {
            " with the solution"
        } else {
            ""
        };
        println!(
            "\n{} all {} checks pass: {}/{} points. Lab {} solved{how} ({} from the first start).",
            style("Done:").green().bold(),
            grade.checks.len(),
            grade.points,
            grade.max_points,
            grade.lab,
            crate::ui::format_duration(std::time::Duration::from_secs(entry.seconds_spent))
        );
    } else {
        let failing = grade.checks.iter().filter(|c| !c.passed).count();
        let hints = if entry.hints_shown < lab.hints.len() {
            format!(
                "`kubelab hint` gives a hint ({} of {} used)",
                entry.hints_shown,
                lab.hints.len()
            )
        } else {
            "all hints used: `kubelab solution` shows the solution".into()
        };
        println!(
            "\n{}/{} points; {failing} check{} still failing. {hints}.",
            grade.points,
            grade.max_points,
            if failing == 1 { "" } else { "s" }
        );
    }
}
