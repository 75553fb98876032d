//! Workloads as labs use them: the pods a reference means (a Pod, or the current pods
//! of a Deployment, ReplicaSet, Job, StatefulSet or DaemonSet: those its controller
//! owns, and for a Deployment those of its newest ReplicaSet, so a restart's new pod is
//! told from the old one), and a rollout restart as `kubectl rollout restart` does it.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::{Api, Resource};

use crate::scenario::ObjectRef;

const REVISION: &str = "deployment.kubernetes.io/revision";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Kube(String, #[source] kube::Error),
    #[error("{0}")]
    NoPod(String),
    #[error(
        "'{0}' is not a pod, nor deployment/, replicaset/, job/, statefulset/ or daemonset/ a name"
    )]
    NotAWorkload(String),
}

/// The kind a reference's type names, when it is one that has pods.
pub fn workload_kind(reference: &ObjectRef) -> Option<&'static str> {
    let lower = reference.resource.split('.').next()?.to_lowercase();
    let singular = lower.strip_suffix('s').unwrap_or(&lower);
    Some(match singular {
        "pod" => "Pod",
        "deployment" => "Deployment",
        "replicaset" => "ReplicaSet",
        "job" => "Job",
        "statefulset" => "StatefulSet",
        "daemonset" => "DaemonSet",
        _ => return None,
    })
}

/// The resource a workload kind (not Pod) is watched and read through.
pub fn workload_resource(kind: &str) -> ApiResource {
    let (group, version, plural) = match kind {
        "Job" => ("batch", "v1", "jobs"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "DaemonSet" => ("apps", "v1", "daemonsets"),
        "ReplicaSet" => ("apps", "v1", "replicasets"),
        _ => ("apps", "v1", "deployments"),
    };
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn owned_by(pod: &Pod, uid: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// The pods a reference means now (not those being deleted), and whether they are
/// settled.
pub struct CurrentPods {
    pub pods: Vec<Pod>,
    /// False while a Deployment's controller has not acted on its latest spec
    /// (`status.observedGeneration` short of `metadata.generation`): its newest
    /// ReplicaSet may then be the one a change (a restart) is about to replace, and a
    /// wait for its pods must go on. True for anything else.
    pub rollout_seen: bool,
}

/// The pods a reference means now. A Pod that does not exist gives an empty list.
pub async fn current_pods(
    client: &kube::Client,
    reference: &ObjectRef,
    namespace: &str,
) -> Result<CurrentPods, Error> {
    let kind =
        workload_kind(reference).ok_or_else(|| Error::NotAWorkload(reference.to_string()))?;
    let name = reference.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let kube_err = |what: String| move |e| Error::Kube(what, e);
    if kind == "Pod" {
        let pod = pods
            .get_opt(&name)
            .await
            .map_err(kube_err(format!("reading pod {namespace}/{name}")))?;
        return Ok(CurrentPods {
            pods: pod.into_iter().collect(),
            rollout_seen: true,
        });
    }
    let what = format!("{} {namespace}/{name}", kind.to_lowercase());
    let workload =
        Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &workload_resource(kind))
            .get_opt(&name)
            .await
            .map_err(kube_err(format!("reading {what}")))?;
    let Some(workload) = workload else {
        return Ok(CurrentPods::none(true));
    };
    // Read after the workload, so they are at least as new as it is.
    let replica_sets = if kind == "Deployment" {
        Api::<ReplicaSet>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(kube_err(format!("listing the ReplicaSets of {what}")))?
            .items
    } else {
        Vec::new()
    };
    let pods = pods
        .list(&ListParams::default())
        .await
        .map_err(kube_err(format!("listing the pods of {what}")))?
        .items;
    Ok(current_of(kind, &workload, &replica_sets, &pods))
}

impl CurrentPods {
    /// No pods (yet).
    pub fn none(rollout_seen: bool) -> Self {
        CurrentPods {
            pods: Vec::new(),
            rollout_seen,
        }
    }
}

/// A workload's current pods, from the workload as read, its namespace's ReplicaSets
/// (a Deployment's pods are those of its newest) and its namespace's pods. Pure, so
/// a wait can decide from watch caches without a request. A Deployment is settled only
/// once its newest ReplicaSet is the revision the Deployment names: watches of the
/// two may arrive in either order.
pub fn current_of<'a>(
    kind: &str,
    workload: &DynamicObject,
    replica_sets: impl IntoIterator<Item = &'a ReplicaSet>,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> CurrentPods {
    let uid = workload.meta().uid.clone().unwrap_or_default();
    let (owner_uid, rollout_seen) = if kind == "Deployment" {
        let observed = workload.data["status"]["observedGeneration"].as_i64();
        let rollout_seen = match (workload.meta().generation, observed) {
            (Some(generation), Some(observed)) => observed >= generation,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let newest = replica_sets
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
            })
            .max_by_key(|rs| revision(&rs.metadata));
        let Some(newest) = newest else {
            return CurrentPods::none(rollout_seen);
        };
        let named = workload
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .is_some();
        if named && revision(workload.meta()) != revision(&newest.metadata) {
            // One watch is ahead of the other: wait for it to catch up.
            return CurrentPods::none(false);
        }
        (
            newest.metadata.uid.clone().unwrap_or_default(),
            rollout_seen,
        )
    } else {
        (uid, true)
    };
    CurrentPods {
        pods: pods
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && owned_by(p, &owner_uid))
            .cloned()
            .collect(),
        rollout_seen,
    }
}

/// The revision the Deployment controller stamps on a Deployment and its ReplicaSets.
fn revision(meta: &ObjectMeta) -> u64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The newest of a workload's pods: the one a probe runs from.
pub fn newest(mut pods: Vec<Pod>) -> Option<Pod> {
    pods.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    pods.pop()
}

/// The pod a probe runs from: the Pod, or the newest of the workload's current pods.
pub async fn pod_for(
    client: &kube::Client,
    reference: &ObjectRef,
    namespace: &str,
) -> Result<Pod, Error> {
    newest(current_pods(client, reference, namespace).await?.pods).ok_or_else(|| {
        Error::NoPod(if reference.is_pod() {
            format!(
                "pod {namespace}/{} does not exist",
                reference.name.as_deref().unwrap_or_default()
            )
        } else {
            format!("{reference} in namespace {namespace} has no pods")
        })
    })
}

/// `kubectl rollout restart deployment/<name>`: a new pod-template annotation, so the
/// Deployment controller rolls out new pods.
pub async fn restart(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}
    });
    deployments
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_references_name_their_kind() {
        let kind = |text: &str| workload_kind(&ObjectRef::pod(text).unwrap());
        assert_eq!(kind("mydemo"), Some("Pod"));
        assert_eq!(kind("deployment/web"), Some("Deployment"));
        assert_eq!(kind("deployments.apps/web"), Some("Deployment"));
        assert_eq!(kind("job/once"), Some("Job"));
        assert_eq!(kind("statefulset/db"), Some("StatefulSet"));
        assert_eq!(kind("daemonset/agent"), Some("DaemonSet"));
        assert_eq!(kind("service/web"), None);
    }

    fn deployment(generation: i64, observed: i64, revision: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "d", "generation": generation,
                "annotations": {REVISION: revision}},
            "status": {"observedGeneration": observed}
        }))
        .unwrap()
    }

    fn owned(kind: &str, name: &str, owner: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut object = serde_json::json!({
            "metadata": {"name": name, "uid": name,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": "x",
                    "uid": owner, "controller": true}]}
        });
        if let Some(extra) = extra.as_object() {
            for (key, value) in extra {
                object["metadata"][key] = value.clone();
            }
        }
        object
    }

    fn replica_set(name: &str, revision: &str) -> ReplicaSet {
        serde_json::from_value(owned(
            "Deployment",
            name,
            "d",
            serde_json::json!({"annotations": {REVISION: revision}}),
        ))
        .unwrap()
    }

    fn pod(name: &str, owner: &str) -> Pod {
        serde_json::from_value(owned("ReplicaSet", name, owner, serde_json::json!({}))).unwrap()
    }

    fn names(current: &CurrentPods) -> Vec<String> {
        current
            .pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect()
    }

    #[test]
    fn a_deployments_pods_are_those_of_the_revision_it_names() {
        let replica_sets = [replica_set("old", "1"), replica_set("new", "2")];
        let mut leaving: Pod = pod("new-b", "new");
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        let pods = [pod("old-a", "old"), pod("new-a", "new"), leaving];
        let current = current_of("Deployment", &deployment(2, 2, "2"), &replica_sets, &pods);
        assert!(current.rollout_seen);
        assert_eq!(
            names(&current),
            ["new-a"],
            "not the old ReplicaSet's, not one leaving"
        );

        // The controller has not acted on the latest spec yet: not settled.
        let current = current_of("Deployment", &deployment(3, 2, "2"), &replica_sets, &pods);
        assert!(!current.rollout_seen);
    }

    #[test]
    fn a_replica_set_watch_behind_the_deployment_watch_is_waited_for() {
        // The Deployment already names revision 2; the cache has only revision 1.
        let replica_sets = [replica_set("old", "1")];
        let pods = [pod("old-a", "old")];
        let current = current_of("Deployment", &deployment(2, 2, "2"), &replica_sets, &pods);
        assert!(!current.rollout_seen);
        assert!(current.pods.is_empty(), "{:?}", names(&current));
    }

    #[test]
    fn other_workloads_own_their_pods_directly() {
        let job: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "uid": "j"}
        }))
        .unwrap();
        let pods = [pod("once-a", "j"), pod("other", "k")];
        let current = current_of("Job", &job, [], &pods);
        assert!(current.rollout_seen);
        assert_eq!(names(&current), ["once-a"]);
    }
}
