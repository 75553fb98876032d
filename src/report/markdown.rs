//! A run as GitHub-flavoured Markdown, for CI job summaries ($GITHUB_STEP_SUMMARY): a
//! table of labs, then every failing check with what it saw and what to change.

use std::time::Duration;

use super::human::{details, observed_summary};
use super::{Outcome, RunReport};
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

/// A code block around `text`, its fence longer than any run of backticks in it
/// (observed output may hold some), each line indented by `indent`.
fn fenced(text: &str, indent: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let body: Vec<String> = text.lines().map(|l| format!("{indent}{l}")).collect();
    format!(
        "{indent}{fence}text\n{}\n{indent}{fence}\n",
        body.join("\n")
    )
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
    for lab in run.labs.iter().filter(|l| !l.outcome.is_fine()) {
        md.push_str(&format!(
            "\n### {} {}\n\n",
            cell(&lab.folder),
            cell(&lab.title)
        ));
        if let Some(error) = &lab.error {
            md.push_str(&fenced(error.trim_end(), ""));
        }
        for op in lab
            .steps
            .iter()
            .flat_map(|s| &s.operations)
            .filter(|op| !op.passed)
        {
            md.push_str(&format!(
                "- **{}** → {} ({})\n",
                cell(&op.name),
                cell(&observed_summary(op)),
                cell(&op.ran)
            ));
            let lines = details(op);
            if !lines.is_empty() {
                md.push('\n');
                md.push_str(&fenced(&lines.join("\n"), "  "));
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_with_backticks_cannot_close_its_block() {
        let block = fenced("got body: ```\n# not a heading", "  ");
        assert!(block.starts_with("  ````text\n"), "{block}");
        assert!(block.ends_with("\n  ````\n"), "{block}");
        assert!(block.contains("\n  # not a heading\n"), "{block}");
    }
}
