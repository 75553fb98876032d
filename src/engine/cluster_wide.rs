//! Objects a lab would create outside any namespace. On a cluster kubelab did not make
//! they reach beyond the lab (a ClusterRoleBinding to cluster-admin hands a
//! ServiceAccount the whole cluster), so a run lists them first and needs consent.

use std::fmt;

use kube::api::TypeMeta;
use kube::core::GroupVersionKind;

use super::Error;
use super::resources::Resources;
use crate::scenario::LoadedLab;

/// One cluster-wide object a lab's manifests hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterWide {
    pub lab: String,
    pub kind: String,
    pub name: String,
    /// For a binding: the ClusterRole it grants.
    pub grants: Option<String>,
}

impl fmt::Display for ClusterWide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lab {}: {} {}", self.lab, self.kind, self.name)?;
        match self.grants.as_deref() {
            Some("cluster-admin") => write!(f, " (grants cluster-admin: everything, everywhere)"),
            Some(role) => write!(f, " (grants ClusterRole {role})"),
            None => Ok(()),
        }
    }
}

/// The cluster-wide objects in `labs`' manifests, but namespaces (each lab lists its
/// own), as the API server scopes their types.
pub async fn planned(resources: &Resources, labs: &[LoadedLab]) -> Result<Vec<ClusterWide>, Error> {
    // Kinds the labs define themselves are not served yet: their CRDs give the scope.
    let defined: std::collections::BTreeMap<String, bool> = labs
        .iter()
        .flat_map(|lab| lab.manifests.values())
        .flat_map(|manifest| &manifest.documents)
        .filter(|document| document["kind"] == "CustomResourceDefinition")
        .filter_map(|crd| {
            let kind = crd["spec"]["names"]["kind"].as_str()?;
            Some((kind.to_string(), crd["spec"]["scope"] == "Namespaced"))
        })
        .collect();
    let mut found = Vec::new();
    for loaded in labs {
        for manifest in loaded.manifests.values() {
            for document in &manifest.documents {
                let Ok(types) = serde_json::from_value::<TypeMeta>(document.clone()) else {
                    continue;
                };
                if types.kind == "Namespace" {
                    continue;
                }
                let Ok(gvk) = GroupVersionKind::try_from(&types) else {
                    continue;
                };
                let name = document["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let namespaced = match defined.get(&gvk.kind) {
                    Some(namespaced) => *namespaced,
                    None => {
                        resources
                            .for_gvk(&gvk, &format!("{} {name}", gvk.kind))
                            .await?
                            .namespaced
                    }
                };
                if namespaced {
                    continue;
                }
                let grants = (document["roleRef"]["kind"] == "ClusterRole")
                    .then(|| document["roleRef"]["name"].as_str().map(str::to_string))
                    .flatten();
                found.push(ClusterWide {
                    lab: loaded.lab.id.clone(),
                    kind: gvk.kind,
                    name,
                    grants,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_to_cluster_admin_says_what_it_grants() {
        let binding = ClusterWide {
            lab: "07".into(),
            kind: "ClusterRoleBinding".into(),
            name: "everything".into(),
            grants: Some("cluster-admin".into()),
        };
        assert_eq!(
            binding.to_string(),
            "lab 07: ClusterRoleBinding everything (grants cluster-admin: everything, everywhere)"
        );
    }
}
