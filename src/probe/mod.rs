//! Running a lab's probes: from a pod (on the host for it, where no node runs pods),
//! or against the API server directly for can-i; then comparing with the lab's
//! expectations.

mod assert;
mod command;
pub mod exec;
pub mod host;
mod in_pod;
mod on_host;
mod rbac;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Mutex;

use self::command::SERVICE_ACCOUNT_DIR;
use self::host::{HostTools, PodFiles};
use crate::rbac::{Policy, Request, User};
use crate::report::{Observed, ProbeReport};
use crate::scenario::{Probe, ProbeKind, TokenChoice};

/// Problems that keep a probe from running at all (not what it observes).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Kube(String, #[source] kube::Error),
    #[error("{0}")]
    Host(String),
    #[error("{0}")]
    Pod(String),
    /// kubelab's own identity may not exec: a cluster problem, not a probe result.
    #[error("kubelab may not exec into pods: {0}")]
    ExecDenied(String),
}

/// How probes reach pods on this cluster.
#[derive(Clone, Debug)]
pub enum Execution {
    /// No node runs the pods: kubelab materializes each pod's volumes and runs the
    /// probe's command on the host (DESIGN.md, "Probes on the local provider").
    Host(HostTools),
    /// A node runs the pods: probes exec inside them through the API.
    InPod,
}

impl Execution {
    fn ran_for(&self, pod: &str) -> String {
        match self {
            Execution::Host(_) => format!("on host for pod {pod}"),
            Execution::InPod => format!("in pod {pod}"),
        }
    }

    /// Whether pods really run (and so can become Ready).
    pub fn runs_pods(&self) -> bool {
        matches!(self, Execution::InPod)
    }
}

/// What probes of one lab share: the cluster, and each pod's materialized files, made
/// once per pod and removed with this context.
pub struct ProbeContext {
    pub client: kube::Client,
    pub execution: Execution,
    /// The lab's namespaces (the first is the default for probes).
    pub namespaces: Vec<String>,
    pod_files: Mutex<HashMap<String, Arc<PodFiles>>>,
    /// Each pod's token as read in the pod (None: no token mounted), for its claims.
    pod_tokens: Mutex<HashMap<String, Option<String>>>,
    /// RBAC bindings per identity, read once per step (a step may change them).
    /// The cluster's RBAC objects, read once per step (a step may change them).
    policy: Mutex<Arc<tokio::sync::OnceCell<Arc<Policy>>>>,
}

impl ProbeContext {
    pub fn new(client: kube::Client, execution: Execution, namespaces: Vec<String>) -> Self {
        ProbeContext {
            client,
            execution,
            namespaces,
            pod_files: Mutex::new(HashMap::new()),
            pod_tokens: Mutex::new(HashMap::new()),
            policy: Mutex::default(),
        }
    }

    fn default_namespace(&self) -> &str {
        self.namespaces
            .first()
            .map(String::as_str)
            .unwrap_or("default")
    }

    /// Forgets materialized files (they are deleted when the last user drops them).
    /// A new step may have changed RBAC: read bindings afresh.
    pub async fn start_step(&self) {
        *self.policy.lock().await = Arc::default();
    }

    /// This step's RBAC snapshot, read on first use.
    async fn policy(&self) -> Result<Arc<Policy>, Error> {
        let cell = self.policy.lock().await.clone();
        cell.get_or_try_init(|| async {
            Policy::load(&self.client)
                .await
                .map(Arc::new)
                .map_err(|e| Error::Kube("reading the cluster's RBAC objects".into(), e))
        })
        .await
        .cloned()
    }

    /// The pod's own token, read inside the pod (for its claims; never printed).
    async fn token_in_pod(
        &self,
        pod: &Pod,
        container: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let key = format!(
            "{}/{}",
            pod.metadata.uid.clone().unwrap_or_default(),
            container.unwrap_or("")
        );
        if let Some(token) = self.pod_tokens.lock().await.get(&key) {
            return Ok(token.clone());
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let path = format!("{SERVICE_ACCOUNT_DIR}/token");
        // Best effort, for the claims only: an image without `cat` (a distroless one)
        // still has its token; who the pod is comes from its spec.
        let out = exec::run(
            &self.client,
            &namespace,
            &name,
            container,
            &["cat".to_string(), path],
        )
        .await;
        let token = out
            .ok()
            .filter(|out| out.exit_code == 0 && !out.stdout.trim().is_empty())
            .map(|out| out.stdout.trim().to_string());
        self.pod_tokens.lock().await.insert(key, token.clone());
        Ok(token)
    }

    pub async fn clear(&self) {
        self.pod_tokens.lock().await.clear();
        self.pod_files.lock().await.clear();
    }

    async fn files_for(&self, pod: &Pod, container: Option<&str>) -> Result<Arc<PodFiles>, Error> {
        let key = format!(
            "{}/{}",
            pod.metadata.uid.clone().unwrap_or_default(),
            container.unwrap_or("")
        );
        let mut cache = self.pod_files.lock().await;
        if let Some(files) = cache.get(&key) {
            return Ok(files.clone());
        }
        let files = Arc::new(host::materialize(&self.client, pod, container).await?);
        cache.insert(key, files.clone());
        Ok(files)
    }

    /// The pod a probe names: a Pod, or the newest running pod of `deployment/<name>`.
    pub async fn resolve_pod(&self, reference: &str, namespace: &str) -> Result<Pod, Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let Some(deployment) = reference.strip_prefix("deployment/") else {
            return pods
                .get(reference)
                .await
                .map_err(|e| Error::Kube(format!("reading pod {namespace}/{reference}"), e));
        };
        let mut current = crate::workload::current_pods(&self.client, namespace, deployment)
            .await
            .map_err(|e| Error::Kube(format!("reading deployment {namespace}/{deployment}"), e))?;
        current.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        current
            .pop()
            .ok_or_else(|| Error::Pod(format!("deployment {namespace}/{deployment} has no pods")))
    }
}

/// Runs one probe and checks it. `Err` means it could not run (a cluster problem);
/// anything it observed, even a curl error, is an `Ok` report.
pub async fn run(ctx: &ProbeContext, probe: &Probe) -> Result<ProbeReport, Error> {
    let started = Instant::now();
    let kind = probe.kinds()[0]; // lint guarantees exactly one
    let namespace = probe
        .namespace
        .clone()
        .unwrap_or_else(|| ctx.default_namespace().to_string());
    let (ran, command, mut observed, pod_name) = match kind {
        ProbeKind::CanI => {
            let (ran, command, observed) = can_i(ctx, probe, &namespace).await?;
            (ran, command, observed, String::new())
        }
        _ => from_pod(ctx, probe, kind, &namespace).await?,
    };
    if let Some(identity) = &observed.identity {
        let policy = ctx.policy().await?;
        let mut namespaces = ctx.namespaces.clone();
        if !namespaces.contains(&namespace) {
            namespaces.push(namespace.clone());
        }
        if identity != "system:anonymous" {
            observed.bindings =
                rbac::bindings_naming(&policy, &User::authenticated_as(identity, &[]), &namespaces);
        }
        if let Some(request) = rbac_request(probe, &pod_name, &namespace) {
            observed.rbac = Some(rbac::why(&policy, identity, &request));
        }
    }
    observed.body = token::redact(&observed.body);
    observed.message = observed.message.map(|m| token::redact(&m));
    // Check the whole body; keep only its start in the report.
    let failures = assert::failures(&probe.expect, &observed);
    observed.body = truncate(&observed.body, 4000);
    Ok(ProbeReport {
        id: probe.id.clone(),
        name: probe.name.clone(),
        kind,
        ran,
        command,
        passed: failures.is_empty(),
        expected: probe.expect.clone(),
        observed,
        failures,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The API request a probe makes, for the RBAC evaluator: an http probe's method and
/// path (with the pod's name and namespace put in), or a can-i probe's attributes.
fn rbac_request(probe: &Probe, pod: &str, namespace: &str) -> Option<Request> {
    if let Some(http) = &probe.http {
        let path = command::expand(&http.path, pod, namespace);
        let query = http
            .query
            .as_deref()
            .map(|q| command::expand(q, pod, namespace))
            .unwrap_or_default();
        return Some(Request::from_http(&http.method, &path, &query));
    }
    let can_i = probe.can_i.as_ref()?;
    Some(Request::Resource {
        verb: can_i.verb.clone(),
        group: can_i.group.clone(),
        resource: can_i.resource.clone(),
        subresource: can_i.subresource.clone().unwrap_or_default(),
        name: can_i.name.clone().unwrap_or_default(),
        namespace: can_i
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_string()),
    })
}

/// The command a probe runs, as `kubelab show` prints it (before anything runs).
pub fn shown_command(probe: &Probe, namespace: &str) -> String {
    if let Some(http) = &probe.http {
        command::curl_in_pod(http)
    } else if let Some(kubectl) = &probe.kubectl {
        command::kubectl_in_pod(&kubectl.args)
    } else if let Some(file) = &probe.file {
        format!("ls {}", file.path)
    } else if let Some(can_i) = &probe.can_i {
        can_i_command(can_i, can_i.namespace.as_deref().unwrap_or(namespace))
    } else {
        format!(
            "kubectl logs -n {namespace} {}",
            probe.pod.as_deref().unwrap_or_default()
        )
    }
}

fn can_i_command(can_i: &crate::scenario::CanIProbe, namespace: &str) -> String {
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
    format!(
        "kubectl auth can-i {} {resource} --as={} -n {namespace}",
        can_i.verb, can_i.user
    )
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

/// The named container of a pod, or its first, as kubectl picks it.
pub(crate) fn container_of<'a>(pod: &'a Pod, name: Option<&str>) -> Option<&'a Container> {
    let containers = &pod.spec.as_ref()?.containers;
    match name {
        Some(name) => containers.iter().find(|c| c.name == name),
        None => containers.first(),
    }
}

/// Whether the container mounts a volume with a ServiceAccount token (what admission
/// injects, unless automount is off), i.e. whether it authenticates as the pod's SA.
fn mounts_token(pod: &Pod, container: Option<&str>) -> bool {
    let (Some(spec), Some(chosen)) = (&pod.spec, container_of(pod, container)) else {
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

async fn from_pod(
    ctx: &ProbeContext,
    probe: &Probe,
    kind: ProbeKind,
    namespace: &str,
) -> Result<(String, String, Observed, String), Error> {
    let reference = probe.pod.as_deref().unwrap_or_default();
    let pod = ctx.resolve_pod(reference, namespace).await?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let ran = ctx.execution.ran_for(&format!("{namespace}/{pod_name}"));
    let (command, observed) = match &ctx.execution {
        Execution::Host(tools) => on_host::probe(ctx, tools, probe, kind, &pod).await?,
        Execution::InPod => in_pod::probe(ctx, probe, kind, &pod).await?,
    };
    Ok((ran, command, observed, pod_name))
}

/// What curl printed (body, then the status marker and code) as an observation;
/// a Status body gives reason and message.
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

/// Who an http probe's request is made as, and the token shown for it. `mounted`: the
/// container has a token (else `$(cat token)` is empty: anonymous); `token`: the token
/// itself when it could be read, for its claims.
fn http_identity(
    observed: &mut Observed,
    http: &crate::scenario::HttpProbe,
    pod: &Pod,
    mounted: bool,
    token: Option<&str>,
) {
    match (http.token, mounted) {
        (TokenChoice::Pod, true) => {
            observed.identity = Some(service_account_user(pod));
            observed.token = token.map(token::info);
        }
        (TokenChoice::Pod, false) | (TokenChoice::None, _) => {
            observed.identity = Some("system:anonymous".into())
        }
        (TokenChoice::Invalid, _) => {}
    }
}

/// `kubectl auth can-i`: a SubjectAccessReview with the groups impersonation would add.
async fn can_i(
    ctx: &ProbeContext,
    probe: &Probe,
    default_namespace: &str,
) -> Result<(String, String, Observed), Error> {
    let can_i = probe.can_i.as_ref().expect("kind can-i");
    let namespace = can_i
        .namespace
        .clone()
        .unwrap_or_else(|| default_namespace.to_string());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(can_i.user.clone()),
            groups: Some(User::authenticated_as(&can_i.user, &[]).groups),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(can_i.verb.clone()),
                resource: Some(can_i.resource.clone()),
                group: Some(can_i.group.clone()),
                subresource: can_i.subresource.clone(),
                name: can_i.name.clone(),
                namespace: Some(namespace.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(ctx.client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| Error::Kube("creating a SubjectAccessReview".into(), e))?;
    let status = answer.status.unwrap_or_default();
    let command = can_i_command(can_i, &namespace);
    let observed = Observed {
        allowed: Some(status.allowed),
        authorizer_reason: status.reason.filter(|r| !r.is_empty()),
        body: if status.allowed {
            "yes".into()
        } else {
            "no".into()
        },
        identity: Some(can_i.user.clone()),
        ..Default::default()
    };
    Ok(("as kubelab (SubjectAccessReview)".into(), command, observed))
}
