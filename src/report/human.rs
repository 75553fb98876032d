//! Lines for the terminal: one per operation, expected vs got on failure.

use std::time::Duration;

use console::style;

use super::{LabReport, OperationReport, Outcome, RunReport};
use crate::ui::format_duration;

/// What an operation saw, in a few words: "403 Forbidden", "exit 1", "exists", "no".
pub fn observed_summary(op: &OperationReport) -> String {
    let o = &op.observed;
    if op.outcome == Outcome::Skipped {
        return "skipped".into();
    }
    if let Some(error) = &op.error {
        return error.lines().next().unwrap_or_default().to_string();
    }
    match op.kind.as_str() {
        "http" => match (o.status, &o.reason, &o.error) {
            (Some(status), Some(reason), _) => format!("{status} {reason}"),
            (Some(status), None, _) => status.to_string(),
            (None, _, Some(error)) => error.clone(),
            (None, _, None) => "no response".into(),
        },
        "kubectl" | "exec" => format!("exit {}", o.exit_code.unwrap_or(-1)),
        // On the host a log is the container's command run once: it has an exit code.
        "logs" => match o.exit_code {
            Some(code) => format!("exit {code}"),
            None => format!("{} log lines", o.body.lines().count()),
        },
        // Checks of cluster state: what they found, in a few words.
        "assert" | "events" if !o.body.is_empty() => o.body.clone(),
        "file" => match o.exists {
            Some(true) => "exists".into(),
            _ => "does not exist".into(),
        },
        "can-i" => match o.allowed {
            Some(true) => "yes".into(),
            _ => "no".into(),
        },
        _ => match (o.status, &o.reason) {
            (Some(status), Some(reason)) => format!("rejected: {status} {reason}"),
            _ if op.actions.is_empty() => "done".into(),
            _ => op.actions.join("; "),
        },
    }
}

/// An operation's line: ✓/✗, name, what it saw, where; on failure what was expected.
pub fn operation_line(prefix: &str, op: &OperationReport) -> String {
    let mark = match op.outcome {
        Outcome::Passed => style("✓").green().for_stderr(),
        Outcome::Skipped => style("-").dim().for_stderr(),
        _ => style("✗").red().for_stderr(),
    };
    let mut line = format!(
        "{prefix}   {mark} {} → {} ({}, {})",
        op.name,
        observed_summary(op),
        op.ran,
        format_duration(Duration::from_millis(op.duration_ms))
    );
    let detail = |line: &mut String, text: &str| {
        for part in text.lines() {
            line.push_str(&format!("\n{prefix}       {part}"));
        }
    };
    if op.outcome == Outcome::Skipped {
        if let Some(why) = &op.error {
            detail(&mut line, why);
        }
        return line;
    }
    if !op.passed {
        if !op.command.is_empty() {
            detail(&mut line, &format!("$ {}", op.command));
        }
        for failure in &op.failures {
            detail(&mut line, failure);
        }
        if let Some(error) = &op.error {
            detail(&mut line, error);
        }
        if let Some(diff) = &op.observed.diff {
            detail(&mut line, diff.trim_end());
        }
        if let Some(rbac) = &op.observed.rbac {
            detail(&mut line, &format!("rbac: {}", rbac.summary));
        }
        let body: String = op.observed.body.chars().take(600).collect();
        if !body.trim().is_empty() && op.observed.diff.is_none() {
            detail(&mut line, &format!("got body: {}", body.trim()));
        }
    }
    line
}

fn lab_verdict(lab: &LabReport) -> String {
    let checks: Vec<&OperationReport> = lab
        .steps
        .iter()
        .flat_map(|s| &s.operations)
        .filter(|op| op.check)
        .collect();
    let passed = checks.iter().filter(|p| p.passed).count();
    let word = match lab.outcome {
        Outcome::Passed => style("passed").green(),
        Outcome::Failed => style("FAILED").red(),
        Outcome::Invalid => style("INVALID").red(),
        Outcome::Error => style("ERROR").red(),
        Outcome::Skipped => style("skipped").yellow(),
    };
    let mut line = format!(
        "{word}  {}  {}  ({passed}/{} checks, {})",
        lab.folder,
        lab.title,
        checks.len(),
        format_duration(Duration::from_millis(lab.duration_ms))
    );
    if let Some(error) = &lab.error {
        line.push_str(&format!("\n        {error}"));
    }
    line
}

/// The end-of-run summary on stdout, with explanations when they were rendered.
pub fn print_summary(run: &RunReport) {
    for lab in &run.labs {
        if let Some(explanation) = &lab.explanation {
            println!("{}\n", explanation.trim_end());
        }
    }
    for lab in &run.labs {
        println!("{}", lab_verdict(lab));
    }
    let passed = run
        .labs
        .iter()
        .filter(|l| l.outcome == Outcome::Passed)
        .count();
    let skipped = run
        .labs
        .iter()
        .filter(|l| l.outcome == Outcome::Skipped)
        .count();
    let skipped = if skipped > 0 {
        format!(" ({skipped} skipped)")
    } else {
        String::new()
    };
    println!(
        "{passed}/{} labs passed{skipped} on {} ({}, Kubernetes {}) in {}; run {}",
        run.labs.len(),
        run.provider,
        run.server,
        run.kubernetes_version,
        format_duration(Duration::from_millis(run.duration_ms)),
        run.run_id
    );
}
