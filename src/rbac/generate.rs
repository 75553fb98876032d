//! Seeded random RBAC policies and requests, for checking the evaluator against
//! kube-apiserver: small name pools so that rules, subjects and requests often meet;
//! wildcards, subresources, resourceNames, non-resource URLs, ClusterRoles bound by
//! RoleBindings, and bindings to roles that do not exist.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::request::{Request, User};

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// 1 to `max` distinct items.
    pub fn some<T: Clone + PartialEq>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let count = 1 + self.below(max);
        let mut chosen = Vec::new();
        for _ in 0..count {
            let item = self.pick(items).clone();
            if !chosen.contains(&item) {
                chosen.push(item);
            }
        }
        chosen
    }
}

const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "use",
];
const GROUPS: &[&str] = &["", "apps", "batch", "rbac.authorization.k8s.io"];
const RESOURCES: &[&str] = &[
    "pods",
    "secrets",
    "configmaps",
    "deployments",
    "jobs",
    "roles",
    "pods/log",
    "pods/exec",
    "deployments/scale",
    "serviceaccounts/token",
    "*/status",
    "*/scale",
];
const NAMES: &[&str] = &["n1", "n2", "n3"];
const URLS: &[&str] = &[
    "/healthz",
    "/healthz/*",
    "/metrics",
    "/custom/*",
    "/api",
    "/logs/*",
];
const PATHS: &[&str] = &[
    "/healthz",
    "/healthz/etcd",
    "/metrics",
    "/custom/x/y",
    "/api",
    "/apis",
    "/version",
    "/logs/",
    "/other",
];
const USERS: &[&str] = &["alice", "bob", "carol"];
const TEAMS: &[&str] = &["team-x", "team-y"];

/// One generated policy: its objects, all named with `prefix`, in two namespaces.
pub struct GeneratedPolicy {
    pub prefix: String,
    pub namespaces: [String; 2],
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_bindings: Vec<ClusterRoleBinding>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn resource_rule(rng: &mut Rng) -> PolicyRule {
    let mut verbs = strings(&rng.some(VERBS, 3));
    if rng.chance(10) {
        verbs = vec!["*".into()];
    }
    let mut groups = strings(&rng.some(GROUPS, 2));
    if rng.chance(10) {
        groups = vec!["*".into()];
    }
    let mut resources = strings(&rng.some(RESOURCES, 3));
    if rng.chance(8) {
        resources = vec!["*".into()];
    }
    let names = rng.chance(20).then(|| strings(&rng.some(NAMES, 2)));
    PolicyRule {
        verbs,
        api_groups: Some(groups),
        resources: Some(resources),
        resource_names: names,
        non_resource_urls: None,
    }
}

fn url_rule(rng: &mut Rng) -> PolicyRule {
    let mut urls = strings(&rng.some(URLS, 2));
    if rng.chance(10) {
        urls = vec!["*".into()];
    }
    let verbs = if rng.chance(15) {
        vec!["*".to_string()]
    } else {
        strings(&rng.some(&["get", "post", "put"], 2))
    };
    PolicyRule {
        verbs,
        non_resource_urls: Some(urls),
        ..Default::default()
    }
}

fn subject(rng: &mut Rng, namespaces: &[String; 2], in_role_binding: bool) -> Subject {
    let rbac = Some("rbac.authorization.k8s.io".to_string());
    match rng.below(10) {
        0..=2 => Subject {
            kind: "User".into(),
            name: rng.pick(USERS).to_string(),
            api_group: rbac,
            namespace: None,
        },
        3..=4 => {
            let groups = [
                TEAMS[0].to_string(),
                TEAMS[1].to_string(),
                "system:authenticated".into(),
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", namespaces[0]),
            ];
            Subject {
                kind: "Group".into(),
                name: rng.pick(&groups).clone(),
                api_group: rbac,
                namespace: None,
            }
        }
        _ => {
            // A RoleBinding may leave a ServiceAccount's namespace out (it means its own).
            let namespace = if in_role_binding && rng.chance(40) {
                None
            } else {
                Some(rng.pick(namespaces).clone())
            };
            Subject {
                kind: "ServiceAccount".into(),
                name: rng.pick(&["sa1", "sa2"]).to_string(),
                api_group: Some(String::new()),
                namespace,
            }
        }
    }
}

pub fn policy(rng: &mut Rng, prefix: &str, namespaces: [String; 2]) -> GeneratedPolicy {
    let meta = |name: String, namespace: Option<&String>| ObjectMeta {
        name: Some(name),
        namespace: namespace.cloned(),
        labels: Some([("kubelab.dev/rbac-check".to_string(), prefix.to_string())].into()),
        ..Default::default()
    };
    let mut roles = Vec::new();
    for (n, namespace) in namespaces.iter().enumerate() {
        for i in 0..3 {
            let rules = (0..1 + rng.below(3)).map(|_| resource_rule(rng)).collect();
            roles.push(Role {
                metadata: meta(format!("{prefix}-r{n}{i}"), Some(namespace)),
                rules: Some(rules),
            });
        }
    }
    let mut cluster_roles = Vec::new();
    for i in 0..4 {
        let rules = (0..1 + rng.below(3))
            .map(|_| {
                if rng.chance(30) {
                    url_rule(rng)
                } else {
                    resource_rule(rng)
                }
            })
            .collect();
        cluster_roles.push(ClusterRole {
            metadata: meta(format!("{prefix}-c{i}"), None),
            rules: Some(rules),
            aggregation_rule: None,
        });
    }
    let role_ref = |kind: &str, name: String| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name,
    };
    let mut role_bindings = Vec::new();
    for (n, namespace) in namespaces.iter().enumerate() {
        for i in 0..4 {
            let reference = match rng.below(10) {
                0..=4 => role_ref("Role", format!("{prefix}-r{n}{}", rng.below(3))),
                5..=7 => role_ref("ClusterRole", format!("{prefix}-c{}", rng.below(4))),
                8 => role_ref("Role", format!("{prefix}-missing-role")),
                _ => role_ref("ClusterRole", format!("{prefix}-missing-clusterrole")),
            };
            let subjects = (0..1 + rng.below(3))
                .map(|_| subject(rng, &namespaces, true))
                .collect();
            role_bindings.push(RoleBinding {
                metadata: meta(format!("{prefix}-rb{n}{i}"), Some(namespace)),
                role_ref: reference,
                subjects: Some(subjects),
            });
        }
    }
    let mut cluster_bindings = Vec::new();
    for i in 0..3 {
        let name = if rng.chance(12) {
            format!("{prefix}-missing-clusterrole")
        } else {
            format!("{prefix}-c{}", rng.below(4))
        };
        let subjects = (0..1 + rng.below(2))
            .map(|_| subject(rng, &namespaces, false))
            .collect();
        cluster_bindings.push(ClusterRoleBinding {
            metadata: meta(format!("{prefix}-crb{i}"), None),
            role_ref: role_ref("ClusterRole", name),
            subjects: Some(subjects),
        });
    }
    GeneratedPolicy {
        prefix: prefix.to_string(),
        namespaces,
        roles,
        cluster_roles,
        role_bindings,
        cluster_bindings,
    }
}

pub fn user(rng: &mut Rng, namespaces: &[String; 2]) -> User {
    match rng.below(20) {
        0 => User::authenticated_as("system:anonymous", &[]),
        1 => User {
            name: "root".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        },
        2..=9 => {
            let teams: Vec<String> = TEAMS
                .iter()
                .filter(|_| rng.chance(50))
                .map(|t| t.to_string())
                .collect();
            User::authenticated_as(rng.pick::<&str>(USERS), &teams)
        }
        _ => {
            let namespace = rng.pick(namespaces).clone();
            User::authenticated_as(
                &format!(
                    "system:serviceaccount:{namespace}:{}",
                    *rng.pick(&["sa1", "sa2"])
                ),
                &[],
            )
        }
    }
}

pub fn request(rng: &mut Rng, namespaces: &[String; 2]) -> Request {
    if rng.chance(20) {
        return Request::NonResource {
            verb: rng.pick(&["get", "post", "put"]).to_string(),
            path: rng.pick(PATHS).to_string(),
        };
    }
    let combined = *rng.pick(&[
        "pods",
        "secrets",
        "configmaps",
        "deployments",
        "jobs",
        "roles",
        "pods/log",
        "pods/exec",
        "deployments/scale",
        "deployments/status",
        "serviceaccounts/token",
        "nodes",
    ]);
    let (resource, subresource) = combined.split_once('/').unwrap_or((combined, ""));
    let group = match (resource, rng.chance(85)) {
        (_, false) => rng.pick(GROUPS).to_string(),
        ("deployments", true) => "apps".into(),
        ("jobs", true) => "batch".into(),
        ("roles", true) => "rbac.authorization.k8s.io".into(),
        _ => String::new(),
    };
    let verb = rng.pick(VERBS).to_string();
    let name = if rng.chance(50) {
        rng.pick(NAMES).to_string()
    } else {
        String::new()
    };
    let other = "kubelab-rbac-elsewhere".to_string();
    let namespace = match (resource, rng.below(10)) {
        ("nodes", _) | (_, 0) => String::new(),
        (_, 1) => other,
        (_, n) => namespaces[n % 2].clone(),
    };
    Request::Resource {
        verb,
        group,
        resource: resource.into(),
        subresource: subresource.into(),
        name,
        namespace,
    }
}

/// A case aimed at the policy: a subject some binding names, asking for what one of
/// the binding's rules allows, sometimes changed in one way, so that allows, near
/// misses and denials all occur. Otherwise a random user and request.
pub fn case(rng: &mut Rng, policy: &GeneratedPolicy) -> (User, Request) {
    let namespaces = &policy.namespaces;
    if rng.chance(40) {
        return (user(rng, namespaces), request(rng, namespaces));
    }
    let bindings: Vec<(Option<&String>, &RoleRef, &Vec<Subject>)> = policy
        .role_bindings
        .iter()
        .map(|b| {
            (
                b.metadata.namespace.as_ref(),
                &b.role_ref,
                b.subjects.as_ref().expect("generated with subjects"),
            )
        })
        .chain(policy.cluster_bindings.iter().map(|b| {
            (
                None,
                &b.role_ref,
                b.subjects.as_ref().expect("generated with subjects"),
            )
        }))
        .collect();
    let (namespace, role_ref, subjects) = *rng.pick(&bindings);
    let subject = rng.pick(subjects);
    let user = match subject.kind.as_str() {
        "User" => User::authenticated_as(&subject.name, &[]),
        "Group" if subject.name.starts_with("system:serviceaccounts") => {
            User::authenticated_as(&format!("system:serviceaccount:{}:sa1", namespaces[0]), &[])
        }
        "Group" => {
            User::authenticated_as(rng.pick::<&str>(USERS), std::slice::from_ref(&subject.name))
        }
        _ => {
            let sa_namespace = subject
                .namespace
                .clone()
                .or_else(|| namespace.cloned())
                .unwrap_or_else(|| namespaces[0].clone());
            User::authenticated_as(
                &format!("system:serviceaccount:{sa_namespace}:{}", subject.name),
                &[],
            )
        }
    };
    let rules: Vec<&PolicyRule> = match role_ref.kind.as_str() {
        "Role" => policy
            .roles
            .iter()
            .filter(|r| r.metadata.name.as_deref() == Some(&role_ref.name))
            .flat_map(|r| r.rules.iter().flatten())
            .collect(),
        _ => policy
            .cluster_roles
            .iter()
            .filter(|r| r.metadata.name.as_deref() == Some(&role_ref.name))
            .flat_map(|r| r.rules.iter().flatten())
            .collect(),
    };
    let Some(rule) = rules.get(rng.below(rules.len().max(1))).copied() else {
        return (user, request(rng, namespaces)); // a binding to a missing role
    };
    let concrete = |rng: &mut Rng, items: &[String], pool: &[&str]| -> String {
        let chosen = rng.pick(items).clone();
        if chosen == "*" {
            rng.pick(pool).to_string()
        } else {
            chosen
        }
    };
    let mut request = if let Some(urls) = &rule.non_resource_urls {
        let url = rng.pick(urls).clone();
        let path = match url.strip_suffix('*') {
            Some(prefix) if rng.chance(50) => format!("{prefix}sub"),
            Some(prefix) => prefix.to_string(),
            None => url,
        };
        Request::NonResource {
            verb: concrete(rng, &rule.verbs, &["get", "post", "put"]),
            path: if path.is_empty() { "/".into() } else { path },
        }
    } else {
        let combined = concrete(
            rng,
            rule.resources.as_ref().expect("resource rule"),
            &["pods", "secrets", "deployments/scale"],
        );
        let (resource, subresource) = match combined.split_once('/') {
            Some(("*", sub)) => (
                rng.pick(&["pods", "deployments"]).to_string(),
                sub.to_string(),
            ),
            Some((resource, sub)) => (resource.to_string(), sub.to_string()),
            None => (combined, String::new()),
        };
        let name = match &rule.resource_names {
            Some(names) => rng.pick(names).clone(),
            None if rng.chance(50) => rng.pick(NAMES).to_string(),
            None => String::new(),
        };
        let request_namespace = match namespace {
            Some(ns) => ns.clone(),
            None if rng.chance(30) => String::new(),
            None => rng.pick(namespaces).clone(),
        };
        Request::Resource {
            verb: concrete(rng, &rule.verbs, VERBS),
            group: concrete(
                rng,
                rule.api_groups.as_ref().expect("resource rule"),
                GROUPS,
            ),
            resource,
            subresource,
            name,
            namespace: request_namespace,
        }
    };
    // One change, a third of the time: a near miss, or still allowed by another rule.
    if rng.chance(33) {
        match &mut request {
            Request::Resource {
                verb,
                resource,
                name,
                namespace,
                ..
            } => match rng.below(4) {
                0 => *verb = rng.pick(VERBS).to_string(),
                1 => *resource = rng.pick(&["pods", "secrets", "jobs", "roles"]).to_string(),
                2 => *name = rng.pick(NAMES).to_string(),
                _ => {
                    *namespace = rng
                        .pick(&[namespaces[0].as_str(), namespaces[1].as_str(), ""])
                        .to_string()
                }
            },
            Request::NonResource { verb, path } => {
                if rng.chance(50) {
                    *verb = rng.pick(&["get", "post", "put", "delete"]).to_string();
                } else {
                    *path = rng.pick(PATHS).to_string();
                }
            }
        }
    }
    (user, request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_cases() {
        let namespaces = ["a".to_string(), "b".to_string()];
        let first: Vec<Request> = {
            let mut rng = Rng::new(7);
            (0..50).map(|_| request(&mut rng, &namespaces)).collect()
        };
        let again: Vec<Request> = {
            let mut rng = Rng::new(7);
            (0..50).map(|_| request(&mut rng, &namespaces)).collect()
        };
        assert_eq!(first, again);
        let other: Vec<Request> = {
            let mut rng = Rng::new(8);
            (0..50).map(|_| request(&mut rng, &namespaces)).collect()
        };
        assert_ne!(first, other);
    }

    #[test]
    fn policies_use_every_feature_the_check_must_cover() {
        let mut rng = Rng::new(1);
        let mut saw = std::collections::BTreeSet::new();
        for round in 0..20 {
            let p = policy(&mut rng, &format!("p{round}"), ["a".into(), "b".into()]);
            for rule in p.roles.iter().flat_map(|r| r.rules.iter().flatten()).chain(
                p.cluster_roles
                    .iter()
                    .flat_map(|r| r.rules.iter().flatten()),
            ) {
                if rule.verbs.contains(&"*".to_string()) {
                    saw.insert("verb *");
                }
                if rule.resources.iter().flatten().any(|r| r == "*") {
                    saw.insert("resource *");
                }
                if rule.resources.iter().flatten().any(|r| r.starts_with("*/")) {
                    saw.insert("*/sub");
                }
                if rule.resource_names.is_some() {
                    saw.insert("resourceNames");
                }
                if rule
                    .non_resource_urls
                    .iter()
                    .flatten()
                    .any(|u| u.ends_with('*'))
                {
                    saw.insert("url wildcard");
                }
            }
            if p.role_bindings
                .iter()
                .any(|b| b.role_ref.kind == "ClusterRole")
            {
                saw.insert("ClusterRole via RoleBinding");
            }
            if p.role_bindings
                .iter()
                .any(|b| b.role_ref.name.contains("missing"))
            {
                saw.insert("missing role");
            }
            if p.role_bindings
                .iter()
                .flat_map(|b| b.subjects.iter().flatten())
                .any(|s| s.kind == "ServiceAccount" && s.namespace.is_none())
            {
                saw.insert("SA without namespace");
            }
        }
        assert_eq!(saw.len(), 8, "{saw:?}");
    }
}
