//! What a run observed, in one serializable model: the terminal lines, the JSON output,
//! the JUnit file and the explanations are all rendered from it.

mod explain;
pub mod grade;
pub mod html;
pub mod human;
mod junit;
pub mod markdown;
pub mod timings;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use explain::render_explanation;
pub use grade::{CheckGrade, Grade, grade};
pub use human::{brief, details, diagnosis_lines, observed_summary, operation_line, print_summary};
pub use junit::write_junit;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunReport {
    /// The report format's version: [`SCHEMA_VERSION`] (`kubelab schema report`). A
    /// field's meaning never changes within a version; new fields may appear.
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    pub run_id: String,
    pub provider: String,
    pub server: String,
    pub kubernetes_version: String,
    pub labs: Vec<LabReport>,
    pub duration_ms: u64,
    /// Spent at the end waiting for the labs' namespaces to go.
    #[serde(default)]
    pub namespaces_wait_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LabReport {
    pub id: String,
    pub folder: String,
    pub title: String,
    pub summary: String,
    pub source: String,
    pub outcome: Outcome,
    pub steps: Vec<StepReport>,
    /// Its built-in suite, if it comes from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Why the lab could not finish (apply, wait or cleanup failed), or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The rendered explanation (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    pub duration_ms: u64,
    /// Of which deleting what the lab made.
    #[serde(default)]
    pub cleanup_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    /// A check observed something other than what the lab expects (exit 1).
    Failed,
    /// The lab's content does not work on a cluster: a manifest the API server rejects,
    /// a type it does not know (exit 2).
    Invalid,
    /// The lab could not run to the end: a cluster or environment problem (exit 3).
    Error,
    /// The cluster does not offer what the lab requires (a node).
    Skipped,
}

impl Outcome {
    /// Passed, or skipped because the cluster lacks what it needs: nothing to fix.
    pub fn is_fine(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Skipped)
    }

    /// The more serious of two outcomes (what a lab's operations add up to).
    pub fn worst(self, other: Outcome) -> Outcome {
        let rank = |o: Outcome| match o {
            Outcome::Skipped => 0,
            Outcome::Passed => 1,
            Outcome::Failed => 2,
            Outcome::Invalid => 3,
            Outcome::Error => 4,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepReport {
    pub id: String,
    pub name: String,
    pub operations: Vec<OperationReport>,
    pub duration_ms: u64,
}

impl StepReport {
    /// What the step's non-check operations did: "applied Role default/pod-reader", ...
    pub fn actions(&self) -> Vec<String> {
        self.operations
            .iter()
            .filter(|op| !op.check)
            .flat_map(|op| op.actions.iter().cloned())
            .collect()
    }
}

/// One operation of a step, as it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperationReport {
    /// The operation's id, or its kind and position ("apply_1").
    pub id: String,
    /// The lab's name for it, or a description of what it did.
    pub name: String,
    /// apply, create, patch, delete, assert, events, wait, token, restart, http, exec,
    /// kubectl, file, can-i, logs.
    pub kind: String,
    /// Whether it checks something (probes, assert, events, an expected rejection).
    pub check: bool,
    pub outcome: Outcome,
    /// `outcome == passed` (or skipped), for templates.
    pub passed: bool,
    /// Where it ran: "in pod default/mydemo", "on host for pod default/mydemo", "as
    /// kubelab", "as system:serviceaccount:x:y".
    pub ran: String,
    /// The command or request, as a person would type it (never with a token in it).
    pub command: String,
    /// What it changed: "applied Role default/pod-reader", ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<serde_json::Value>,
    pub observed: Observed,
    /// One line per unmet expectation: "status: expected 403, got 200".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Why it could not run, or why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What a probe saw. Every text here has passed through token redaction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    #[schemars(with = "Option<serde_json::Value>")]
    pub rbac: Option<crate::rbac::Why>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// A file's permission bits ("644") and owner ("0:0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// An assert's `--- expected` / `+++ actual` diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// For a check that failed on a denial: what to change, from the live policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<crate::rbac::Diagnosis>,
    /// Values this operation captured into variables (never a token).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub captured: std::collections::BTreeMap<String, String>,
    /// Something kept the probe from observing (curl could not connect, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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

pub const SCHEMA_VERSION: u32 = 1;

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// The JSON Schema of the JSON report.
pub fn schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(RunReport)).expect("schema serializes");
    schema["$id"] = format!("https://kubelab.dev/schema/report/v{SCHEMA_VERSION}.json").into();
    schema
}

impl LabReport {
    /// Its operations that check something.
    pub fn checks(&self) -> impl Iterator<Item = &OperationReport> {
        self.steps
            .iter()
            .flat_map(|s| &s.operations)
            .filter(|op| op.check)
    }

    /// "3/5": checks passed of all.
    pub fn checks_passed(&self) -> String {
        let passed = self.checks().filter(|op| op.passed).count();
        format!("{passed}/{}", self.checks().count())
    }
}

impl RunReport {
    pub fn labs_passed(&self) -> usize {
        self.labs
            .iter()
            .filter(|l| l.outcome == Outcome::Passed)
            .count()
    }

    /// Every operation that checks something: probes, asserts, events, rejections.
    pub fn checks(&self) -> impl Iterator<Item = &OperationReport> {
        self.operations().filter(|op| op.check)
    }

    pub fn operations(&self) -> impl Iterator<Item = &OperationReport> {
        self.labs
            .iter()
            .flat_map(|l| l.steps.iter().flat_map(|s| s.operations.iter()))
    }

    /// 0 all passed, 1 a check failed, 2 a lab's content is wrong, 3 a lab could not
    /// run.
    pub fn exit_code(&self) -> u8 {
        let worst = self
            .labs
            .iter()
            .fold(Outcome::Passed, |worst, lab| worst.worst(lab.outcome));
        match worst {
            Outcome::Passed | Outcome::Skipped => 0,
            Outcome::Failed => 1,
            Outcome::Invalid => 2,
            Outcome::Error => 3,
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
