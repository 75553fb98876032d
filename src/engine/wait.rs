//! Waiting for objects, on watches (kube-runtime): a pod or a workload's pods until
//! created, running or Ready; any object until created, deleted, a condition, or a
//! field's value. A wait that runs out says what the object is stuck on.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
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
///
/// The object is read first: a GET reads etcd at once, where a watch's first LIST
/// waits until the API server's cache has seen the latest write to any type (55-60 ms
/// here after a write to another type). Many waits already hold.
pub async fn object_until<K>(
    api: Api<K>,
    name: &str,
    timeout: Duration,
    condition: impl Fn(Option<&K>) -> bool,
) -> Option<Option<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    if let Ok(object) = api.get_opt(name).await
        && condition(object.as_ref())
    {
        return Some(object);
    }
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

/// What a wait saw when its condition held.
pub struct Waited {
    /// A line for the report.
    pub line: String,
    /// The object as the wait saw it (a workload's pods: the workload, or the Pod).
    pub object: Option<DynamicObject>,
    /// A workload's pods as the wait saw them (empty for other objects).
    pub pods: Vec<Pod>,
}

/// Waits as `wait` says.
pub async fn wait(
    client: &kube::Client,
    resolved: &Resolved,
    wait: &WaitOp,
    namespace: &str,
    runs_pods: bool,
    timeout: Duration,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Waited, Error> {
    let name = wait.object.name.clone().unwrap_or_default();
    let what = resolved.describe(namespace, &name);
    let api = resolved.api(client, namespace);
    let is_workload = workloads::workload_kind(&wait.object).is_some();
    match &wait.until {
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
            .await
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
                Some(object) => Ok(Waited {
                    line: format!("{what} {description}"),
                    object,
                    pods: Vec::new(),
                }),
                None => {
                    let state = match api.get_opt(&name).await {
                        Ok(Some(object)) => object_state(&object),
                        Ok(None) => "it does not exist".into(),
                        Err(e) => e.to_string(),
                    };
                    Err(Error::Timeout {
                        what,
                        until: description,
                        timeout,
                        state,
                    })
                }
            }
        }
    }
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

/// Waits for the pods a reference means. It decides from watch caches (kube-runtime
/// reflectors) of the pods, the workload and, for a Deployment, the ReplicaSets, so a
/// change costs no request; a Deployment's controller acting on its spec changes no
/// pod by itself, so its changes count too.
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
) -> Result<Waited, Error> {
    let want_ready = matches!(until, WaitFor::Ready) && runs_pods;
    let want_running = matches!(until, WaitFor::Running) && runs_pods;
    let deadline = Instant::now() + timeout;
    let kind = workloads::workload_kind(reference).ok_or_else(|| {
        Error::Lab(workloads::Error::NotAWorkload(reference.to_string()).to_string())
    })?;
    let name = reference.name.clone().unwrap_or_default();
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));

    let (pod_cache, pod_writer) = reflector::store::<Pod>();
    let pod_config = if kind == "Pod" {
        by_name.clone()
    } else {
        watcher::Config::default()
    };
    let mut watches = vec![changes_of(
        pod_writer,
        Api::namespaced(client.clone(), namespace),
        pod_config,
    )];
    let workload_cache = (kind != "Pod").then(|| {
        let resource = workloads::workload_resource(kind);
        let writer = reflector::store::Writer::new(resource.clone());
        let cache = writer.as_reader();
        watches.push(changes_of(
            writer,
            Api::namespaced_with(client.clone(), namespace, &resource),
            by_name,
        ));
        cache
    });
    let (replica_set_cache, replica_set_writer) = reflector::store::<ReplicaSet>();
    if kind == "Deployment" {
        watches.push(changes_of(
            replica_set_writer,
            Api::namespaced(client.clone(), namespace),
            watcher::Config::default(),
        ));
    }
    let mut changes = futures::stream::select_all(watches);

    let mut current: Vec<Pod>;
    loop {
        let pods = pod_cache.state();
        let workload = workload_cache
            .as_ref()
            .and_then(|cache| cache.state().into_iter().next());
        let found = match &workload {
            None if kind == "Pod" => workloads::CurrentPods {
                pods: pods.iter().map(|p| Pod::clone(p)).collect(),
                rollout_seen: true,
            },
            None => workloads::CurrentPods::none(true),
            Some(workload) => {
                let replica_sets = replica_set_cache.state();
                workloads::current_of(
                    kind,
                    workload,
                    replica_sets.iter().map(AsRef::as_ref),
                    pods.iter().map(AsRef::as_ref),
                )
            }
        };
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
            let line = if want_ready {
                format!("{what} ready ({names})")
            } else if want_running {
                format!("{what} running ({names})")
            } else if runs_pods {
                format!("{what} created ({names})")
            } else {
                format!(
                    "{what} created ({names}); no node runs it, so kubelab stands in for the kubelet"
                )
            };
            let object = match workload {
                Some(workload) => Some(DynamicObject::clone(&workload)),
                None => current
                    .first()
                    .and_then(|pod| serde_json::to_value(pod).ok())
                    .and_then(|pod| serde_json::from_value(pod).ok()),
            };
            return Ok(Waited {
                line,
                pods: current,
                object,
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
        // The next change to any of the watched objects, or the deadline.
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

/// A reflector's stream of changes: each item means its cache has moved. A broken
/// watch is retried with kube-runtime's backoff.
fn changes_of<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    config: watcher::Config,
) -> futures::stream::BoxStream<'static, ()>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Clone + Eq + std::hash::Hash,
{
    watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .map(|_| ())
        .boxed()
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
