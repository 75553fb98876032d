//! A run as one self-contained HTML page (no network, no files beside it): a summary,
//! then per lab its checks with what each saw, the details of every failure with its
//! diagnosis, and the lab's explanation rendered from Markdown.

use std::time::Duration;

use super::human::{details, diagnosis_lines, observed_summary};
use super::{LabReport, OperationReport, Outcome, RunReport};
use crate::ui::format_duration;

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = r#"
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #1d1d1f; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border: 1px solid #ccd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef; }
.passed { color: #16794a; } .failed, .invalid, .error { color: #b3261e; } .skipped { color: #8a6d00; }
.badge { font-weight: 600; text-transform: uppercase; font-size: .8em; letter-spacing: .04em; }
tr.failing td { background: #fff3f2; }
pre { background: #f6f6f8; padding: .5em; white-space: pre-wrap; margin: .2em 0; }
.diagnosis { border-left: 4px solid #b3261e; padding: .2em .8em; margin: .4em 0; background: #fff8f7; }
.explanation { border-left: 4px solid #99c; padding: 0 1em; margin: 1em 0; }
code { font-size: .92em; }
"#;

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Invalid => "invalid",
        Outcome::Error => "error",
        Outcome::Skipped => "skipped",
    }
}

fn badge(outcome: Outcome) -> String {
    let word = outcome_word(outcome);
    format!("<span class=\"badge {word}\">{word}</span>")
}

fn duration(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

/// A link target that neither runs script nor leaves the page's own scheme: web
/// addresses, fragments and relative paths; anything else becomes "#".
fn safe_url(url: pulldown_cmark::CowStr<'_>) -> pulldown_cmark::CowStr<'_> {
    let scheme = url
        .split_once(':')
        .map(|(s, _)| s)
        .filter(|s| !s.contains('/'));
    match scheme {
        None | Some("http") | Some("https") => url,
        Some(_) => "#".into(),
    }
}

/// Markdown to HTML. Lab authors and observed text write it, so nothing in it runs or
/// loads: raw HTML is shown as text, images become links, links keep safe targets.
fn markdown(text: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        })
        | Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, parser);
    out
}

fn operation_row(op: &OperationReport) -> String {
    let class = if op.passed { "" } else { " class=\"failing\"" };
    let mut row = format!(
        "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        badge(op.outcome),
        escape(&op.name),
        escape(&observed_summary(op)),
        escape(&op.ran),
        duration(op.duration_ms)
    );
    let lines = details(op);
    if !lines.is_empty() {
        let diagnosis = diagnosis_lines(&op.observed.diagnosis);
        let rest: Vec<&String> = lines.iter().filter(|l| !diagnosis.contains(l)).collect();
        row.push_str(&format!("<tr{class}><td></td><td colspan=\"4\">"));
        if !rest.is_empty() {
            let text: Vec<&str> = rest.iter().map(|l| l.as_str()).collect();
            row.push_str(&format!("<pre>{}</pre>", escape(&text.join("\n"))));
        }
        if !diagnosis.is_empty() {
            row.push_str(&format!(
                "<div class=\"diagnosis\"><strong>What to change</strong><pre>{}</pre></div>",
                escape(&diagnosis.join("\n"))
            ));
        }
        row.push_str("</td></tr>\n");
    }
    row
}

fn lab_section(lab: &LabReport) -> String {
    let mut html = format!(
        "<section class=\"lab\" id=\"lab-{id}\" data-outcome=\"{word}\">\n<h2>{} {} {}</h2>\n<p>{} · {} checks · {}</p>\n",
        badge(lab.outcome),
        escape(&lab.folder),
        escape(&lab.title),
        escape(&lab.summary),
        lab.checks_passed(),
        duration(lab.duration_ms),
        id = escape(&lab.id),
        word = outcome_word(lab.outcome),
    );
    if let Some(error) = &lab.error {
        html.push_str(&format!("<pre class=\"error\">{}</pre>\n", escape(error)));
    }
    for step in &lab.steps {
        html.push_str(&format!(
            "<h3>{}</h3>\n<table><thead><tr><th>result</th><th>operation</th><th>saw</th><th>where</th><th>time</th></tr></thead><tbody>\n",
            escape(&step.name)
        ));
        for op in &step.operations {
            html.push_str(&operation_row(op));
        }
        html.push_str("</tbody></table>\n");
    }
    if let Some(explanation) = &lab.explanation {
        html.push_str(&format!(
            "<div class=\"explanation\">{}</div>\n",
            markdown(explanation)
        ));
    }
    html.push_str("</section>\n");
    html
}

/// The whole page.
pub fn page(run: &RunReport) -> String {
    let mut summary = String::from(
        "<table id=\"summary\"><thead><tr><th>lab</th><th>title</th><th>result</th><th>checks</th><th>time</th></tr></thead><tbody>\n",
    );
    for lab in &run.labs {
        summary.push_str(&format!(
            "<tr><td><a href=\"#lab-{id}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&lab.folder),
            escape(&lab.title),
            badge(lab.outcome),
            lab.checks_passed(),
            duration(lab.duration_ms),
            id = escape(&lab.id),
        ));
    }
    summary.push_str("</tbody></table>\n");
    let sections: String = run.labs.iter().map(lab_section).collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kubelab run {run_id}</title><style>{STYLE}</style></head>\n<body>\n<h1>kubelab run {run_id}</h1>\n<p id=\"verdict\">{passed}/{total} labs passed on {provider} ({server}, Kubernetes {version}) in {time}</p>\n{summary}{sections}</body></html>\n",
        run_id = escape(&run.run_id),
        passed = run.labs_passed(),
        total = run.labs.len(),
        provider = escape(&run.provider),
        server = escape(&run.server),
        version = escape(&run.kubernetes_version),
        time = duration(run.duration_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_raw_html_is_shown_as_text() {
        let html = markdown("# Why\n\nThe **token** <script>alert(1)</script>");
        assert!(html.contains("<h1>Why</h1>"), "{html}");
        assert!(html.contains("<strong>token</strong>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn links_keep_safe_targets_and_images_load_nothing() {
        let html = markdown(
            "[a](javascript:alert(1)) [b](https://kubernetes.io/docs) [c](#lab-02) ![d](http://x/y.png)",
        );
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains(r#"<a href="https://kubernetes.io/docs">b</a>"#),
            "{html}"
        );
        assert!(html.contains(r##"<a href="#lab-02">c</a>"##), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }
}
