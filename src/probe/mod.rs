//! Probes: what each kind means is written once here, against [`access::PodAccess`]
//! (run a command in the pod, read a file in the pod), which reaches the pod either by
//! exec (`in_pod.rs`) or through the host standing in for the kubelet (`on_host.rs`).
//! can-i asks the API server directly.

pub mod access;
pub mod command;
mod diagnosis;
pub mod exec;
pub mod host;
mod host_http;
mod in_pod;
mod on_host;
mod rbac;
pub mod sandbox;
mod shell_session;
pub mod terminal;
pub mod token;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Mutex;

use self::access::{CurlRequest, FileFacts, PodAccess, PodCommand, RequestToken};
use self::command::SERVICE_ACCOUNT_DIR;
use self::host::HostTools;
use crate::rbac::{Policy, Request, User};
use crate::report::{Observed, OperationReport, Outcome};
use crate::scenario::vars::{self, Reference};
use crate::scenario::{
    CanIProbe, ExecProbe, FileProbe, HttpProbe, KubectlProbe, LogsProbe, ObjectRef, Operation,
    Probe, TokenSource,
};

/// Problems that keep a probe from running at all (not what it observes).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Kube(String, #[source] kube::Error),
    #[error("reading the cluster's RBAC objects: {0}")]
    Rbac(#[from] crate::rbac::snapshot::Error),
    #[error("{0}")]
    Host(String),
    #[error("{0}")]
    Pod(String),
    /// kubelab's own identity may not exec: a cluster problem, not a probe result.
    #[error("kubelab may not exec into pods: {0}")]
    ExecDenied(String),
    /// What this way of reaching pods cannot do honestly: the probe is skipped.
    #[error("{0}")]
    Unsupported(String),
}

/// How probes reach pods on this cluster.
#[derive(Clone, Debug)]
pub enum Execution {
    /// No node runs the pods: kubelab materializes each pod's volumes and stands in for
    /// the kubelet on the host (docs/design.md, "Probes without a node").
    Host(HostTools),
    /// A node runs the pods: probes exec inside them through the API.
    InPod,
}

impl Execution {
    /// Whether pods really run (and so can become Ready).
    pub fn runs_pods(&self) -> bool {
        matches!(self, Execution::InPod)
    }
}

/// How long a logs probe waits for the expected text (a container may still be
/// starting, or restarting after a fix).
const LOGS_TIMEOUT: Duration = Duration::from_secs(90);

/// What probes of one lab share: the cluster, each pod's access (made once per pod and
/// container; on the host that is its materialized files), the RBAC snapshot.
pub struct ProbeContext {
    pub client: kube::Client,
    pub execution: Execution,
    /// The lab's namespaces (the first is the default).
    pub namespaces: Vec<String>,
    pace: crate::engine::Pace,
    /// Made once per pod and container, even when probes side by side ask at once.
    access: Mutex<HashMap<String, AccessCell>>,
    /// Each pod's token as read in the pod (None: no token mounted), for its claims.
    pod_tokens: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Option<String>>>>>,
    /// Pods as the wait for them just found them, by namespace and reference: a probe
    /// after the wait needs no new read of its pod (a quorum read that, with labs side
    /// by side, was most of a probe's time). Forgotten once pods may have changed.
    started: Mutex<HashMap<(String, String), Arc<dyn PodAccess>>>,
    /// The run's RBAC view, kept by watches.
    snapshots: Arc<crate::rbac::snapshot::Snapshots>,
    /// Where kubelab may not list RBAC cluster-wide: the lab's namespaces' RBAC
    /// objects, read once per group of probes (operations between groups may change
    /// them).
    policy: Mutex<PolicyCell>,
}

type AccessCell = Arc<tokio::sync::OnceCell<Arc<dyn PodAccess>>>;

/// An RBAC snapshot, read when first needed.
pub type PolicyCell = Arc<tokio::sync::OnceCell<Arc<Policy>>>;

/// What a probe may use besides the cluster: values captured by earlier operations,
/// and tokens requested by name (never printed).
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub vars: &'a BTreeMap<String, String>,
    pub tokens: &'a BTreeMap<String, String>,
}

impl ProbeContext {
    pub fn new(
        client: kube::Client,
        execution: Execution,
        namespaces: Vec<String>,
        pace: crate::engine::Pace,
        snapshots: Arc<crate::rbac::snapshot::Snapshots>,
    ) -> Self {
        ProbeContext {
            client,
            execution,
            namespaces,
            pace,
            snapshots,
            access: Mutex::default(),
            started: Mutex::default(),
            pod_tokens: Mutex::default(),
            policy: Mutex::default(),
        }
    }

    /// A check changes nothing: its RBAC snapshot may be the one `shared` holds (read
    /// once for all the labs a run checks).
    pub fn sharing_policy_when_checking(self, shared: &PolicyCell) -> Self {
        if self.pace == crate::engine::Pace::Check {
            *self.policy.try_lock().expect("just made") = shared.clone();
        }
        self
    }

    /// Operations since the last probes may have changed RBAC or pods: start afresh
    /// (a check changes nothing).
    pub async fn refresh(&self) {
        if self.pace != crate::engine::Pace::Check {
            *self.policy.lock().await = Arc::default();
        }
    }

    /// Forgets every pod's access (on the host this deletes the materialized files).
    pub async fn clear(&self) {
        self.started.lock().await.clear();
        self.pod_tokens.lock().await.clear();
        self.access.lock().await.clear();
    }

    async fn policy(&self) -> Result<Arc<Policy>, Error> {
        if let Some(policy) = self.snapshots.cluster_wide(&self.client).await? {
            return Ok(policy);
        }
        let cell = self.policy.lock().await.clone();
        cell.get_or_try_init(|| async {
            Policy::load_for(&self.client, &self.namespaces)
                .await
                .map(Arc::new)
                .map_err(|e| Error::Kube("reading the cluster's RBAC objects".into(), e))
        })
        .await
        .cloned()
    }

    /// The pod a probe names (a Pod, or the newest running pod of a workload), reached
    /// the way this cluster allows.
    pub async fn pod_access(
        &self,
        reference: &ObjectRef,
        namespace: &str,
        container: Option<&str>,
    ) -> Result<Arc<dyn PodAccess>, Error> {
        if container.is_none()
            && let Some(access) = self
                .started
                .lock()
                .await
                .get(&(namespace.to_string(), reference.to_string()))
        {
            return Ok(access.clone());
        }
        let pod = crate::engine::workloads::pod_for(&self.client, reference, namespace)
            .await
            .map_err(|e| match e {
                crate::engine::workloads::Error::Kube(what, source) => Error::Kube(what, source),
                other => Error::Pod(other.to_string()),
            })?;
        self.access_to(pod, container).await
    }

    /// Reaching `pod` (its `container`, or the first), made once per pod and container.
    async fn access_to(
        &self,
        pod: Pod,
        container: Option<&str>,
    ) -> Result<Arc<dyn PodAccess>, Error> {
        let key = format!(
            "{}/{}",
            pod.metadata.uid.clone().unwrap_or_default(),
            container.unwrap_or("")
        );
        let cell = self.access.lock().await.entry(key).or_default().clone();
        let container = container.map(str::to_string);
        cell.get_or_try_init(|| async {
            let made: Arc<dyn PodAccess> = match &self.execution {
                Execution::Host(tools) => Arc::new(
                    on_host::OnHost::new(&self.client, tools.clone(), pod, container).await?,
                ),
                Execution::InPod => Arc::new(
                    in_pod::InPod::new(self.client.clone(), pod, container, self.pace).await?,
                ),
            };
            Ok(made)
        })
        .await
        .cloned()
    }

    /// A lab waited for the pod `reference` names (a Pod, or a workload's newest pod)
    /// and it is there: probes that follow reach it without reading it again. On the
    /// host, kubelab stands in for the kubelet, which mounts a pod's volumes (its
    /// token, the CA's ConfigMap) before the pod starts: they are materialized now, not
    /// by the first probe. A failure is left for that probe to meet and report. A Job's
    /// pod is not kept: the Job replaces a pod that fails on its own.
    /// `seen`: the pod as the wait saw it, when it waited for a Pod (not read again).
    pub async fn started(&self, reference: &ObjectRef, namespace: &str, seen: Option<Pod>) {
        let key = (namespace.to_string(), reference.to_string());
        self.started.lock().await.remove(&key);
        if crate::engine::workloads::workload_kind(reference) == Some("Job") {
            return;
        }
        let access = match seen {
            Some(pod) => self.access_to(pod, None).await,
            None => self.pod_access(reference, namespace, None).await,
        };
        if let Ok(access) = access {
            self.started.lock().await.insert(key, access);
        }
    }

    /// Whether the run wrote an RBAC object less than `span` ago.
    pub fn rbac_written_within(&self, span: Duration) -> bool {
        self.snapshots.written_within(span)
    }

    /// An operation may have changed pods: each probe reads its pod again.
    pub async fn pods_may_have_changed(&self) {
        self.started.lock().await.clear();
    }

    /// The pod's own token, read in the pod (for its claims; never printed). Best
    /// effort: an image without `cat` still has its token; who the pod is comes from
    /// its spec.
    async fn token_in_pod(&self, access: &dyn PodAccess) -> Option<String> {
        // Read once per pod: probes running side by side wait for the one read.
        let cell = self
            .pod_tokens
            .lock()
            .await
            .entry(access.ran())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            access
                .read_file(&format!("{SERVICE_ACCOUNT_DIR}/token"))
                .await
                .ok()
                .and_then(|f| f.content)
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        })
        .await
        .clone()
    }
}

/// A probe's result before the common parts are added.
struct Ran {
    ran: String,
    command: String,
    observed: Observed,
    failures: Vec<String>,
    /// The API request it made, for RBAC's view.
    request: Option<Request>,
    /// Why it could not be checked here (it is then skipped).
    skipped: Option<String>,
    /// The pod it ran from, and whether its container mounts a token (for diagnoses).
    pod: Option<(Pod, bool)>,
}

/// Runs one probe and checks it. Whatever happens becomes the report: a probe that
/// could not run is an error (or skipped, where this cluster cannot run it honestly),
/// and never discards what other probes observed.
pub async fn run(
    ctx: &ProbeContext,
    op: &Operation,
    probe: &Probe,
    namespace: &str,
    inputs: Inputs<'_>,
) -> OperationReport {
    let started = Instant::now();
    let probe = &with_expanded_expectations(probe, inputs, namespace);
    let result = match probe {
        Probe::CanI(can_i) => run_can_i(ctx, can_i, namespace, inputs).await,
        _ => match from_pod(ctx, op, probe, namespace, inputs).await {
            Ok(ran) => Ok(ran),
            Err((ran, e)) => Err((ran, e)),
        },
    };
    let mut report = OperationReport {
        id: op.id.clone().unwrap_or_default(),
        name: op.name.clone().unwrap_or_default(),
        kind: probe.key().to_string(),
        check: true,
        outcome: Outcome::Passed,
        passed: true,
        ran: String::new(),
        command: String::new(),
        actions: Vec::new(),
        expected: Some(probe.expected()),
        observed: Observed::default(),
        failures: Vec::new(),
        error: None,
        duration_ms: 0,
    };
    match result {
        Ok(mut ran) => {
            if let Err(e) = add_rbac(ctx, &mut ran, namespace).await {
                report.error = Some(crate::report::error_chain(&e));
            }
            ran.observed.body = truncate(&token::redact(&ran.observed.body), 4000);
            ran.observed.message = ran.observed.message.map(|m| token::redact(&m));
            report.ran = ran.ran;
            report.command = ran.command;
            report.observed = ran.observed;
            report.failures = ran.failures.iter().map(|f| token::redact(f)).collect();
            report.outcome = match (&ran.skipped, report.failures.is_empty()) {
                (Some(why), _) => {
                    report.error = Some(why.clone());
                    Outcome::Skipped
                }
                (None, true) => Outcome::Passed,
                (None, false) => Outcome::Failed,
            };
            // Denied where access was expected: say what to change, from the live policy.
            if report.outcome == Outcome::Failed
                && probe.expects_access()
                && let Ok(policy) = ctx.policy().await
            {
                let pod = ran.pod.as_ref().map(|(p, mounted)| (p, *mounted));
                report.observed.diagnosis = diagnosis::for_denial(
                    &ctx.client,
                    &policy,
                    &report.observed,
                    ran.request.as_ref(),
                    pod,
                )
                .await;
            }
        }
        Err((ran, e)) => {
            report.ran = ran;
            report.outcome = match e {
                Error::Unsupported(_) => Outcome::Skipped,
                _ => Outcome::Error,
            };
            report.error = Some(token::redact(&crate::report::error_chain(&e)));
        }
    }
    report.passed = report.outcome.is_fine();
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// Who an http probe's request is made as, and RBAC's view of it.
async fn add_rbac(ctx: &ProbeContext, ran: &mut Ran, namespace: &str) -> Result<(), Error> {
    let Some(identity) = ran.observed.identity.clone() else {
        return Ok(());
    };
    let policy = ctx.policy().await?;
    let mut namespaces = ctx.namespaces.clone();
    if !namespaces.iter().any(|n| n == namespace) {
        namespaces.push(namespace.to_string());
    }
    if identity != "system:anonymous" {
        ran.observed.bindings = rbac::bindings_naming(
            &policy,
            &User::authenticated_as(&identity, &[]),
            &namespaces,
        );
    }
    if let Some(request) = &ran.request {
        ran.observed.rbac = Some(rbac::why(&policy, &identity, request));
    }
    Ok(())
}

/// Replaces captured `${VARIABLES}`; pod expressions and `${NAMESPACE}` stay for the pod.
fn with_vars(text: &str, inputs: Inputs, shell: bool) -> String {
    vars::expand(text, shell, |reference| match reference {
        Reference::Variable(name) if *name != vars::NAMESPACE => inputs.vars.get(*name).cloned(),
        _ => None,
    })
}

/// The probe with `${NAMESPACE}` and captured variables put into its expectations.
fn with_expanded_expectations(probe: &Probe, inputs: Inputs, namespace: &str) -> Probe {
    fn expand(value: serde_json::Value, inputs: Inputs, namespace: &str) -> serde_json::Value {
        match value {
            serde_json::Value::String(text) => {
                serde_json::Value::String(vars::expand(&text, false, |r| match r {
                    Reference::Variable(vars::NAMESPACE) => Some(namespace.to_string()),
                    Reference::Variable(name) => inputs.vars.get(*name).cloned(),
                    _ => None,
                }))
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .into_iter()
                    .map(|v| expand(v, inputs, namespace))
                    .collect(),
            ),
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, expand(v, inputs, namespace)))
                    .collect(),
            ),
            other => other,
        }
    }
    fn round<T: serde::Serialize + serde::de::DeserializeOwned + Clone>(
        expect: &T,
        inputs: Inputs,
        namespace: &str,
    ) -> T {
        serde_json::to_value(expect)
            .ok()
            .and_then(|v| serde_json::from_value(expand(v, inputs, namespace)).ok())
            .unwrap_or_else(|| expect.clone())
    }
    let mut probe = probe.clone();
    match &mut probe {
        Probe::Http(p) => p.expect = round(&p.expect, inputs, namespace),
        Probe::Exec(p) => p.expect = round(&p.expect, inputs, namespace),
        Probe::Kubectl(p) => p.expect = round(&p.expect, inputs, namespace),
        Probe::File(p) => p.expect = round(&p.expect, inputs, namespace),
        Probe::CanI(p) => p.expect = round(&p.expect, inputs, namespace),
        Probe::Logs(p) => p.expect = round(&p.expect, inputs, namespace),
    }
    probe
}

/// What a text means outside the pod's shell, for RBAC and reports: the pod's name
/// and namespace put in.
fn as_pod_sees(text: &str, pod: &Pod) -> String {
    vars::expand(text, false, |reference| match reference {
        Reference::Hostname => pod.metadata.name.clone(),
        Reference::Variable(vars::NAMESPACE) => pod.metadata.namespace.clone(),
        _ => None,
    })
}

async fn from_pod(
    ctx: &ProbeContext,
    op: &Operation,
    probe: &Probe,
    namespace: &str,
    inputs: Inputs<'_>,
) -> Result<Ran, (String, Error)> {
    let reference = ObjectRef::pod(op.pod.as_deref().unwrap_or_default())
        .map_err(|e| (String::new(), Error::Pod(e)))?;
    let access = ctx
        .pod_access(&reference, namespace, op.container.as_deref())
        .await
        .map_err(|e| {
            (
                format!(
                    "for pod {namespace}/{}",
                    reference.name.as_deref().unwrap_or_default()
                ),
                e,
            )
        })?;
    let ran = access.ran();
    let result = match probe {
        Probe::Http(http) => run_http(ctx, access.as_ref(), http, inputs).await,
        Probe::Exec(exec) => run_exec(access.as_ref(), exec, inputs).await,
        Probe::Kubectl(kubectl) => run_kubectl(ctx, access.as_ref(), kubectl, inputs).await,
        Probe::File(file) => run_file(access.as_ref(), file, inputs).await,
        Probe::Logs(logs) => run_logs(access.as_ref(), logs, ctx.pace).await,
        Probe::CanI(_) => unreachable!("can-i does not run from a pod"),
    };
    let container = access.container().map(str::to_string);
    let facts = (
        access.pod().clone(),
        mounts_token(access.pod(), container.as_deref()),
    );
    result
        .map(|ran| Ran {
            pod: Some(facts),
            ..ran
        })
        .map_err(|e| (ran, e))
}

/// Whether the container mounts a volume with a ServiceAccount token (what admission
/// injects, unless automount is off), i.e. whether it authenticates as the pod's SA.
fn mounts_token(pod: &Pod, container: Option<&str>) -> bool {
    let (Some(spec), Some(chosen)) = (&pod.spec, access::container_of(pod, container)) else {
        return false;
    };
    let token_volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            v.projected.as_ref().is_some_and(|p| {
                p.sources
                    .iter()
                    .flatten()
                    .any(|s| s.service_account_token.is_some())
            })
        })
        .map(|v| v.name.as_str())
        .collect();
    chosen
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| token_volumes.contains(&m.name.as_str()))
}

fn service_account_user(pod: &Pod) -> String {
    format!(
        "system:serviceaccount:{}:{}",
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into())
    )
}

async fn run_http(
    ctx: &ProbeContext,
    access: &dyn PodAccess,
    http: &HttpProbe,
    inputs: Inputs<'_>,
) -> Result<Ran, Error> {
    let pod = access.pod();
    let target = match &http.query {
        Some(query) => format!("{}?{query}", http.path),
        None => http.path.clone(),
    };
    let body = match &http.body {
        Some(serde_json::Value::String(text)) => Some(text.clone()),
        Some(value) => Some(value.to_string()),
        None => None,
    };
    let token = request_token(&http.token, Some(inputs))?;
    // Tokens named in the body or headers travel as shell variables.
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut with_tokens = |text: &str| -> Result<String, Error> {
        let text = with_vars(text, inputs, false);
        for (_, reference) in vars::references(&text, false).unwrap_or_default() {
            if let Reference::Token(name) = reference {
                let value = inputs.tokens.get(name).ok_or_else(|| {
                    Error::Pod(format!(
                        "no token named '{name}' was requested before this probe"
                    ))
                })?;
                let var = command::token_variable(name);
                if !secrets.iter().any(|(v, _)| *v == var) {
                    secrets.push((var, value.clone()));
                }
            }
        }
        Ok(command::token_references_as_variables(&text))
    };
    let headers = http
        .headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), with_tokens(v)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    let body = body.map(|b| with_tokens(&b)).transpose()?;
    if let RequestToken::Named { name, value } = &token {
        let var = command::token_variable(name);
        if !secrets.iter().any(|(v, _)| *v == var) {
            secrets.push((var, value.clone()));
        }
    }
    let request = CurlRequest {
        method: http.method.clone(),
        target: with_vars(&target, inputs, false),
        headers,
        body,
        token,
        insecure: http.insecure,
        secrets,
    };
    let container = access.container().map(str::to_string);
    let sends_pod_token =
        matches!(request.token, RequestToken::Pod) && mounts_token(pod, container.as_deref());
    // The pod's token is read (once per pod) while the request runs, not after it in
    // the queue for the pod's shells.
    let pod_token = async {
        match sends_pod_token {
            true => ctx.token_in_pod(access).await,
            false => None,
        }
    };
    let command = PodCommand::Curl(request.clone());
    let (out, pod_token) = tokio::join!(access.run(&command), pod_token);
    let out = out?;
    let mut observed = observe_curl(&out.stdout, &out.stderr, out.exit_code);
    // Who the request is made as, from what it carries.
    match &request.token {
        RequestToken::Pod if sends_pod_token => {
            observed.identity = Some(service_account_user(pod));
            observed.token = pod_token.as_deref().map(token::info);
        }
        RequestToken::Pod | RequestToken::None => {
            observed.identity = Some("system:anonymous".into())
        }
        RequestToken::Named { value, .. } => {
            observed.token = Some(token::info(value));
            observed.identity =
                token::claims(value).and_then(|c| c["sub"].as_str().map(str::to_string));
        }
        RequestToken::File(path) => {
            if let Ok(FileFacts {
                content: Some(t), ..
            }) = access.read_file(path).await
            {
                observed.token = Some(token::info(t.trim()));
            }
        }
        RequestToken::Invalid => {}
    }
    let body: Option<serde_json::Value> = serde_json::from_str(&observed.body).ok();
    let mut failures = Vec::new();
    let expect = &http.expect;
    if let Some(want) = expect.status
        && observed.status != Some(want)
    {
        failures.push(format!(
            "status: expected {want}, got {}",
            observed
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "nothing".into())
        ));
    }
    if let Some(want) = &expect.reason
        && observed.reason.as_deref() != Some(want.as_str())
    {
        failures.push(format!(
            "reason: expected {want:?}, got {}",
            observed
                .reason
                .as_deref()
                .map(|r| format!("{r:?}"))
                .unwrap_or_else(|| "nothing".into())
        ));
    }
    if let Some(want) = &expect.message {
        failures.extend(want.failures("message", observed.message.as_deref()));
    }
    if let Some(want) = &expect.body {
        failures.extend(want.failures("body", Some(&observed.body)));
    }
    failures.extend(crate::expect::json_failures(&expect.json, body.as_ref()));
    if let Some(error) = &observed.error
        && !failures.is_empty()
    {
        failures.push(format!("the probe could not observe: {error}"));
    }
    for (name, path) in &http.capture {
        match body.as_ref().and_then(|b| crate::expect::lookup(b, path)) {
            Some(value) => {
                observed.captured.insert(name.clone(), plain(value));
            }
            None => failures.push(format!("capture {name}: the response has no {path}")),
        }
    }
    let request_seen = Request::from_http(
        &http.method,
        &as_pod_sees(&with_vars(&http.path, inputs, false), pod),
        &as_pod_sees(
            &with_vars(http.query.as_deref().unwrap_or_default(), inputs, false),
            pod,
        ),
    );
    Ok(Ran {
        ran: access.ran(),
        command: command::curl_in_pod(&request),
        observed,
        failures,
        request: Some(request_seen),
        skipped: None,
        pod: None,
    })
}

/// What an http probe's `token` sends. Without inputs (`kubelab show`), a named token
/// is shown by its name only.
fn request_token(source: &TokenSource, inputs: Option<Inputs>) -> Result<RequestToken, Error> {
    Ok(match source {
        TokenSource::Pod => RequestToken::Pod,
        TokenSource::None => RequestToken::None,
        TokenSource::Invalid => RequestToken::Invalid,
        TokenSource::File(path) => RequestToken::File(path.clone()),
        TokenSource::Named(name) => RequestToken::Named {
            name: name.clone(),
            value: match inputs {
                None => String::new(),
                Some(inputs) => inputs.tokens.get(name).cloned().ok_or_else(|| {
                    Error::Pod(format!(
                        "no token named '{name}' was requested before this probe"
                    ))
                })?,
            },
        },
    })
}

/// A JSON value as a variable's text: strings without quotes.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn run_exec(
    access: &dyn PodAccess,
    exec: &ExecProbe,
    inputs: Inputs<'_>,
) -> Result<Ran, Error> {
    let (command, shown) = match &exec.script {
        Some(script) => {
            let script = with_vars(script, inputs, true);
            let shown = command::script_in_pod(&script);
            (PodCommand::Script(script), shown)
        }
        None => {
            let argv: Vec<String> = exec
                .command
                .iter()
                .map(|a| with_vars(a, inputs, false))
                .collect();
            let shown = command::argv_shown(&argv);
            (PodCommand::Argv(argv), shown)
        }
    };
    let out = access.run(&command).await?;
    let mut failures = Vec::new();
    if let Some(want) = exec.expect.exit_code
        && out.exit_code != want
    {
        failures.push(format!("exit-code: expected {want}, got {}", out.exit_code));
    }
    if let Some(want) = &exec.expect.stdout {
        failures.extend(want.failures("stdout", Some(&out.stdout)));
    }
    if let Some(want) = &exec.expect.stderr {
        failures.extend(want.failures("stderr", Some(&out.stderr)));
    }
    Ok(Ran {
        ran: access.ran(),
        command: shown,
        observed: Observed {
            exit_code: Some(out.exit_code),
            stdout: Some(truncate(&token::redact(&out.stdout), 4000)),
            stderr: Some(truncate(&token::redact(&out.stderr), 4000)),
            ..Default::default()
        },
        failures,
        request: None,
        skipped: None,
        pod: None,
    })
}

async fn run_kubectl(
    ctx: &ProbeContext,
    access: &dyn PodAccess,
    kubectl: &KubectlProbe,
    inputs: Inputs<'_>,
) -> Result<Ran, Error> {
    let args: Vec<String> = kubectl
        .args
        .iter()
        .map(|a| with_vars(a, inputs, false))
        .collect();
    let out = access.run(&PodCommand::Kubectl(args.clone())).await?;
    let pod = access.pod();
    let output = format!("{}{}", out.stdout, out.stderr);
    let mut failures = Vec::new();
    if let Some(want) = kubectl.expect.exit_code
        && out.exit_code != want
    {
        failures.push(format!("exit-code: expected {want}, got {}", out.exit_code));
    }
    if let Some(want) = &kubectl.expect.output {
        failures.extend(want.failures("output", Some(&output)));
    }
    let container = access.container().map(str::to_string);
    let mounted = mounts_token(pod, container.as_deref());
    Ok(Ran {
        ran: access.ran(),
        command: command::kubectl_in_pod(&args),
        observed: Observed {
            exit_code: Some(out.exit_code),
            body: output,
            identity: mounted.then(|| service_account_user(pod)),
            token: if mounted {
                ctx.token_in_pod(access).await.as_deref().map(token::info)
            } else {
                None
            },
            ..Default::default()
        },
        failures,
        request: None,
        skipped: None,
        pod: None,
    })
}

async fn run_file(
    access: &dyn PodAccess,
    file: &FileProbe,
    inputs: Inputs<'_>,
) -> Result<Ran, Error> {
    let pod = access.pod();
    let path = as_pod_sees(&with_vars(&file.path, inputs, false), pod);
    let facts = access.read_file(&path).await?;
    let expect = &file.expect;
    let mut failures = Vec::new();
    let mut skipped = None;
    if let Some(want) = expect.exists
        && facts.exists != want
    {
        failures.push(format!("exists: expected {want}, got {}", facts.exists));
    }
    for (what, want, got) in [
        ("mode", &expect.mode, &facts.mode),
        ("owner", &expect.owner, &facts.owner),
    ] {
        match (want, got) {
            (Some(_), None) if facts.exists => {
                skipped = Some(format!(
                    "a file's {what} is what the kubelet sets; on the host kubelab keeps its own private copies (0600), so only a node can show it"
                ));
            }
            (Some(want), Some(got))
                if want.trim_start_matches('0') != got.trim_start_matches('0') =>
            {
                failures.push(format!("{what}: expected {want}, got {got}"));
            }
            (Some(want), None) if !facts.exists => failures.push(format!(
                "{what}: expected {want}, but the file does not exist"
            )),
            _ => {}
        }
    }
    let is_token = facts
        .content
        .as_deref()
        .is_some_and(|c| token::claims(c.trim()).is_some());
    if let Some(want) = &expect.content {
        let got = facts.content.as_deref();
        let misses = want.failures("content", got);
        failures.extend(if is_token {
            // The content of a token file is never printed.
            misses
                .into_iter()
                .map(|m| {
                    m.split(", got").next().unwrap_or_default().to_string()
                        + ", got a token (not shown)"
                })
                .collect()
        } else {
            misses
        });
    }
    Ok(Ran {
        ran: access.ran(),
        command: match (&expect.mode, &expect.owner, &expect.content) {
            (None, None, None) => format!("ls {path}"),
            (_, _, None) => format!("stat -c '%a %u:%g' {path}"),
            _ => format!("cat {path}"),
        },
        observed: Observed {
            exists: Some(facts.exists),
            mode: facts.mode.clone(),
            owner: facts.owner.clone(),
            token: if is_token {
                facts.content.as_deref().map(|t| token::info(t.trim()))
            } else {
                None
            },
            body: if is_token {
                String::new()
            } else {
                facts.content.clone().unwrap_or_default()
            },
            ..Default::default()
        },
        failures,
        request: None,
        skipped,
        pod: None,
    })
}

async fn run_logs(
    access: &dyn PodAccess,
    logs: &LogsProbe,
    pace: crate::engine::Pace,
) -> Result<Ran, Error> {
    let want = &logs.expect.output;
    let done = |text: &str| want.failures("output", Some(text)).is_empty();
    let timeout = pace.patience(logs.timeout, LOGS_TIMEOUT);
    let out = access.logs(&done, timeout).await?;
    let pod = access.pod();
    let (namespace, name) = (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    Ok(Ran {
        ran: access.ran(),
        command: format!("kubectl logs -n {namespace} {name}"),
        observed: Observed {
            exit_code: (out.exit_code != 0 || access.ran().starts_with("on host"))
                .then_some(out.exit_code),
            body: out.stdout.clone(),
            identity: Some(service_account_user(pod)),
            ..Default::default()
        },
        failures: want.failures("output", Some(&out.stdout)),
        request: None,
        skipped: None,
        pod: None,
    })
}

/// `kubectl auth can-i`: a SubjectAccessReview with the groups impersonation would add;
/// in a namespace, the LocalSubjectAccessReview of that namespace (the same answer, and
/// what a namespace's `admin`, a student, may ask).
async fn run_can_i(
    ctx: &ProbeContext,
    can_i: &CanIProbe,
    namespace: &str,
    inputs: Inputs<'_>,
) -> Result<Ran, (String, Error)> {
    let user = with_vars(&can_i.user, inputs, false);
    let identity = User::authenticated_as(&user, &can_i.groups);
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.clone()),
            groups: Some(identity.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(can_i.verb.clone()),
                resource: Some(can_i.resource.clone()),
                group: Some(can_i.group.clone()),
                subresource: can_i.subresource.clone(),
                name: can_i.name.clone(),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let kind = if namespace.is_empty() {
        "SubjectAccessReview"
    } else {
        "LocalSubjectAccessReview"
    };
    let ran = format!("as kubelab ({kind})");
    let failed = |e| (ran.clone(), Error::Kube(format!("creating a {kind}"), e));
    let status = if namespace.is_empty() {
        let api: Api<SubjectAccessReview> = Api::all(ctx.client.clone());
        api.create(&PostParams::default(), &review)
            .await
            .map_err(failed)?
            .status
    } else {
        let local = LocalSubjectAccessReview {
            metadata: kube::api::ObjectMeta {
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            spec: review.spec,
            status: None,
        };
        let api: Api<LocalSubjectAccessReview> = Api::namespaced(ctx.client.clone(), namespace);
        api.create(&PostParams::default(), &local)
            .await
            .map_err(failed)?
            .status
    }
    .unwrap_or_default();
    let mut failures = Vec::new();
    if status.allowed != can_i.expect.allowed {
        failures.push(format!(
            "allowed: expected {}, got {}",
            can_i.expect.allowed, status.allowed
        ));
    }
    Ok(Ran {
        ran,
        command: can_i_command(can_i, &user, namespace),
        observed: Observed {
            allowed: Some(status.allowed),
            authorizer_reason: status.reason.filter(|r| !r.is_empty()),
            body: if status.allowed {
                "yes".into()
            } else {
                "no".into()
            },
            identity: Some(user),
            ..Default::default()
        },
        failures,
        request: Some(Request::Resource {
            verb: can_i.verb.clone(),
            group: can_i.group.clone(),
            resource: can_i.resource.clone(),
            subresource: can_i.subresource.clone().unwrap_or_default(),
            name: can_i.name.clone().unwrap_or_default(),
            namespace: namespace.to_string(),
        }),
        skipped: None,
        pod: None,
    })
}

fn can_i_command(can_i: &CanIProbe, user: &str, namespace: &str) -> String {
    let mut resource = can_i.resource.clone();
    if let Some(sub) = &can_i.subresource {
        resource = format!("{resource}/{sub}");
    }
    if !can_i.group.is_empty() {
        resource = format!("{resource}.{}", can_i.group);
    }
    if let Some(name) = &can_i.name {
        resource = format!("{resource}/{name}");
    }
    let groups: String = can_i
        .groups
        .iter()
        .map(|g| format!(" --as-group={g}"))
        .collect();
    format!(
        "kubectl auth can-i {} {resource} --as={user}{groups} -n {namespace}",
        can_i.verb
    )
}

/// The command a probe runs, as `kubelab show` prints it (before anything runs).
pub fn shown_command(op: &Operation, probe: &Probe, namespace: &str) -> String {
    match probe {
        Probe::Http(http) => command::curl_in_pod(&CurlRequest {
            method: http.method.clone(),
            target: match &http.query {
                Some(q) => format!("{}?{q}", http.path),
                None => http.path.clone(),
            },
            headers: http
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: http.body.as_ref().map(|b| {
                command::token_references_as_variables(&match b {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }),
            token: request_token(&http.token, None).expect("without inputs it cannot fail"),
            insecure: http.insecure,
            secrets: Vec::new(),
        }),
        Probe::Kubectl(kubectl) => command::kubectl_in_pod(&kubectl.args),
        Probe::Exec(exec) => match &exec.script {
            Some(script) => command::script_in_pod(script),
            None => command::argv_shown(&exec.command),
        },
        Probe::File(file) => format!("ls -l {}", file.path),
        Probe::CanI(can_i) => can_i_command(can_i, &can_i.user, namespace),
        Probe::Logs(_) => format!(
            "kubectl logs -n {namespace} {}",
            op.pod.as_deref().unwrap_or_default()
        ),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..cut], text.len())
}

/// What curl printed (body, then the status marker and code) as an observation; a
/// Status body gives reason and message.
fn observe_curl(stdout: &str, stderr: &str, exit_code: i32) -> Observed {
    let (body, status) = stdout
        .rsplit_once(command::STATUS_MARKER)
        .unwrap_or((stdout, ""));
    let mut observed = Observed {
        status: status.trim().parse().ok().filter(|s| *s != 0),
        body: body.to_string(),
        ..Default::default()
    };
    if exit_code != 0 {
        observed.error = Some(format!("curl exited with {exit_code}: {}", stderr.trim()));
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body)
        && value["kind"] == "Status"
    {
        observed.reason = value["reason"].as_str().map(str::to_string);
        observed.message = value["message"].as_str().map(str::to_string);
    }
    observed
}
