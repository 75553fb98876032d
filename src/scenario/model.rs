//! The lab file model: what a lab.yaml may say. A lab is steps; a step is an ordered
//! list of operations, each doing one thing (apply, create, patch, delete, assert,
//! events, wait, token, restart, or one probe). Unknown fields are rejected, so a typo
//! is an error with its line; the JSON Schema (`kubelab schema`) comes from these types.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::forms::{ObjectRef, ShortForms, ShortOr, Timeout};
use super::matchers::Text;
use super::probes::*;

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lab {
    /// Short id, by convention the folder's number ("01").
    pub id: String,
    pub title: String,
    /// One or two sentences: what the lab shows.
    pub summary: String,
    /// Where the lab comes from: a section of a text, or an upstream test.
    pub source: String,
    /// Namespaces the lab's objects and pods live in; the first is the default.
    /// Labs that share a namespace never run at the same time.
    pub namespaces: Vec<String>,
    /// What the cluster must offer; a lab whose needs are not met is skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
    /// The explanation template (tera, Markdown) beside lab.yaml.
    #[serde(default = "default_explain")]
    pub explain: String,
    /// A lab that runs itself: steps in order. (A hands-on lab has a task instead.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Hands-on: what the student is asked to do (Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Hands-on: what `start` and `reset` set up (`run` does it first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start: Vec<Operation>,
    /// Hands-on: what `check` looks at in the cluster as it is (`run` does it last).
    /// Checks only read: they may assert, wait, look at events, request tokens and
    /// probe, never change objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Hands-on: hints, shown one at a time, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// Hands-on: what solves the task; `solution` shows it, `solution --apply` and
    /// `run` apply it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub solution: Vec<Operation>,
}

/// One graded check of a hands-on lab: it passes when all its operations pass.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Check {
    /// Key in the explanation template and in progress.
    pub id: String,
    /// What the student sees: "mydemo may list pods in default".
    pub title: String,
    #[serde(default = "one_point")]
    pub points: u32,
    #[serde(rename = "do")]
    pub operations: Vec<Operation>,
}

fn one_point() -> u32 {
    1
}

/// What part of a lab to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Everything: a self-running lab's steps; a hands-on lab's start, solution, checks.
    All,
    /// A hands-on lab's starting state.
    Start,
    /// A hands-on lab's checks against the cluster as it is.
    Checks,
    /// A hands-on lab's solution.
    Solution,
}

impl Lab {
    pub fn is_hands_on(&self) -> bool {
        self.task.is_some()
    }

    /// The steps that run `part`. A hands-on lab's start and solution are a step each,
    /// and each check is a step of its own (named by its title).
    pub fn plan(&self, part: Part) -> Vec<Step> {
        if !self.is_hands_on() {
            return if part == Part::All {
                self.steps.clone()
            } else {
                Vec::new()
            };
        }
        let step = |id: &str, name: &str, operations: &[Operation]| Step {
            id: id.into(),
            name: name.into(),
            operations: operations.to_vec(),
            sequential: false,
            apply: None,
            restart: None,
            wait: None,
            probes: None,
        };
        let start = (!self.start.is_empty()).then(|| step("start", "set up the task", &self.start));
        let solution = step("solution", "apply the solution", &self.solution);
        let checks = self
            .checks
            .iter()
            .map(|c| step(&c.id, &c.title, &c.operations));
        match part {
            Part::All => start.into_iter().chain([solution]).chain(checks).collect(),
            Part::Start => start.into_iter().collect(),
            Part::Checks => checks.collect(),
            Part::Solution => vec![solution],
        }
    }

    /// Points of a hands-on lab's checks, by id.
    pub fn points(&self, check: &str) -> u32 {
        self.checks
            .iter()
            .find(|c| c.id == check)
            .map(|c| c.points)
            .unwrap_or(0)
    }

    pub fn max_points(&self) -> u32 {
        self.checks.iter().map(|c| c.points).sum()
    }
}

fn default_explain() -> String {
    "explain.md.tera".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    /// A node that really runs pods (kind, a cluster with nodes, `cluster up --node`).
    Node,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Step {
    /// Key of this step in the explanation template (`steps.<id>`).
    pub id: String,
    pub name: String,
    /// The operations, in order. Consecutive probes run side by side unless the step
    /// is `sequential`; everything else runs one at a time.
    #[serde(default, rename = "do")]
    pub operations: Vec<Operation>,
    /// Run consecutive probes one after another instead of side by side.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequential: bool,
    /// The first lab form's keys, kept only so lint can say how to migrate.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub apply: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub restart: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub wait: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub probes: Option<serde_json::Value>,
}

/// One operation: the fields every operation may have, and exactly one action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Operation {
    /// Key in the explanation template (`steps.<step>.ops.<id>`); probes need one.
    pub id: Option<String>,
    /// What the operation shows, in a few words (the report's line).
    pub name: Option<String>,
    /// Probes from a pod: the Pod's name, or `deployment/x`, `job/x`, `statefulset/x`,
    /// `daemonset/x` for one of its pods.
    pub pod: Option<String>,
    /// The container a probe runs in (or whose log it reads); default: the first.
    pub container: Option<String>,
    /// Defaults to the lab's first namespace.
    pub namespace: Option<String>,
    /// Probes: try again (every half second) until the expectations hold or this much
    /// time has passed, for what the cluster does eventually (a deleted pod's token
    /// stops working, a controller reconciles).
    pub eventually: Option<Timeout>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Apply(Apply),
    Create(Apply),
    Patch(PatchOp),
    Delete(DeleteOp),
    Assert(AssertOp),
    Events(EventsOp),
    Wait(WaitOp),
    Token(TokenOp),
    Restart(ObjectRef),
    Probe(Probe),
}

impl Action {
    /// Whether it may change which pods there are (or what they are).
    pub fn may_change_pods(&self) -> bool {
        match self {
            Action::Apply(_)
            | Action::Create(_)
            | Action::Patch(_)
            | Action::Delete(_)
            | Action::Restart(_) => true,
            Action::Probe(probe) => probe.may_write(),
            Action::Assert(_) | Action::Events(_) | Action::Wait(_) | Action::Token(_) => false,
        }
    }

    /// What the operation does, in a few words: "apply rbac.yaml", "wait for pod/x (ready)".
    pub fn describe(&self) -> String {
        match self {
            Action::Apply(apply) => format!("apply {}", apply.all_files().join(", ")),
            Action::Create(apply) => format!("create {}", apply.all_files().join(", ")),
            Action::Patch(patch) => format!("patch {}", patch.object),
            Action::Delete(delete) => match (&delete.object, &delete.file) {
                (Some(object), _) => format!("delete {object}"),
                (None, Some(file)) => format!("delete what {file} names"),
                _ => "delete".into(),
            },
            Action::Assert(assert) if assert.absent => format!("no {} exists", assert.object),
            Action::Assert(assert) if assert.matches.is_none() => {
                format!("{} exists", assert.object)
            }
            Action::Assert(assert) => format!("{} matches", assert.object),
            Action::Events(events) => format!("{} has a {} event", events.object, events.reason),
            Action::Wait(wait) => format!(
                "wait for {} ({})",
                wait.object,
                serde_json::to_value(&wait.until)
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .unwrap_or_default()
            ),
            Action::Token(token) => format!(
                "request token '{}' for {}",
                token.name, token.serviceaccount
            ),
            Action::Restart(target) => format!("restart {target}"),
            Action::Probe(probe) => probe.key().to_string(),
        }
    }

    pub fn key(&self) -> &'static str {
        match self {
            Action::Apply(_) => "apply",
            Action::Create(_) => "create",
            Action::Patch(_) => "patch",
            Action::Delete(_) => "delete",
            Action::Assert(_) => "assert",
            Action::Events(_) => "events",
            Action::Wait(_) => "wait",
            Action::Token(_) => "token",
            Action::Restart(_) => "restart",
            Action::Probe(probe) => probe.key(),
        }
    }
}

/// Every key an operation may have: the common ones, then one per action.
pub const OPERATION_KEYS: &[&str] = &[
    "id",
    "name",
    "pod",
    "container",
    "namespace",
    "eventually",
    "apply",
    "create",
    "patch",
    "delete",
    "assert",
    "events",
    "wait",
    "token",
    "restart",
    "http",
    "exec",
    "kubectl",
    "file",
    "can-i",
    "logs",
];

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OperationVisitor;
        impl<'de> Visitor<'de> for OperationVisitor {
            type Value = Operation;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an operation: a mapping with one of apply, create, patch, delete, assert, events, wait, token, restart, http, exec, kubectl, file, can-i, logs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Operation, A::Error> {
                let mut op = Operation {
                    id: None,
                    name: None,
                    pod: None,
                    container: None,
                    namespace: None,
                    eventually: None,
                    action: Action::Restart(ObjectRef {
                        resource: String::new(),
                        name: None,
                    }),
                };
                let mut action: Option<(String, Action)> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let text_field = match key.as_str() {
                        "id" => Some(&mut op.id),
                        "name" => Some(&mut op.name),
                        "pod" => Some(&mut op.pod),
                        "container" => Some(&mut op.container),
                        "namespace" => Some(&mut op.namespace),
                        _ => None,
                    };
                    if let Some(field) = text_field {
                        *field = Some(map.next_value()?);
                        continue;
                    }
                    let next = match key.as_str() {
                        "eventually" => {
                            op.eventually = Some(map.next_value()?);
                            continue;
                        }
                        "apply" => Action::Apply(map.next_value::<ShortOr<_>>()?.0),
                        "create" => Action::Create(map.next_value::<ShortOr<_>>()?.0),
                        "patch" => Action::Patch(map.next_value()?),
                        "delete" => Action::Delete(map.next_value::<ShortOr<_>>()?.0),
                        "assert" => Action::Assert(map.next_value()?),
                        "events" => Action::Events(map.next_value()?),
                        "wait" => Action::Wait(map.next_value::<ShortOr<_>>()?.0),
                        "token" => Action::Token(map.next_value()?),
                        "restart" => Action::Restart(map.next_value()?),
                        "http" => Action::Probe(Probe::Http(map.next_value()?)),
                        "exec" => Action::Probe(Probe::Exec(map.next_value()?)),
                        "kubectl" => Action::Probe(Probe::Kubectl(map.next_value()?)),
                        "file" => Action::Probe(Probe::File(map.next_value()?)),
                        "can-i" => Action::Probe(Probe::CanI(map.next_value()?)),
                        "logs" => Action::Probe(Probe::Logs(map.next_value()?)),
                        other => return Err(de::Error::unknown_field(other, OPERATION_KEYS)),
                    };
                    if let Some((first, _)) = &action {
                        return Err(de::Error::custom(format!(
                            "an operation does one thing, but this one has both `{first}` and `{key}`: split it into two operations"
                        )));
                    }
                    action = Some((key, next));
                }
                let (_, action) = action.ok_or_else(|| {
                    de::Error::custom(
                        "an operation needs one of apply, create, patch, delete, assert, events, wait, token, restart, http, exec, kubectl, file, can-i, logs",
                    )
                })?;
                op.action = action;
                Ok(op)
            }
        }
        // Any node: a scalar or a list gets the visitor's own "expected an operation".
        d.deserialize_any(OperationVisitor)
    }
}

/// The operation's schema: common keys plus exactly one action key.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(dead_code)] // only its schema is used
struct OperationSchema {
    id: Option<String>,
    name: Option<String>,
    pod: Option<String>,
    container: Option<String>,
    namespace: Option<String>,
    eventually: Option<Timeout>,
    apply: Option<ShortOr<Apply>>,
    create: Option<ShortOr<Apply>>,
    patch: Option<PatchOp>,
    delete: Option<ShortOr<DeleteOp>>,
    assert: Option<AssertOp>,
    events: Option<EventsOp>,
    wait: Option<ShortOr<WaitOp>>,
    token: Option<TokenOp>,
    restart: Option<ObjectRef>,
    http: Option<HttpProbe>,
    exec: Option<ExecProbe>,
    kubectl: Option<KubectlProbe>,
    file: Option<FileProbe>,
    can_i: Option<CanIProbe>,
    logs: Option<LogsProbe>,
}

impl JsonSchema for Operation {
    fn schema_name() -> Cow<'static, str> {
        "Operation".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = OperationSchema::json_schema(generator);
        let one_of: Vec<serde_json::Value> = OPERATION_KEYS[6..]
            .iter()
            .map(|key| json_schema!({"required": [key]}).to_value())
            .collect();
        schema.insert(
            "description".into(),
            "One operation: id, name, pod, container, namespace, and exactly one action.".into(),
        );
        schema.insert("oneOf".into(), one_of.into());
        schema
    }
}

/// Who an operation acts as, through impersonation: a user with groups, or a
/// ServiceAccount (`name` in the operation's namespace, or `namespace/name`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serviceaccount: Option<String>,
}

impl Identity {
    /// The user and groups to impersonate: a ServiceAccount (`name` in `namespace`,
    /// or `namespace/name`) gets the groups the API server gives its tokens.
    pub fn user_and_groups(&self, namespace: &str) -> (String, Vec<String>) {
        match (&self.user, &self.serviceaccount) {
            (Some(user), _) => (user.clone(), self.groups.clone()),
            (None, Some(account)) => {
                let (ns, name) = account.split_once('/').unwrap_or((namespace, account));
                let mut groups = vec![
                    "system:serviceaccounts".to_string(),
                    format!("system:serviceaccounts:{ns}"),
                ];
                groups.extend(self.groups.iter().cloned());
                (format!("system:serviceaccount:{ns}:{name}"), groups)
            }
            (None, None) => ("system:anonymous".into(), Vec::new()),
        }
    }
}

/// The rejection an operation expects from the API server; it passes when the
/// request is rejected this way.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
}

/// Server-side apply (or create) of manifest files beside lab.yaml:
/// `apply: rbac.yaml`, `apply: [a.yaml, b.yaml]`, or the mapping.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Apply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<ExpectError>,
}

impl Apply {
    /// Every file, in order.
    pub fn all_files(&self) -> Vec<&str> {
        self.file
            .iter()
            .chain(&self.files)
            .map(String::as_str)
            .collect()
    }
}

impl ShortForms for Apply {
    type Long = Apply;
    const EXPECTING: &'static str =
        "a manifest file, a list of files, or {file, files, as, expect-error}";
    fn from_long(long: Apply) -> Self {
        long
    }
    fn from_str(file: String) -> Result<Self, String> {
        Ok(Apply {
            file: Some(file),
            ..Default::default()
        })
    }
    fn from_list(files: Vec<String>) -> Result<Self, String> {
        Ok(Apply {
            files,
            ..Default::default()
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PatchType {
    /// JSON merge patch (RFC 7386), as `kubectl patch --type merge`.
    #[default]
    Merge,
    /// Strategic merge patch, kubectl's default.
    Strategic,
    /// JSON patch (RFC 6902): a list of operations.
    Json,
}

/// Changes an existing object: `{object: serviceaccount/x, patch: {...}}`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PatchOp {
    pub object: ObjectRef,
    #[serde(default, rename = "type")]
    pub patch_type: PatchType,
    pub patch: serde_json::Value,
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<ExpectError>,
}

/// Deletes an object (`delete: pod/mydemo`) or what a manifest file names, and waits
/// until it is gone.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeleteOp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// How long to wait until it is gone (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    /// Seconds a pod gets to stop (default: the pod's own; 0 stops it at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<u32>,
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<ExpectError>,
}

impl ShortForms for DeleteOp {
    type Long = DeleteOp;
    const EXPECTING: &'static str =
        "TYPE/NAME or {object, file, timeout, grace-period, as, expect-error}";
    fn from_long(long: DeleteOp) -> Self {
        long
    }
    fn from_str(text: String) -> Result<Self, String> {
        Ok(DeleteOp {
            object: Some(ObjectRef::parse(&text)?),
            ..Default::default()
        })
    }
}

/// An object (by name, or at least one object of a type that a selector chooses) must
/// match a partial tree, watched until the timeout; or, with `absent`, none may exist.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AssertOp {
    pub object: ObjectRef,
    /// A label selector, for `object: TYPE` without a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// A partial YAML tree the object must contain; leaves may be matchers
    /// ({contains: x}, {absent: true}, ...). Arrays match element by element. Without
    /// `matches` or `absent`, the object must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<serde_json::Value>,
    /// The object (or every object the selector chooses) must not exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
    /// Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    /// Fields of the (first) matching object to keep as variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
}

/// The object's events must include one with this reason (and message).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventsOp {
    /// TYPE/NAME, or TYPE for any object of that type in the namespace.
    pub object: ObjectRef,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
    /// Normal or Warning.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
}

/// What a wait waits for.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WaitFor {
    /// Pods (of a Pod or workload) Ready where a node runs them; created where none does.
    /// Other objects: created.
    #[default]
    Ready,
    /// Pods with a running container where a node runs them; created where none does.
    Running,
    Created,
    Deleted,
    /// A condition of the object's status with status "True": `{condition: Complete}`.
    Condition(String),
    /// A field of the object equals a value: `{jsonpath: {path: status.phase, value: Succeeded}}`.
    Jsonpath(JsonpathWait),
}

impl WaitFor {
    /// Whether, for a Pod or workload, it waits for pods to be there (and, where a node
    /// runs them, started).
    pub fn means_started(&self) -> bool {
        matches!(self, WaitFor::Ready | WaitFor::Running | WaitFor::Created)
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JsonpathWait {
    pub path: String,
    pub value: serde_json::Value,
}

/// Waits for an object: `wait: pod/mydemo` (ready), or the mapping.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WaitOp {
    pub object: ObjectRef,
    #[serde(default, rename = "for")]
    pub until: WaitFor,
    /// Default 120s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    /// Fields of the object to keep as variables: `{POD_UID: metadata.uid}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
}

/// A TokenRequest for a ServiceAccount. The token is kept under `name` for later
/// probes (`token: <name>`) and never appears in any output.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenOp {
    pub name: String,
    pub serviceaccount: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
    /// `pod/NAME` or `secret/NAME`: the token dies with that object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_to: Option<ObjectRef>,
}

impl ShortForms for WaitOp {
    type Long = WaitOp;
    const EXPECTING: &'static str = "TYPE/NAME or {object, for, timeout, capture}";
    fn from_long(long: WaitOp) -> Self {
        long
    }
    fn from_str(text: String) -> Result<Self, String> {
        Ok(WaitOp {
            object: ObjectRef::parse(&text)?,
            until: WaitFor::default(),
            timeout: None,
            capture: BTreeMap::new(),
        })
    }
}
