//! The lab file model: what a lab.yaml may say. Unknown fields are rejected, so a typo
//! is an error with its line, not a silently ignored key. The JSON Schema editors use
//! (`kubelab schema`) is generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A numbered lab: steps that apply manifests, wait for what they create, and probe
/// the API server.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lab {
    /// Short id, by convention the folder's number ("01").
    pub id: String,
    pub title: String,
    /// One or two sentences: what the lab shows.
    pub summary: String,
    /// The section of the source text the lab comes from.
    pub source: String,
    /// Namespaces the lab's objects and pods live in; the first is the default for
    /// probes. Labs that share a namespace never run at the same time.
    pub namespaces: Vec<String>,
    /// The explanation template (tera, Markdown) beside lab.yaml.
    #[serde(default = "default_explain")]
    pub explain: String,
    pub steps: Vec<Step>,
}

fn default_explain() -> String {
    "explain.md.tera".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Step {
    /// Key of this step in the explanation template (`steps.<id>`).
    pub id: String,
    pub name: String,
    /// Manifest files beside lab.yaml, applied in order (server-side apply).
    #[serde(default)]
    pub apply: Vec<String>,
    /// Deployments to restart after applying (`deployment/<name>`), as
    /// `kubectl rollout restart` does: their pods are replaced.
    #[serde(default)]
    pub restart: Vec<String>,
    /// What must exist (or be ready) before the probes run.
    #[serde(default)]
    pub wait: Vec<Wait>,
    #[serde(default)]
    pub probes: Vec<Probe>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Wait {
    /// A Pod created by this lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// A Deployment created by this lab (waits for its pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Defaults to the lab's first namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub until: WaitUntil,
    /// e.g. "60s", "2m" (default 120s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WaitUntil {
    /// The object exists (its pods, for a Deployment) with everything admission added.
    Created,
    /// Running (some container started) where a node runs pods; created, where none does.
    Running,
    /// Running and Ready where a node runs pods; created, where none does.
    #[default]
    Ready,
}

/// One check. Exactly one of `http`, `kubectl`, `file`, `can-i`, `logs`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Probe {
    /// Key of this probe in the explanation template (`steps.<step>.probes.<id>`).
    pub id: String,
    /// What the probe shows, in a few words.
    pub name: String,
    /// The pod the probe runs from: a Pod's name, or `deployment/<name>` for one of a
    /// Deployment's pods. Not used by `can-i`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The pod's namespace; defaults to the lab's first namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The container the probe runs in (or whose log it reads); defaults to the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubectl: Option<KubectlProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_i: Option<CanIProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsProbe>,
    pub expect: Expect,
}

/// `curl https://kubernetes.default.svc<path>` from the pod.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpProbe {
    #[serde(default = "default_method")]
    pub method: String,
    /// May use `$(hostname)` (the pod's name) and `${NAMESPACE}` (the pod's namespace).
    pub path: String,
    /// Query string without the leading '?', e.g. "watch=true".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default)]
    pub token: TokenChoice,
    /// Skip TLS verification (`curl -k`): for a pod without the mounted ca.crt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenChoice {
    /// The pod's own ServiceAccount token file, as the seeds' curl commands read it.
    #[default]
    Pod,
    /// No Authorization header: the request is anonymous.
    None,
    /// A well-formed but wrongly signed token: authentication fails (401).
    Invalid,
}

/// `kubectl <args>` inside the pod, with the pod's in-cluster credentials.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KubectlProbe {
    pub args: Vec<String>,
}

/// Whether a path exists in the pod's filesystem.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileProbe {
    pub path: String,
}

/// A SubjectAccessReview, as `kubectl auth can-i --as=<as>` asks it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CanIProbe {
    /// The user asked about, e.g. system:serviceaccount:project-swan:default.
    #[serde(rename = "as")]
    pub user: String,
    pub verb: String,
    pub resource: String,
    #[serde(default)]
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Defaults to the lab's first namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The logs of the probe's pod (or of a pod of `deployment/<name>`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogsProbe {}

/// What the probe must observe. Which fields apply depends on the probe's kind.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    /// http: the HTTP status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// http: the `reason` of a Status body (Forbidden, Unauthorized, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// http: the exact `message` of a Status body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// http: text the `message` of a Status body contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_contains: Option<String>,
    /// http: fields of the JSON body by dotted path ("kind", "items.0.metadata.name").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, serde_json::Value>,
    /// kubectl: the exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// kubectl, logs: text the output (stdout and stderr) contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_contains: Option<String>,
    /// file: whether the path exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// can-i: whether the request is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
}

/// The kinds of probe, for messages and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    Http,
    Kubectl,
    File,
    CanI,
    Logs,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 5] = [
        ProbeKind::Http,
        ProbeKind::Kubectl,
        ProbeKind::File,
        ProbeKind::CanI,
        ProbeKind::Logs,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Kubectl => "kubectl",
            ProbeKind::File => "file",
            ProbeKind::CanI => "can-i",
            ProbeKind::Logs => "logs",
        }
    }

    /// The `expect` fields that mean something for this kind.
    pub fn expect_fields(self) -> &'static [&'static str] {
        match self {
            ProbeKind::Http => &["status", "reason", "message", "message-contains", "json"],
            ProbeKind::Kubectl => &["exit-code", "output-contains"],
            ProbeKind::File => &["exists"],
            ProbeKind::CanI => &["allowed"],
            ProbeKind::Logs => &["output-contains"],
        }
    }
}

impl Probe {
    /// The kinds this probe sets (a valid probe sets exactly one).
    pub fn kinds(&self) -> Vec<ProbeKind> {
        let set = [
            self.http.is_some(),
            self.kubectl.is_some(),
            self.file.is_some(),
            self.can_i.is_some(),
            self.logs.is_some(),
        ];
        ProbeKind::ALL
            .iter()
            .zip(set)
            .filter_map(|(kind, is_set)| is_set.then_some(*kind))
            .collect()
    }

    /// Whether the probe runs from inside a pod (everything but `can-i`).
    pub fn needs_pod(&self) -> bool {
        self.can_i.is_none()
    }
}

impl Expect {
    /// The names of the fields that are set, as written in lab files.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let mut add = |name, is_set: bool| {
            if is_set {
                set.push(name)
            }
        };
        add("status", self.status.is_some());
        add("reason", self.reason.is_some());
        add("message", self.message.is_some());
        add("message-contains", self.message_contains.is_some());
        add("json", !self.json.is_empty());
        add("exit-code", self.exit_code.is_some());
        add("output-contains", self.output_contains.is_some());
        add("exists", self.exists.is_some());
        add("allowed", self.allowed.is_some());
        set
    }
}
