//! A lab's explanation: its tera template rendered with what the run observed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{LabReport, OperationReport};
use crate::engine::Target;

#[derive(Serialize)]
struct StepView<'a> {
    name: &'a str,
    /// What the step changed: "applied Role default/pod-reader", ...
    actions: Vec<String>,
    /// Operations by id: `steps.<step>.ops.<id>`.
    ops: BTreeMap<&'a str, &'a OperationReport>,
}

#[derive(Serialize)]
struct View<'a> {
    lab: &'a LabReport,
    provider: &'a str,
    server: &'a str,
    kubernetes_version: &'a str,
    /// "in pod" where a node runs pods, "on host for pod" where kubelab stands in.
    ran: &'a str,
    steps: BTreeMap<&'a str, StepView<'a>>,
}

/// Renders `template`; a template error becomes the explanation's text, so the run
/// still reports what it observed.
pub fn render_explanation(template: &str, lab: &LabReport, target: &Target) -> String {
    let steps = lab
        .steps
        .iter()
        .map(|s| {
            let ops = s.operations.iter().map(|p| (p.id.as_str(), p)).collect();
            (
                s.id.as_str(),
                StepView {
                    name: &s.name,
                    actions: s.actions(),
                    ops,
                },
            )
        })
        .collect();
    let ran = match target.execution {
        crate::probe::Execution::Host(_) => "on host for pod",
        crate::probe::Execution::InPod => "in pod",
    };
    let view = View {
        lab,
        provider: &target.provider,
        server: &target.server,
        kubernetes_version: &target.kubernetes_version,
        ran,
        steps,
    };
    let rendered = tera::Context::from_serialize(&view)
        .and_then(|context| tera::Tera::one_off(template, &context, false));
    match rendered {
        Ok(text) => text,
        Err(e) => format!(
            "(the explanation of lab {} could not be rendered: {})",
            lab.id,
            super::error_chain(&e)
        ),
    }
}
