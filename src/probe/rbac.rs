//! The RBAC bindings that apply to an identity, for explanations: which
//! (Cluster)RoleBindings name the user or one of its groups, and the rules of the role
//! each one grants.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::Api;
use kube::api::ListParams;

use super::Error;
use crate::report::BindingInfo;

/// The groups the API server gives a user: a ServiceAccount is in
/// system:serviceaccounts and system:serviceaccounts:<ns>; every authenticated user is
/// in system:authenticated.
pub fn groups_of(user: &str) -> Vec<String> {
    let mut groups = Vec::new();
    if let Some(rest) = user.strip_prefix("system:serviceaccount:")
        && let Some((namespace, _)) = rest.split_once(':')
    {
        groups.push("system:serviceaccounts".to_string());
        groups.push(format!("system:serviceaccounts:{namespace}"));
    }
    if user != "system:anonymous" {
        groups.push("system:authenticated".into());
    } else {
        groups.push("system:unauthenticated".into());
    }
    groups
}

fn matches(
    subject: &Subject,
    user: &str,
    groups: &[String],
    binding_namespace: Option<&str>,
) -> Option<String> {
    match subject.kind.as_str() {
        "User" if subject.name == user => Some(format!("User {user}")),
        "Group" if groups.contains(&subject.name) => Some(format!("Group {}", subject.name)),
        "ServiceAccount" => {
            let namespace = subject.namespace.as_deref().or(binding_namespace)?;
            (format!("system:serviceaccount:{namespace}:{}", subject.name) == user)
                .then(|| format!("ServiceAccount {namespace}/{}", subject.name))
        }
        _ => None,
    }
}

pub fn rule_text(rule: &PolicyRule) -> String {
    let verbs = rule.verbs.join(", ");
    if let Some(urls) = &rule.non_resource_urls {
        return format!("{verbs} {}", urls.join(", "));
    }
    let resources = rule.resources.clone().unwrap_or_default().join(", ");
    let groups: Vec<String> = rule
        .api_groups
        .iter()
        .flatten()
        .map(|g| {
            if g.is_empty() {
                "core".to_string()
            } else {
                g.clone()
            }
        })
        .collect();
    let mut text = format!("{verbs} {resources}");
    if let Some(names) = rule.resource_names.as_ref().filter(|n| !n.is_empty()) {
        text.push_str(&format!(" named {}", names.join(", ")));
    }
    if !groups.is_empty() && groups != ["core"] {
        text.push_str(&format!(" (API group {})", groups.join(", ")));
    }
    text
}

/// The rules of the role a binding grants; a role that does not exist grants nothing.
async fn rules_of(
    client: &kube::Client,
    role_ref: &RoleRef,
    namespace: Option<&str>,
) -> Vec<PolicyRule> {
    let rules = match (role_ref.kind.as_str(), namespace) {
        ("Role", Some(namespace)) => {
            let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
            roles
                .get_opt(&role_ref.name)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.rules)
        }
        _ => {
            let roles: Api<ClusterRole> = Api::all(client.clone());
            roles
                .get_opt(&role_ref.name)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.rules)
        }
    };
    rules.unwrap_or_default()
}

/// A binding that names the identity, described for an explanation.
async fn describe(
    client: &kube::Client,
    binding_kind: &str,
    binding_name: String,
    role_ref: &RoleRef,
    namespace: Option<&str>,
    subject: String,
) -> BindingInfo {
    let place = |name: &str| match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    let role = if role_ref.kind == "Role" {
        format!("Role {}", place(&role_ref.name))
    } else {
        format!("ClusterRole {}", role_ref.name)
    };
    BindingInfo {
        binding: format!("{binding_kind} {}", place(&binding_name)),
        role,
        subject,
        rules: rules_of(client, role_ref, namespace)
            .await
            .iter()
            .map(rule_text)
            .collect(),
    }
}

/// Bindings in `namespaces` and cluster-wide that name `user` or its groups.
pub async fn bindings_for(
    client: &kube::Client,
    user: &str,
    namespaces: &[String],
) -> Result<Vec<BindingInfo>, Error> {
    let groups = groups_of(user);
    let listing = |what: &'static str| move |e| Error::Kube(format!("listing {what}"), e);
    let mut found = Vec::new();
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    for binding in cluster_bindings
        .list(&ListParams::default())
        .await
        .map_err(listing("ClusterRoleBindings"))?
    {
        if let Some(subject) = binding
            .subjects
            .iter()
            .flatten()
            .find_map(|s| matches(s, user, &groups, None))
        {
            let name = binding.metadata.name.unwrap_or_default();
            found.push(
                describe(
                    client,
                    "ClusterRoleBinding",
                    name,
                    &binding.role_ref,
                    None,
                    subject,
                )
                .await,
            );
        }
    }
    for namespace in namespaces {
        let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
        for binding in bindings
            .list(&ListParams::default())
            .await
            .map_err(listing("RoleBindings"))?
        {
            if let Some(subject) = binding
                .subjects
                .iter()
                .flatten()
                .find_map(|s| matches(s, user, &groups, Some(namespace)))
            {
                let name = binding.metadata.name.unwrap_or_default();
                found.push(
                    describe(
                        client,
                        "RoleBinding",
                        name,
                        &binding.role_ref,
                        Some(namespace),
                        subject,
                    )
                    .await,
                );
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_accounts_get_their_groups() {
        assert_eq!(
            groups_of("system:serviceaccount:project-swan:default"),
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:project-swan",
                "system:authenticated"
            ]
        );
        assert_eq!(
            groups_of("system:anonymous"),
            vec!["system:unauthenticated"]
        );
    }

    #[test]
    fn a_service_account_subject_without_namespace_takes_the_bindings() {
        let subject = Subject {
            kind: "ServiceAccount".into(),
            name: "secret-reader".into(),
            ..Default::default()
        };
        let user = "system:serviceaccount:project-swan:secret-reader";
        assert_eq!(
            matches(&subject, user, &groups_of(user), Some("project-swan")).as_deref(),
            Some("ServiceAccount project-swan/secret-reader")
        );
        assert_eq!(
            matches(&subject, user, &groups_of(user), Some("default")),
            None
        );
    }

    #[test]
    fn rules_read_as_a_sentence() {
        let rule = PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["pods".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..Default::default()
        };
        assert_eq!(rule_text(&rule), "get, list pods");
    }
}
