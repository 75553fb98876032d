//! The RBAC decision, as kube-apiserver's RBAC authorizer makes it (with the
//! system:masters shortcut in front): ClusterRoleBindings first, then the RoleBindings
//! of the request's namespace; the first rule that allows wins.

use serde::{Deserialize, Serialize};

use super::message::go_quote;
use super::policy::{Binding, BindingSet, BindingSubject, Policy, Rule, SubjectKey, SubjectKind};
use super::request::{Request, User, service_account};

/// The rule that allowed a request, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub binding: Binding,
    pub subject: BindingSubject,
    pub rule_index: usize,
    pub rule: Rule,
}

impl Grant {
    /// The authorizer's reason, as a SubjectAccessReview reports it:
    /// `RBAC: allowed by RoleBinding "read-pods/default" of Role "pod-reader" to ServiceAccount "tokendemo/default"`.
    pub fn apiserver_reason(&self) -> String {
        let subject = match self.subject.kind {
            SubjectKind::ServiceAccount => {
                let namespace = if self.subject.namespace.is_empty() {
                    &self.binding.namespace
                } else {
                    &self.subject.namespace
                };
                format!(
                    "ServiceAccount {}",
                    go_quote(&format!("{}/{namespace}", self.subject.name))
                )
            }
            SubjectKind::User => format!("User {}", go_quote(&self.subject.name)),
            SubjectKind::Group => format!("Group {}", go_quote(&self.subject.name)),
        };
        let binding = if self.binding.is_cluster_binding() {
            format!("ClusterRoleBinding {}", go_quote(&self.binding.name))
        } else {
            format!(
                "RoleBinding {}",
                go_quote(&format!("{}/{}", self.binding.name, self.binding.namespace))
            )
        };
        format!(
            "RBAC: allowed by {binding} of {} {} to {subject}",
            self.binding.role_kind,
            go_quote(&self.binding.role_name)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// The rule that allowed it (none for system:masters, which bypasses RBAC).
    pub grant: Option<Grant>,
    /// Missing roles that bindings naming the user refer to (only reported on denial).
    pub errors: Vec<String>,
}

impl Decision {
    /// The authorizer's reason for a denial: empty, or "RBAC: <errors>" (an aggregate of
    /// distinct messages: one bare, several in brackets).
    pub fn denial_reason(&self) -> String {
        let mut distinct: Vec<&String> = Vec::new();
        for error in &self.errors {
            if !distinct.contains(&error) {
                distinct.push(error);
            }
        }
        match distinct.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!(
                "RBAC: [{}]",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

pub fn verb_matches(rule: &Rule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

pub fn group_matches(rule: &Rule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

pub fn resource_matches(rule: &Rule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        if r == "*" {
            return true;
        }
        let combined_equal = if subresource.is_empty() {
            r == resource
        } else {
            r.len() == resource.len() + 1 + subresource.len()
                && r.starts_with(resource)
                && r[resource.len()..].starts_with('/')
                && r.ends_with(subresource)
        };
        combined_equal
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

pub fn name_matches(rule: &Rule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

pub fn url_matches(rule: &Rule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// RuleAllows.
pub fn rule_allows(rule: &Rule, request: &Request) -> bool {
    match request {
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            verb_matches(rule, verb)
                && group_matches(rule, group)
                && resource_matches(rule, resource, subresource)
                && name_matches(rule, name)
        }
        Request::NonResource { verb, path } => verb_matches(rule, verb) && url_matches(rule, path),
    }
}

/// The index keys that may name `user`.
pub fn subject_keys(user: &User) -> Vec<SubjectKey> {
    let mut keys = Vec::with_capacity(user.groups.len() + 2);
    keys.push(SubjectKey::User(user.name.clone()));
    keys.extend(user.groups.iter().map(|g| SubjectKey::Group(g.clone())));
    if let Some((namespace, name)) = service_account(&user.name) {
        keys.push(SubjectKey::ServiceAccount(
            namespace.to_string(),
            name.to_string(),
        ));
    }
    keys
}

/// appliesTo: the first subject of the binding that names the user.
pub fn subject_naming(binding: &Binding, user: &User) -> Option<BindingSubject> {
    binding
        .subjects
        .iter()
        .find(|s| match s.kind {
            SubjectKind::User => s.name == user.name,
            SubjectKind::Group => user.groups.contains(&s.name),
            SubjectKind::ServiceAccount => {
                let namespace = if s.namespace.is_empty() {
                    &binding.namespace
                } else {
                    &s.namespace
                };
                !namespace.is_empty()
                    && service_account(&user.name) == Some((namespace.as_str(), s.name.as_str()))
            }
        })
        .cloned()
}

/// Visits the rules granted to `user` for `namespace`, like VisitRulesFor; stops when
/// `visit` returns false.
fn visit_rules<'p>(
    policy: &'p Policy,
    user: &User,
    namespace: &str,
    mut visit: impl FnMut(&'p Binding, &BindingSubject, Result<(usize, &'p Rule), String>) -> bool,
) {
    let keys = subject_keys(user);
    let mut sets: Vec<&BindingSet> = vec![&policy.cluster_bindings];
    if !namespace.is_empty()
        && let Some(set) = policy.role_bindings.get(namespace)
    {
        sets.push(set);
    }
    for set in sets {
        for index in set.naming(&keys) {
            let binding = &set.bindings[index];
            let Some(subject) = subject_naming(binding, user) else {
                continue;
            };
            match policy.rules_of(binding) {
                Err(error) => {
                    if !visit(binding, &subject, Err(error)) {
                        return;
                    }
                }
                Ok(rules) => {
                    for (i, rule) in rules.iter().enumerate() {
                        if !visit(binding, &subject, Ok((i, rule))) {
                            return;
                        }
                    }
                }
            }
        }
    }
}

pub fn decide(policy: &Policy, user: &User, request: &Request) -> Decision {
    if user.groups.iter().any(|g| g == "system:masters") {
        return Decision {
            allowed: true,
            grant: None,
            errors: Vec::new(),
        };
    }
    let mut grant = None;
    let mut errors = Vec::new();
    visit_rules(
        policy,
        user,
        request.namespace(),
        |binding, subject, rule| match rule {
            Ok((rule_index, rule)) if rule_allows(rule, request) => {
                grant = Some(Grant {
                    binding: binding.clone(),
                    subject: subject.clone(),
                    rule_index,
                    rule: rule.clone(),
                });
                false
            }
            Ok(_) => true,
            Err(error) => {
                errors.push(error);
                true
            }
        },
    );
    match grant {
        Some(grant) => Decision {
            allowed: true,
            grant: Some(grant),
            errors: Vec::new(),
        },
        None => Decision {
            allowed: false,
            grant: None,
            errors,
        },
    }
}

/// The reasons of every rule that allows the request. kube-apiserver reports the first
/// it meets, in an order its caches do not fix, so a check accepts any of these.
pub fn allowing_reasons(policy: &Policy, user: &User, request: &Request) -> Vec<String> {
    let mut reasons = Vec::new();
    visit_rules(
        policy,
        user,
        request.namespace(),
        |binding, subject, rule| {
            if let Ok((rule_index, rule)) = rule
                && rule_allows(rule, request)
            {
                let grant = Grant {
                    binding: binding.clone(),
                    subject: subject.clone(),
                    rule_index,
                    rule: rule.clone(),
                };
                reasons.push(grant.apiserver_reason());
            }
            true
        },
    );
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Rule {
        let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Rule {
            verbs: v(verbs),
            api_groups: v(groups),
            resources: v(resources),
            resource_names: v(names),
            non_resource_urls: vec![],
        }
    }

    fn binding(
        name: &str,
        namespace: &str,
        role_kind: &str,
        role: &str,
        subject: BindingSubject,
    ) -> Binding {
        Binding {
            name: name.into(),
            namespace: namespace.into(),
            role_kind: role_kind.into(),
            role_name: role.into(),
            subjects: vec![subject],
        }
    }

    fn sa_subject(name: &str, namespace: &str) -> BindingSubject {
        BindingSubject {
            kind: SubjectKind::ServiceAccount,
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    fn lab_02() -> Policy {
        let mut policy = Policy::default();
        policy.add_role(
            "default",
            "pod-reader",
            vec![rule(&["get", "watch", "list"], &[""], &["pods"], &[])],
        );
        policy.add_binding(binding(
            "read-pods",
            "default",
            "Role",
            "pod-reader",
            sa_subject("tokendemo", ""),
        ));
        policy
    }

    #[test]
    fn a_role_binding_allows_in_its_namespace_only() {
        let policy = lab_02();
        let user = User::authenticated_as("system:serviceaccount:default:tokendemo", &[]);
        let list = Request::from_http("GET", "/api/v1/namespaces/default/pods", "");
        let decision = decide(&policy, &user, &list);
        assert!(decision.allowed);
        assert_eq!(
            decision.grant.unwrap().apiserver_reason(),
            "RBAC: allowed by RoleBinding \"read-pods/default\" of Role \"pod-reader\" to ServiceAccount \"tokendemo/default\""
        );
        assert!(
            !decide(
                &policy,
                &user,
                &Request::from_http("GET", "/api/v1/namespaces/kube-system/pods", "")
            )
            .allowed
        );
        assert!(
            !decide(
                &policy,
                &user,
                &Request::from_http("GET", "/api/v1/namespaces/default/secrets", "")
            )
            .allowed
        );
        assert!(
            !decide(
                &policy,
                &user,
                &Request::from_http("DELETE", "/api/v1/namespaces/default/pods/x", "")
            )
            .allowed
        );
    }

    #[test]
    fn a_missing_role_is_the_denials_reason() {
        let mut policy = lab_02();
        policy.add_binding(binding(
            "dangling",
            "default",
            "Role",
            "gone",
            sa_subject("tokendemo", "default"),
        ));
        let user = User::authenticated_as("system:serviceaccount:default:tokendemo", &[]);
        let denied = decide(
            &policy,
            &user,
            &Request::from_http("GET", "/api/v1/namespaces/default/secrets", ""),
        );
        assert_eq!(
            denied.denial_reason(),
            "RBAC: role.rbac.authorization.k8s.io \"gone\" not found"
        );
        // An allowed request does not mention it.
        assert!(
            decide(
                &policy,
                &user,
                &Request::from_http("GET", "/api/v1/namespaces/default/pods", "")
            )
            .errors
            .is_empty()
        );
    }

    #[test]
    fn wildcards_and_subresources_match_as_upstream() {
        let r = rule(&["get"], &["*"], &["*/scale"], &[]);
        assert!(resource_matches(&r, "deployments", "scale"));
        assert!(!resource_matches(&r, "deployments", ""));
        assert!(!resource_matches(&r, "deployments", "status"));
        let exact = rule(&["get"], &[""], &["pods/log"], &[]);
        assert!(resource_matches(&exact, "pods", "log"));
        assert!(!resource_matches(&exact, "pods", ""));
        assert!(!resource_matches(
            &rule(&["get"], &[""], &["pods"], &[]),
            "pods",
            "log"
        ));
        let named = rule(&["get"], &[""], &["secrets"], &["a"]);
        assert!(
            name_matches(&named, "a") && !name_matches(&named, "") && !name_matches(&named, "b")
        );
        let urls = Rule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz/*".into(), "/version".into()],
            ..Default::default()
        };
        assert!(
            url_matches(&urls, "/healthz/etcd")
                && url_matches(&urls, "/healthz/")
                && url_matches(&urls, "/version")
        );
        assert!(!url_matches(&urls, "/healthz") && !url_matches(&urls, "/version/"));
    }

    #[test]
    fn service_account_subjects_need_a_namespace_in_cluster_bindings() {
        let mut policy = Policy::default();
        policy.add_cluster_role("everything", vec![rule(&["*"], &["*"], &["*"], &[])]);
        policy.add_binding(binding(
            "no-namespace",
            "",
            "ClusterRole",
            "everything",
            sa_subject("x", ""),
        ));
        let user = User::authenticated_as("system:serviceaccount:default:x", &[]);
        assert!(
            !decide(
                &policy,
                &user,
                &Request::from_http("GET", "/api/v1/pods", "")
            )
            .allowed
        );
        policy.add_binding(binding(
            "with-namespace",
            "",
            "ClusterRole",
            "everything",
            sa_subject("x", "default"),
        ));
        assert!(
            decide(
                &policy,
                &user,
                &Request::from_http("GET", "/api/v1/pods", "")
            )
            .allowed
        );
    }

    #[test]
    fn system_masters_bypasses_rbac() {
        let admin = User {
            name: "kubelab-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        };
        assert!(
            decide(
                &Policy::default(),
                &admin,
                &Request::from_http("DELETE", "/api/v1/nodes/n", "")
            )
            .allowed
        );
    }
}
