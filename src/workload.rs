//! Deployments as the labs use them: their current pods (those of the newest
//! ReplicaSet, so a restart's new pod is told from the old one) and a rollout restart,
//! as `kubectl rollout restart` does it.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

const REVISION: &str = "deployment.kubernetes.io/revision";

/// The pods of the deployment's newest ReplicaSet (none yet: an empty list).
pub async fn current_pods(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<Pod>, kube::Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments.get(name).await?;
    let selector = deployment
        .spec
        .and_then(|s| s.selector.match_labels)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let uid = deployment.metadata.uid.unwrap_or_default();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let newest = replica_sets
        .list(&ListParams::default().labels(&selector))
        .await?
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
    let Some(newest) = newest else {
        return Ok(Vec::new());
    };
    let rs_uid = newest.metadata.uid.unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    Ok(pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == rs_uid)
        })
        .collect())
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
