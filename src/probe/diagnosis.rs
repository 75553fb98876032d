//! When a probe fails on a denial (an http 403, kubectl's Forbidden, a log that says
//! so, a can-i no), what the live policy says is wrong: the RBAC diagnosis, with what
//! the pod runs as.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::{ApiResource, DynamicObject};

use crate::rbac::{self, AutomountOff, Diagnosis, Owner, PodFacts, Policy, Request, User};
use crate::report::Observed;

/// The denied request in what a probe saw: the API server's 403 words (in a Status, in
/// kubectl's output, in a log), else the request the probe made as `identity`.
fn denial(observed: &Observed, asked: Option<&Request>) -> Option<(String, Request)> {
    let texts = [
        observed.message.as_deref(),
        Some(observed.body.as_str()),
        observed.stdout.as_deref(),
        observed.stderr.as_deref(),
    ];
    if let Some(found) = texts.into_iter().flatten().find_map(rbac::parse_forbidden) {
        return Some(found);
    }
    // can-i: no status, but the question and the answer.
    (observed.allowed == Some(false))
        .then(|| Some((observed.identity.clone()?, asked?.clone())))
        .flatten()
}

/// What the pod runs as: its ServiceAccount, why it has no token, what made it.
pub async fn pod_facts(client: &kube::Client, pod: &Pod, mounts_token: bool) -> PodFacts {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    // Admission writes "default" where the manifest said nothing: both mean default.
    let service_account = spec.service_account_name.clone().filter(|s| s != "default");
    let automount_off = if mounts_token {
        None
    } else if spec.automount_service_account_token == Some(false) {
        Some(AutomountOff::Pod)
    } else {
        let account = spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
        match accounts.get_opt(&account).await {
            Ok(Some(sa)) if sa.automount_service_account_token == Some(false) => {
                Some(AutomountOff::ServiceAccount(account))
            }
            // Nothing turns it off now: the pod is older than the change.
            _ => Some(AutomountOff::MadeWithout),
        }
    };
    PodFacts {
        name: pod.metadata.name.clone().unwrap_or_default(),
        service_account,
        automount_off,
        owner: owner(client, pod, &namespace).await,
        namespace,
    }
}

/// The workload whose template made the pod (a ReplicaSet's Deployment, a Job, ...).
async fn owner(client: &kube::Client, pod: &Pod, namespace: &str) -> Option<Owner> {
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    let template_account = |template: Option<&serde_json::Value>| {
        template
            .and_then(|t| t.pointer("/spec/serviceAccountName"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    if controller.kind == "ReplicaSet" {
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
        let set = sets.get_opt(&controller.name).await.ok()??;
        let deployment = set
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "Deployment")?
            .name
            .clone();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let template = deployments.get_opt(&deployment).await.ok()??.spec?.template;
        return Some(Owner {
            kind: "Deployment".into(),
            name: deployment,
            template_service_account: template
                .spec
                .and_then(|s| s.service_account_name)
                .filter(|s| s != "default"),
        });
    }
    let (group, version) = controller
        .api_version
        .split_once('/')
        .unwrap_or(("", &controller.api_version));
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: controller.api_version.clone(),
        kind: controller.kind.clone(),
        plural: format!("{}s", controller.kind.to_lowercase()),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let object = api.get_opt(&controller.name).await.ok()??;
    Some(Owner {
        kind: controller.kind.clone(),
        name: controller.name.clone(),
        template_service_account: template_account(object.data.pointer("/spec/template"))
            .filter(|s| s != "default"),
    })
}

/// The diagnoses for a failed probe, when it failed on a denial.
pub async fn for_denial(
    client: &kube::Client,
    policy: &Policy,
    observed: &Observed,
    asked: Option<&Request>,
    pod: Option<(&Pod, bool)>,
) -> Vec<Diagnosis> {
    let Some((user, request)) = denial(observed, asked) else {
        return Vec::new();
    };
    let facts = match pod {
        Some((pod, mounts_token)) => Some(pod_facts(client, pod, mounts_token).await),
        None => None,
    };
    rbac::diagnose(
        policy,
        &User::authenticated_as(&user, &[]),
        &request,
        facts.as_ref(),
    )
}
