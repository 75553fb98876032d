//! What a run observed, in one serializable model: the terminal lines, the JSON output,
//! the JUnit file and the explanations are all rendered from it.

mod explain;
mod human;
mod junit;

use serde::{Deserialize, Serialize};

use crate::scenario::{Expect, ProbeKind};

pub use explain::render_explanation;
pub use human::{print_summary, probe_line, step_line};
pub use junit::write_junit;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    pub provider: String,
    pub server: String,
    pub kubernetes_version: String,
    pub labs: Vec<LabReport>,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabReport {
    pub id: String,
    pub folder: String,
    pub title: String,
    pub summary: String,
    pub source: String,
    pub outcome: Outcome,
    pub steps: Vec<StepReport>,
    /// Why the lab could not finish (apply, wait or cleanup failed), if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The rendered explanation (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    pub duration_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    /// A probe observed something other than what the lab expects.
    Failed,
    /// The lab could not run to the end (cluster or environment problem).
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    pub name: String,
    /// What the step did before probing: "applied Role default/pod-reader", ...
    pub actions: Vec<String>,
    pub probes: Vec<ProbeReport>,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub id: String,
    pub name: String,
    pub kind: ProbeKind,
    /// Where it ran: "in pod default/mydemo", "on host for pod default/mydemo", or
    /// "as kubelab (SubjectAccessReview)".
    pub ran: String,
    /// The command as it runs in the pod (never with a token in it).
    pub command: String,
    pub passed: bool,
    pub expected: Expect,
    pub observed: Observed,
    /// One line per unmet expectation: "status: expected 403, got 200".
    pub failures: Vec<String>,
    pub duration_ms: u64,
}

/// What a probe saw. Every text here has passed through token redaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The response body or command output (truncated).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// The authorizer's reason for a can-i answer, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_reason: Option<String>,
    /// The identity the request was made as: "system:serviceaccount:default:tokendemo".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The pod's token, shortened, and its decoded claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenInfo>,
    /// The RBAC bindings that name the identity (directly or through its groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<BindingInfo>,
    /// What the RBAC evaluator says about the request, from the cluster's RBAC objects:
    /// why it is allowed or denied, and the 403 message it predicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<crate::rbac::Why>,
    /// Something kept the probe from observing (curl could not connect, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The first characters only: "eyJhbGciOiJFUzI1NiIs…".
    pub prefix: String,
    pub claims: serde_json::Value,
    /// `iat` and `exp` as RFC 3339 times, and how long the token is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_seconds: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BindingInfo {
    /// "RoleBinding default/read-pods" or "ClusterRoleBinding system:discovery".
    pub binding: String,
    /// "Role default/pod-reader" or "ClusterRole system:discovery".
    pub role: String,
    /// How the binding names the identity: "ServiceAccount default/tokendemo", "Group system:authenticated".
    pub subject: String,
    /// The role's rules, one line each: "get, list, watch pods".
    pub rules: Vec<String>,
}

impl RunReport {
    pub fn probes(&self) -> impl Iterator<Item = &ProbeReport> {
        self.labs
            .iter()
            .flat_map(|l| l.steps.iter().flat_map(|s| s.probes.iter()))
    }

    /// 0 all passed, 1 a probe failed, 3 a lab could not run.
    pub fn exit_code(&self) -> u8 {
        if self.labs.iter().any(|l| l.outcome == Outcome::Error) {
            3
        } else if self.labs.iter().any(|l| l.outcome == Outcome::Failed) {
            1
        } else {
            0
        }
    }
}

/// An error and its sources on one line: "a: b: c".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
