//! Running a lab's probes: from a pod (on the host for it, where no node runs pods),
//! or against the API server directly for can-i; then comparing with the lab's
//! expectations.

mod assert;
mod command;
pub mod host;
mod rbac;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Mutex;

use self::host::{HostTools, PodFiles};
use crate::report::{BindingInfo, Observed, ProbeReport};
use crate::scenario::{Probe, ProbeKind, TokenChoice};

pub use self::rbac::groups_of;

/// Problems that keep a probe from running at all (not what it observes).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Kube(String, #[source] kube::Error),
    #[error("{0}")]
    Host(String),
    #[error("{0}")]
    Pod(String),
}

/// How probes reach pods on this cluster.
#[derive(Clone, Debug)]
pub enum Execution {
    /// No node runs the pods: kubelab materializes each pod's volumes and runs the
    /// probe's command on the host (DESIGN.md, "Probes on the local provider").
    Host(HostTools),
}

impl Execution {
    fn ran_for(&self, pod: &str) -> String {
        match self {
            Execution::Host(_) => format!("on host for pod {pod}"),
        }
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
    /// RBAC bindings per identity, read once per step (a step may change them).
    bindings: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Vec<BindingInfo>>>>>,
}

impl ProbeContext {
    pub fn new(client: kube::Client, execution: Execution, namespaces: Vec<String>) -> Self {
        ProbeContext {
            client,
            execution,
            namespaces,
            pod_files: Mutex::new(HashMap::new()),
            bindings: Mutex::new(HashMap::new()),
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
        self.bindings.lock().await.clear();
    }

    /// The bindings naming `identity`, shared by the probes of a step.
    async fn bindings_for(
        &self,
        identity: &str,
        namespaces: &[String],
    ) -> Result<Vec<BindingInfo>, Error> {
        let key = format!("{identity} {}", namespaces.join(","));
        let cell = self.bindings.lock().await.entry(key).or_default().clone();
        cell.get_or_try_init(|| rbac::bindings_for(&self.client, identity, namespaces))
            .await
            .cloned()
    }

    pub async fn clear(&self) {
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
    let (ran, command, mut observed) = match kind {
        ProbeKind::CanI => can_i(ctx, probe, &namespace).await?,
        _ => from_pod(ctx, probe, kind, &namespace).await?,
    };
    if let Some(identity) = &observed.identity
        && identity != "system:anonymous"
    {
        let mut namespaces = ctx.namespaces.clone();
        if !namespaces.contains(&namespace) {
            namespaces.push(namespace.clone());
        }
        observed.bindings = ctx.bindings_for(identity, &namespaces).await?;
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
) -> Result<(String, String, Observed), Error> {
    let reference = probe.pod.as_deref().unwrap_or_default();
    let pod = ctx.resolve_pod(reference, namespace).await?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let container = probe.logs.as_ref().and_then(|l| l.container.as_deref());
    let Execution::Host(tools) = &ctx.execution;
    let files = ctx.files_for(&pod, container).await?;
    let ran = ctx.execution.ran_for(&format!("{namespace}/{pod_name}"));
    let mut observed = Observed::default();
    let command = match kind {
        ProbeKind::Http => {
            let http = probe.http.as_ref().expect("kind http");
            let out = host::curl(tools, &files, http).await?;
            let (body, status) = out
                .stdout
                .rsplit_once(command::STATUS_MARKER)
                .unwrap_or((&out.stdout, ""));
            observed.status = status.trim().parse().ok().filter(|s| *s != 0);
            observed.body = body.to_string();
            if out.exit_code != 0 {
                observed.error = Some(format!(
                    "curl exited with {}: {}",
                    out.exit_code,
                    out.stderr.trim()
                ));
            }
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(body)
                && value["kind"] == "Status"
            {
                observed.reason = value["reason"].as_str().map(str::to_string);
                observed.message = value["message"].as_str().map(str::to_string);
            }
            match http.token {
                TokenChoice::Pod => {
                    if let Some(token) = &files.token {
                        observed.identity = Some(service_account_user(&pod));
                        observed.token = Some(token::info(token));
                    } else {
                        observed.identity = Some("system:anonymous".into());
                    }
                }
                TokenChoice::None => observed.identity = Some("system:anonymous".into()),
                TokenChoice::Invalid => {}
            }
            command::curl_in_pod(http)
        }
        ProbeKind::Kubectl => {
            let args = &probe.kubectl.as_ref().expect("kind kubectl").args;
            let out = host::kubectl(tools, &files, args).await?;
            observed.exit_code = Some(out.exit_code);
            observed.body = format!("{}{}", out.stdout, out.stderr);
            observed.identity = files.token.as_ref().map(|_| service_account_user(&pod));
            observed.token = files.token.as_deref().map(token::info);
            command::kubectl_in_pod(args)
        }
        ProbeKind::File => {
            let path = &probe.file.as_ref().expect("kind file").path;
            // Nothing under /var/run/secrets comes from an image: without a volume
            // mounted there, the path does not exist in the pod either.
            if !files.covers(path) && path.starts_with("/var/run/secrets/") {
                observed.exists = Some(false);
            } else if !files.covers(path) {
                return Err(Error::Host(format!(
                    "{path} is not in a volume of pod {namespace}/{pod_name}: on the host kubelab can only check the files it materializes (mounted at {})",
                    if files.mounts.is_empty() {
                        "nothing".to_string()
                    } else {
                        files.mounts.join(", ")
                    }
                )));
            } else {
                observed.exists = Some(files.host_path(path).exists());
            }
            if path.ends_with("/token") && observed.exists == Some(true) {
                observed.token = files.token.as_deref().map(token::info);
            }
            format!("ls {path}")
        }
        ProbeKind::Logs => {
            let args = container_kubectl_args(&pod, container)?;
            let out = host::kubectl(tools, &files, &args).await?;
            observed.exit_code = Some(out.exit_code);
            observed.body = format!("{}{}", out.stdout, out.stderr);
            observed.identity = files.token.as_ref().map(|_| service_account_user(&pod));
            format!(
                "kubectl logs -n {namespace} {pod_name}   # its container runs: {}",
                command::kubectl_in_pod(&args)
            )
        }
        ProbeKind::CanI => unreachable!("handled by can_i"),
    };
    Ok((ran, command, observed))
}

/// What the container runs, when it is kubectl (the only program kubelab can stand in
/// for on the host): the arguments after `kubectl`.
fn container_kubectl_args(pod: &Pod, container: Option<&str>) -> Result<Vec<String>, Error> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| Error::Pod("pod has no spec".into()))?;
    let chosen = match container {
        Some(name) => spec.containers.iter().find(|c| c.name == name),
        None => spec.containers.first(),
    }
    .ok_or_else(|| Error::Pod("no such container".into()))?;
    let mut words: Vec<String> = chosen.command.clone().unwrap_or_default();
    words.extend(chosen.args.clone().unwrap_or_default());
    match words.split_first() {
        Some((program, rest)) if program.rsplit('/').next() == Some("kubectl") => Ok(rest.to_vec()),
        _ => Err(Error::Host(format!(
            "without a node kubelab can only stand in for containers that run kubectl; container {} runs {:?}",
            chosen.name, words
        ))),
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
            groups: Some(groups_of(&can_i.user)),
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
