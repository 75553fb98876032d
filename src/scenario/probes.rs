//! The probe kinds: checks made from inside a pod (http, exec, kubectl, file, logs) or
//! asked of the API server (can-i). Each kind carries its own expectations.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::forms::Timeout;
use super::matchers::{JsonExpect, Text};

/// One probe: exactly one kind. (Each is read once per lab and never moved in bulk, so
/// the size difference between kinds costs nothing worth a Box.)
#[derive(Clone, Debug, PartialEq, Serialize)]
#[allow(clippy::large_enum_variant)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    Http(HttpProbe),
    Exec(ExecProbe),
    Kubectl(KubectlProbe),
    File(FileProbe),
    CanI(CanIProbe),
    Logs(LogsProbe),
}

impl Probe {
    /// Whether running it may change the cluster: a request that is not a read, or a
    /// command.
    pub fn may_write(&self) -> bool {
        match self {
            Probe::Http(http) => !matches!(
                http.method.to_uppercase().as_str(),
                "GET" | "HEAD" | "OPTIONS"
            ),
            Probe::Exec(_) | Probe::Kubectl(_) => true,
            Probe::File(_) | Probe::CanI(_) | Probe::Logs(_) => false,
        }
    }

    pub fn key(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Exec(_) => "exec",
            Probe::Kubectl(_) => "kubectl",
            Probe::File(_) => "file",
            Probe::CanI(_) => "can-i",
            Probe::Logs(_) => "logs",
        }
    }

    /// Everything but can-i runs from a pod.
    pub fn needs_pod(&self) -> bool {
        !matches!(self, Probe::CanI(_))
    }

    /// Whether it expects to be let in: a denial is then what is wrong (and worth a
    /// diagnosis), not what the lab shows.
    pub fn expects_access(&self) -> bool {
        match self {
            Probe::Http(p) => p.expect.status.is_none_or(|s| s < 400),
            Probe::Kubectl(p) => p.expect.exit_code.is_none_or(|c| c == 0),
            Probe::Exec(p) => p.expect.exit_code.is_none_or(|c| c == 0),
            Probe::CanI(p) => p.expect.allowed,
            Probe::Logs(_) => true,
            Probe::File(_) => false,
        }
    }

    /// The fields its `expect` may have.
    pub fn expect_fields(&self) -> &'static [&'static str] {
        match self {
            Probe::Http(_) => &["status", "reason", "message", "body", "json"],
            Probe::Exec(_) => &["exit-code", "stdout", "stderr"],
            Probe::Kubectl(_) => &["exit-code", "output"],
            Probe::File(_) => &["exists", "mode", "owner", "content"],
            Probe::CanI(_) => &["allowed"],
            Probe::Logs(_) => &["output"],
        }
    }

    /// The expectations, as written, for reports.
    pub fn expected(&self) -> serde_json::Value {
        let value = match self {
            Probe::Http(p) => serde_json::to_value(&p.expect),
            Probe::Exec(p) => serde_json::to_value(&p.expect),
            Probe::Kubectl(p) => serde_json::to_value(&p.expect),
            Probe::File(p) => serde_json::to_value(&p.expect),
            Probe::CanI(p) => serde_json::to_value(&p.expect),
            Probe::Logs(p) => serde_json::to_value(&p.expect),
        };
        value.expect("expectations serialize")
    }
}

/// `curl https://kubernetes.default.svc<path>` from the pod.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpProbe {
    #[serde(default = "default_method")]
    pub method: String,
    /// May use `$(hostname)`, `${NAMESPACE}` and captured `${VARIABLES}`.
    pub path: String,
    /// Query string without the leading '?', e.g. "watch=true".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body: a mapping is sent as JSON, a string as it is. May use
    /// `$(cat /path/in/pod)`, `$(hostname)`, `${NAMESPACE}`, `${VARIABLES}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// The request body from a file beside lab.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<String>,
    #[serde(default)]
    pub token: TokenSource,
    /// Skip TLS verification (`curl -k`): for a pod without the mounted ca.crt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Values of the JSON response to keep as variables: `{POD_UID: metadata.uid}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
    pub expect: HttpExpect,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The `reason` of a Status body (Forbidden, Unauthorized, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `message` of a Status body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
    /// The whole response body, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Text>,
    /// Fields of the JSON body by dotted path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: JsonExpect,
}

/// Which token an http probe sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TokenSource {
    /// The pod's own ServiceAccount token file, as the seeds' curl commands read it.
    #[default]
    Pod,
    /// No Authorization header: the request is anonymous.
    None,
    /// A well-formed but wrongly signed token: authentication fails (401).
    Invalid,
    /// A token an earlier `token` operation requested, by its name.
    Named(String),
    /// A token file at this path in the pod (a projected volume of the lab's own).
    File(String),
}

impl TokenSource {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "pod" => TokenSource::Pod,
            "none" => TokenSource::None,
            "invalid" => TokenSource::Invalid,
            path if path.starts_with('/') => TokenSource::File(path.to_string()),
            name if super::lint::is_identifier(name) => TokenSource::Named(name.to_string()),
            other => {
                return Err(format!(
                    "'{other}' is not pod, none, invalid, a token's name or an absolute path"
                ));
            }
        })
    }
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Pod => f.write_str("pod"),
            TokenSource::None => f.write_str("none"),
            TokenSource::Invalid => f.write_str("invalid"),
            TokenSource::Named(name) | TokenSource::File(name) => f.write_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for TokenSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TokenSource::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl Serialize for TokenSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for TokenSource {
    fn schema_name() -> Cow<'static, str> {
        "TokenSource".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "pod (the mounted token, default), none, invalid, the name of a token operation, or a token file's path in the pod."
        })
    }
}

/// Any command in the pod's container: `command` (no shell) or `script` (`sh -c`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExecProbe {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    pub expect: ExecExpect,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExecExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<Text>,
}

/// `kubectl <args>` inside the pod, with the pod's in-cluster credentials.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KubectlProbe {
    pub args: Vec<String>,
    pub expect: KubectlExpect,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KubectlExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// stdout and stderr together, as a terminal shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Text>,
}

/// A file in the pod: whether it exists, its mode and owner, its content. A file that
/// holds a token is never printed.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileProbe {
    pub path: String,
    pub expect: FileExpect,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// Permission bits in octal, as `stat -c %a` prints them: "644", "600".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// "UID:GID", as `stat -c %u:%g` prints them: "0:0", "1000:10000".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Text>,
}

/// A SubjectAccessReview, as `kubectl auth can-i --as=<as>` asks it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CanIProbe {
    /// The user asked about, e.g. system:serviceaccount:project-swan:default.
    #[serde(rename = "as")]
    pub user: String,
    /// Groups besides those the API server adds (system:authenticated, the
    /// ServiceAccount groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub verb: String,
    pub resource: String,
    #[serde(default)]
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub expect: CanIExpect,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CanIExpect {
    pub allowed: bool,
}

/// The logs of the probe's pod (the current container, else the previous one after a
/// restart), read until they match or the timeout ends.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogsProbe {
    /// How long to wait for matching output (default 90s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    pub expect: LogsExpect,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogsExpect {
    pub output: Text,
}
