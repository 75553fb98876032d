//! Workloads as labs use them: the pods a reference means (a Pod, or the current pods
//! of a Deployment, ReplicaSet, Job, StatefulSet or DaemonSet: those its controller
//! owns, and for a Deployment those of its newest ReplicaSet, so a restart's new pod is
//! told from the old one), and a rollout restart as `kubectl rollout restart` does it.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
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

fn resource_of(kind: &str) -> ApiResource {
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
    let none = |rollout_seen| CurrentPods {
        pods: Vec::new(),
        rollout_seen,
    };
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
    let (owner_uid, rollout_seen) = if kind == "Deployment" {
        match newest_replica_set(client, namespace, &name).await? {
            Newest::ReplicaSet { uid, rollout_seen } => (uid, rollout_seen),
            Newest::None { rollout_seen } => return Ok(none(rollout_seen)),
        }
    } else {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &resource_of(kind));
        match api
            .get_opt(&name)
            .await
            .map_err(kube_err(format!("reading {what}")))?
        {
            Some(object) => (object.meta().uid.clone().unwrap_or_default(), true),
            None => return Ok(none(true)),
        }
    };
    let pods = pods
        .list(&ListParams::default())
        .await
        .map_err(kube_err(format!("listing the pods of {what}")))?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && owned_by(p, &owner_uid))
        .collect();
    Ok(CurrentPods { pods, rollout_seen })
}

enum Newest {
    ReplicaSet { uid: String, rollout_seen: bool },
    None { rollout_seen: bool },
}

/// The deployment's newest ReplicaSet, and whether its controller has acted on the
/// deployment's latest spec.
async fn newest_replica_set(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Newest, Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(deployment) = deployments
        .get_opt(name)
        .await
        .map_err(|e| Error::Kube(format!("reading deployment {namespace}/{name}"), e))?
    else {
        return Ok(Newest::None { rollout_seen: true });
    };
    let observed = deployment
        .status
        .as_ref()
        .and_then(|s| s.observed_generation);
    let rollout_seen = match (deployment.metadata.generation, observed) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let uid = deployment.metadata.uid.unwrap_or_default();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let newest = replica_sets
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            Error::Kube(
                format!("listing the ReplicaSets of deployment {namespace}/{name}"),
                e,
            )
        })?
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .max_by_key(|rs| {
            rs.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
        });
    Ok(match newest.and_then(|rs| rs.metadata.uid) {
        Some(uid) => Newest::ReplicaSet { uid, rollout_seen },
        None => Newest::None { rollout_seen },
    })
}

/// The pod a probe runs from: the Pod, or the newest of the workload's current pods.
pub async fn pod_for(
    client: &kube::Client,
    reference: &ObjectRef,
    namespace: &str,
) -> Result<Pod, Error> {
    let mut current = current_pods(client, reference, namespace).await?.pods;
    current.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    current.pop().ok_or_else(|| {
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
}
