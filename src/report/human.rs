//! Lines for the terminal: one per step and per probe, expected vs got on failure.

use std::time::Duration;

use console::style;

use super::{LabReport, Outcome, ProbeReport, RunReport, StepReport};
use crate::scenario::ProbeKind;
use crate::ui::format_duration;

/// The text of a finished step's line (the ✓ and time are added by the step spinner).
pub fn step_line(step: &StepReport) -> String {
    if step.actions.is_empty() {
        step.name.clone()
    } else {
        format!("{}: {}", step.name, step.actions.join("; "))
    }
}

/// What a probe saw, in a few words: "403 Forbidden", "exit 1", "exists", "no".
pub fn observed_summary(probe: &ProbeReport) -> String {
    let o = &probe.observed;
    match probe.kind {
        ProbeKind::Http => match (o.status, &o.reason, &o.error) {
            (Some(status), Some(reason), _) => format!("{status} {reason}"),
            (Some(status), None, _) => status.to_string(),
            (None, _, Some(error)) => error.clone(),
            (None, _, None) => "no response".into(),
        },
        ProbeKind::Kubectl => format!("exit {}", o.exit_code.unwrap_or(-1)),
        // On the host a log is the container's command run once: it has an exit code.
        ProbeKind::Logs => match o.exit_code {
            Some(code) => format!("exit {code}"),
            None => format!("{} log lines", o.body.lines().count()),
        },
        ProbeKind::File => match o.exists {
            Some(true) => "exists".into(),
            _ => "does not exist".into(),
        },
        ProbeKind::CanI => match o.allowed {
            Some(true) => "yes".into(),
            _ => "no".into(),
        },
    }
}

pub fn probe_line(prefix: &str, probe: &ProbeReport) -> String {
    let mark = if probe.passed {
        style("✓").green().for_stderr()
    } else {
        style("✗").red().for_stderr()
    };
    let mut line = format!(
        "{prefix}   {mark} {} → {} ({}, {})",
        probe.name,
        observed_summary(probe),
        probe.ran,
        format_duration(Duration::from_millis(probe.duration_ms))
    );
    if !probe.passed {
        line.push_str(&format!("\n{prefix}       $ {}", probe.command));
        for failure in &probe.failures {
            line.push_str(&format!("\n{prefix}       {failure}"));
        }
        if let Some(rbac) = &probe.observed.rbac {
            line.push_str(&format!("\n{prefix}       rbac: {}", rbac.summary));
        }
        let body: String = probe.observed.body.chars().take(600).collect();
        if !body.trim().is_empty() {
            line.push_str(&format!(
                "\n{prefix}       got body: {}",
                body.trim().replace('\n', "\n          ")
            ));
        }
    }
    line
}

fn lab_verdict(lab: &LabReport) -> String {
    let probes: Vec<&ProbeReport> = lab.steps.iter().flat_map(|s| &s.probes).collect();
    let passed = probes.iter().filter(|p| p.passed).count();
    let word = match lab.outcome {
        Outcome::Passed => style("passed").green(),
        Outcome::Failed => style("FAILED").red(),
        Outcome::Error => style("ERROR").red(),
    };
    let mut line = format!(
        "{word}  {}  {}  ({passed}/{} probes, {})",
        lab.folder,
        lab.title,
        probes.len(),
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
    println!(
        "{passed}/{} labs passed on {} ({}, Kubernetes {}) in {}; run {}",
        run.labs.len(),
        run.provider,
        run.server,
        run.kubernetes_version,
        format_duration(Duration::from_millis(run.duration_ms)),
        run.run_id
    );
}
