//! Waiting for what a step created: a pod (created, or Ready where a node runs it) or a
//! Deployment's pods. A wait that runs out says what the pod is stuck on.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;

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
    /// A state that does not fix itself (an image that may not be pulled, a bad name).
    #[error("{what} cannot start: {state}")]
    Stuck { what: String, state: String },
    #[error("{0}: {1}")]
    Kube(String, #[source] kube::Error),
}

/// Waiting reasons that no amount of waiting cures.
const HOPELESS: &[&str] = &["ErrImageNeverPull", "InvalidImageName"];

/// Waits as `wait` says; returns a line for the report. `runs_pods` is false where no
/// node runs pods: there "ready" means created, and the line says so.
pub async fn wait(
    client: &kube::Client,
    wait: &Wait,
    namespace: &str,
    runs_pods: bool,
    progress: &(dyn Fn(String) + Sync),
) -> Result<String, Error> {
    let timeout = wait
        .timeout
        .as_deref()
        .and_then(|t| crate::cli::parse_duration(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT);
    let want_ready = wait.until == WaitUntil::Ready && runs_pods;
    let want_running = wait.until == WaitUntil::Running && runs_pods;
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
        let done = !current.is_empty()
            && (!want_ready || current.iter().all(is_ready))
            && (!want_running || current.iter().all(is_running));
        if done {
            let names: Vec<String> = current
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            return Ok(if want_ready {
                format!("{what} ready ({})", names.join(", "))
            } else if want_running {
                format!("{what} running ({})", names.join(", "))
            } else if runs_pods {
                format!("{what} created ({})", names.join(", "))
            } else {
                format!(
                    "{what} created ({}); no node runs it, so kubelab stands in for the kubelet",
                    names.join(", ")
                )
            });
        }
        if let Some(pod) = current.first() {
            let state = describe_state(pod);
            if HOPELESS.iter().any(|reason| state.contains(reason)) {
                let events = warning_events(client, pod).await;
                return Err(Error::Stuck {
                    what,
                    state: format!("{state}{events}"),
                });
            }
            progress(format!("{what}: {state}"));
        }
        if Instant::now() > deadline {
            let (state, events) = match current.first() {
                Some(pod) => (describe_state(pod), warning_events(client, pod).await),
                None => ("no pod exists".to_string(), String::new()),
            };
            return Err(Error::Timeout {
                what,
                until: if want_ready {
                    "ready"
                } else if want_running {
                    "running"
                } else {
                    "created"
                },
                timeout,
                state: format!("{state}{events}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pod's recent Warning events ("; events: Failed: ... pull access denied ..."),
/// which say why an image does not pull or a pod does not schedule.
async fn warning_events(client: &kube::Client, pod: &Pod) -> String {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let Ok(list) = events.list(&params).await else {
        return String::new();
    };
    let mut warnings: Vec<String> = list
        .items
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default().trim()
            )
        })
        .collect();
    warnings.dedup();
    let recent: Vec<String> = warnings.into_iter().rev().take(3).collect();
    if recent.is_empty() {
        String::new()
    } else {
        format!("; events: {}", recent.join(" | "))
    }
}

fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n"},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn an_image_pull_failure_names_the_container_and_the_registry_message() {
        let stuck = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "shell", "image": "curlimages/curl:8.11.1", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"curlimages/curl:8.11.1\""}}
            }]
        }));
        assert_eq!(
            describe_state(&stuck),
            "Pending; shell: ImagePullBackOff (Back-off pulling image \"curlimages/curl:8.11.1\")"
        );
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let pending = pod(serde_json::json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/1 nodes are available: 1 node(s) had untolerated taint."}]
        }));
        assert_eq!(
            describe_state(&pending),
            "Pending; unschedulable: 0/1 nodes are available: 1 node(s) had untolerated taint."
        );
    }

    #[test]
    fn a_crash_loop_and_a_config_error_are_named() {
        let crashing = pod(serde_json::json!({
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}},
                {"name": "b", "image": "y", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"s\" not found"}}}
            ]
        }));
        let state = describe_state(&crashing);
        assert!(
            state.contains("a: CrashLoopBackOff (back-off 40s"),
            "{state}"
        );
        assert!(
            state.contains("b: CreateContainerConfigError (secret \"s\" not found)"),
            "{state}"
        );
        assert!(
            !HOPELESS.iter().any(|r| state.contains(r)),
            "these can still recover"
        );
    }
}
