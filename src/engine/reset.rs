//! Taking a hands-on lab back to nothing: what the lab made (labelled with its run),
//! and what the student made in the lab's namespaces since the lab was started; never
//! anything older, and never what a namespace comes with (its `default`
//! ServiceAccount, its `kube-root-ca.crt`).

use std::time::Duration;

use kube::ResourceExt;
use kube::api::ListParams;

use super::Error;
use super::objects::{Created, RUN_LABEL, created_at, delete_all};
use super::resources::Resources;

/// The namespaced kinds a student makes in these labs.
const NAMESPACED: &[&str] = &[
    "deployments",
    "statefulsets",
    "daemonsets",
    "jobs",
    "replicasets",
    "pods",
    "services",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "roles",
    "rolebindings",
];

/// What a namespace has of its own.
fn comes_with_namespace(kind: &str, name: &str) -> bool {
    matches!(
        (kind, name),
        ("ServiceAccount", "default") | ("ConfigMap", "kube-root-ca.crt")
    )
}

/// What to take back to nothing: the lab's run, its namespaces, since when, and the
/// runs of other labs in progress (whose objects stay, whenever they were made).
pub struct Scope<'a> {
    pub namespaces: &'a [String],
    pub run_id: &'a str,
    /// Seconds since the epoch.
    pub since: u64,
    pub others: &'a std::collections::BTreeMap<String, String>,
}

/// Removes the lab's objects (labelled with its run) and, in its namespaces, whatever
/// was made since it started, except other labs' in progress; waits until all of it is
/// gone. Returns what was removed, for the report.
pub async fn remove(
    client: &kube::Client,
    resources: &Resources,
    scope: &Scope<'_>,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let Scope {
        namespaces,
        run_id,
        since,
        others,
    } = *scope;
    let another_labs = |object: &kube::api::DynamicObject| {
        object
            .labels()
            .get(RUN_LABEL)
            .is_some_and(|run| run != run_id && others.contains_key(run))
    };
    let mut doomed: Vec<Created> = Vec::new();
    // ClusterRoles the deleted bindings refer to (a student's own go too).
    let mut referenced = std::collections::BTreeSet::new();
    let labelled = ListParams::default().labels(&format!("{RUN_LABEL}={run_id}"));
    for namespace in namespaces {
        let resolved = resources.for_type("namespaces").await?;
        let ours = resolved
            .api(client, "")
            .get_opt(namespace)
            .await
            .map_err(|source| Error::from_kube(format!("reading namespace {namespace}"), source))?
            .is_some_and(|n| n.labels().get(RUN_LABEL).map(String::as_str) == Some(run_id));
        if ours {
            // The lab made the namespace: deleting it takes everything in it.
            doomed.push(Created::new(resolved, None, namespace));
            continue;
        }
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
                let made_by_lab =
                    object.labels().get(RUN_LABEL).map(String::as_str) == Some(run_id);
                let made_since = created_at(&object) >= since;
                // Objects a controller owns go with their owner.
                let owned = object
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| !o.is_empty());
                if (made_by_lab || made_since)
                    && !owned
                    && !another_labs(&object)
                    && !comes_with_namespace(&resolved.resource.kind, &name)
                {
                    if object.data["roleRef"]["kind"] == "ClusterRole" {
                        referenced
                            .extend(object.data["roleRef"]["name"].as_str().map(str::to_string));
                    }
                    doomed.push(Created::new(resolved.clone(), Some(namespace), &name));
                }
            }
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
        let lab_own = resolved
            .api(client, "")
            .list(&labelled)
            .await
            .map_err(|source| Error::from_kube(format!("listing {kind}"), source))?;
        for object in lab_own.items {
            doomed.push(Created::new(resolved.clone(), None, &object.name_any()));
        }
        for object in all
            .items
            .iter()
            .filter(|o| created_at(o) >= since && !another_labs(o))
        {
            let name = object.name_any();
            let wanted = if kind == "clusterrolebindings" {
                object.data["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| {
                        s["namespace"]
                            .as_str()
                            .is_some_and(|ns| namespaces.iter().any(|n| n == ns))
                    })
            } else {
                referenced.contains(&name)
            };
            if wanted
                && !doomed
                    .iter()
                    .any(|d| d.kind == resolved.resource.kind && d.name == name)
            {
                if kind == "clusterrolebindings" {
                    referenced.extend(object.data["roleRef"]["name"].as_str().map(str::to_string));
                }
                doomed.push(Created::new(resolved.clone(), None, &name));
            }
        }
    }
    let names: Vec<String> = doomed.iter().map(Created::describe).collect();
    delete_all(client, &doomed, timeout).await?;
    Ok(names)
}
