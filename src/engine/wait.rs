//! Waiting for objects, on watches (kube-runtime): a pod or a workload's pods until
//! created, running or Ready; any object until created, deleted, a condition, or a
//! field's value. A wait that runs out says what the object is stuck on.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::watcher::{self, watch_object, watcher};

use super::Error;
use super::resources::Resolved;
use super::workloads;
use crate::scenario::{ObjectRef, WaitFor, WaitOp};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Watches one object until `condition` holds, and returns the object as the
/// condition saw it (`Some(None)`: it does not exist), or None once `timeout` passes. A
/// broken watch (a connection reset, the server's own watch timeout) is resumed by
/// kube-runtime's watcher, so only the deadline ends the wait.
pub async fn object_until<K>(
    api: Api<K>,
    name: &str,
    timeout: Duration,
    condition: impl Fn(Option<&K>) -> bool,
) -> Option<Option<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = watch_object(api, name).boxed();
    loop {
        match tokio::time::timeout_at(deadline, changes.next()).await {
            Ok(Some(Ok(object))) if condition(object.as_ref()) => return Some(object),
            Ok(Some(Ok(_))) => {}
            // The watcher starts again on the next poll; give the server a moment.
            Ok(Some(Err(_))) => tokio::time::sleep(Duration::from_millis(500)).await,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Waiting reasons that no amount of waiting cures.
const HOPELESS: &[&str] = &["ErrImageNeverPull", "InvalidImageName"];

/// Waits as `wait` says; returns a line for the report and the object as the wait saw it
/// meet its condition (a workload's: read once its pods are, and only for captures).
pub async fn wait(
    client: &kube::Client,
    resolved: &Resolved,
    wait: &WaitOp,
    namespace: &str,
    runs_pods: bool,
    timeout: Duration,
    progress: &(dyn Fn(String) + Sync),
) -> Result<(String, Option<DynamicObject>), Error> {
    let name = wait.object.name.clone().unwrap_or_default();
    let what = resolved.describe(namespace, &name);
    let api = resolved.api(client, namespace);
    let is_workload = workloads::workload_kind(&wait.object).is_some();
    let mut seen = None;
    let line = match &wait.until {
        WaitFor::Ready | WaitFor::Running | WaitFor::Created if is_workload => {
            pods(
                client,
                &wait.object,
                &what,
                namespace,
                &wait.until,
                runs_pods,
                timeout,
                progress,
            )
            .await?
        }
        until => {
            let description = match until {
                WaitFor::Deleted => "deleted".to_string(),
                WaitFor::Condition(condition) => condition.to_string(),
                WaitFor::Jsonpath(j) => format!("{} = {}", j.path, j.value),
                _ => "created".to_string(),
            };
            let until = until.clone();
            let condition = move |object: Option<&DynamicObject>| matches_wait(&until, object);
            match object_until(api.clone(), &name, timeout, condition).await {
                Some(object) => {
                    seen = object;
                    format!("{what} {description}")
                }
                None => {
                    let state = match api.get_opt(&name).await {
                        Ok(Some(object)) => object_state(&object),
                        Ok(None) => "it does not exist".into(),
                        Err(e) => e.to_string(),
                    };
                    return Err(Error::Timeout {
                        what,
                        until: description,
                        timeout,
                        state,
                    });
                }
            }
        }
    };
    // A workload's wait saw its pods: a capture reads the workload itself.
    let object = if is_workload && !wait.capture.is_empty() {
        api.get_opt(&name)
            .await
            .map_err(|source| Error::from_kube(format!("reading {what}"), source))?
    } else {
        seen
    };
    Ok((line, object))
}

fn matches_wait(until: &WaitFor, object: Option<&DynamicObject>) -> bool {
    match (until, object) {
        (WaitFor::Deleted, object) => object.is_none(),
        (_, None) => false,
        (WaitFor::Condition(condition), Some(object)) => object.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == condition.as_str() && c["status"] == "True"),
        (WaitFor::Jsonpath(jsonpath), Some(object)) => {
            let value = serde_json::to_value(object).unwrap_or_default();
            crate::expect::lookup(&value, &jsonpath.path) == Some(&jsonpath.value)
        }
        (_, Some(_)) => true,
    }
}

fn object_state(object: &DynamicObject) -> String {
    let conditions: Vec<String> = object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if conditions.is_empty() {
        "it exists, with no conditions".into()
    } else {
        format!("conditions {}", conditions.join(", "))
    }
}

/// Waits for the pods a reference means, on a watch of the namespace's pods.
#[allow(clippy::too_many_arguments)]
async fn pods(
    client: &kube::Client,
    reference: &ObjectRef,
    what: &str,
    namespace: &str,
    until: &WaitFor,
    runs_pods: bool,
    timeout: Duration,
    progress: &(dyn Fn(String) + Sync),
) -> Result<String, Error> {
    let want_ready = matches!(until, WaitFor::Ready) && runs_pods;
    let want_running = matches!(until, WaitFor::Running) && runs_pods;
    let deadline = Instant::now() + timeout;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod_changes = watcher(api, watcher::Config::default()).map(|_| ());
    // A Deployment's controller acting on its spec changes no pod by itself.
    let mut changes = match workloads::workload_kind(reference) {
        Some("Deployment") => {
            let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(client.clone(), namespace);
            let name = reference.name.clone().unwrap_or_default();
            let deployment_changes = watch_object(deployments, &name).map(|_| ());
            futures::stream::select(pod_changes, deployment_changes).boxed()
        }
        _ => pod_changes.boxed(),
    };
    let mut current: Vec<Pod>;
    loop {
        let found = workloads::current_pods(client, reference, namespace)
            .await
            .map_err(|e| match e {
                workloads::Error::Kube(doing, source) => Error::from_kube(doing, source),
                other => Error::Lab(other.to_string()),
            })?;
        current = found.pods;
        let done = found.rollout_seen
            && !current.is_empty()
            && (!want_ready || current.iter().all(is_ready))
            && (!want_running || current.iter().all(is_running));
        if done {
            let names: Vec<String> = current
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            let names = names.join(", ");
            return Ok(if want_ready {
                format!("{what} ready ({names})")
            } else if want_running {
                format!("{what} running ({names})")
            } else if runs_pods {
                format!("{what} created ({names})")
            } else {
                format!(
                    "{what} created ({names}); no node runs it, so kubelab stands in for the kubelet"
                )
            });
        }
        if let Some(pod) = current.first() {
            let state = describe_pod_state(pod);
            if HOPELESS.iter().any(|reason| state.contains(reason)) {
                let events = warning_events(client, pod).await;
                return Err(Error::Stuck {
                    what: what.to_string(),
                    state: format!("{state}{events}"),
                });
            }
            progress(format!("{what}: {state}"));
        }
        // The next change to any pod of the namespace, or the deadline.
        match tokio::time::timeout_at(deadline.into(), changes.next()).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let (state, events) = match current.first() {
        Some(pod) => (describe_pod_state(pod), warning_events(client, pod).await),
        None => ("no pod exists".to_string(), String::new()),
    };
    Err(Error::Timeout {
        what: what.to_string(),
        until: if want_ready {
            "ready"
        } else if want_running {
            "running"
        } else {
            "created"
        }
        .into(),
        timeout,
        state: format!("{state}{events}"),
    })
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
pub fn describe_pod_state(pod: &Pod) -> String {
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
            describe_pod_state(&stuck),
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
            describe_pod_state(&pending),
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
        let state = describe_pod_state(&crashing);
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

    #[test]
    fn conditions_and_fields_decide_a_wait() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
        }))
        .unwrap();
        assert!(matches_wait(
            &WaitFor::Condition("Complete".into()),
            Some(&object)
        ));
        assert!(!matches_wait(
            &WaitFor::Condition("Failed".into()),
            Some(&object)
        ));
        let jsonpath = WaitFor::Jsonpath(crate::scenario::JsonpathWait {
            path: "status.succeeded".into(),
            value: serde_json::json!(1),
        });
        assert!(matches_wait(&jsonpath, Some(&object)));
        assert!(matches_wait(&WaitFor::Deleted, None));
        assert!(!matches_wait(&WaitFor::Created, None));
    }
}
