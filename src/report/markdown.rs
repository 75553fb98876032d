//! A run as GitHub-flavoured Markdown, for CI job summaries ($GITHUB_STEP_SUMMARY): a
//! table of labs, then every failing check with what it saw and what to change.

use std::time::Duration;

use super::human::{details, observed_summary};
use super::{LabReport, Outcome, RunReport};
use crate::ui::format_duration;

fn mark(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "✅ passed",
        Outcome::Failed => "❌ failed",
        Outcome::Invalid => "❌ invalid",
        Outcome::Error => "❌ error",
        Outcome::Skipped => "⏭️ skipped",
    }
}

/// A table cell: no line breaks, no column separators.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn summary(run: &RunReport) -> String {
    let mut md = format!(
        "## kubelab: {}/{} labs passed\n\n{} (`{}`, Kubernetes {}), run `{}`, {}\n\n| lab | title | result | checks | time |\n|---|---|---|---|---|\n",
        run.labs_passed(),
        run.labs.len(),
        run.provider,
        run.server,
        run.kubernetes_version,
        run.run_id,
        format_duration(Duration::from_millis(run.duration_ms)),
    );
    for lab in &run.labs {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            cell(&lab.folder),
            cell(&lab.title),
            mark(lab.outcome),
            lab.checks_passed(),
            format_duration(Duration::from_millis(lab.duration_ms)),
        ));
    }
    for lab in run.labs.iter().filter(|l| !l.outcome_is_fine()) {
        md.push_str(&format!(
            "\n### {} {}\n\n",
            cell(&lab.folder),
            cell(&lab.title)
        ));
        if let Some(error) = &lab.error {
            md.push_str(&format!("```text\n{}\n```\n", error.trim_end()));
        }
        for op in lab
            .steps
            .iter()
            .flat_map(|s| &s.operations)
            .filter(|op| !op.passed && op.outcome != Outcome::Skipped)
        {
            md.push_str(&format!(
                "- **{}** → {} ({})\n",
                cell(&op.name),
                cell(&observed_summary(op)),
                cell(&op.ran)
            ));
            let lines = details(op);
            if !lines.is_empty() {
                md.push_str(&format!("\n  ```text\n  {}\n  ```\n", lines.join("\n  ")));
            }
        }
    }
    md
}

impl LabReport {
    /// Passed, or skipped because the cluster lacks what it needs.
    pub fn outcome_is_fine(&self) -> bool {
        matches!(self.outcome, Outcome::Passed | Outcome::Skipped)
    }
}
