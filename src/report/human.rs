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
    for detail in details(op) {
        line.push_str(&format!("\n{prefix}       {detail}"));
    }
    line
}

/// What a student needs to see of an operation that did not pass: what was expected
/// and seen, the API server's words for a rejection, and what to change.
/// (The diagnoses are left to the caller: several operations often share one.)
pub fn brief(op: &OperationReport) -> Vec<String> {
    // A wrong status explains the wrong body: the body's misses would only repeat it.
    let status_missed = op.failures.iter().any(|f| f.starts_with("status:"));
    // The first line already says what an operation saw.
    let seen = observed_summary(op);
    let mut lines: Vec<String> = op
        .failures
        .iter()
        .filter(|f| !(status_missed && f.starts_with("json.")) && **f != seen)
        .cloned()
        .collect();
    lines.extend(op.error.iter().cloned());
    let rejected = op.observed.status.is_some_and(|s| s >= 400);
    let message_shown = lines.iter().any(|l| l.starts_with("message:"));
    if let (true, false, Some(message)) = (rejected, message_shown, &op.observed.message) {
        lines.push(format!("the API server said: {message}"));
    }
    lines
}

/// A diagnosis as two lines: what is wrong where, and the edit that fixes it.
pub fn diagnosis_lines(diagnoses: &[crate::rbac::Diagnosis]) -> Vec<String> {
    let mut lines = Vec::new();
    for diagnosis in diagnoses {
        let place = if diagnosis.field.is_empty() {
            diagnosis.object.clone()
        } else {
            format!("{} {}", diagnosis.object, diagnosis.field)
        };
        lines.push(format!("wrong: {place}: {}", diagnosis.message));
        if let Some(patch) = &diagnosis.patch {
            lines.push(format!("fix:   {patch}"));
        }
    }
    lines
}

/// The lines under an operation that did not pass: the command, what was expected and
/// seen, and for a denial what to change. A skipped one says why.
pub fn details(op: &OperationReport) -> Vec<String> {
    let mut lines = Vec::new();
    let mut add = |text: &str| lines.extend(text.lines().map(str::to_string));
    if op.outcome == Outcome::Skipped {
        if let Some(why) = &op.error {
            add(why);
        }
        return lines;
    }
    if op.passed {
        return lines;
    }
    if !op.command.is_empty() {
        add(&format!("$ {}", op.command));
    }
    for failure in &op.failures {
        add(failure);
    }
    if let Some(error) = &op.error {
        add(error);
    }
    if let Some(diff) = &op.observed.diff {
        add(diff.trim_end());
    }
    let diagnosed = !op.observed.diagnosis.is_empty();
    for line in diagnosis_lines(&op.observed.diagnosis) {
        add(&line);
    }
    if let (Some(rbac), false) = (&op.observed.rbac, diagnosed) {
        add(&format!("rbac: {}", rbac.summary));
    }
    // A diagnosed denial needs only the API server's own words, not its whole body.
    match (&op.observed.message, diagnosed) {
        (Some(message), true) => add(&format!("the API server said: {message}")),
        _ => {
            let body: String = op.observed.body.chars().take(600).collect();
            if !body.trim().is_empty() && op.observed.diff.is_none() {
                add(&format!("got body: {}", body.trim()));
            }
        }
    }
    lines
}

fn lab_verdict(lab: &LabReport) -> String {
    let word = match lab.outcome {
        Outcome::Passed => style("passed").green(),
        Outcome::Failed => style("FAILED").red(),
        Outcome::Invalid => style("INVALID").red(),
        Outcome::Error => style("ERROR").red(),
        Outcome::Skipped => style("skipped").yellow(),
    };
    let mut line = format!(
        "{word}  {}  {}  ({} checks, {})",
        lab.folder,
        lab.title,
        lab.checks_passed(),
        format_duration(Duration::from_millis(lab.duration_ms))
    );
    if let Some(error) = &lab.error {
        line.push_str(&format!("\n        {error}"));
    }
    line
}

/// The end-of-run summary on stdout, with the explanations when asked.
pub fn print_summary(run: &RunReport, explanations: bool) {
    if explanations {
        for explanation in run.labs.iter().filter_map(|l| l.explanation.as_ref()) {
            println!("{}\n", explanation.trim_end());
        }
    }
    for lab in &run.labs {
        println!("{}", lab_verdict(lab));
    }
    let passed = run.labs_passed();
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
