//! Waiting for what a step created: a pod (created, or Ready where a node runs it) or a
//! Deployment's pods. A wait that runs out says what the pod is stuck on.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::scenario::{Wait, WaitUntil};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: not {until} after {timeout:?}: {state}")]
    Timeout {
        what: String,
        until: &'static str,
        timeout: Duration,
        state: String,
    },
    #[error("{0}: {1}")]
    Kube(String, #[source] kube::Error),
}

/// Waits as `wait` says; returns a line for the report. `runs_pods` is false where no
/// node runs pods: there "ready" means created, and the line says so.
pub async fn wait(
    client: &kube::Client,
    wait: &Wait,
    namespace: &str,
    runs_pods: bool,
) -> Result<String, Error> {
    let timeout = wait
        .timeout
        .as_deref()
        .and_then(|t| crate::cli::parse_duration(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT);
    let want_ready = wait.until == WaitUntil::Ready && runs_pods;
    let deadline = Instant::now() + timeout;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let what = match (&wait.pod, &wait.deployment) {
        (Some(pod), _) => format!("pod {namespace}/{pod}"),
        (None, Some(deployment)) => format!("deployment {namespace}/{deployment}"),
        (None, None) => unreachable!("lint requires pod or deployment"),
    };
    loop {
        let current: Vec<Pod> = match (&wait.pod, &wait.deployment) {
            (Some(name), _) => pods
                .get_opt(name)
                .await
                .map_err(|e| Error::Kube(what.clone(), e))?
                .into_iter()
                .collect(),
            (None, Some(deployment)) => {
                crate::workload::current_pods(client, namespace, deployment)
                    .await
                    .map_err(|e| Error::Kube(what.clone(), e))?
            }
            (None, None) => unreachable!(),
        };
        let done = !current.is_empty() && (!want_ready || current.iter().all(is_ready));
        if done {
            let names: Vec<String> = current
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            return Ok(if want_ready {
                format!("{what} ready ({})", names.join(", "))
            } else if runs_pods {
                format!("{what} created ({})", names.join(", "))
            } else {
                format!(
                    "{what} created ({}); no node runs it, so kubelab stands in for the kubelet",
                    names.join(", ")
                )
            });
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what,
                until: if want_ready { "ready" } else { "created" },
                timeout,
                state: current
                    .first()
                    .map(describe_state)
                    .unwrap_or_else(|| "no pod exists".into()),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The phase and why containers are not running: "Pending; c: ImagePullBackOff (...)".
pub fn describe_state(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let mut parts = vec![status.phase.unwrap_or_else(|| "no phase".into())];
    for condition in status.conditions.iter().flatten() {
        if condition.type_ == "PodScheduled" && condition.status == "False" {
            parts.push(format!(
                "unschedulable: {}",
                condition.message.clone().unwrap_or_default()
            ));
        }
    }
    for container in status.container_statuses.iter().flatten() {
        if let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            parts.push(format!(
                "{}: {} ({})",
                container.name,
                waiting.reason.clone().unwrap_or_default(),
                waiting.message.clone().unwrap_or_default()
            ));
        }
    }
    parts.join("; ")
}
