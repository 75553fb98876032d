//! Checks a deserialized lab against what the types cannot say: exactly one probe
//! kind, expectations that fit it, manifests that exist and parse, pods a probe names
//! that some step creates, namespaces, variables, the explanation template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::load::{Manifest, deserialize_problem};
use super::locate::{Locations, Position};
use super::model::{Lab, Probe, ProbeKind, Step, Wait};
use super::problem::Problem;

/// What checking a lab produces besides problems: the files it refers to, read.
pub struct Checked {
    pub manifests: BTreeMap<String, Manifest>,
    pub template: String,
    pub problems: Vec<Problem>,
}

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// The variables a path may use; both mean the same in the pod and on the host.
pub const PATH_VARIABLES: &[&str] = &["$(hostname)", "${NAMESPACE}"];

struct Linter<'a> {
    file: &'a Path,
    locations: &'a Locations,
    problems: Vec<Problem>,
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
}

/// Objects the lab's manifests create, by kind: (namespace or None, name).
#[derive(Default)]
struct Created {
    pods: BTreeSet<(Option<String>, String)>,
    deployments: BTreeSet<(Option<String>, String)>,
}

impl Created {
    fn has(set: &BTreeSet<(Option<String>, String)>, namespace: &str, name: &str) -> bool {
        set.iter()
            .any(|(ns, n)| n == name && ns.as_deref().is_none_or(|ns| ns == namespace))
    }
}

pub fn check(lab: &Lab, dir: &Path, file: &Path, locations: &Locations) -> Checked {
    let mut lint = Linter {
        file,
        locations,
        problems: Vec::new(),
    };
    check_header(&mut lint, lab, dir);

    let mut manifests = BTreeMap::new();
    let mut created = Created::default();
    let mut step_ids = BTreeSet::new();
    if lab.steps.is_empty() {
        lint.problem("steps", "a lab needs at least one step");
    }
    for (s, step) in lab.steps.iter().enumerate() {
        let at = format!("steps[{s}]");
        identifier(&mut lint, &format!("{at}.id"), &step.id);
        if !step_ids.insert(step.id.as_str()) {
            lint.problem(
                format!("{at}.id"),
                format!("step id '{}' is used twice", step.id),
            );
        }
        for (a, name) in step.apply.iter().enumerate() {
            let field = format!("{at}.apply[{a}]");
            if !manifests.contains_key(name)
                && let Some(manifest) = read_manifest(&mut lint, &field, dir, name)
            {
                record_objects(&mut lint, lab, &manifest, &mut created);
                manifests.insert(name.clone(), manifest);
            }
        }
        for (r, target) in step.restart.iter().enumerate() {
            let namespace = default_namespace(lab);
            match target.strip_prefix("deployment/") {
                Some(name) if Created::has(&created.deployments, namespace, name) => {}
                Some(name) => lint.problem(format!("{at}.restart[{r}]"), format!("no step up to this one creates deployment '{name}' in namespace '{namespace}'")),
                None => lint.problem(format!("{at}.restart[{r}]"), format!("'{target}' is not deployment/<name>")),
            }
        }
        if step.apply.is_empty() && step.probes.is_empty() {
            lint.problem(&at, "a step needs something to apply or probe");
        }
        check_waits(&mut lint, lab, step, &at, &created);
        check_probes(&mut lint, lab, step, &at, &created);
    }

    let template = check_template(&mut lint, lab, dir);
    Checked {
        manifests,
        template,
        problems: lint.problems,
    }
}

fn check_header(lint: &mut Linter, lab: &Lab, dir: &Path) {
    if lab.id.trim().is_empty() {
        lint.problem("id", "must not be empty");
    }
    let folder = dir
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
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

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Step and probe ids are template keys (`steps.before.probes.list_pods`).
fn identifier(lint: &mut Linter, field: &str, id: &str) {
    let mut chars = id.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        lint.problem(
            field,
            format!("'{id}' is not an identifier: use a-z, 0-9 and _, starting with a letter"),
        );
    }
}

fn read_manifest(lint: &mut Linter, field: &str, dir: &Path, name: &str) -> Option<Manifest> {
    let relative = Path::new(name);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, Component::ParentDir))
    {
        lint.problem(
            field,
            format!("'{name}' must be a path inside the lab's folder"),
        );
        return None;
    }
    let path = dir.join(relative);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            lint.problem(
                field,
                format!("cannot read manifest {}: {e}", path.display()),
            );
            return None;
        }
    };
    let locations = Locations::of_documents(&text);
    let documents: Vec<serde_json::Value> = match serde_saphyr::from_multiple(&text) {
        Ok(docs) => docs,
        Err(e) => {
            let first = locations.first().cloned().unwrap_or_default();
            lint.problems
                .push(deserialize_problem(&path, &text, &first, &e));
            return None;
        }
    };
    let documents: Vec<serde_json::Value> =
        documents.into_iter().filter(|d| !d.is_null()).collect();
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
        documents,
        locations,
    })
}

/// Notes the pods and deployments a manifest creates, and checks that its namespaced
/// objects stay in the lab's namespaces (the scheduler relies on that list).
fn record_objects(lint: &mut Linter, lab: &Lab, manifest: &Manifest, created: &mut Created) {
    for (d, doc) in manifest.documents.iter().enumerate() {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = doc["metadata"]["namespace"].as_str().map(str::to_string);
        if kind == "Namespace" && !lab.namespaces.contains(&name) {
            push_manifest_problem(
                lint,
                manifest,
                d,
                "metadata.name",
                format!("creates namespace '{name}', which the lab's `namespaces` does not list"),
            );
        }
        if let Some(ns) = &namespace
            && !lab.namespaces.contains(ns)
        {
            push_manifest_problem(
                lint,
                manifest,
                d,
                "metadata.namespace",
                format!(
                    "namespace '{ns}' is not in the lab's `namespaces` ({})",
                    lab.namespaces.join(", ")
                ),
            );
        }
        match kind {
            "Pod" => {
                created.pods.insert((namespace, name));
            }
            "Deployment" => {
                created.deployments.insert((namespace, name));
            }
            _ => {}
        }
    }
}

fn push_manifest_problem(
    lint: &mut Linter,
    manifest: &Manifest,
    doc: usize,
    field: &str,
    message: String,
) {
    let at = manifest
        .locations
        .get(doc)
        .map(|l| l.find(field))
        .unwrap_or(Position { line: 1, column: 1 });
    lint.problems.push(Problem {
        file: manifest.path.clone(),
        at,
        field: field.to_string(),
        message,
    });
}

fn default_namespace(lab: &Lab) -> &str {
    lab.namespaces
        .first()
        .map(String::as_str)
        .unwrap_or("default")
}

fn check_waits(lint: &mut Linter, lab: &Lab, step: &Step, at: &str, created: &Created) {
    for (w, wait) in step.wait.iter().enumerate() {
        let field = format!("{at}.wait[{w}]");
        let namespace = wait.namespace.as_deref().unwrap_or(default_namespace(lab));
        match wait {
            Wait {
                pod: Some(pod),
                deployment: None,
                ..
            } => {
                if !Created::has(&created.pods, namespace, pod) {
                    lint.problem(
                        format!("{field}.pod"),
                        format!(
                            "no step up to this one creates pod '{pod}' in namespace '{namespace}'"
                        ),
                    );
                }
            }
            Wait {
                pod: None,
                deployment: Some(deployment),
                ..
            } => {
                if !Created::has(&created.deployments, namespace, deployment) {
                    lint.problem(format!("{field}.deployment"), format!("no step up to this one creates deployment '{deployment}' in namespace '{namespace}'"));
                }
            }
            _ => lint.problem(&field, "name exactly one of `pod` or `deployment`"),
        }
        if let Some(timeout) = &wait.timeout
            && let Err(e) = crate::cli::parse_duration(timeout)
        {
            lint.problem(format!("{field}.timeout"), e);
        }
    }
}

fn check_probes(lint: &mut Linter, lab: &Lab, step: &Step, at: &str, created: &Created) {
    let mut ids = BTreeSet::new();
    for (p, probe) in step.probes.iter().enumerate() {
        let field = format!("{at}.probes[{p}]");
        identifier(lint, &format!("{field}.id"), &probe.id);
        if !ids.insert(probe.id.as_str()) {
            lint.problem(
                format!("{field}.id"),
                format!("probe id '{}' is used twice in this step", probe.id),
            );
        }
        let kinds = probe.kinds();
        let kind = match kinds.as_slice() {
            [kind] => *kind,
            [] => {
                lint.problem(
                    &field,
                    "a probe needs one of http, kubectl, file, can-i, logs",
                );
                continue;
            }
            [first, second, ..] => {
                lint.problem(
                    format!("{field}.{}", second.key()),
                    format!(
                        "a probe has one kind, but this one sets both {} and {}",
                        first.key(),
                        second.key()
                    ),
                );
                continue;
            }
        };
        check_expect(lint, probe, kind, &field);
        check_probe_target(lint, lab, probe, kind, &field, created);
        check_probe_kind(lint, probe, &field);
    }
}

fn check_expect(lint: &mut Linter, probe: &Probe, kind: ProbeKind, field: &str) {
    let set = probe.expect.set_fields();
    if set.is_empty() {
        lint.problem(
            format!("{field}.expect"),
            format!(
                "say what the probe must observe: {}",
                kind.expect_fields().join(", ")
            ),
        );
    }
    for name in set {
        if !kind.expect_fields().contains(&name) {
            lint.problem(
                format!("{field}.expect.{name}"),
                format!(
                    "does not apply to a {} probe (it takes {})",
                    kind.key(),
                    kind.expect_fields().join(", ")
                ),
            );
        }
    }
    if let Some(status) = probe.expect.status
        && !(100..=599).contains(&status)
    {
        lint.problem(
            format!("{field}.expect.status"),
            format!("{status} is not an HTTP status (100-599)"),
        );
    }
    if probe.expect.message.is_some() && probe.expect.message_contains.is_some() {
        lint.problem(
            format!("{field}.expect.message-contains"),
            "use `message` (exact) or `message-contains`, not both",
        );
    }
    for key in probe.expect.json.keys() {
        if key.is_empty() || key.split('.').any(str::is_empty) {
            lint.problem(
                format!("{field}.expect.json"),
                format!("'{key}' is not a dotted path like items.0.metadata.name"),
            );
        }
    }
}

fn check_probe_target(
    lint: &mut Linter,
    lab: &Lab,
    probe: &Probe,
    kind: ProbeKind,
    field: &str,
    created: &Created,
) {
    let namespace = probe.namespace.as_deref().unwrap_or(default_namespace(lab));
    if let Some(ns) = &probe.namespace
        && !lab.namespaces.contains(ns)
    {
        lint.problem(
            format!("{field}.namespace"),
            format!("'{ns}' is not in the lab's `namespaces`"),
        );
    }
    match (&probe.pod, probe.needs_pod()) {
        (None, true) => lint.problem(
            format!("{field}.pod"),
            format!("a {} probe runs from a pod: name it", kind.key()),
        ),
        (Some(_), false) => lint.problem(
            format!("{field}.pod"),
            "a can-i probe asks the API server directly: it takes no pod",
        ),
        (None, false) if probe.container.is_some() => lint.problem(
            format!("{field}.container"),
            "a can-i probe asks the API server directly: it takes no container",
        ),
        (Some(pod), true) => {
            let known = match pod.strip_prefix("deployment/") {
                Some(deployment) => Created::has(&created.deployments, namespace, deployment),
                None => Created::has(&created.pods, namespace, pod),
            };
            if !known {
                lint.problem(
                    format!("{field}.pod"),
                    format!("no step up to this one creates '{pod}' in namespace '{namespace}'"),
                );
            }
        }
        (None, false) => {}
    }
}

fn check_probe_kind(lint: &mut Linter, probe: &Probe, field: &str) {
    if let Some(http) = &probe.http {
        if !HTTP_METHODS.contains(&http.method.as_str()) {
            lint.problem(
                format!("{field}.http.method"),
                format!(
                    "'{}' is not one of {}",
                    http.method,
                    HTTP_METHODS.join(", ")
                ),
            );
        }
        if !http.path.starts_with('/') {
            lint.problem(
                format!("{field}.http.path"),
                format!("'{}' must start with /", http.path),
            );
        }
        check_variables(lint, &format!("{field}.http.path"), &http.path);
        if let Some(query) = &http.query {
            if query.starts_with('?') {
                lint.problem(format!("{field}.http.query"), "leave out the leading '?'");
            }
            check_variables(lint, &format!("{field}.http.query"), query);
        }
    }
    if let Some(kubectl) = &probe.kubectl {
        if kubectl.args.is_empty() {
            lint.problem(
                format!("{field}.kubectl.args"),
                "give kubectl's arguments, e.g. [get, pods]",
            );
        }
        if kubectl.args.first().is_some_and(|a| a == "kubectl") {
            lint.problem(
                format!("{field}.kubectl.args[0]"),
                "leave out 'kubectl' itself: args are what follows it",
            );
        }
        for (i, arg) in kubectl.args.iter().enumerate() {
            check_variables(lint, &format!("{field}.kubectl.args[{i}]"), arg);
        }
    }
    if let Some(file) = &probe.file
        && !file.path.starts_with('/')
    {
        lint.problem(
            format!("{field}.file.path"),
            format!("'{}' must be an absolute path in the pod", file.path),
        );
    }
    if let Some(can_i) = &probe.can_i {
        if can_i.user.trim().is_empty() {
            lint.problem(
                format!("{field}.can-i.as"),
                "name the user, e.g. system:serviceaccount:default:default",
            );
        }
        if can_i.verb.trim().is_empty() || can_i.verb.contains(char::is_whitespace) {
            lint.problem(
                format!("{field}.can-i.verb"),
                format!("'{}' is not a verb", can_i.verb),
            );
        }
    }
}

/// Only the documented variables may appear; anything else would mean one thing in
/// the pod's shell and another on the host.
fn check_variables(lint: &mut Linter, field: &str, text: &str) {
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        let tail = &rest[start..];
        match PATH_VARIABLES.iter().find(|v| tail.starts_with(**v)) {
            Some(v) => rest = &tail[v.len()..],
            None => {
                let shown: String = tail.chars().take(16).collect();
                lint.problem(
                    field,
                    format!(
                        "unknown variable at '{shown}': use {}",
                        PATH_VARIABLES.join(" or ")
                    ),
                );
                return;
            }
        }
    }
}

fn check_template(lint: &mut Linter, lab: &Lab, dir: &Path) -> String {
    let path: PathBuf = dir.join(&lab.explain);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            lint.problem(
                "explain",
                format!(
                    "cannot read the explanation template {}: {e}",
                    path.display()
                ),
            );
            return String::new();
        }
    };
    let mut tera = tera::Tera::default();
    if let Err(e) = tera.add_raw_template(&lab.explain, &text) {
        let (at, message) = tera_problem(&crate::report::error_chain(&e));
        lint.problems.push(Problem {
            file: path,
            at,
            field: String::new(),
            message: format!("template does not parse: {message}"),
        });
    }
    text
}

/// Tera reports "error: <message>\n --> name:line:col\n<snippet>": keep the message
/// and the position.
fn tera_problem(rendered: &str) -> (Position, String) {
    let message = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .trim()
        .to_string();
    let position = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|place| {
            let mut parts = place.rsplitn(3, ':');
            let column = parts.next()?.trim().parse().ok()?;
            let line = parts.next()?.trim().parse().ok()?;
            Some(Position { line, column })
        })
        .unwrap_or(Position { line: 1, column: 1 });
    (position, message)
}
