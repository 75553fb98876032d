//! The RBAC fence around each student: the namespaces of their lab copies, `admin`
//! inside them, and the few cluster-wide reads that `kubelab start`, `check` and `shell`
//! need (kube-system's uid, whether a node is Ready, the ClusterRoles and bindings that
//! diagnoses read). Nothing else: another student's namespaces, secrets and tokens stay
//! out of reach, and the API server says so with a 403.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::{CLASS_LABEL, Error, STUDENT_LABEL};
use crate::engine::objects::{LAB_LABEL, PROVIDED_LABEL};
use crate::engine::resources::Resources;
use crate::scenario::LoadedLab;
use crate::scenario::copy::Copy;

/// Field manager of what `class up` applies (a student's `start` applies as `kubelab`,
/// and never takes over these fields).
pub const FIELD_MANAGER: &str = "kubelab-class";
/// Requests to the API server at once.
const PARALLEL: usize = 16;

fn own_roles(class: &str) -> String {
    format!("kubelab:{class}:own-roles")
}

/// Whom a binding names: a certificate's user, or a ServiceAccount.
pub fn subject(user: &str) -> Value {
    match user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, name)) => {
            json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
        }
        None => json!({"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}),
    }
}

fn metadata(name: &str, namespace: Option<&str>, labels: &BTreeMap<String, String>) -> Value {
    let mut meta = json!({"name": name, "labels": labels});
    if let Some(namespace) = namespace {
        meta["namespace"] = namespace.into();
    }
    meta
}

fn labels(class: &str, student: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (CLASS_LABEL.to_string(), class.to_string()),
        // Used as they are by a student's start; never changed or removed by it.
        (PROVIDED_LABEL.to_string(), class.to_string()),
    ]);
    if let Some(student) = student {
        labels.insert(STUDENT_LABEL.into(), student.into());
    }
    labels
}

/// The namespace of the students' ServiceAccounts (made first: a token identity needs
/// it).
pub fn accounts_namespace(class: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": metadata(&super::identity::accounts_namespace(class), None, &labels(class, None))})
}

/// The objects shared by the class: the ServiceAccounts' namespace (where tokens are
/// the identity) and the reads every student needs.
pub fn shared(class: &str, subjects: &[Value]) -> Vec<Value> {
    let name = format!("kubelab:{class}:students");
    let l = labels(class, None);
    vec![
        accounts_namespace(class),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": metadata(&name, None, &l),
        "rules": [
            // kube-system's uid tells kubelab which cluster it is on.
            {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["kube-system"], "verbs": ["get"]},
            // Whether probes run in pods or on the host.
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
            // What diagnoses compare a denial with (no secrets in them).
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "clusterrolebindings"], "verbs": ["get", "list", "watch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": metadata(&name, None, &l),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subjects}),
        // Bound in each lab namespace: a lab's broken start may bind a Role that does
        // not exist, or write a Role with rules no one holds (a resource in the wrong
        // API group), which the API server allows only to who may `bind` and
        // `escalate` Roles. A Role acts in its own namespace only: the fence holds.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": metadata(&own_roles(class), None, &l),
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind", "escalate"]}]}),
    ]
}

/// One student's fence, cluster-wide objects and namespaces first: their lab copies'
/// namespaces with `admin` in each, the namespaces themselves (a lab applies its
/// Namespace), and the cluster-wide objects the labs start with, made here because a
/// student may not make cluster-wide objects.
pub fn student(
    class: &str,
    student: &str,
    user: &str,
    labs: &[(Copy, &LoadedLab)],
) -> Result<Vec<Value>, Error> {
    let l = labels(class, Some(student));
    let namespaces: Vec<String> = labs
        .iter()
        .flat_map(|(copy, _)| copy.namespaces.values().cloned())
        .collect();
    let own = format!("kubelab:{class}:{student}");
    let mut objects = Vec::new();
    for namespace in &namespaces {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": metadata(namespace, None, &l)}));
    }
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": metadata(&own, None, &l),
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": namespaces, "verbs": ["get", "patch"]}]}));
    objects.push(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": metadata(&own, None, &l),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": own},
        "subjects": [subject(user)]}),
    );
    for (copy, loaded) in labs {
        for mut document in starting_cluster_wide(loaded) {
            copy.value(&mut document, None);
            let meta = document["metadata"].as_object_mut().ok_or_else(|| {
                Error::Usage(format!("lab {}: an object without metadata", loaded.lab.id))
            })?;
            let mut with_lab = l.clone();
            with_lab.insert(LAB_LABEL.into(), loaded.lab.id.clone());
            meta.insert("labels".into(), json!(with_lab));
            objects.push(document);
        }
    }
    for namespace in &namespaces {
        for (binding, role) in [
            ("kubelab-student", "admin".to_string()),
            ("kubelab-student-roles", own_roles(class)),
        ] {
            objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": metadata(binding, Some(namespace), &l),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [subject(user)]}));
        }
    }
    Ok(objects)
}

/// The cluster-wide objects a lab's start applies (a ClusterRole it shares, say).
fn starting_cluster_wide(loaded: &LoadedLab) -> Vec<Value> {
    loaded
        .lab
        .start
        .iter()
        .filter_map(|op| match &op.action {
            crate::scenario::Action::Apply(apply) | crate::scenario::Action::Create(apply) => {
                Some(apply.all_files())
            }
            _ => None,
        })
        .flatten()
        .flat_map(|file| loaded.manifests[file].documents.clone())
        .filter(|d| d["metadata"]["namespace"].is_null() && d["kind"] != "Namespace")
        .collect()
}

/// Applies `objects` (server-side, as kubelab-class): the cluster-wide ones first, then
/// what lives in namespaces, many at a time.
pub async fn apply(
    client: &kube::Client,
    resources: &Resources,
    objects: &[Value],
) -> Result<(), Error> {
    let (first, then): (Vec<&Value>, Vec<&Value>) = objects
        .iter()
        .partition(|o| o["metadata"]["namespace"].is_null());
    for wave in [first, then] {
        futures::stream::iter(
            wave.into_iter()
                .map(|object| apply_one(client, resources, object)),
        )
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    }
    Ok(())
}

async fn apply_one(
    client: &kube::Client,
    resources: &Resources,
    object: &Value,
) -> Result<(), Error> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let resolved = resources
        .for_type(kind)
        .await
        .map_err(|e| Error::Usage(format!("{kind} {name}: {e}")))?;
    let dynamic: DynamicObject = serde_json::from_value(object.clone())
        .map_err(|e| Error::Usage(format!("{kind} {name}: {e}")))?;
    resolved
        .api(client, namespace)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&dynamic),
        )
        .await
        .map_err(Error::kube(format!(
            "applying {}",
            resolved.describe(namespace, name)
        )))?;
    Ok(())
}

/// Deletes everything labelled with the class (one student's when `student` is given):
/// namespaces (which takes what is in them), then the cluster-wide objects. Returns the
/// namespaces (name and uid), to wait for.
pub async fn remove(
    client: &kube::Client,
    resources: &Resources,
    class: &str,
    student: Option<&str>,
) -> Result<Vec<(String, Option<String>)>, Error> {
    let mut selector = format!("{CLASS_LABEL}={class}");
    if let Some(student) = student {
        selector.push_str(&format!(",{STUDENT_LABEL}={student}"));
    }
    let params = ListParams::default().labels(&selector);
    let mut namespaces = Vec::new();
    for kind in ["namespaces", "clusterrolebindings", "clusterroles"] {
        let resolved = resources
            .for_type(kind)
            .await
            .map_err(|e| Error::Usage(e.to_string()))?;
        let api: Api<DynamicObject> = resolved.api(client, "");
        let list = api
            .list(&params)
            .await
            .map_err(Error::kube(format!("listing the class's {kind}")))?;
        let names: Vec<String> = list.items.iter().map(|o| o.name_any()).collect();
        if kind == "namespaces" {
            namespaces = list.items.iter().map(|o| (o.name_any(), o.uid())).collect();
        }
        futures::stream::iter(names.iter().map(|name| {
            let api = api.clone();
            async move {
                match api.delete(name, &DeleteParams::background()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(Error::kube(format!("deleting {kind} {name}"))(e)),
                }
            }
        }))
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    }
    Ok(namespaces)
}
