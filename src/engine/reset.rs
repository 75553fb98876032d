//! Taking a hands-on lab back to nothing: what the lab made (labelled with its run),
//! and what the student made in the lab's namespaces since the lab was started; never
//! anything older, never what a namespace comes with (its `default` ServiceAccount,
//! its `kube-root-ca.crt`), and never what belongs to another lab in progress (its
//! objects, and in a namespace it shares, what was made since it started).

use std::collections::BTreeSet;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{DynamicObject, ListParams};

use super::Error;
use super::objects::{Created, PROVIDED_LABEL, RUN_LABEL, created_at, delete_all};
use super::resources::Resources;
use crate::progress::InProgress;

/// The namespaced kinds a student makes in these labs.
const NAMESPACED: &[&str] = &[
    "deployments",
    "statefulsets",
    "daemonsets",
    "jobs",
    "cronjobs",
    "replicasets",
    "pods",
    "services",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "networkpolicies",
    "persistentvolumeclaims",
];

/// What a namespace has of its own.
fn comes_with_namespace(kind: &str, name: &str) -> bool {
    matches!(
        (kind, name),
        ("ServiceAccount", "default") | ("ConfigMap", "kube-root-ca.crt")
    )
}

/// What to take back to nothing: the lab's run, its namespaces, since when (the API
/// server's clock, seconds since the epoch), and the other labs set up on the cluster.
pub struct Scope<'a> {
    pub namespaces: &'a [String],
    pub run_id: &'a str,
    pub since: u64,
    pub others: &'a [InProgress],
    /// Empty the lab's own namespaces instead of deleting them: a reset sets them up
    /// again at once, and a namespace takes the namespace controller seconds to go.
    pub keep_namespaces: bool,
}

impl Scope<'_> {
    fn made_by_lab(&self, object: &DynamicObject) -> bool {
        object.labels().get(RUN_LABEL).map(String::as_str) == Some(self.run_id)
    }

    /// Another lab's: labelled with its run, or, unlabelled in a namespace both labs
    /// use, made after that lab started later than this one (what a student makes
    /// belongs to the lab started last before it).
    fn another_labs(&self, object: &DynamicObject, namespace: Option<&str>) -> bool {
        let created = created_at(object);
        self.others.iter().any(|other| {
            object.labels().get(RUN_LABEL) == Some(&other.run_id)
                || namespace.is_some_and(|ns| {
                    other.namespaces.iter().any(|n| n == ns)
                        && other.started_at > self.since
                        && created >= other.started_at
                })
        })
    }

    /// Whether `object` (in `namespace`, or cluster-wide) goes.
    fn takes(&self, object: &DynamicObject, namespace: Option<&str>) -> bool {
        // Objects a controller owns go with their owner.
        let owned = object
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| !o.is_empty());
        // What was made for the lab ahead of it (a class's fence) stays.
        if owned || object.labels().contains_key(PROVIDED_LABEL) {
            return false;
        }
        self.made_by_lab(object)
            || (created_at(object) >= self.since && !self.another_labs(object, namespace))
    }
}

/// What `remove` would delete, in deletion order reversed (as it was made).
pub async fn plan(
    client: &kube::Client,
    resources: &Resources,
    scope: &Scope<'_>,
) -> Result<Vec<Created>, Error> {
    let mut doomed: Vec<Created> = Vec::new();
    // ClusterRoles the deleted bindings refer to (a student's own go too).
    let mut referenced = BTreeSet::new();
    for namespace in scope.namespaces {
        let namespaces = resources.for_type("namespaces").await?;
        let made_by_lab = namespaces
            .api(client, "")
            .get_opt(namespace)
            .await
            .map_err(|source| Error::from_kube(format!("reading namespace {namespace}"), source))?
            .is_some_and(|n| scope.made_by_lab(&n));
        let mut inside = Vec::new();
        let mut shared = false;
        for kind in NAMESPACED {
            let resolved = resources.for_type(kind).await?;
            let list = resolved
                .api(client, namespace)
                .list(&ListParams::default())
                .await
                .map_err(|source| {
                    Error::from_kube(format!("listing {kind} in {namespace}"), source)
                })?;
            for object in list.items {
                let name = object.name_any();
                shared |= scope.another_labs(&object, Some(namespace));
                if scope.takes(&object, Some(namespace))
                    && !comes_with_namespace(&resolved.resource.kind, &name)
                {
                    if object.data["roleRef"]["kind"] == "ClusterRole" {
                        referenced
                            .extend(object.data["roleRef"]["name"].as_str().map(str::to_string));
                    }
                    inside.push(Created::new(resolved.clone(), Some(namespace), &name));
                }
            }
        }
        if made_by_lab && !shared && !scope.keep_namespaces {
            // The lab made the namespace and nobody else uses it: deleting it takes
            // everything in it, whatever its kind.
            doomed.push(Created::new(namespaces, None, namespace));
        } else {
            doomed.extend(inside);
        }
    }
    // Cluster-wide: the lab's own, and bindings made since that name a lab namespace's
    // ServiceAccounts (with the ClusterRoles made since that they use).
    for kind in ["clusterrolebindings", "clusterroles"] {
        let resolved = resources.for_type(kind).await?;
        let all = resolved
            .api(client, "")
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::from_kube(format!("listing {kind}"), source))?;
        for object in all.items.iter().filter(|o| scope.takes(o, None)) {
            let name = object.name_any();
            let wanted = scope.made_by_lab(object)
                || if kind == "clusterrolebindings" {
                    object.data["subjects"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| {
                            s["namespace"]
                                .as_str()
                                .is_some_and(|ns| scope.namespaces.iter().any(|n| n == ns))
                        })
                } else {
                    referenced.contains(&name)
                };
            if wanted {
                if kind == "clusterrolebindings" {
                    referenced.extend(object.data["roleRef"]["name"].as_str().map(str::to_string));
                }
                doomed.push(Created::new(resolved.clone(), None, &name));
            }
        }
    }
    Ok(doomed)
}

/// A reset keeps the lab's own namespaces: they pass from the lab's old run to its new
/// one (else the new run would take them for another run's and never delete them).
pub async fn hand_over(
    client: &kube::Client,
    namespaces: &[String],
    from: &str,
    to: &str,
) -> Result<(), Error> {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    for name in namespaces {
        let ours = api
            .get_opt(name)
            .await
            .map_err(|source| Error::from_kube(format!("reading namespace {name}"), source))?
            .is_some_and(|n| n.labels().get(RUN_LABEL).map(String::as_str) == Some(from));
        if ours && !from.is_empty() {
            let patch = serde_json::json!({"metadata": {"labels": {RUN_LABEL: to}}});
            api.patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .map_err(|source| Error::from_kube(format!("relabelling namespace {name}"), source))?;
        }
    }
    Ok(())
}

/// Deletes what `plan` found and waits until all of it is gone.
pub async fn remove(
    client: &kube::Client,
    doomed: &[Created],
    timeout: Duration,
) -> Result<(), Error> {
    delete_all(client, doomed, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(created: i64, run: Option<&str>, owned: bool) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "x",
                "namespace": "default",
                "creationTimestamp": k8s_openapi::jiff::Timestamp::from_second(created).unwrap().to_string(),
                "labels": run.map(|r| serde_json::json!({RUN_LABEL: r})).unwrap_or_default(),
                "ownerReferences": if owned { serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"}]) } else { serde_json::json!([]) },
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_reset_takes_its_own_and_what_was_made_since_but_never_another_labs() {
        let namespaces = vec!["default".to_string()];
        // Lab 01 was set up at 100, this lab (02) at 200, lab 03 at 300: all in default.
        let others = vec![
            InProgress {
                key: "seed/01".into(),
                run_id: "run01".into(),
                started_at: 100,
                namespaces: namespaces.clone(),
            },
            InProgress {
                key: "seed/03".into(),
                run_id: "run03".into(),
                started_at: 300,
                namespaces: namespaces.clone(),
            },
        ];
        let scope = Scope {
            namespaces: &namespaces,
            run_id: "run02",
            since: 200,
            others: &others,
            keep_namespaces: false,
        };
        let takes = |o: &DynamicObject| scope.takes(o, Some("default"));
        assert!(
            takes(&object(50, Some("run02"), false)),
            "its own, whenever made"
        );
        assert!(
            takes(&object(250, None, false)),
            "a student's, after 02, before 03"
        );
        assert!(!takes(&object(150, None, false)), "older than the lab");
        assert!(!takes(&object(350, None, false)), "after 03 started: 03's");
        assert!(!takes(&object(250, Some("run01"), false)), "lab 01's own");
        assert!(!takes(&object(250, None, true)), "goes with its owner");
    }
}
