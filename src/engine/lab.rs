//! One lab: its steps in order, each step's operations in order (consecutive probes
//! side by side, as they only read), everything that happened in the report. A check
//! that fails lets the lab go on; an operation that cannot do its job stops it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::objects::{Applied, Objects};
use super::{Error, Target, checks, tokens, wait, workloads};
use crate::probe::{self, Inputs, ProbeContext};
use crate::report::{self, Observed, OperationReport, Outcome, StepReport};
use crate::scenario::vars::{self, Reference};
use crate::scenario::{
    Action, Apply, DeleteOp, ExpectError, Identity, LoadedLab, ObjectRef, Operation, Step,
};
use crate::ui::Ui;

/// How long a `delete` waits by default.
const DELETE_TIMEOUT: Duration = Duration::from_secs(60);

/// What one lab's operations share.
pub struct LabRun<'a> {
    pub target: &'a Target,
    pub loaded: &'a LoadedLab,
    pub objects: Objects,
    pub probes: ProbeContext,
    pub ui: &'a Ui,
    pub prefix: String,
    pace: super::Pace,
    /// Whether the plan probes a pod at all: if not (a hands-on lab's start or
    /// solution), a pod a wait finds is not made ready for probes (on the host, its
    /// token requested and its volume made).
    probes_ahead: bool,
    /// Values captured by earlier operations.
    vars: BTreeMap<String, String>,
    /// Tokens requested by name (never printed).
    tokens: BTreeMap<String, String>,
}

/// Why a lab stopped before its end.
pub struct Stopped {
    pub outcome: Outcome,
    pub message: String,
}

impl<'a> LabRun<'a> {
    pub fn new(
        target: &'a Target,
        loaded: &'a LoadedLab,
        plan: &[Step],
        objects: Objects,
        pace: super::Pace,
        ui: &'a Ui,
    ) -> Self {
        let probes_ahead = plan
            .iter()
            .flat_map(|step| &step.operations)
            .any(|op| matches!(op.action, crate::scenario::Action::Probe(_)));
        LabRun {
            target,
            loaded,
            objects,
            probes: ProbeContext::new(
                target.client.clone(),
                target.execution.clone(),
                loaded.lab.namespaces.clone(),
                pace,
                target.rbac_snapshots.clone(),
            )
            .sharing_policy_when_checking(&target.rbac_snapshot),
            ui,
            pace,
            probes_ahead,
            prefix: format!("[{}]", loaded.lab.id),
            vars: BTreeMap::new(),
            tokens: BTreeMap::new(),
        }
    }

    fn default_namespace(&self) -> &str {
        &self.loaded.lab.namespaces[0]
    }

    /// Runs a step; on an operation that could not do its job, the report so far and why.
    pub async fn run_step(&mut self, step: &Step) -> (StepReport, Option<Stopped>) {
        let started = Instant::now();
        self.ui.info(format!("{} {}", self.prefix, step.name));
        let mut report = StepReport {
            id: step.id.clone(),
            name: step.name.clone(),
            operations: Vec::new(),
            duration_ms: 0,
        };
        let mut stopped = None;
        let mut index = 0;
        let operations = &step.operations;
        while index < operations.len() {
            let group = self.probe_group(step, index);
            let results = if group > 1 {
                self.run_probes(&operations[index..index + group], index)
                    .await
            } else {
                vec![self.run_operation(&operations[index], index).await]
            };
            let ran = &operations[index..index + group];
            if ran.iter().any(|op| op.action.may_change_pods()) {
                self.probes.pods_may_have_changed().await;
            }
            for (op, result) in results {
                self.ui.info(report::operation_line(&self.prefix, &result));
                for (name, value) in &result.observed.captured {
                    self.vars.insert(name.clone(), value.clone());
                }
                if let Some(value) = op {
                    self.tokens.insert(value.0, value.1);
                }
                let stop = matches!(result.outcome, Outcome::Invalid | Outcome::Error)
                    || (result.outcome == Outcome::Skipped && !result.check);
                if stop && stopped.is_none() {
                    stopped = Some(Stopped {
                        outcome: result.outcome,
                        message: format!(
                            "step '{}', {}: {}",
                            step.name,
                            result.name,
                            result
                                .error
                                .clone()
                                .unwrap_or_else(|| result.failures.join("; "))
                        ),
                    });
                }
                report.operations.push(result);
            }
            if stopped.is_some() {
                break;
            }
            index += group;
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        (report, stopped)
    }

    /// How many operations from `start` form a group of probes to run side by side: a
    /// probe that captures ends its group (later ones may use what it captures).
    fn probe_group(&self, step: &Step, start: usize) -> usize {
        if step.sequential {
            return 1;
        }
        let mut length = 0;
        for op in &step.operations[start..] {
            let Action::Probe(probe) = &op.action else {
                break;
            };
            length += 1;
            if let crate::scenario::Probe::Http(http) = probe
                && !http.capture.is_empty()
            {
                break;
            }
        }
        length.max(1)
    }

    async fn run_probes(
        &self,
        group: &[Operation],
        first: usize,
    ) -> Vec<(Option<(String, String)>, OperationReport)> {
        self.probes.refresh().await;
        let inputs = Inputs {
            vars: &self.vars,
            tokens: &self.tokens,
        };
        let runs = group.iter().enumerate().map(|(i, op)| {
            let Action::Probe(p) = &op.action else {
                unreachable!("a probe group holds probes")
            };
            let namespace = self.namespace_of(op);
            async move {
                let mut report = self.probe(op, p, &namespace, inputs).await;
                fill_identity(&mut report, op, first + i);
                (None, report)
            }
        });
        futures::future::join_all(runs).await
    }

    /// Runs a probe; with `eventually`, again until it passes or the time is up.
    async fn probe(
        &self,
        op: &Operation,
        p: &crate::scenario::Probe,
        namespace: &str,
        inputs: Inputs<'_>,
    ) -> OperationReport {
        // A request body from a file beside lab.yaml (lint read it) is sent as written.
        let with_body;
        let p = match p {
            crate::scenario::Probe::Http(http) if http.body_file.is_some() => {
                let mut http = http.clone();
                let name = http.body_file.take().unwrap_or_default();
                http.body = self.loaded.files.get(&name).cloned().map(Value::String);
                with_body = crate::scenario::Probe::Http(http);
                &with_body
            }
            other => other,
        };
        let started = Instant::now();
        let deadline = op
            .eventually
            .map(|t| started + self.pace.patience(Some(t), t.0));
        let mut tries = 1;
        loop {
            let mut report = probe::run(&self.probes, op, p, namespace, inputs).await;
            let settling = authorizer_disagrees(&report.observed)
                && self.probes.rbac_written_within(AUTHORIZER_SETTLE);
            let retry = report.outcome == Outcome::Failed
                && (settling || deadline.is_some_and(|d| Instant::now() < d));
            if !retry {
                if tries > 1 {
                    report.duration_ms = started.elapsed().as_millis() as u64;
                    if report.outcome == Outcome::Failed {
                        report.failures.push(format!(
                            "still so after {tries} tries in {}",
                            crate::ui::format_duration(started.elapsed())
                        ));
                    } else {
                        report.actions.push(format!("passed on try {tries}"));
                    }
                }
                return report;
            }
            tries += 1;
            // The authorizer's informers trail a write by milliseconds.
            let pause = if settling { 25 } else { 500 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            // What the cluster says may have changed: read RBAC and pods afresh.
            self.probes.refresh().await;
            self.probes.pods_may_have_changed().await;
        }
    }

    fn namespace_of(&self, op: &Operation) -> String {
        op.namespace
            .clone()
            .unwrap_or_else(|| self.default_namespace().to_string())
    }

    /// `${NAMESPACE}` and captured variables in a text outside a pod.
    fn expand(&self, text: &str, namespace: &str) -> String {
        vars::expand(text, false, |reference| match reference {
            Reference::Variable(vars::NAMESPACE) => Some(namespace.to_string()),
            Reference::Variable(name) => self.vars.get(*name).cloned(),
            _ => None,
        })
    }

    fn expand_value(&self, value: &Value, namespace: &str) -> Value {
        match value {
            Value::String(text) => Value::String(self.expand(text, namespace)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.expand_value(v, namespace))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.expand_value(v, namespace)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Runs one operation; a named token it requested comes back beside the report.
    async fn run_operation(
        &self,
        op: &Operation,
        index: usize,
    ) -> (Option<(String, String)>, OperationReport) {
        let started = Instant::now();
        let namespace = self.namespace_of(op);
        if let Action::Probe(p) = &op.action {
            self.probes.refresh().await;
            let inputs = Inputs {
                vars: &self.vars,
                tokens: &self.tokens,
            };
            let mut report = self.probe(op, p, &namespace, inputs).await;
            fill_identity(&mut report, op, index);
            return (None, report);
        }
        let mut report = OperationReport {
            id: String::new(),
            name: String::new(),
            kind: op.action.key().to_string(),
            check: false,
            outcome: Outcome::Passed,
            passed: true,
            ran: "as kubelab".into(),
            command: String::new(),
            actions: Vec::new(),
            expected: None,
            observed: Observed::default(),
            failures: Vec::new(),
            error: None,
            duration_ms: 0,
        };
        fill_identity(&mut report, op, index);
        report.command =
            crate::scenario::kubectl::command(&op.action, &namespace).unwrap_or_default();
        let step = self.ui.step_with_prefix(&self.prefix, &report.name);
        let mut token = None;
        let result = match &op.action {
            Action::Apply(apply) => self.apply(apply, &namespace, false, &mut report).await,
            Action::Create(apply) => self.apply(apply, &namespace, true, &mut report).await,
            Action::Patch(patch) => {
                let body = self.expand_value(&patch.patch, &namespace);
                let identity = patch.identity.as_ref();
                self.note_identity(&mut report, identity, &namespace);
                let result = self
                    .objects
                    .patch(&patch.object, &namespace, patch.patch_type, &body, identity)
                    .await;
                self.expecting(patch.expect_error.as_ref(), result, &mut report)
            }
            Action::Delete(delete) => self.delete(delete, &namespace, &mut report).await,
            Action::Assert(assert) => {
                report.check = true;
                report.expected = Some(match (&assert.matches, assert.absent) {
                    (Some(tree), _) => tree.clone(),
                    (None, true) => serde_json::json!({"absent": true}),
                    (None, false) => serde_json::json!({"exists": true}),
                });
                match self
                    .objects
                    .resources()
                    .for_type(&assert.object.resource)
                    .await
                {
                    Ok(resolved) => {
                        let tree = assert
                            .matches
                            .as_ref()
                            .map(|t| self.expand_value(t, &namespace));
                        checks::assert(
                            self.objects.client(),
                            &resolved,
                            assert,
                            tree.as_ref(),
                            &namespace,
                            self.pace.patience(assert.timeout, checks::DEFAULT_TIMEOUT),
                        )
                        .await
                        .map(|verdict| self.verdict(verdict, &assert.capture, &mut report))
                    }
                    Err(e) => Err(e),
                }
            }
            Action::Events(events) => {
                report.check = true;
                report.expected = serde_json::to_value(events).ok();
                match self
                    .objects
                    .resources()
                    .for_type(&events.object.resource)
                    .await
                {
                    Ok(resolved) => checks::events(
                        self.objects.client(),
                        &resolved,
                        events,
                        &namespace,
                        self.pace.patience(events.timeout, checks::DEFAULT_TIMEOUT),
                    )
                    .await
                    .map(|verdict| self.verdict(verdict, &BTreeMap::new(), &mut report)),
                    Err(e) => Err(e),
                }
            }
            Action::Wait(wait_op) => {
                report.command =
                    format!("kubectl wait {} --for {:?}", wait_op.object, wait_op.until)
                        .to_lowercase();
                match self
                    .objects
                    .resources()
                    .for_type(&wait_op.object.resource)
                    .await
                {
                    Ok(resolved) => {
                        let progress = |message: String| step.progress(message);
                        match wait::wait(
                            self.objects.client(),
                            &resolved,
                            wait_op,
                            &namespace,
                            self.target.execution.runs_pods(),
                            self.pace.limit(wait_op.timeout, wait::DEFAULT_TIMEOUT),
                            &progress,
                        )
                        .await
                        {
                            Ok(waited) => {
                                report.actions.push(waited.line);
                                if self.probes_ahead
                                    && wait_op.until.means_started()
                                    && (wait_op.object.is_pod()
                                        || workloads::workload_kind(&wait_op.object).is_some())
                                {
                                    let seen = workloads::newest(waited.pods);
                                    self.probes.started(&wait_op.object, &namespace, seen).await;
                                }
                                let object = waited
                                    .object
                                    .map(|o| serde_json::to_value(o).unwrap_or_default());
                                capture(&wait_op.capture, object.as_ref(), &mut report);
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            Action::Token(token_op) => {
                match tokens::request(self.objects.client(), token_op, &namespace).await {
                    Ok((value, line)) => {
                        report.observed.token = Some(probe::token::info(&value));
                        report.actions.push(line);
                        token = Some((token_op.name.clone(), value));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Action::Restart(target) => {
                let name = target.name.clone().unwrap_or_default();
                report.command =
                    format!("kubectl rollout restart deployment/{name} -n {namespace}");
                workloads::restart(self.objects.client(), &namespace, &name)
                    .await
                    .map(|()| {
                        report
                            .actions
                            .push(format!("restarted deployment {namespace}/{name}"))
                    })
                    .map_err(|source| {
                        Error::from_kube(
                            format!("restarting deployment {namespace}/{name}"),
                            source,
                        )
                    })
            }
            Action::Probe(_) => unreachable!("handled above"),
        };
        if let Err(e) = result {
            report.outcome = e.outcome();
            report.error = Some(report::error_chain(&e));
        } else if !report.failures.is_empty() {
            report.outcome = Outcome::Failed;
        }
        report.passed = report.outcome.is_fine();
        report.duration_ms = started.elapsed().as_millis() as u64;
        // The operation's own line comes from the caller; the spinner only runs.
        step.quiet();
        (token, report)
    }

    fn note_identity(
        &self,
        report: &mut OperationReport,
        identity: Option<&Identity>,
        namespace: &str,
    ) {
        if let Some(identity) = identity {
            report.ran = format!("as {}", identity.user_and_groups(namespace).0);
        }
    }

    async fn apply(
        &self,
        apply: &Apply,
        namespace: &str,
        create: bool,
        report: &mut OperationReport,
    ) -> Result<(), Error> {
        let files = apply.all_files();
        self.note_identity(report, apply.identity.as_ref(), namespace);
        let mut result = Ok(());
        'files: for file in files {
            let manifest = &self.loaded.manifests[file];
            for document in &manifest.documents {
                let document = self.expand_value(document, namespace);
                match self
                    .objects
                    .apply(&document, namespace, apply.identity.as_ref(), create)
                    .await
                {
                    Ok(Applied::Created(object)) => report.actions.push(format!(
                        "{} {}",
                        if create { "created" } else { "applied" },
                        object.describe()
                    )),
                    Ok(Applied::UsedExisting(object)) => {
                        report.actions.push(format!("using existing {object}"))
                    }
                    Err(e) => {
                        result = Err(e);
                        break 'files;
                    }
                }
            }
        }
        self.expecting(
            apply.expect_error.as_ref(),
            result.map(|_| String::new()),
            report,
        )
    }

    async fn delete(
        &self,
        delete: &DeleteOp,
        namespace: &str,
        report: &mut OperationReport,
    ) -> Result<(), Error> {
        let timeout = self.pace.limit(delete.timeout, DELETE_TIMEOUT);
        self.note_identity(report, delete.identity.as_ref(), namespace);
        let targets: Vec<(ObjectRef, String)> = match (&delete.object, &delete.file) {
            (Some(object), _) => vec![(object.clone(), namespace.to_string())],
            (None, Some(file)) => self.loaded.manifests[file]
                .documents
                .iter()
                .map(|d| {
                    (
                        ObjectRef {
                            resource: d["kind"].as_str().unwrap_or_default().to_string(),
                            name: d["metadata"]["name"].as_str().map(str::to_string),
                        },
                        d["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or(namespace)
                            .to_string(),
                    )
                })
                .collect(),
            (None, None) => Vec::new(),
        };
        let mut result = Ok(String::new());
        for (reference, ns) in &targets {
            let deleted = async {
                let (resolved, _) = match self.objects.owned(reference, ns).await {
                    // A solution deletes the starting state; the student may have already.
                    Err(Error::Missing(_)) if self.objects.gone_is_fine() => {
                        return Ok(format!("{reference} was already gone"));
                    }
                    other => other?,
                };
                self.objects
                    .delete(
                        &resolved,
                        ns,
                        reference.name.as_deref().unwrap_or_default(),
                        delete.grace_period,
                        delete.identity.as_ref(),
                        timeout,
                    )
                    .await
            }
            .await;
            match deleted {
                Ok(line) => report.actions.push(line),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.expecting(delete.expect_error.as_ref(), result, report)
    }

    /// With `expect-error`, the operation is a check: it passes when the API server
    /// rejects it as expected. Without, a rejection is the operation's error.
    fn expecting(
        &self,
        expect: Option<&ExpectError>,
        result: Result<String, Error>,
        report: &mut OperationReport,
    ) -> Result<(), Error> {
        let Some(expect) = expect else {
            return result.map(|line| {
                if !line.is_empty() {
                    report.actions.push(line);
                }
            });
        };
        report.check = true;
        report.expected = serde_json::to_value(expect).ok();
        match result {
            Ok(_) => {
                report
                    .failures
                    .push("expected the API server to reject it, but it accepted it".into());
                Ok(())
            }
            Err(Error::Rejected {
                code,
                reason,
                message,
                ..
            }) => {
                report.observed.status = Some(code);
                report.observed.reason = Some(reason.clone());
                report.observed.message = Some(message.clone());
                report.failures = rejection_failures(expect, code, &reason, &message);
                Ok(())
            }
            Err(Error::Cluster {
                source: kube::Error::Api(status),
                ..
            }) if status.code == 403 || status.code == 401 => {
                report.observed.status = Some(status.code);
                report.observed.reason = Some(status.reason.clone());
                report.observed.message = Some(status.message.clone());
                report.failures =
                    rejection_failures(expect, status.code, &status.reason, &status.message);
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    fn verdict(
        &self,
        verdict: checks::Verdict,
        captures: &BTreeMap<String, String>,
        report: &mut OperationReport,
    ) {
        report.failures = verdict.failures;
        report.observed.diff = verdict.diff;
        report.observed.body = verdict.summary;
        if report.failures.is_empty() {
            capture(captures, verdict.object.as_ref(), report);
        }
    }
}

/// Captures values of an object into variables (failing the operation when one is
/// missing: later operations would use an empty value).
fn capture(
    captures: &BTreeMap<String, String>,
    object: Option<&Value>,
    report: &mut OperationReport,
) {
    for (name, path) in captures {
        match object.and_then(|o| crate::expect::lookup(o, path)) {
            Some(value) => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                report.observed.captured.insert(name.clone(), text);
            }
            None => report
                .failures
                .push(format!("capture {name}: the object has no {path}")),
        }
    }
}

/// Every way a rejection differs from the expected one.
pub fn rejection_failures(
    expect: &ExpectError,
    code: u16,
    reason: &str,
    message: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(want) = expect.status
        && want != code
    {
        out.push(format!("status: expected {want}, got {code}"));
    }
    if let Some(want) = &expect.reason
        && want != reason
    {
        out.push(format!("reason: expected {want:?}, got {reason:?}"));
    }
    if let Some(want) = &expect.message {
        out.extend(want.failures("message", Some(message)));
    }
    out
}

/// The operation's id and name: the lab's, or made from its kind and place.
fn fill_identity(report: &mut OperationReport, op: &Operation, index: usize) {
    report.id = op
        .id
        .clone()
        .unwrap_or_else(|| format!("{}_{index}", op.action.key().replace('-', "_")));
    report.name = op.name.clone().unwrap_or_else(|| op.action.describe());
}

/// How long after an RBAC write of the run a probe the API server answered against
/// the written RBAC is tried again. Its authorizer reads RBAC from its own informers,
/// a moment behind the write (seen with ten runs at once on 2 cores).
const AUTHORIZER_SETTLE: Duration = Duration::from_secs(3);

/// The API server denied what the cluster's RBAC objects allow (403, or an access
/// review's "no", where kubelab's view says allowed), or allowed what they deny.
fn authorizer_disagrees(observed: &crate::report::Observed) -> bool {
    match (&observed.rbac, server_allowed(observed)) {
        (Some(why), Some(allowed)) => why.allowed != allowed,
        _ => false,
    }
}

/// What the API server decided, where a probe shows it: an access review's answer
/// (can-i), else the request's status (403: denied).
fn server_allowed(observed: &crate::report::Observed) -> Option<bool> {
    observed
        .allowed
        .or(observed.status.map(|status| status != 403))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Observed;

    #[test]
    fn the_servers_decision_is_an_access_reviews_answer_or_the_requests_status() {
        let review = |allowed| Observed {
            allowed: Some(allowed),
            ..Default::default()
        };
        let request = |status| Observed {
            status: Some(status),
            ..Default::default()
        };
        assert_eq!(server_allowed(&review(false)), Some(false));
        assert_eq!(server_allowed(&review(true)), Some(true));
        assert_eq!(server_allowed(&request(403)), Some(false));
        assert_eq!(server_allowed(&request(200)), Some(true));
        assert_eq!(server_allowed(&request(404)), Some(true));
        assert_eq!(server_allowed(&Observed::default()), None);
    }
}
