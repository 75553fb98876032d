//! What is wrong, when a request is denied, in the terms of the objects a person wrote:
//! of every binding that comes close to allowing the request (it names a subject like
//! the requester, sits in another namespace, refers to a role that is not there, or
//! grants a rule that differs in a verb, resource, group or name), the one that differs
//! least is taken for the one the person meant, and what separates it from the request
//! is named as an object, a field, and where one edit fixes it, that edit.

use serde::{Deserialize, Serialize};

use super::decide::{group_matches, name_matches, resource_matches, subject_naming, verb_matches};
use super::policy::{Binding, BindingSubject, Policy, Rule, SubjectKind};
use super::request::{Request, User, service_account};
use crate::names::edit_distance;

/// One thing to change, found from the cluster's live objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diagnosis {
    /// The object to change: "RoleBinding default/read-pods", "Pod default/mydemo".
    pub object: String,
    /// The field, as a path in that object: "subjects[0].namespace".
    pub field: String,
    /// What is wrong and what to do, in a sentence or two.
    pub message: String,
    /// The one edit that fixes it, as a command, when one edit can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

/// Why a pod has no token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutomountOff {
    /// The pod's own spec says `automountServiceAccountToken: false`.
    Pod,
    /// Its ServiceAccount (this one) says so, and the pod says nothing.
    ServiceAccount(String),
    /// Neither says so now: the pod was made while one did (its volumes are fixed).
    MadeWithout,
}

/// The workload whose template made a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// "Deployment", "Job", ...
    pub kind: String,
    pub name: String,
    /// The template's serviceAccountName now (it may have changed since the pod was made).
    pub template_service_account: Option<String>,
}

/// What the pod that made a request runs as, when the request came from a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    /// `spec.serviceAccountName`, when set.
    pub service_account: Option<String>,
    /// Why no token is mounted, when none is.
    pub automount_off: Option<AutomountOff>,
    pub owner: Option<Owner>,
}

impl PodFacts {
    fn account(&self) -> &str {
        self.service_account.as_deref().unwrap_or("default")
    }
}

/// How a binding's subject comes close to the requester without naming it.
#[derive(Clone, Debug, PartialEq)]
enum SubjectGap {
    /// Names the requester.
    None,
    /// A ServiceAccount of the same name in another namespace.
    Namespace { index: usize, bound: String },
    /// Another ServiceAccount of the requester's namespace.
    Name { index: usize, bound: String },
    /// A User where a ServiceAccount was meant.
    Kind { index: usize },
}

/// What keeps the binding's role from granting the request.
#[derive(Clone, Debug, PartialEq)]
enum RoleGap {
    None,
    /// The role it refers to does not exist; maybe one of the other kind, or of a
    /// nearby name, does.
    Missing {
        other_kind: bool,
        nearby: Option<String>,
    },
    /// The nearest rule (its index) and how it differs.
    Rule {
        index: usize,
        rule: Rule,
        gaps: Vec<RuleGap>,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum RuleGap {
    Verb(String),
    /// The resource asked for; the rule's element to replace, when one is close.
    Resource {
        asked: String,
        near: Option<usize>,
    },
    Group {
        asked: String,
    },
    /// The rule is limited to names and the request names no object (or another).
    Names {
        asked: String,
    },
}

struct Candidate<'p> {
    binding: &'p Binding,
    subject: SubjectGap,
    /// The binding grants only in its own namespace, not the request's.
    out_of_scope: bool,
    role: RoleGap,
}

impl Candidate<'_> {
    fn distance(&self) -> usize {
        let subject = usize::from(self.subject != SubjectGap::None);
        let role = match &self.role {
            RoleGap::None => 0,
            RoleGap::Missing { .. } => 1,
            RoleGap::Rule { gaps, .. } => gaps.len(),
        };
        subject + usize::from(self.out_of_scope) + role
    }
}

fn subject_gap(binding: &Binding, user: &User) -> Option<SubjectGap> {
    if subject_naming(binding, user).is_some() {
        return Some(SubjectGap::None);
    }
    let (namespace, name) = service_account(&user.name)?;
    binding
        .subjects
        .iter()
        .enumerate()
        .find_map(|(index, s): (usize, &BindingSubject)| {
            let bound_namespace = if s.namespace.is_empty() {
                &binding.namespace
            } else {
                &s.namespace
            };
            match s.kind {
                SubjectKind::ServiceAccount if s.name == name && bound_namespace != namespace => {
                    Some(SubjectGap::Namespace {
                        index,
                        bound: bound_namespace.clone(),
                    })
                }
                SubjectKind::ServiceAccount if bound_namespace == namespace => {
                    Some(SubjectGap::Name {
                        index,
                        bound: s.name.clone(),
                    })
                }
                SubjectKind::User if s.name == name || s.name == user.name => {
                    Some(SubjectGap::Kind { index })
                }
                _ => None,
            }
        })
}

fn rule_gaps(rule: &Rule, request: &Request) -> Option<Vec<RuleGap>> {
    let Request::Resource {
        verb,
        group,
        resource,
        subresource,
        name,
        ..
    } = request
    else {
        return None; // non-resource URLs: the explanation's nearest rules say enough
    };
    if rule.resources.is_empty() {
        return None;
    }
    let mut gaps = Vec::new();
    if !verb_matches(rule, verb) {
        gaps.push(RuleGap::Verb(verb.clone()));
    }
    if !group_matches(rule, group) {
        gaps.push(RuleGap::Group {
            asked: group.clone(),
        });
    }
    if !resource_matches(rule, resource, subresource) {
        let asked = if subresource.is_empty() {
            resource.clone()
        } else {
            format!("{resource}/{subresource}")
        };
        // An element to correct (a singular, a typo); a subresource the rule lacks is
        // added beside the resource, which stays.
        let near = rule.resources.iter().position(|r| {
            r != resource && (edit_distance(r, &asked) <= 2 || format!("{r}s") == asked)
        });
        gaps.push(RuleGap::Resource { asked, near });
    }
    if !name_matches(rule, name) {
        gaps.push(RuleGap::Names {
            asked: name.clone(),
        });
    }
    Some(gaps)
}

fn role_gap(policy: &Policy, binding: &Binding, request: &Request) -> Option<RoleGap> {
    let rules = match policy.rules_of(binding) {
        Ok(rules) => rules,
        Err(_) => {
            let other_kind = match binding.role_kind.as_str() {
                "Role" => policy.cluster_roles.contains_key(&binding.role_name),
                _ => policy
                    .roles
                    .contains_key(&(binding.namespace.clone(), binding.role_name.clone())),
            };
            let names: Vec<&String> = if binding.role_kind == "Role" {
                policy
                    .roles
                    .keys()
                    .filter(|(ns, _)| *ns == binding.namespace)
                    .map(|(_, n)| n)
                    .collect()
            } else {
                policy.cluster_roles.keys().collect()
            };
            let nearby = names
                .into_iter()
                .filter(|n| edit_distance(n, &binding.role_name) <= 2)
                .min_by_key(|n| edit_distance(n, &binding.role_name))
                .cloned();
            return Some(RoleGap::Missing { other_kind, nearby });
        }
    };
    rules
        .iter()
        .enumerate()
        .filter_map(|(index, rule)| rule_gaps(rule, request).map(|gaps| (index, rule, gaps)))
        .min_by_key(|(_, _, gaps)| gaps.len())
        .map(|(index, rule, gaps)| {
            if gaps.is_empty() {
                RoleGap::None
            } else {
                RoleGap::Rule {
                    index,
                    rule: rule.clone(),
                    gaps,
                }
            }
        })
}

/// The cluster's own bindings are never what a person meant.
fn is_bootstrap(binding: &Binding) -> bool {
    binding.name.starts_with("system:")
        || binding.name == "cluster-admin"
        || binding.name.starts_with("kubeadm:")
}

/// What to change so that `user` may make `request`: most likely first.
pub fn diagnose(
    policy: &Policy,
    user: &User,
    request: &Request,
    pod: Option<&PodFacts>,
) -> Vec<Diagnosis> {
    if user.name == "system:anonymous"
        && let Some(facts) = pod
        && let Some(off) = &facts.automount_off
    {
        return vec![automount(facts, off)];
    }
    let namespace = request.namespace();
    let mut all: Vec<&Binding> = policy.cluster_bindings.bindings.iter().collect();
    all.extend(
        policy
            .role_bindings
            .values()
            .flat_map(|set| set.bindings.iter()),
    );
    let mut candidates: Vec<Candidate> = all
        .into_iter()
        .filter(|b| !is_bootstrap(b))
        .filter_map(|binding| {
            Some(Candidate {
                binding,
                subject: subject_gap(binding, user)?,
                out_of_scope: !binding.is_cluster_binding() && binding.namespace != namespace,
                role: role_gap(policy, binding, request)?,
            })
        })
        .collect();
    // Fewest differences first; among equals, one that names the requester, is in the
    // request's namespace and whose role exists.
    candidates.sort_by_key(|c| {
        (
            c.distance(),
            c.subject != SubjectGap::None,
            c.out_of_scope,
            matches!(c.role, RoleGap::Missing { .. }),
        )
    });
    let Some(best) = candidates.first() else {
        return vec![nothing_close(user, request)];
    };
    if best.distance() == 0 {
        return Vec::new();
    }
    explain(best, user, request, pod)
}

/// No binding comes near: nothing to correct, something to create.
fn nothing_close(user: &User, request: &Request) -> Diagnosis {
    let (role, binding, namespace) = match request.namespace() {
        "" => ("ClusterRole", "ClusterRoleBinding", String::new()),
        namespace => ("Role", "RoleBinding", format!(" in {namespace}")),
    };
    Diagnosis {
        object: format!("no {binding}{namespace}"),
        field: String::new(),
        message: format!(
            "nothing grants {} {}: no binding names it or an account like it; create a {role} with that rule and a {binding} that names it",
            user.name,
            super::request_text(request),
        ),
        patch: None,
    }
}

fn automount(facts: &PodFacts, off: &AutomountOff) -> Diagnosis {
    let pod = format!("Pod {}/{}", facts.namespace, facts.name);
    match off {
        AutomountOff::Pod => Diagnosis {
            object: pod.clone(),
            field: "spec.automountServiceAccountToken".into(),
            message: format!(
                "{pod} mounts no token: its spec sets automountServiceAccountToken: false, so its requests carry none and are anonymous (system:anonymous); remove that field (a pod cannot be changed: delete and recreate it)"
            ),
            patch: None,
        },
        AutomountOff::ServiceAccount(account) => Diagnosis {
            object: format!("ServiceAccount {}/{account}", facts.namespace),
            field: "automountServiceAccountToken".into(),
            message: format!(
                "{pod} mounts no token: its ServiceAccount {account} sets automountServiceAccountToken: false and the pod does not override it, so its requests are anonymous (system:anonymous); set it true (or set it true in the pod's spec), then recreate the pod"
            ),
            patch: Some(format!(
                "kubectl patch serviceaccount {account} -n {} -p '{{\"automountServiceAccountToken\":true}}'",
                facts.namespace
            )),
        },
        AutomountOff::MadeWithout => Diagnosis {
            object: pod.clone(),
            field: "spec.volumes".into(),
            message: format!(
                "{pod} mounts no token, although neither its spec nor its ServiceAccount {} turns automount off now: it was made while one did, and a pod's volumes are fixed when it is made, so its requests are still anonymous (system:anonymous); {}",
                facts.account(),
                match &facts.owner {
                    Some(owner) => format!(
                        "restart {} {} so that new pods get the token",
                        owner.kind, owner.name
                    ),
                    None => "delete the pod and create it again".into(),
                }
            ),
            patch: facts.owner.as_ref().map(|owner| {
                format!(
                    "kubectl rollout restart {}/{} -n {}",
                    owner.kind.to_lowercase(),
                    owner.name,
                    facts.namespace
                )
            }),
        },
    }
}

/// `kubectl patch <resource> <name> [-n ns] --type json -p '<ops>'`.
fn json_patch(binding_or_role: &str, ops: serde_json::Value) -> String {
    format!("kubectl patch {binding_or_role} --type json -p '{ops}'")
}

/// How kubectl names a binding: "rolebinding read-pods -n default".
fn kubectl_name(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{} {name}", kind.to_lowercase())
    } else {
        format!("{} {name} -n {namespace}", kind.to_lowercase())
    }
}

fn explain(
    c: &Candidate,
    user: &User,
    request: &Request,
    pod: Option<&PodFacts>,
) -> Vec<Diagnosis> {
    let b = c.binding;
    let binding = b.describe();
    let binding_kind = if b.is_cluster_binding() {
        "ClusterRoleBinding"
    } else {
        "RoleBinding"
    };
    let binding_cmd = kubectl_name(binding_kind, &b.namespace, &b.name);
    let mut out = Vec::new();
    let (user_namespace, user_account) = service_account(&user.name).unwrap_or(("", ""));
    match &c.subject {
        SubjectGap::None => {}
        SubjectGap::Namespace { index, bound } => out.push(Diagnosis {
            object: binding.clone(),
            field: format!("subjects[{index}].namespace"),
            message: format!(
                "{binding} names ServiceAccount {bound}/{user_account}, but the request comes from {user_namespace}/{user_account}: set subjects[{index}].namespace to {user_namespace}"
            ),
            patch: Some(json_patch(
                &binding_cmd,
                serde_json::json!([{"op": "replace", "path": format!("/subjects/{index}/namespace"), "value": user_namespace}]),
            )),
        }),
        SubjectGap::Name { index, bound } => {
            // A pod that runs as another account than the bound one is what is wrong:
            // binding the account it runs as (often `default`) would grant every pod
            // that names none.
            match pod.and_then(|facts| pod_runs_as_another(facts, bound, &binding)) {
                Some(diagnosis) => out.push(diagnosis),
                None => out.push(Diagnosis {
                    object: binding.clone(),
                    field: format!("subjects[{index}].name"),
                    message: format!(
                        "{binding} grants this to ServiceAccount {user_namespace}/{bound}, but the request comes from ServiceAccount {user_namespace}/{user_account}: set subjects[{index}].name to {user_account}"
                    ),
                    patch: Some(json_patch(
                        &binding_cmd,
                        serde_json::json!([{"op": "replace", "path": format!("/subjects/{index}/name"), "value": user_account}]),
                    )),
                }),
            }
        }
        SubjectGap::Kind { index } => out.push(Diagnosis {
            object: binding.clone(),
            field: format!("subjects[{index}].kind"),
            message: format!(
                "{binding} names User \"{}\"; a ServiceAccount is a subject of kind ServiceAccount with a namespace (its user name is {}): set subjects[{index}] to kind ServiceAccount, name {user_account}, namespace {user_namespace}",
                b.subjects[*index].name, user.name
            ),
            patch: Some(json_patch(
                &binding_cmd,
                serde_json::json!([{"op": "replace", "path": format!("/subjects/{index}"), "value": {"kind": "ServiceAccount", "name": user_account, "namespace": user_namespace}}]),
            )),
        }),
    }
    if c.out_of_scope {
        out.push(Diagnosis {
            object: binding.clone(),
            field: "metadata.namespace".into(),
            message: format!(
                "{binding} and its {} are in namespace {}, but the request is in {}: a RoleBinding grants only in its own namespace; create both in {} (a namespace cannot be changed: apply them again with metadata.namespace: {})",
                b.describe_role(),
                b.namespace,
                if request.namespace().is_empty() { "the cluster scope" } else { request.namespace() },
                request.namespace(),
                request.namespace()
            ),
            patch: None,
        });
    }
    match &c.role {
        RoleGap::None => {}
        RoleGap::Missing { other_kind, nearby } => {
            let other = if b.role_kind == "Role" {
                "ClusterRole"
            } else {
                "Role"
            };
            let (field, message) = if *other_kind {
                (
                    "roleRef.kind",
                    format!(
                        "{binding} refers to {} {}, which does not exist; {other} {} does: its roleRef.kind must be {other} (roleRef cannot be changed: delete the binding and create it again)",
                        b.role_kind, b.role_name, b.role_name
                    ),
                )
            } else if let Some(nearby) = nearby {
                (
                    "roleRef.name",
                    format!(
                        "{binding} refers to {} {}, which does not exist; {} {nearby} does: its roleRef.name must be {nearby} (roleRef cannot be changed: delete the binding and create it again)",
                        b.role_kind, b.role_name, b.role_kind
                    ),
                )
            } else {
                (
                    "roleRef.name",
                    format!(
                        "{binding} refers to {} {}, which does not exist: create it, or bind an existing role",
                        b.role_kind, b.role_name
                    ),
                )
            };
            out.push(Diagnosis {
                object: binding.clone(),
                field: field.into(),
                message,
                patch: None,
            });
        }
        RoleGap::Rule { index, rule, gaps } => {
            out.push(rule_diagnosis(b, *index, rule, gaps, request))
        }
    }
    out
}

/// The pod runs as another ServiceAccount than the one bound.
fn pod_runs_as_another(facts: &PodFacts, bound: &str, binding: &str) -> Option<Diagnosis> {
    let pod = format!("Pod {}/{}", facts.namespace, facts.name);
    let why = match &facts.service_account {
        None => "spec.serviceAccountName is not set, so it runs as default".to_string(),
        Some(account) => format!("spec.serviceAccountName is {account}"),
    };
    match &facts.owner {
        Some(owner) if owner.template_service_account.as_deref() == Some(bound) => {
            Some(Diagnosis {
                object: pod,
                field: "spec.serviceAccountName".into(),
                message: format!(
                    "{} {}/{} now names ServiceAccount {bound}, but this pod is from before that change ({why}): wait until the rollout replaces it (kubectl rollout status {}/{} -n {}), or restart it (kubectl rollout restart)",
                    owner.kind,
                    facts.namespace,
                    owner.name,
                    owner.kind.to_lowercase(),
                    owner.name,
                    facts.namespace
                ),
                patch: Some(format!(
                    "kubectl rollout restart {}/{} -n {}",
                    owner.kind.to_lowercase(),
                    owner.name,
                    facts.namespace
                )),
            })
        }
        Some(owner) => Some(Diagnosis {
            object: format!("{} {}/{}", owner.kind, facts.namespace, owner.name),
            field: "spec.template.spec.serviceAccountName".into(),
            message: format!(
                "its pod {}/{} runs as ServiceAccount {} ({why}), but {binding} grants this to ServiceAccount {bound}: set the template's serviceAccountName to {bound} (its pods are then replaced)",
                facts.namespace,
                facts.name,
                facts.account()
            ),
            patch: Some(format!(
                "kubectl patch {} {} -n {} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"serviceAccountName\":\"{bound}\"}}}}}}}}'",
                owner.kind.to_lowercase(),
                owner.name,
                facts.namespace
            )),
        }),
        None => Some(Diagnosis {
            object: pod.clone(),
            field: "spec.serviceAccountName".into(),
            message: format!(
                "{pod} runs as ServiceAccount {} ({why}), but {binding} grants this to ServiceAccount {bound}: run the pod with serviceAccountName: {bound} (a pod's ServiceAccount cannot change: delete and recreate it)",
                facts.account()
            ),
            patch: None,
        }),
    }
}

fn rule_diagnosis(
    b: &Binding,
    index: usize,
    rule: &Rule,
    gaps: &[RuleGap],
    request: &Request,
) -> Diagnosis {
    let role = b.describe_role();
    let role_cmd = if b.role_kind == "Role" {
        kubectl_name("Role", &b.namespace, &b.role_name)
    } else {
        kubectl_name("ClusterRole", "", &b.role_name)
    };
    let what = super::explain::rule_text(rule);
    let asked = super::explain::request_text(request);
    let one = |field: String, message: String, op: serde_json::Value| Diagnosis {
        object: role.clone(),
        field,
        message,
        patch: Some(json_patch(&role_cmd, serde_json::json!([op]))),
    };
    if let [gap] = gaps {
        return match gap {
            RuleGap::Verb(verb) => one(
                format!("rules[{index}].verbs"),
                format!(
                    "{role} rule #{index} ({what}) does not allow {verb}, which {asked} needs: add {verb} to rules[{index}].verbs"
                ),
                serde_json::json!({"op": "add", "path": format!("/rules/{index}/verbs/-"), "value": verb}),
            ),
            RuleGap::Resource {
                asked: resource,
                near: Some(near),
            } => one(
                format!("rules[{index}].resources[{near}]"),
                format!(
                    "{role} rule #{index} names resource {}, but the request is for {resource}: change rules[{index}].resources[{near}] to {resource}",
                    rule.resources[*near]
                ),
                serde_json::json!({"op": "replace", "path": format!("/rules/{index}/resources/{near}"), "value": resource}),
            ),
            RuleGap::Resource {
                asked: resource,
                near: None,
            } => one(
                format!("rules[{index}].resources"),
                format!(
                    "{role} rule #{index} ({what}) does not name resource {resource}: add it to rules[{index}].resources"
                ),
                serde_json::json!({"op": "add", "path": format!("/rules/{index}/resources/-"), "value": resource}),
            ),
            RuleGap::Group { asked: group } => {
                let shown = if group.is_empty() {
                    "\"\" (core)".to_string()
                } else {
                    group.clone()
                };
                let current: Vec<String> = rule
                    .api_groups
                    .iter()
                    .map(|g| {
                        if g.is_empty() {
                            "\"\" (core)".into()
                        } else {
                            g.clone()
                        }
                    })
                    .collect();
                let op = if rule.api_groups.len() == 1 {
                    serde_json::json!({"op": "replace", "path": format!("/rules/{index}/apiGroups/0"), "value": group})
                } else {
                    serde_json::json!({"op": "add", "path": format!("/rules/{index}/apiGroups/-"), "value": group})
                };
                one(
                    format!("rules[{index}].apiGroups"),
                    format!(
                        "{role} rule #{index} allows only API group {}; {asked} needs {shown}: set rules[{index}].apiGroups to [{shown}]",
                        current.join(", ")
                    ),
                    op,
                )
            }
            RuleGap::Names { asked: name } if name.is_empty() => one(
                format!("rules[{index}].resourceNames"),
                format!(
                    "{role} rule #{index} is limited to resourceNames {}, but {asked} names no object (a list, watch or create cannot be limited by name): remove rules[{index}].resourceNames, or allow {} in a rule without them",
                    rule.resource_names.join(", "),
                    request.verb()
                ),
                serde_json::json!({"op": "remove", "path": format!("/rules/{index}/resourceNames")}),
            ),
            RuleGap::Names { asked: name } => one(
                format!("rules[{index}].resourceNames"),
                format!(
                    "{role} rule #{index} is limited to resourceNames {}, not {name}: add {name} to rules[{index}].resourceNames",
                    rule.resource_names.join(", ")
                ),
                serde_json::json!({"op": "add", "path": format!("/rules/{index}/resourceNames/-"), "value": name}),
            ),
        };
    }
    let parts: Vec<String> = gaps
        .iter()
        .map(|gap| match gap {
            RuleGap::Verb(verb) => format!("verbs lack {verb}"),
            RuleGap::Resource { asked, .. } => format!("resources lack {asked}"),
            RuleGap::Group { asked } => format!(
                "apiGroups lack {}",
                if asked.is_empty() {
                    "\"\" (core)"
                } else {
                    asked
                }
            ),
            RuleGap::Names { .. } => "resourceNames limit it".to_string(),
        })
        .collect();
    Diagnosis {
        object: role.clone(),
        field: format!("rules[{index}]"),
        message: format!(
            "{role} rule #{index} ({what}) is the nearest to {asked}, but its {}",
            parts.join(", its ")
        ),
        patch: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Rule {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Rule {
            verbs: strings(verbs),
            api_groups: strings(groups),
            resources: strings(resources),
            resource_names: strings(names),
            non_resource_urls: Vec::new(),
        }
    }

    fn binding(
        namespace: &str,
        role_kind: &str,
        role: &str,
        subject: (SubjectKind, &str, &str),
    ) -> Binding {
        Binding {
            name: "read-pods".into(),
            namespace: namespace.into(),
            role_kind: role_kind.into(),
            role_name: role.into(),
            subjects: vec![BindingSubject {
                kind: subject.0,
                name: subject.1.into(),
                namespace: subject.2.into(),
            }],
        }
    }

    /// A Role pod-reader in `namespace` with `rule`, bound by RoleBinding read-pods.
    fn policy(namespace: &str, rule: Rule, subject: (SubjectKind, &str, &str)) -> Policy {
        let mut policy = Policy::default();
        policy.add_role(namespace, "pod-reader", vec![rule]);
        policy.add_binding(binding(namespace, "Role", "pod-reader", subject));
        policy
    }

    fn app() -> User {
        User::authenticated_as("system:serviceaccount:team-a:app", &[])
    }

    fn list(resource_path: &str) -> Request {
        Request::from_http("GET", resource_path, "")
    }

    fn first(policy: &Policy, user: &User, request: &Request, pod: Option<&PodFacts>) -> Diagnosis {
        diagnose(policy, user, request, pod)
            .into_iter()
            .next()
            .expect("a diagnosis")
    }

    const PODS: &str = "/api/v1/namespaces/team-a/pods";

    #[test]
    fn a_subject_in_the_wrong_namespace() {
        let p = policy(
            "team-a",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "app", "default"),
        );
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(d.object, "RoleBinding team-a/read-pods");
        assert_eq!(d.field, "subjects[0].namespace");
        assert_eq!(
            d.patch.as_deref(),
            Some(
                r#"kubectl patch rolebinding read-pods -n team-a --type json -p '[{"op":"replace","path":"/subjects/0/namespace","value":"team-a"}]'"#
            )
        );
    }

    #[test]
    fn the_wrong_service_account_name() {
        let p = policy(
            "team-a",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "ap", "team-a"),
        );
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(
            (d.object.as_str(), d.field.as_str()),
            ("RoleBinding team-a/read-pods", "subjects[0].name")
        );
        assert!(d.patch.unwrap().contains(r#""value":"app""#));
    }

    #[test]
    fn a_user_where_a_service_account_was_meant() {
        let p = policy(
            "team-a",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::User, "app", ""),
        );
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(d.field, "subjects[0].kind");
        assert!(d.message.contains("names User \"app\""), "{}", d.message);
        assert!(
            d.patch
                .unwrap()
                .contains(r#""value":{"kind":"ServiceAccount","name":"app","namespace":"team-a"}"#)
        );
    }

    #[test]
    fn a_role_and_binding_in_another_namespace() {
        let p = policy(
            "default",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "app", "team-a"),
        );
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(
            (d.object.as_str(), d.field.as_str()),
            ("RoleBinding default/read-pods", "metadata.namespace")
        );
        assert!(
            d.message
                .contains("are in namespace default, but the request is in team-a"),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_role_reference_to_what_does_not_exist() {
        // A Role was meant, but a ClusterRole of that name exists.
        let mut p = Policy::default();
        p.add_cluster_role("pod-reader", vec![rule(&["list"], &[""], &["pods"], &[])]);
        p.add_binding(binding(
            "team-a",
            "Role",
            "pod-reader",
            (SubjectKind::ServiceAccount, "app", "team-a"),
        ));
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(d.field, "roleRef.kind");
        assert!(
            d.message.contains("ClusterRole pod-reader does"),
            "{}",
            d.message
        );
        // A typo in the name.
        let mut p = policy(
            "team-a",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "x", "team-a"),
        );
        p.add_binding(Binding {
            name: "typo".into(),
            ..binding(
                "team-a",
                "Role",
                "pod-raeder",
                (SubjectKind::ServiceAccount, "app", "team-a"),
            )
        });
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(
            (d.object.as_str(), d.field.as_str()),
            ("RoleBinding team-a/typo", "roleRef.name")
        );
        assert!(d.message.contains("Role pod-reader does"), "{}", d.message);
    }

    #[test]
    fn a_missing_verb() {
        let p = policy(
            "team-a",
            rule(&["get"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "app", "team-a"),
        );
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(
            (d.object.as_str(), d.field.as_str()),
            ("Role team-a/pod-reader", "rules[0].verbs")
        );
        assert_eq!(
            d.patch.as_deref(),
            Some(
                r#"kubectl patch role pod-reader -n team-a --type json -p '[{"op":"add","path":"/rules/0/verbs/-","value":"list"}]'"#
            )
        );
    }

    #[test]
    fn the_wrong_resource_a_singular_a_typo_a_missing_subresource() {
        for (written, field, op) in [
            ("pod", "rules[0].resources[0]", "replace"),
            ("posd", "rules[0].resources[0]", "replace"),
        ] {
            let p = policy(
                "team-a",
                rule(&["list"], &[""], &[written], &[]),
                (SubjectKind::ServiceAccount, "app", "team-a"),
            );
            let d = first(&p, &app(), &list(PODS), None);
            assert_eq!(d.field, field, "{written}");
            assert!(d.patch.unwrap().contains(&format!(r#""op":"{op}""#)));
        }
        let p = policy(
            "team-a",
            rule(&["get"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "app", "team-a"),
        );
        let d = first(
            &p,
            &app(),
            &list("/api/v1/namespaces/team-a/pods/web/log"),
            None,
        );
        assert_eq!(d.field, "rules[0].resources");
        assert!(
            d.patch
                .unwrap()
                .contains(r#""op":"add","path":"/rules/0/resources/-","value":"pods/log""#)
        );
    }

    #[test]
    fn the_wrong_api_group() {
        let p = policy(
            "team-a",
            rule(&["list"], &[""], &["deployments"], &[]),
            (SubjectKind::ServiceAccount, "app", "team-a"),
        );
        let d = first(
            &p,
            &app(),
            &list("/apis/apps/v1/namespaces/team-a/deployments"),
            None,
        );
        assert_eq!(d.field, "rules[0].apiGroups");
        assert!(
            d.message.contains("allows only API group \"\" (core); list deployments (API group apps) in namespace team-a needs apps"),
            "{}",
            d.message
        );
        assert!(
            d.patch
                .unwrap()
                .contains(r#""op":"replace","path":"/rules/0/apiGroups/0","value":"apps""#)
        );
    }

    #[test]
    fn resource_names_on_a_list() {
        let p = policy(
            "team-a",
            rule(&["get", "list"], &[""], &["pods"], &["web"]),
            (SubjectKind::ServiceAccount, "app", "team-a"),
        );
        let d = first(&p, &app(), &list(PODS), None);
        assert_eq!(d.field, "rules[0].resourceNames");
        assert!(
            d.message.contains("cannot be limited by name"),
            "{}",
            d.message
        );
        assert!(
            d.patch
                .unwrap()
                .contains(r#""op":"remove","path":"/rules/0/resourceNames""#)
        );
    }

    #[test]
    fn the_pod_does_not_run_as_the_bound_account() {
        let p = policy(
            "team-a",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "reader", "team-a"),
        );
        let user = User::authenticated_as("system:serviceaccount:team-a:default", &[]);
        let facts = PodFacts {
            namespace: "team-a".into(),
            name: "mydemo".into(),
            ..Default::default()
        };
        let all = diagnose(&p, &user, &list(PODS), Some(&facts));
        assert_eq!(
            (all[0].object.as_str(), all[0].field.as_str()),
            ("Pod team-a/mydemo", "spec.serviceAccountName")
        );
        assert!(
            all[0]
                .message
                .contains("spec.serviceAccountName is not set, so it runs as default"),
            "{}",
            all[0].message
        );
        assert_eq!(
            all.len(),
            1,
            "binding the account it runs as is no fix: {all:?}"
        );
        // A Deployment whose template names another account: the template is the field.
        let owned = PodFacts {
            owner: Some(Owner {
                kind: "Deployment".into(),
                name: "web".into(),
                template_service_account: None,
            }),
            ..facts.clone()
        };
        let d = first(&p, &user, &list(PODS), Some(&owned));
        assert_eq!(
            (d.object.as_str(), d.field.as_str()),
            (
                "Deployment team-a/web",
                "spec.template.spec.serviceAccountName"
            )
        );
        assert!(
            d.patch
                .unwrap()
                .starts_with("kubectl patch deployment web -n team-a -p")
        );
        // ... whose template was fixed, but whose pod is still an old one.
        let stale = PodFacts {
            owner: Some(Owner {
                kind: "Deployment".into(),
                name: "web".into(),
                template_service_account: Some("reader".into()),
            }),
            ..facts
        };
        let d = first(&p, &user, &list(PODS), Some(&stale));
        assert!(
            d.message.contains("this pod is from before that change"),
            "{}",
            d.message
        );
        assert_eq!(
            d.patch.as_deref(),
            Some("kubectl rollout restart deployment/web -n team-a")
        );
    }

    #[test]
    fn token_automount_disabled() {
        let p = policy(
            "team-a",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "app", "team-a"),
        );
        let anonymous = User::authenticated_as("system:anonymous", &[]);
        let facts = PodFacts {
            namespace: "team-a".into(),
            name: "quiet".into(),
            service_account: Some("app".into()),
            automount_off: Some(AutomountOff::ServiceAccount("app".into())),
            owner: None,
        };
        let d = first(&p, &anonymous, &list(PODS), Some(&facts));
        assert_eq!(
            (d.object.as_str(), d.field.as_str()),
            ("ServiceAccount team-a/app", "automountServiceAccountToken")
        );
        let on_pod = PodFacts {
            automount_off: Some(AutomountOff::Pod),
            ..facts.clone()
        };
        assert_eq!(
            first(&p, &anonymous, &list(PODS), Some(&on_pod)).field,
            "spec.automountServiceAccountToken"
        );
        // The ServiceAccount was fixed, the pod was not made again: the pod is the field.
        let stale = PodFacts {
            automount_off: Some(AutomountOff::MadeWithout),
            ..facts
        };
        let d = first(&p, &anonymous, &list(PODS), Some(&stale));
        assert_eq!(
            (d.object.as_str(), d.field.as_str()),
            ("Pod team-a/quiet", "spec.volumes")
        );
        assert!(
            d.message.contains("delete the pod and create it again"),
            "{}",
            d.message
        );
        assert_eq!(d.patch, None);
    }

    #[test]
    fn when_nothing_comes_close_it_says_nothing_grants_it_and_to_create_a_binding() {
        let p = policy(
            "team-a",
            rule(&["list"], &[""], &["pods"], &[]),
            (SubjectKind::ServiceAccount, "app", "team-a"),
        );
        let stranger = User::authenticated_as("alice", &[]);
        let found = diagnose(&p, &stranger, &list(PODS), None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].object, "no RoleBinding in team-a");
        assert!(
            found[0].message.contains("nothing grants alice list pods"),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].patch, None);
        // Allowed: nothing to fix.
        assert!(diagnose(&p, &app(), &list(PODS), None).is_empty());
    }
}
