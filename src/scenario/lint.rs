//! Checks a deserialized lab against what the types cannot say: ids, files that exist
//! and parse, objects and pods an operation names that an earlier one creates,
//! namespaces, variables defined before use, expectations that can be checked, the
//! explanation template. Every problem names its file, line, column and field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::forms::ObjectRef;
use super::limits::yaml_options;
use super::load::{Manifest, deserialize_problem};
use super::locate::{Locations, Position};
use super::matchers::{Match, Text};
use super::model::*;
use super::probes::*;
use super::problem::Problem;
use super::source::LabFolder;
use super::vars::{self, Reference};

/// What checking a lab produces besides problems: the files it refers to, read.
pub struct Checked {
    pub manifests: BTreeMap<String, Manifest>,
    pub files: BTreeMap<String, String>,
    pub template: String,
    pub problems: Vec<Problem>,
}

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// The workloads whose pods a probe may name (`deployment/x`).
const POD_OWNERS: &[&str] = &[
    "pod",
    "deployment",
    "job",
    "statefulset",
    "daemonset",
    "replicaset",
];

/// Step, operation and token names are template keys (`steps.before.ops.list_pods`).
pub fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

struct Linter<'a> {
    folder: &'a LabFolder,
    file: &'a Path,
    locations: &'a Locations,
    lab: &'a Lab,
    problems: Vec<Problem>,
    manifests: BTreeMap<String, Manifest>,
    files: BTreeMap<String, String>,
    /// Objects earlier operations create: (lower-case kind, namespace, name).
    created: BTreeSet<(String, Option<String>, String)>,
    /// Variables captured so far, and token names requested so far.
    captured: BTreeSet<String>,
    tokens: BTreeSet<String>,
}

impl Linter<'_> {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            at: self.locations.find(&field),
            field,
            message: message.into(),
        });
    }

    fn default_namespace(&self) -> &str {
        self.lab
            .namespaces
            .first()
            .map(String::as_str)
            .unwrap_or("default")
    }

    fn creates(&self, kind: &str, namespace: &str, name: &str) -> bool {
        self.created.iter().any(|(k, ns, n)| {
            k == kind && n == name && ns.as_deref().is_none_or(|ns| ns == namespace)
        })
    }
}

pub fn check(lab: &Lab, folder: &LabFolder, file: &Path, locations: &Locations) -> Checked {
    let mut lint = Linter {
        folder,
        file,
        locations,
        lab,
        problems: Vec::new(),
        manifests: BTreeMap::new(),
        files: BTreeMap::new(),
        created: BTreeSet::new(),
        captured: BTreeSet::new(),
        tokens: BTreeSet::new(),
    };
    check_header(&mut lint);
    if lab.is_hands_on() {
        check_hands_on(&mut lint);
    } else if lab.steps.is_empty() {
        lint.problem(
            "steps",
            "a lab needs steps, or a task (a hands-on lab: task, start, checks, hints, solution)",
        );
    }
    for (field, set) in [
        ("start", !lab.start.is_empty()),
        ("checks", !lab.checks.is_empty()),
        ("hints", !lab.hints.is_empty()),
        ("solution", !lab.solution.is_empty()),
    ] {
        if set && !lab.is_hands_on() {
            lint.problem(
                field,
                format!("`{field}` belongs to a hands-on lab: give it a `task`"),
            );
        }
    }
    let mut step_ids = BTreeSet::new();
    for (s, step) in lab.steps.iter().enumerate() {
        let at = format!("steps[{s}]");
        if !is_identifier(&step.id) {
            lint.problem(format!("{at}.id"), not_identifier(&step.id));
        }
        if !step_ids.insert(step.id.as_str()) {
            lint.problem(
                format!("{at}.id"),
                format!("step id '{}' is used twice", step.id),
            );
        }
        if let Some(key) = first_legacy_key(step) {
            lint.problem(format!("{at}.{key}"), MIGRATION);
            continue;
        }
        if step.operations.is_empty() {
            lint.problem(&at, "a step needs operations: list them under `do:`");
        }
        check_operations(&mut lint, &step.operations, &format!("{at}.do"), "step");
    }
    let template = check_template(&mut lint);
    Checked {
        manifests: lint.manifests,
        files: lint.files,
        template,
        problems: lint.problems,
    }
}

/// The operations of a step, a start, a solution or a check, in order.
fn check_operations(lint: &mut Linter, operations: &[Operation], at: &str, part: &str) {
    let mut op_ids = BTreeSet::new();
    for (o, op) in operations.iter().enumerate() {
        let field = format!("{at}[{o}]");
        if let Some(id) = &op.id {
            if !is_identifier(id) {
                lint.problem(format!("{field}.id"), not_identifier(id));
            } else if !op_ids.insert(id.clone()) {
                lint.problem(
                    format!("{field}.id"),
                    format!("operation id '{id}' is used twice in this {part}"),
                );
            }
        }
        check_operation(lint, op, &field);
    }
}

/// A hands-on lab: a task, then the operations in the order `run` does them (start,
/// solution, checks), so what a check names was made by something before it.
fn check_hands_on(lint: &mut Linter) {
    let lab = lint.lab;
    if !lab.steps.is_empty() {
        lint.problem(
            "steps",
            "a hands-on lab (it has a task) has start, checks and solution instead of steps",
        );
    }
    if lab.task.as_deref().is_some_and(|t| t.trim().is_empty()) {
        lint.problem("task", "say what the student is to do (Markdown)");
    }
    for (field, empty, what) in [
        ("checks", lab.checks.is_empty(), "what `check` looks at"),
        ("hints", lab.hints.is_empty(), "at least one hint"),
        (
            "solution",
            lab.solution.is_empty(),
            "the operations that solve the task",
        ),
    ] {
        if empty {
            lint.problem(field, format!("a hands-on lab needs {what}"));
        }
    }
    check_operations(lint, &lab.start, "start", "start");
    check_operations(lint, &lab.solution, "solution", "solution");
    let mut ids = BTreeSet::new();
    for (c, check) in lab.checks.iter().enumerate() {
        let at = format!("checks[{c}]");
        if !is_identifier(&check.id) {
            lint.problem(format!("{at}.id"), not_identifier(&check.id));
        } else if !ids.insert(check.id.as_str()) {
            lint.problem(
                format!("{at}.id"),
                format!("check id '{}' is used twice", check.id),
            );
        }
        if check.title.trim().is_empty() {
            lint.problem(
                format!("{at}.title"),
                "say what the student sees for this check",
            );
        }
        if check.points == 0 {
            lint.problem(format!("{at}.points"), "a check is worth at least 1 point");
        }
        if check.operations.is_empty() {
            lint.problem(&at, "a check needs operations: list them under `do:`");
        }
        for (o, op) in check.operations.iter().enumerate() {
            if matches!(
                op.action,
                Action::Apply(_)
                    | Action::Create(_)
                    | Action::Patch(_)
                    | Action::Delete(_)
                    | Action::Restart(_)
            ) {
                lint.problem(
                    format!("{at}.do[{o}].{}", op.action.key()),
                    "checks only look: they may assert, wait, look at events, request tokens and probe, but not change objects (grading must not change what it grades)",
                );
            }
        }
        check_operations(lint, &check.operations, &format!("{at}.do"), "check");
    }
}

const MIGRATION: &str = "this is the first lab form (apply/restart/wait/probes on the step); a step now lists its operations in order under `do:`, e.g. `do: [{apply: rbac.yaml}, {wait: pod/mydemo}, {id: list_pods, name: ..., pod: mydemo, http: {path: ..., expect: {status: 200}}}]`: a probe's `expect` moves into its kind (see README, \"Migrating from the first lab form\")";

fn first_legacy_key(step: &Step) -> Option<&'static str> {
    [
        ("apply", step.apply.is_some()),
        ("restart", step.restart.is_some()),
        ("wait", step.wait.is_some()),
        ("probes", step.probes.is_some()),
    ]
    .into_iter()
    .find_map(|(key, present)| present.then_some(key))
}

/// "a" or "an", as the word is spoken (an http probe, an exec probe, a kubectl probe).
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) || word == "http" {
        "an"
    } else {
        "a"
    }
}

/// A regex error's reason on one line ("unclosed group").
pub fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or_default())
        .to_string()
}

fn not_identifier(id: &str) -> String {
    format!("'{id}' is not an identifier: use a-z, 0-9 and _, starting with a letter")
}

fn check_header(lint: &mut Linter) {
    let lab = lint.lab;
    if lab.id.trim().is_empty() {
        lint.problem("id", "must not be empty");
    }
    let folder = lint.folder.name();
    if let Some((number, _)) = folder.split_once('-')
        && number.chars().all(|c| c.is_ascii_digit())
        && number != lab.id
    {
        lint.problem(
            "id",
            format!(
                "'{}' does not match the folder's number '{number}' ({folder})",
                lab.id
            ),
        );
    }
    for (field, value) in [
        ("title", &lab.title),
        ("summary", &lab.summary),
        ("source", &lab.source),
    ] {
        if value.trim().is_empty() {
            lint.problem(field, "must not be empty");
        }
    }
    if lab.namespaces.is_empty() {
        lint.problem("namespaces", "name at least one namespace the lab uses");
    }
    for (i, ns) in lab.namespaces.iter().enumerate() {
        if !is_dns_label(ns) {
            lint.problem(
                format!("namespaces[{i}]"),
                format!("'{ns}' is not a valid namespace name (a DNS label)"),
            );
        }
        if ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease" {
            lint.problem(
                format!("namespaces[{i}]"),
                format!("labs may not use the system namespace '{ns}'"),
            );
        }
    }
}

pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn check_operation(lint: &mut Linter, op: &Operation, field: &str) {
    let namespace = op
        .namespace
        .clone()
        .unwrap_or_else(|| lint.default_namespace().to_string());
    if let Some(ns) = &op.namespace
        && !lint.lab.namespaces.contains(ns)
    {
        lint.problem(
            format!("{field}.namespace"),
            format!(
                "'{ns}' is not in the lab's `namespaces` ({})",
                lint.lab.namespaces.join(", ")
            ),
        );
    }
    let is_pod_probe = matches!(&op.action, Action::Probe(p) if p.needs_pod());
    if op.eventually.is_some() && !matches!(op.action, Action::Probe(_)) {
        lint.problem(
            format!("{field}.eventually"),
            format!(
                "`eventually` retries probes; {} {} operation waits with its own `timeout`",
                article(op.action.key()),
                op.action.key()
            ),
        );
    }
    if !is_pod_probe && !matches!(op.action, Action::Probe(_)) {
        for (key, set) in [
            ("pod", op.pod.is_some()),
            ("container", op.container.is_some()),
        ] {
            if set {
                lint.problem(
                    format!("{field}.{key}"),
                    format!(
                        "`{key}` is for probes that run from a pod; {} {} operation takes none",
                        article(op.action.key()),
                        op.action.key()
                    ),
                );
            }
        }
    }
    if let Action::Probe(_) = &op.action {
        if op.id.is_none() {
            lint.problem(
                field,
                "a probe needs an `id` (its key in the explanation template)",
            );
        }
        if op.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            lint.problem(
                field,
                "a probe needs a `name`: what it shows, in a few words",
            );
        }
    }
    match &op.action {
        Action::Apply(apply) | Action::Create(apply) => {
            check_apply(lint, apply, &format!("{field}.{}", op.action.key()))
        }
        Action::Patch(patch) => check_patch(lint, patch, &format!("{field}.patch")),
        Action::Delete(delete) => check_delete(lint, delete, &format!("{field}.delete")),
        Action::Assert(assert) => check_assert(lint, assert, &format!("{field}.assert")),
        Action::Events(events) => {
            let at = format!("{field}.events");
            if events.reason.trim().is_empty() {
                lint.problem(
                    format!("{at}.reason"),
                    "name the event's reason, e.g. FailedCreate",
                );
            }
            if let Some(t) = &events.event_type
                && t != "Normal"
                && t != "Warning"
            {
                lint.problem(
                    format!("{at}.type"),
                    format!("'{t}' is not Normal or Warning"),
                );
            }
            if let Some(message) = &events.message {
                check_text(lint, message, &format!("{at}.message"));
            }
        }
        Action::Wait(wait) => check_wait(lint, wait, &format!("{field}.wait")),
        Action::Token(token) => check_token(lint, token, &format!("{field}.token")),
        Action::Restart(target) => {
            let name = target.name.as_deref().unwrap_or_default();
            if !matches!(
                target.resource.split('.').next(),
                Some("deployment" | "deployments")
            ) || target.name.is_none()
            {
                lint.problem(
                    format!("{field}.restart"),
                    format!("'{target}' is not deployment/<name>"),
                );
            } else if !lint.creates("deployment", &namespace, name) {
                lint.problem(
                    format!("{field}.restart"),
                    format!("no operation before this one creates deployment '{name}' in namespace '{namespace}'"),
                );
            }
        }
        Action::Probe(probe) => check_probe(lint, op, probe, field, &namespace),
    }
}

fn check_identity(lint: &mut Linter, identity: &Option<Identity>, field: &str) {
    let Some(identity) = identity else { return };
    match (&identity.user, &identity.serviceaccount) {
        (Some(_), Some(_)) => lint.problem(
            format!("{field}.as.serviceaccount"),
            "act as a user or as a ServiceAccount, not both",
        ),
        (None, None) => lint.problem(format!("{field}.as"), "name a `user` or a `serviceaccount`"),
        (None, Some(sa)) if sa.split('/').count() > 2 || !sa.split('/').all(is_dns_subdomain) => {
            lint.problem(
                format!("{field}.as.serviceaccount"),
                format!("'{sa}' is not NAME or NAMESPACE/NAME"),
            )
        }
        _ => {}
    }
}

fn check_expect_error(lint: &mut Linter, expect: &Option<ExpectError>, field: &str) {
    let Some(expect) = expect else { return };
    if expect.status.is_none() && expect.reason.is_none() && expect.message.is_none() {
        lint.problem(
            format!("{field}.expect-error"),
            "say how the API server must reject it: status, reason, message",
        );
    }
    if let Some(status) = expect.status
        && !(400..=599).contains(&status)
    {
        lint.problem(
            format!("{field}.expect-error.status"),
            format!("{status} is not an error status (400-599)"),
        );
    }
    if let Some(message) = &expect.message {
        check_text(lint, message, &format!("{field}.expect-error.message"));
    }
}

fn check_apply(lint: &mut Linter, apply: &Apply, field: &str) {
    check_identity(lint, &apply.identity, field);
    check_expect_error(lint, &apply.expect_error, field);
    let files = apply.all_files();
    if files.is_empty() {
        lint.problem(field, "name the manifest files to apply");
    }
    for (i, name) in files.into_iter().enumerate() {
        // The field as written: `apply: x`, `apply: [x, y]`, or the mapping's file/files.
        let listed = if apply.file.is_some() {
            i.checked_sub(1)
        } else {
            Some(i)
        };
        let mut candidates = Vec::new();
        if apply.file.is_some() && i == 0 {
            candidates.push(format!("{field}.file"));
        }
        if let Some(k) = listed {
            candidates.push(format!("{field}.files[{k}]"));
            candidates.push(format!("{field}[{k}]"));
        }
        candidates.push(field.to_string());
        let at = lint.locations.first_of(&candidates);
        if !lint.manifests.contains_key(name)
            && let Some(manifest) = read_manifest(lint, &at, name)
        {
            lint.manifests.insert(name.to_string(), manifest);
        }
        if let Some(manifest) = lint.manifests.get(name).cloned()
            && apply.expect_error.is_none()
        {
            record_objects(lint, &manifest);
        }
    }
}

fn read_manifest(lint: &mut Linter, field: &str, name: &str) -> Option<Manifest> {
    let path = lint.folder.display(name);
    let text = match lint.folder.read(name) {
        Ok(text) => text,
        Err(message) => {
            lint.problem(field, message);
            return None;
        }
    };
    let locations = Locations::of_documents(&text);
    let documents: Vec<Value> =
        match serde_saphyr::from_multiple_with_options(&text, yaml_options()) {
            Ok(docs) => docs,
            Err(e) => {
                let first = locations.first().cloned().unwrap_or_default();
                lint.problems
                    .push(deserialize_problem(&path, &text, &first, &e));
                return None;
            }
        };
    let documents: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
    let mut ok = true;
    for (d, doc) in documents.iter().enumerate() {
        let doc_locations = locations.get(d).cloned().unwrap_or_default();
        for required in ["apiVersion", "kind", "metadata.name"] {
            let value = required.split('.').try_fold(doc, |v, key| v.get(key));
            if value.is_none_or(|v| v.as_str().is_none_or(str::is_empty)) {
                ok = false;
                lint.problems.push(Problem {
                    file: path.clone(),
                    at: doc_locations.find(required),
                    field: required.to_string(),
                    message: format!("document {} needs {required}", d + 1),
                });
            }
        }
    }
    if documents.is_empty() {
        lint.problem(
            field,
            format!("manifest {} holds no objects", path.display()),
        );
        ok = false;
    }
    ok.then_some(Manifest {
        path,
        text,
        documents,
        locations,
    })
}

/// Notes the objects a manifest creates, and checks that its namespaced objects stay
/// in the lab's namespaces (the scheduler relies on that list).
fn record_objects(lint: &mut Linter, manifest: &Manifest) {
    for (d, doc) in manifest.documents.iter().enumerate() {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = doc["metadata"]["namespace"].as_str().map(str::to_string);
        let mut problem = |field: &str, message: String| {
            lint.problems.push(Problem {
                file: manifest.path.clone(),
                at: manifest
                    .locations
                    .get(d)
                    .map(|l| l.find(field))
                    .unwrap_or(Position { line: 1, column: 1 }),
                field: field.to_string(),
                message,
            })
        };
        if kind == "Namespace" && !lint.lab.namespaces.contains(&name) {
            problem(
                "metadata.name",
                format!("creates namespace '{name}', which the lab's `namespaces` does not list"),
            );
        }
        if let Some(ns) = &namespace
            && !lint.lab.namespaces.contains(ns)
        {
            problem(
                "metadata.namespace",
                format!(
                    "namespace '{ns}' is not in the lab's `namespaces` ({})",
                    lint.lab.namespaces.join(", ")
                ),
            );
        }
        lint.created.insert((kind.to_lowercase(), namespace, name));
    }
}

fn check_patch(lint: &mut Linter, patch: &PatchOp, field: &str) {
    check_identity(lint, &patch.identity, field);
    check_expect_error(lint, &patch.expect_error, field);
    if patch.object.name.is_none() {
        lint.problem(
            format!("{field}.object"),
            format!("'{}' names no object: write TYPE/NAME", patch.object),
        );
    }
    let fits = match patch.patch_type {
        PatchType::Json => patch.patch.is_array(),
        PatchType::Merge | PatchType::Strategic => patch.patch.is_object(),
    };
    if !fits {
        lint.problem(
            format!("{field}.patch"),
            match patch.patch_type {
                PatchType::Json => {
                    "a json patch is a list of operations ({op: replace, path: /x, value: y})"
                }
                _ => "a merge or strategic patch is a mapping of the fields to change",
            },
        );
    }
    check_strings(
        lint,
        &patch.patch,
        &format!("{field}.patch"),
        Place::Cluster,
    );
}

fn check_delete(lint: &mut Linter, delete: &DeleteOp, field: &str) {
    check_identity(lint, &delete.identity, field);
    check_expect_error(lint, &delete.expect_error, field);
    match (&delete.object, &delete.file) {
        (Some(object), None) if object.name.is_none() => {
            let at = lint
                .locations
                .first_of(&[format!("{field}.object"), field.to_string()]);
            lint.problem(at, format!("'{object}' names no object: write TYPE/NAME"))
        }
        (Some(_), None) => {}
        (None, Some(name)) => {
            if !lint.manifests.contains_key(name)
                && let Some(manifest) = read_manifest(lint, &format!("{field}.file"), name)
            {
                lint.manifests.insert(name.clone(), manifest);
            }
        }
        _ => lint.problem(field, "name exactly one of `object` (TYPE/NAME) or `file`"),
    }
}

fn check_assert(lint: &mut Linter, assert: &AssertOp, field: &str) {
    if assert.object.name.is_some() && assert.selector.is_some() {
        lint.problem(
            format!("{field}.selector"),
            "a selector chooses among objects of a TYPE: write `object: TYPE` without a name",
        );
    }
    // With neither `matches` nor `absent`, the object must exist.
    if assert.matches.is_some() && assert.absent {
        lint.problem(
            format!("{field}.absent"),
            "an absent object has no fields to match: use `matches` or `absent`",
        );
    }
    if assert.absent && !assert.capture.is_empty() {
        lint.problem(
            format!("{field}.capture"),
            "nothing can be captured from an absent object",
        );
    }
    if let Some(tree) = &assert.matches {
        check_tree(lint, tree, &format!("{field}.matches"));
        check_strings(lint, tree, &format!("{field}.matches"), Place::Cluster);
    }
    check_captures(lint, &assert.capture, &format!("{field}.capture"));
}

/// Every mapping of an assert tree that uses matcher keys must be a valid matcher.
fn check_tree(lint: &mut Linter, tree: &Value, field: &str) {
    match tree {
        Value::Object(map) => {
            if map
                .keys()
                .any(|k| super::matchers::MATCHER_KEYS.contains(&k.as_str()))
            {
                if let Err(message) = Match::classify(tree) {
                    lint.problem(field, message);
                }
                return;
            }
            for (key, value) in map {
                check_tree(lint, value, &format!("{field}.{key}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_tree(lint, item, &format!("{field}[{i}]"));
            }
        }
        _ => {}
    }
}

fn check_wait(lint: &mut Linter, wait: &WaitOp, field: &str) {
    if wait.object.name.is_none() {
        let at = lint
            .locations
            .first_of(&[format!("{field}.object"), field.to_string()]);
        lint.problem(
            at,
            format!("'{}' names no object: write TYPE/NAME", wait.object),
        );
    }
    if let WaitFor::Jsonpath(jsonpath) = &wait.until
        && !is_json_path(&jsonpath.path)
    {
        lint.problem(
            format!("{field}.for.jsonpath.path"),
            format!("'{}' is not a dotted path like status.phase", jsonpath.path),
        );
    }
    if matches!(wait.until, WaitFor::Deleted) && !wait.capture.is_empty() {
        lint.problem(
            format!("{field}.capture"),
            "nothing can be captured from a deleted object",
        );
    }
    check_captures(lint, &wait.capture, &format!("{field}.capture"));
}

fn check_token(lint: &mut Linter, token: &TokenOp, field: &str) {
    if !is_identifier(&token.name) {
        lint.problem(format!("{field}.name"), not_identifier(&token.name));
    } else if !lint.tokens.insert(token.name.clone()) {
        lint.problem(
            format!("{field}.name"),
            format!("a token named '{}' was already requested", token.name),
        );
    }
    if !is_dns_subdomain(&token.serviceaccount) {
        lint.problem(
            format!("{field}.serviceaccount"),
            format!("'{}' is not a ServiceAccount name", token.serviceaccount),
        );
    }
    if let Some(seconds) = token.expiration_seconds
        && seconds < 600
    {
        lint.problem(
            format!("{field}.expiration-seconds"),
            format!("{seconds} is below the API server's minimum of 600"),
        );
    }
    if let Some(bound) = &token.bound_to {
        let kind_ok = matches!(
            bound.resource.as_str(),
            "pod" | "pods" | "secret" | "secrets"
        );
        if !kind_ok || bound.name.is_none() {
            lint.problem(
                format!("{field}.bound-to"),
                format!("'{bound}' is not pod/NAME or secret/NAME"),
            );
        }
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

fn check_captures(lint: &mut Linter, capture: &BTreeMap<String, String>, field: &str) {
    for (name, path) in capture {
        if !vars::is_capture_name(name) {
            lint.problem(
                format!("{field}.{name}"),
                format!("'{name}' is not a variable name: use A-Z, 0-9 and _"),
            );
        } else if name == vars::NAMESPACE {
            lint.problem(
                format!("{field}.{name}"),
                "NAMESPACE is built in and cannot be captured into",
            );
        }
        if !is_json_path(path) {
            lint.problem(
                format!("{field}.{name}"),
                format!("'{path}' is not a dotted path like metadata.uid"),
            );
        }
        lint.captured.insert(name.clone());
    }
}

/// `a.b.0.c`, with `\.` for a dot inside a key (not kubectl's `{.a.b}` nor `a[0]`).
pub fn is_json_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with(['{', '$'])
        && !path.contains(['[', ']'])
        && crate::expect::split_path(path)
            .iter()
            .all(|k| !k.is_empty())
}

fn check_probe(lint: &mut Linter, op: &Operation, probe: &Probe, field: &str, namespace: &str) {
    let at = format!("{field}.{}", probe.key());
    match (&op.pod, probe.needs_pod()) {
        (None, true) => lint.problem(
            format!("{field}.pod"),
            format!(
                "{} {} probe runs from a pod: name it",
                article(probe.key()),
                probe.key()
            ),
        ),
        (Some(_), false) => lint.problem(
            format!("{field}.pod"),
            "a can-i probe asks the API server directly: it takes no pod",
        ),
        (Some(pod), true) => match ObjectRef::pod(pod) {
            Ok(reference) => {
                let kind = singular(&reference.resource);
                let name = reference.name.clone().unwrap_or_default();
                if !POD_OWNERS.contains(&kind.as_str()) {
                    lint.problem(format!("{field}.pod"), format!("'{pod}' is neither a pod's name nor deployment/NAME, job/NAME, statefulset/NAME, daemonset/NAME or replicaset/NAME"));
                } else if !lint.creates(&kind, namespace, &name) {
                    lint.problem(format!("{field}.pod"), format!("no operation before this one creates '{pod}' in namespace '{namespace}'"));
                }
            }
            Err(message) => lint.problem(format!("{field}.pod"), message),
        },
        (None, false) => {}
    }
    let expected = probe.expected();
    if expected.as_object().is_none_or(|o| o.is_empty()) {
        lint.problem(
            format!("{at}.expect"),
            format!(
                "say what the probe must observe: {}",
                probe.expect_fields().join(", ")
            ),
        );
    }
    check_strings(lint, &expected, &format!("{at}.expect"), Place::Cluster);
    match probe {
        Probe::Http(http) => check_http(lint, http, &at),
        Probe::Exec(exec) => {
            match (exec.command.is_empty(), &exec.script) {
                (true, None) => lint.problem(
                    &at,
                    "give a `command` (a list, run without a shell) or a `script` (run with sh -c)",
                ),
                (false, Some(_)) => lint.problem(
                    format!("{at}.script"),
                    "use `command` or `script`, not both",
                ),
                _ => {}
            }
            for (i, word) in exec.command.iter().enumerate() {
                check_text_vars(lint, word, &format!("{at}.command[{i}]"), Place::Pod);
            }
            if let Some(script) = &exec.script {
                check_text_vars(lint, script, &format!("{at}.script"), Place::Shell);
            }
            for (name, text) in [
                ("stdout", &exec.expect.stdout),
                ("stderr", &exec.expect.stderr),
            ] {
                if let Some(text) = text {
                    check_text(lint, text, &format!("{at}.expect.{name}"));
                }
            }
        }
        Probe::Kubectl(kubectl) => {
            if kubectl.args.is_empty() {
                lint.problem(
                    format!("{at}.args"),
                    "give kubectl's arguments, e.g. [get, pods]",
                );
            }
            if kubectl.args.first().is_some_and(|a| a == "kubectl") {
                lint.problem(
                    format!("{at}.args[0]"),
                    "leave out 'kubectl' itself: args are what follows it",
                );
            }
            for (i, arg) in kubectl.args.iter().enumerate() {
                check_text_vars(lint, arg, &format!("{at}.args[{i}]"), Place::Pod);
            }
            if let Some(text) = &kubectl.expect.output {
                check_text(lint, text, &format!("{at}.expect.output"));
            }
        }
        Probe::File(file) => {
            if !file.path.starts_with('/') {
                lint.problem(
                    format!("{at}.path"),
                    format!("'{}' must be an absolute path in the pod", file.path),
                );
            }
            check_text_vars(lint, &file.path, &format!("{at}.path"), Place::PodPath);
            if let Some(mode) = &file.expect.mode
                && (mode.is_empty()
                    || mode.len() > 4
                    || !mode.chars().all(|c| ('0'..='7').contains(&c)))
            {
                lint.problem(
                    format!("{at}.expect.mode"),
                    format!("'{mode}' is not an octal mode like 644"),
                );
            }
            if let Some(owner) = &file.expect.owner {
                let valid = owner
                    .split_once(':')
                    .is_some_and(|(u, g)| u.parse::<u32>().is_ok() && g.parse::<u32>().is_ok());
                if !valid {
                    lint.problem(
                        format!("{at}.expect.owner"),
                        format!("'{owner}' is not UID:GID like 0:0"),
                    );
                }
            }
            if file.expect.exists == Some(false)
                && (file.expect.mode.is_some()
                    || file.expect.owner.is_some()
                    || file.expect.content.is_some())
            {
                lint.problem(
                    format!("{at}.expect.exists"),
                    "a file that does not exist has no mode, owner or content",
                );
            }
            if let Some(text) = &file.expect.content {
                check_text(lint, text, &format!("{at}.expect.content"));
            }
        }
        Probe::CanI(can_i) => {
            if op.container.is_some() {
                lint.problem(
                    format!("{field}.container"),
                    "a can-i probe asks the API server directly: it takes no container",
                );
            }
            if can_i.user.trim().is_empty() {
                lint.problem(
                    format!("{at}.as"),
                    "name the user, e.g. system:serviceaccount:default:default",
                );
            }
            if can_i.verb.trim().is_empty() || can_i.verb.contains(char::is_whitespace) {
                lint.problem(
                    format!("{at}.verb"),
                    format!("'{}' is not a verb", can_i.verb),
                );
            }
            check_text_vars(lint, &can_i.user, &format!("{at}.as"), Place::Cluster);
        }
        Probe::Logs(logs) => check_text(lint, &logs.expect.output, &format!("{at}.expect.output")),
    }
}

fn singular(resource: &str) -> String {
    let lower = resource
        .split('.')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    lower.strip_suffix('s').map(str::to_string).unwrap_or(lower)
}

fn check_http(lint: &mut Linter, http: &HttpProbe, at: &str) {
    if !HTTP_METHODS.contains(&http.method.as_str()) {
        lint.problem(
            format!("{at}.method"),
            format!(
                "'{}' is not one of {}",
                http.method,
                HTTP_METHODS.join(", ")
            ),
        );
    }
    if !http.path.starts_with('/') {
        lint.problem(
            format!("{at}.path"),
            format!("'{}' must start with /", http.path),
        );
    }
    check_text_vars(lint, &http.path, &format!("{at}.path"), Place::Pod);
    if let Some(query) = &http.query {
        if query.starts_with('?') {
            lint.problem(format!("{at}.query"), "leave out the leading '?'");
        }
        check_text_vars(lint, query, &format!("{at}.query"), Place::Pod);
    }
    for (name, value) in &http.headers {
        if name.eq_ignore_ascii_case("authorization") {
            lint.problem(format!("{at}.headers.{name}"), "set the token with `token:` (pod, none, invalid, a token's name, a file in the pod): a token never appears in a lab file");
        }
        check_text_vars(lint, value, &format!("{at}.headers.{name}"), Place::Request);
    }
    match (&http.body, &http.body_file) {
        (Some(_), Some(_)) => lint.problem(
            format!("{at}.body-file"),
            "use `body` or `body-file`, not both",
        ),
        (Some(body), None) => check_strings(lint, body, &format!("{at}.body"), Place::Request),
        (None, Some(name)) => match lint.folder.read(name) {
            Ok(text) => {
                check_text_vars(lint, &text, &format!("{at}.body-file"), Place::Request);
                lint.files.insert(name.clone(), text);
            }
            Err(message) => lint.problem(format!("{at}.body-file"), message),
        },
        (None, None) => {}
    }
    match &http.token {
        TokenSource::Named(name) if !lint.tokens.contains(name) => lint.problem(
            format!("{at}.token"),
            format!("no token operation before this one is named '{name}'"),
        ),
        _ => {}
    }
    if let Some(status) = http.expect.status
        && !(100..=599).contains(&status)
    {
        lint.problem(
            format!("{at}.expect.status"),
            format!("{status} is not an HTTP status (100-599)"),
        );
    }
    for key in http.expect.json.keys() {
        if !is_json_path(key) {
            lint.problem(
                format!("{at}.expect.json.{key}"),
                format!("'{key}' is not a dotted path like items.0.metadata.name"),
            );
        }
    }
    for (name, text) in [
        ("message", &http.expect.message),
        ("body", &http.expect.body),
    ] {
        if let Some(text) = text {
            check_text(lint, text, &format!("{at}.expect.{name}"));
        }
    }
    check_captures(lint, &http.capture, &format!("{at}.capture"));
}

fn check_text(lint: &mut Linter, text: &Text, field: &str) {
    if text.equals.is_none()
        && text.contains.is_none()
        && text.not_contains.is_none()
        && text.matches.is_none()
    {
        lint.problem(
            field,
            "say what the text must be: equals, contains, not-contains or matches",
        );
    }
    if let Some(pattern) = &text.matches
        && let Err(e) = regex::Regex::new(pattern)
    {
        lint.problem(
            format!("{field}.matches"),
            format!("not a regex: {}", regex_reason(&e)),
        );
    }
}

/// Checks the variables of every string in a value (a body, a patch, a tree).
fn check_strings(lint: &mut Linter, value: &Value, field: &str, place: Place) {
    match value {
        Value::String(text) => check_text_vars(lint, text, field, place),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_strings(lint, item, &format!("{field}[{i}]"), place);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_strings(lint, item, &format!("{field}.{key}"), place);
            }
        }
        _ => {}
    }
}

/// Where a text is used, which decides the variables it may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Read by kubelab: `${NAMESPACE}` and captured variables.
    Cluster,
    /// Run in a pod: also `$(hostname)` and `$(cat /path)`.
    Pod,
    /// A path in a pod: also `$(hostname)`.
    PodPath,
    /// A script for the pod's shell: other `$` uses are the shell's.
    Shell,
    /// An http request's body or header: also `${token:NAME}`.
    Request,
}

/// Only known variables may appear; `$(hostname)` and `$(cat …)` only where the text
/// runs in a pod; `${token:NAME}` only in a request's body and headers.
fn check_text_vars(lint: &mut Linter, text: &str, field: &str, place: Place) {
    let in_pod = place != Place::Cluster;
    let shell = place == Place::Shell;
    let found = match vars::references(text, shell) {
        Ok(found) => found,
        Err(vars::Unknown(at)) => {
            lint.problem(
                field,
                format!(
                    "unknown variable at '{at}': use ${{NAMESPACE}}{}, or a variable an earlier operation captured",
                    if in_pod {
                        ", $(hostname), $(cat /path)"
                    } else {
                        ""
                    }
                ),
            );
            return;
        }
    };
    for (_, reference) in found {
        let problem = match reference {
            Reference::Variable(name) if name == vars::NAMESPACE || lint.captured.contains(name) => None,
            Reference::Variable(_) if shell => None,
            Reference::Variable(name) => Some(format!("variable ${{{name}}} is not defined: capture it in an earlier operation (capture: {{{name}: metadata.uid}}), or use ${{NAMESPACE}}")),
            Reference::Cat(_) if place == Place::PodPath => Some("$(cat …) cannot name a path: use $(hostname), ${NAMESPACE} or a captured variable".to_string()),
            Reference::Hostname | Reference::Cat(_) if in_pod => None,
            Reference::Hostname | Reference::Cat(_) => Some("$(hostname) and $(cat …) mean something only in what runs in a pod (http, exec, kubectl, file)".to_string()),
            Reference::Token(name) if place == Place::Request && lint.tokens.contains(name) => None,
            Reference::Token(name) if place == Place::Request => Some(format!("no token operation before this one is named '{name}'")),
            Reference::Token(_) => Some("${token:NAME} may appear only in an http request's body and headers (it reaches the pod on stdin, never on a command line)".to_string()),
        };
        if let Some(message) = problem {
            lint.problem(field, message);
            return;
        }
    }
}

fn check_template(lint: &mut Linter) -> String {
    let name = lint.lab.explain.clone();
    let path: PathBuf = lint.folder.display(&name);
    let text = match lint.folder.read(&name) {
        Ok(text) => text,
        Err(message) => {
            lint.problem(
                "explain",
                format!("cannot read the explanation template: {message}"),
            );
            return String::new();
        }
    };
    if let Err((at, message)) = super::template::check(&name, &text) {
        lint.problems.push(Problem {
            file: path,
            at,
            field: String::new(),
            message,
        });
    }
    text
}
