//! A snapshot of a cluster's RBAC objects, indexed for fast decisions: roles by name,
//! bindings by the subjects they name.

use std::collections::HashMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use kube::Api;
use kube::api::ListParams;
use serde::{Deserialize, Serialize};

/// A PolicyRule, kept as the API has it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, rename = "apiGroups")]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default, rename = "resourceNames")]
    pub resource_names: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

impl From<&PolicyRule> for Rule {
    fn from(rule: &PolicyRule) -> Self {
        Rule {
            verbs: rule.verbs.clone(),
            api_groups: rule.api_groups.clone().unwrap_or_default(),
            resources: rule.resources.clone().unwrap_or_default(),
            resource_names: rule.resource_names.clone().unwrap_or_default(),
            non_resource_urls: rule.non_resource_urls.clone().unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSubject {
    pub kind: SubjectKind,
    pub name: String,
    /// ServiceAccount subjects only; empty means "the binding's namespace".
    pub namespace: String,
}

/// A RoleBinding (namespace set) or ClusterRoleBinding (namespace empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    /// "Role" or "ClusterRole".
    pub role_kind: String,
    pub role_name: String,
    pub subjects: Vec<BindingSubject>,
}

impl Binding {
    pub fn is_cluster_binding(&self) -> bool {
        self.namespace.is_empty()
    }

    /// "RoleBinding default/read-pods" or "ClusterRoleBinding system:discovery".
    pub fn describe(&self) -> String {
        if self.is_cluster_binding() {
            format!("ClusterRoleBinding {}", self.name)
        } else {
            format!("RoleBinding {}/{}", self.namespace, self.name)
        }
    }

    /// "Role default/pod-reader" or "ClusterRole view".
    pub fn describe_role(&self) -> String {
        if self.role_kind == "Role" {
            format!("Role {}/{}", self.namespace, self.role_name)
        } else {
            format!("ClusterRole {}", self.role_name)
        }
    }
}

fn subjects(list: Option<&Vec<Subject>>) -> Vec<BindingSubject> {
    list.into_iter()
        .flatten()
        .filter_map(|s| {
            let kind = match s.kind.as_str() {
                "User" => SubjectKind::User,
                "Group" => SubjectKind::Group,
                "ServiceAccount" => SubjectKind::ServiceAccount,
                _ => return None, // the API server ignores kinds it does not know
            };
            Some(BindingSubject {
                kind,
                name: s.name.clone(),
                namespace: s.namespace.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// Who a binding may apply to, for the index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SubjectKey {
    User(String),
    Group(String),
    ServiceAccount(String, String),
}

/// Bindings of one scope (cluster, or one namespace), indexed by subject.
#[derive(Clone, Debug, Default)]
pub struct BindingSet {
    pub bindings: Vec<Binding>,
    by_subject: HashMap<SubjectKey, Vec<usize>>,
}

impl BindingSet {
    fn push(&mut self, binding: Binding) {
        let index = self.bindings.len();
        for subject in &binding.subjects {
            let key = match subject.kind {
                SubjectKind::User => SubjectKey::User(subject.name.clone()),
                SubjectKind::Group => SubjectKey::Group(subject.name.clone()),
                SubjectKind::ServiceAccount => {
                    let namespace = if subject.namespace.is_empty() {
                        &binding.namespace
                    } else {
                        &subject.namespace
                    };
                    if namespace.is_empty() {
                        continue; // never applies: a ClusterRoleBinding has no namespace to default to
                    }
                    SubjectKey::ServiceAccount(namespace.clone(), subject.name.clone())
                }
            };
            let entry = self.by_subject.entry(key).or_default();
            if entry.last() != Some(&index) {
                entry.push(index);
            }
        }
        self.bindings.push(binding);
    }

    /// Positions of the bindings naming any of `keys`, in binding order.
    pub fn naming(&self, keys: &[SubjectKey]) -> Vec<usize> {
        let mut found: Vec<usize> = keys
            .iter()
            .filter_map(|k| self.by_subject.get(k))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// Every Role, ClusterRole and binding of a cluster at one moment.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub roles: HashMap<(String, String), Vec<Rule>>,
    pub cluster_roles: HashMap<String, Vec<Rule>>,
    pub cluster_bindings: BindingSet,
    pub role_bindings: HashMap<String, BindingSet>,
}

impl Policy {
    pub fn add_role(&mut self, namespace: &str, name: &str, rules: Vec<Rule>) {
        self.roles
            .insert((namespace.to_string(), name.to_string()), rules);
    }

    pub fn add_cluster_role(&mut self, name: &str, rules: Vec<Rule>) {
        self.cluster_roles.insert(name.to_string(), rules);
    }

    pub fn add_binding(&mut self, binding: Binding) {
        if binding.is_cluster_binding() {
            self.cluster_bindings.push(binding);
        } else {
            self.role_bindings
                .entry(binding.namespace.clone())
                .or_default()
                .push(binding);
        }
    }

    /// The rules a binding grants, or the API server's words for the missing role.
    pub fn rules_of(&self, binding: &Binding) -> Result<&[Rule], String> {
        let found = match binding.role_kind.as_str() {
            "Role" => self
                .roles
                .get(&(binding.namespace.clone(), binding.role_name.clone())),
            "ClusterRole" => self.cluster_roles.get(&binding.role_name),
            other => return Err(format!("unsupported role reference kind: {other:?}")),
        };
        found.map(Vec::as_slice).ok_or_else(|| {
            let resource = if binding.role_kind == "Role" {
                "role"
            } else {
                "clusterrole"
            };
            format!(
                "{resource}.rbac.authorization.k8s.io {} not found",
                super::message::go_quote(&binding.role_name)
            )
        })
    }

    pub fn from_objects(
        roles: &[Role],
        cluster_roles: &[ClusterRole],
        role_bindings: &[RoleBinding],
        cluster_bindings: &[ClusterRoleBinding],
    ) -> Policy {
        let mut policy = Policy::default();
        let rules =
            |list: Option<&Vec<PolicyRule>>| list.into_iter().flatten().map(Rule::from).collect();
        for role in roles {
            let namespace = role.metadata.namespace.clone().unwrap_or_default();
            policy.add_role(
                &namespace,
                role.metadata.name.as_deref().unwrap_or_default(),
                rules(role.rules.as_ref()),
            );
        }
        for role in cluster_roles {
            policy.add_cluster_role(
                role.metadata.name.as_deref().unwrap_or_default(),
                rules(role.rules.as_ref()),
            );
        }
        for binding in role_bindings {
            policy.add_binding(Binding {
                name: binding.metadata.name.clone().unwrap_or_default(),
                namespace: binding.metadata.namespace.clone().unwrap_or_default(),
                role_kind: binding.role_ref.kind.clone(),
                role_name: binding.role_ref.name.clone(),
                subjects: subjects(binding.subjects.as_ref()),
            });
        }
        for binding in cluster_bindings {
            policy.add_binding(Binding {
                name: binding.metadata.name.clone().unwrap_or_default(),
                namespace: String::new(),
                role_kind: binding.role_ref.kind.clone(),
                role_name: binding.role_ref.name.clone(),
                subjects: subjects(binding.subjects.as_ref()),
            });
        }
        policy
    }

    /// The policy as far as an identity may read it: all of it, or, when Roles and
    /// RoleBindings may not be listed cluster-wide (a class's student), those of
    /// `namespaces` with the cluster-wide kinds.
    pub async fn load_for(
        client: &kube::Client,
        namespaces: &[String],
    ) -> Result<Policy, kube::Error> {
        match Self::load(client).await {
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            other => return other,
        }
        let params = ListParams::default();
        let (mut roles, mut role_bindings) = (Vec::new(), Vec::new());
        for namespace in namespaces {
            let (in_roles, in_bindings) = (
                Api::<Role>::namespaced(client.clone(), namespace),
                Api::<RoleBinding>::namespaced(client.clone(), namespace),
            );
            let (r, b) = tokio::try_join!(in_roles.list(&params), in_bindings.list(&params))?;
            roles.extend(r.items);
            role_bindings.extend(b.items);
        }
        let (all_cluster_roles, all_cluster_bindings) = (
            Api::<ClusterRole>::all(client.clone()),
            Api::<ClusterRoleBinding>::all(client.clone()),
        );
        let (cluster_roles, cluster_bindings) = tokio::try_join!(
            all_cluster_roles.list(&params),
            all_cluster_bindings.list(&params),
        )?;
        Ok(Policy::from_objects(
            &roles,
            &cluster_roles.items,
            &role_bindings,
            &cluster_bindings.items,
        ))
    }

    /// Reads the four kinds from the cluster (one list request each).
    pub async fn load(client: &kube::Client) -> Result<Policy, kube::Error> {
        let params = ListParams::default();
        let (roles, cluster_roles, role_bindings, cluster_bindings) = (
            Api::<Role>::all(client.clone()),
            Api::<ClusterRole>::all(client.clone()),
            Api::<RoleBinding>::all(client.clone()),
            Api::<ClusterRoleBinding>::all(client.clone()),
        );
        let (roles, cluster_roles, role_bindings, cluster_bindings) = tokio::try_join!(
            roles.list(&params),
            cluster_roles.list(&params),
            role_bindings.list(&params),
            cluster_bindings.list(&params),
        )?;
        Ok(Policy::from_objects(
            &roles.items,
            &cluster_roles.items,
            &role_bindings.items,
            &cluster_bindings.items,
        ))
    }
}
