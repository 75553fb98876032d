//! Why a request is allowed or denied, in words: the grant that allowed it, or the
//! nearest misses and the smallest Role and RoleBinding that would allow it.

use serde::{Deserialize, Serialize};

use super::decide::{
    Decision, decide, group_matches, name_matches, resource_matches, rule_allows, subject_naming,
    url_matches, verb_matches,
};
use super::message;
use super::policy::{Binding, Policy, Rule};
use super::request::{Request, User, service_account};

/// A rule that does not allow the request, and what keeps it from doing so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    pub binding: String,
    pub role: String,
    pub rule_index: usize,
    pub rule: String,
    /// What differs, e.g. ["verb: allows get, list, not delete"].
    pub differences: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Why {
    pub user: User,
    pub request: Request,
    pub allowed: bool,
    /// What the API server answers: 403 when denied (else whatever the handler does).
    pub status: u16,
    /// "allowed by RoleBinding default/read-pods → Role default/pod-reader rule #0: get, watch, list pods"
    /// or "denied: no rule allows list secrets in namespace default".
    pub summary: String,
    /// The 403 body's message the API server sends for a denial.
    pub forbidden_message: Option<String>,
    pub nearest: Vec<Miss>,
    /// YAML of a Role and RoleBinding (or ClusterRole and ClusterRoleBinding) that
    /// would allow exactly this request.
    pub suggestion: Option<String>,
    /// For a denial: the binding the person most likely meant, and what to change in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<super::Diagnosis>,
}

pub fn rule_text(rule: &Rule) -> String {
    let verbs = rule.verbs.join(", ");
    if !rule.non_resource_urls.is_empty() {
        return format!("{verbs} {}", rule.non_resource_urls.join(", "));
    }
    let mut text = format!("{verbs} {}", rule.resources.join(", "));
    if !rule.resource_names.is_empty() {
        text.push_str(&format!(" named {}", rule.resource_names.join(", ")));
    }
    let groups: Vec<&str> = rule
        .api_groups
        .iter()
        .map(|g| if g.is_empty() { "core" } else { g.as_str() })
        .collect();
    if !groups.is_empty() && groups != ["core"] {
        text.push_str(&format!(" in API group {}", groups.join(", ")));
    }
    text
}

/// The request in a few words: "list pods in namespace default", "get path /apis".
pub fn request_text(request: &Request) -> String {
    match request {
        Request::NonResource { verb, path } => format!("{verb} path {path}"),
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            namespace,
        } => {
            let mut text = format!("{verb} {resource}");
            if !subresource.is_empty() {
                text.push_str(&format!("/{subresource}"));
            }
            if !group.is_empty() {
                text.push_str(&format!(" (API group {group})"));
            }
            if !name.is_empty() {
                text.push_str(&format!(" named {name}"));
            }
            if namespace.is_empty() {
                text.push_str(" at the cluster scope");
            } else {
                text.push_str(&format!(" in namespace {namespace}"));
            }
            text
        }
    }
}

/// What keeps `rule` from allowing `request` (empty: it allows it); None when the rule
/// is of the other kind (resources vs non-resource URLs) and so no near miss at all.
fn differences(rule: &Rule, request: &Request) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let list = |items: &[String]| {
        if items.is_empty() {
            "nothing".to_string()
        } else {
            items.join(", ")
        }
    };
    match request {
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            if rule.resources.is_empty() {
                return None;
            }
            if !verb_matches(rule, verb) {
                out.push(format!("verb: allows {}, not {verb}", list(&rule.verbs)));
            }
            if !group_matches(rule, group) {
                out.push(format!(
                    "API group: allows {}, not {}",
                    list(&rule.api_groups),
                    if group.is_empty() {
                        "\"\" (core)"
                    } else {
                        group
                    }
                ));
            }
            if !resource_matches(rule, resource, subresource) {
                let asked = if subresource.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{subresource}")
                };
                out.push(format!(
                    "resource: allows {}, not {asked}",
                    list(&rule.resources)
                ));
            }
            if !name_matches(rule, name) {
                let asked = if name.is_empty() {
                    "all of them".to_string()
                } else {
                    name.clone()
                };
                out.push(format!(
                    "resourceNames: allows only {}, not {asked}",
                    rule.resource_names.join(", ")
                ));
            }
        }
        Request::NonResource { verb, path } => {
            if rule.non_resource_urls.is_empty() {
                return None;
            }
            if !verb_matches(rule, verb) {
                out.push(format!("verb: allows {}, not {verb}", list(&rule.verbs)));
            }
            if !url_matches(rule, path) {
                out.push(format!(
                    "path: allows {}, not {path}",
                    rule.non_resource_urls.join(", ")
                ));
            }
        }
    }
    Some(out)
}

fn miss(binding: &Binding, rule_index: usize, rule: &Rule, differences: Vec<String>) -> Miss {
    Miss {
        binding: binding.describe(),
        role: binding.describe_role(),
        rule_index,
        rule: rule_text(rule),
        differences,
    }
}

/// The closest rules to allowing `request`: rules bound to the user that differ in
/// the fewest ways (a RoleBinding in another namespace counts as one way); failing
/// those, rules that would allow it but are bound to someone else (not the cluster's
/// own bootstrap bindings, which are never the answer for a lab).
fn nearest(policy: &Policy, user: &User, request: &Request) -> Vec<Miss> {
    let mut own: Vec<Miss> = Vec::new();
    let mut others: Vec<Miss> = Vec::new();
    let namespace = request.namespace();
    let mut all: Vec<&Binding> = policy.cluster_bindings.bindings.iter().collect();
    all.extend(
        policy
            .role_bindings
            .values()
            .flat_map(|set| set.bindings.iter()),
    );
    for binding in all {
        let names_user = subject_naming(binding, user).is_some();
        let in_scope = binding.is_cluster_binding() || binding.namespace == namespace;
        let bootstrap = binding.name.starts_with("system:") || binding.name == "cluster-admin";
        // Someone else's binding counts only when it would allow the request as it
        // stands: in scope, and not the cluster's own. A class has hundreds of
        // bindings; most are ruled out here, without a word formatted for them.
        if !names_user && (!in_scope || bootstrap) {
            continue;
        }
        let Ok(rules) = policy.rules_of(binding) else {
            continue;
        };
        for (index, rule) in rules.iter().enumerate() {
            if !names_user {
                if rule_allows(rule, request) {
                    let subjects: Vec<String> = binding
                        .subjects
                        .iter()
                        .map(|s| format!("{:?} {}", s.kind, s.name))
                        .collect();
                    let found = vec![format!(
                        "subject: bound to {}, not to {}",
                        subjects.join(", "),
                        user.name
                    )];
                    others.push(miss(binding, index, rule, found));
                }
                continue;
            }
            let Some(mut found) = differences(rule, request) else {
                continue;
            };
            if !in_scope {
                found.push(format!(
                    "namespace: this RoleBinding grants it in {}, not {}",
                    binding.namespace,
                    if namespace.is_empty() {
                        "at the cluster scope"
                    } else {
                        namespace
                    }
                ));
            }
            if !found.is_empty() {
                own.push(miss(binding, index, rule, found));
            }
        }
    }
    let mut candidates = if own.is_empty() { others } else { own };
    candidates.sort_by_key(|m| m.differences.len());
    let fewest = candidates.first().map(|m| m.differences.len()).unwrap_or(0);
    candidates.retain(|m| m.differences.len() == fewest);
    candidates.truncate(3);
    candidates
}

/// A Role + RoleBinding (namespaced request) or ClusterRole + ClusterRoleBinding that
/// grant exactly this request to exactly this user.
pub fn suggestion(user: &User, request: &Request) -> String {
    let (rule, namespace, verb, what) = match request {
        Request::NonResource { verb, path } => (
            format!("  - nonResourceURLs: [\"{path}\"]\n    verbs: [\"{verb}\"]\n"),
            "",
            verb.clone(),
            path.trim_matches('/').replace('/', "-"),
        ),
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            namespace,
        } => {
            let resource = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let mut rule = format!(
                "  - apiGroups: [\"{group}\"]\n    resources: [\"{resource}\"]\n    verbs: [\"{verb}\"]\n"
            );
            if !name.is_empty() {
                rule.push_str(&format!("    resourceNames: [\"{name}\"]\n"));
            }
            (
                rule,
                namespace.as_str(),
                verb.clone(),
                resource.replace('/', "-"),
            )
        }
    };
    let role_name = format!("allow-{verb}-{what}").to_lowercase();
    let subject = match service_account(&user.name) {
        Some((sa_namespace, sa_name)) => format!(
            "  - kind: ServiceAccount\n    name: {sa_name}\n    namespace: {sa_namespace}\n"
        ),
        None => format!(
            "  - kind: User\n    apiGroup: rbac.authorization.k8s.io\n    name: \"{}\"\n",
            user.name
        ),
    };
    let (role_kind, binding_kind, metadata) = if namespace.is_empty() {
        (
            "ClusterRole",
            "ClusterRoleBinding",
            format!("  name: {role_name}\n"),
        )
    } else {
        (
            "Role",
            "RoleBinding",
            format!("  name: {role_name}\n  namespace: {namespace}\n"),
        )
    };
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: {role_kind}\nmetadata:\n{metadata}rules:\n{rule}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {binding_kind}\nmetadata:\n{metadata}subjects:\n{subject}roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {role_kind}\n  name: {role_name}\n"
    )
}

pub fn why(policy: &Policy, user: &User, request: &Request) -> Why {
    let decision: Decision = decide(policy, user, request);
    if decision.allowed {
        let summary = match &decision.grant {
            Some(grant) => format!(
                "allowed by {} → {} rule #{}: {}",
                grant.binding.describe(),
                grant.binding.describe_role(),
                grant.rule_index,
                rule_text(&grant.rule)
            ),
            None => "allowed: the user is in group system:masters, which bypasses RBAC".into(),
        };
        return Why {
            user: user.clone(),
            request: request.clone(),
            allowed: true,
            status: 200,
            summary,
            forbidden_message: None,
            nearest: Vec::new(),
            suggestion: None,
            diagnosis: Vec::new(),
        };
    }
    let reason = decision.denial_reason();
    let mut summary = format!(
        "denied: no rule bound to {} allows {}",
        user.name,
        request_text(request)
    );
    if !reason.is_empty() {
        summary.push_str(&format!(" ({reason})"));
    }
    Why {
        user: user.clone(),
        request: request.clone(),
        allowed: false,
        status: 403,
        summary,
        forbidden_message: Some(message::forbidden(user, request, &reason)),
        nearest: nearest(policy, user, request),
        suggestion: Some(suggestion(user, request)),
        diagnosis: super::diagnose(policy, user, request, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::decide::decide;
    use crate::rbac::policy::{BindingSubject, SubjectKind};

    fn lab_02() -> Policy {
        let mut policy = Policy::default();
        policy.add_role(
            "default",
            "pod-reader",
            vec![Rule {
                verbs: vec!["get".into(), "watch".into(), "list".into()],
                api_groups: vec!["".into()],
                resources: vec!["pods".into()],
                ..Default::default()
            }],
        );
        policy.add_binding(Binding {
            name: "read-pods".into(),
            namespace: "default".into(),
            role_kind: "Role".into(),
            role_name: "pod-reader".into(),
            subjects: vec![BindingSubject {
                kind: SubjectKind::ServiceAccount,
                name: "tokendemo".into(),
                namespace: "default".into(),
            }],
        });
        policy
    }

    #[test]
    fn an_allow_names_the_binding_role_and_rule() {
        let user = User::authenticated_as("system:serviceaccount:default:tokendemo", &[]);
        let why = why(
            &lab_02(),
            &user,
            &Request::from_http("GET", "/api/v1/namespaces/default/pods", ""),
        );
        assert_eq!(
            why.summary,
            "allowed by RoleBinding default/read-pods → Role default/pod-reader rule #0: get, watch, list pods"
        );
    }

    #[test]
    fn a_denial_names_the_nearest_rule_and_what_differs() {
        let user = User::authenticated_as("system:serviceaccount:default:tokendemo", &[]);
        let why = why(
            &lab_02(),
            &user,
            &Request::from_http("GET", "/api/v1/namespaces/default/secrets", ""),
        );
        assert!(!why.allowed);
        assert_eq!(why.nearest.len(), 1);
        assert_eq!(why.nearest[0].binding, "RoleBinding default/read-pods");
        assert_eq!(
            why.nearest[0].differences,
            vec!["resource: allows pods, not secrets".to_string()]
        );
        let other = why_in_other_namespace();
        assert!(
            other.nearest[0].differences[0]
                .starts_with("namespace: this RoleBinding grants it in default"),
            "{other:?}"
        );
    }

    fn why_in_other_namespace() -> Why {
        let user = User::authenticated_as("system:serviceaccount:default:tokendemo", &[]);
        why(
            &lab_02(),
            &user,
            &Request::from_http("GET", "/api/v1/namespaces/kube-system/pods", ""),
        )
    }

    #[test]
    fn the_suggestion_grants_exactly_the_request() {
        let user = User::authenticated_as("system:serviceaccount:default:tokendemo", &[]);
        let request = Request::from_http("GET", "/api/v1/namespaces/default/secrets/db", "");
        let yaml = suggestion(&user, &request);
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        assert_eq!(documents[0]["kind"], "Role");
        assert_eq!(documents[0]["rules"][0]["verbs"][0], "get");
        assert_eq!(documents[0]["rules"][0]["resourceNames"][0], "db");
        assert_eq!(documents[1]["subjects"][0]["name"], "tokendemo");
        assert_eq!(documents[1]["subjects"][0]["namespace"], "default");
        // Applied to the policy, it allows the request (and the API objects parse).
        let role: k8s_openapi::api::rbac::v1::Role =
            serde_json::from_value(documents[0].clone()).unwrap();
        let binding: k8s_openapi::api::rbac::v1::RoleBinding =
            serde_json::from_value(documents[1].clone()).unwrap();
        let policy = Policy::from_objects(&[role], &[], &[binding], &[]);
        assert!(decide(&policy, &user, &request).allowed);
        // ... and nothing more: another secret, another verb stay denied.
        assert!(
            !decide(
                &policy,
                &user,
                &Request::from_http("GET", "/api/v1/namespaces/default/secrets/other", "")
            )
            .allowed
        );
        assert!(
            !decide(
                &policy,
                &user,
                &Request::from_http("DELETE", "/api/v1/namespaces/default/secrets/db", "")
            )
            .allowed
        );
    }
}
