//! Checks the evaluator against kube-apiserver: random policies are applied to a real
//! cluster, random requests are asked of it as SubjectAccessReviews, and every answer
//! (allowed or not, and the authorizer's reason) is compared with the evaluator's.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::Serialize;

use super::decide::{allowing_reasons, decide};
use super::generate::{self, Rng};
use super::policy::Policy;
use super::request::{Request, User};

pub const NAMESPACES: [&str; 2] = ["kubelab-rbac-a", "kubelab-rbac-b"];
const LABEL: &str = "kubelab.dev/rbac-check";

#[derive(Clone, Debug, Serialize)]
pub struct Disagreement {
    pub round: String,
    pub user: User,
    pub request: Request,
    pub engine_allowed: bool,
    pub engine_reasons: Vec<String>,
    pub apiserver_allowed: bool,
    pub apiserver_reason: String,
    /// The generated policy of the round, as YAML-ready JSON.
    pub policy: serde_json::Value,
}

#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub cases: usize,
    pub allowed: usize,
    pub disagreements: usize,
    /// Same decision, but the authorizer's reason differs.
    pub reason_mismatches: usize,
    pub first: Option<Disagreement>,
}

pub fn review(user: &User, request: &Request) -> SubjectAccessReview {
    let (resource_attributes, non_resource_attributes) = match request {
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            namespace,
        } => (
            Some(ResourceAttributes {
                verb: Some(verb.clone()),
                group: Some(group.clone()),
                resource: Some(resource.clone()),
                subresource: Some(subresource.clone()).filter(|s| !s.is_empty()),
                name: Some(name.clone()).filter(|s| !s.is_empty()),
                namespace: Some(namespace.clone()).filter(|s| !s.is_empty()),
                ..Default::default()
            }),
            None,
        ),
        Request::NonResource { verb, path } => (
            None,
            Some(NonResourceAttributes {
                verb: Some(verb.clone()),
                path: Some(path.clone()),
            }),
        ),
    };
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            groups: Some(user.groups.clone()),
            resource_attributes,
            non_resource_attributes,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Asks kube-apiserver: (allowed, reason).
pub async fn ask(
    client: &kube::Client,
    user: &User,
    request: &Request,
) -> Result<(bool, String), kube::Error> {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review(user, request))
        .await?;
    let status = answer.status.unwrap_or_default();
    Ok((status.allowed, status.reason.unwrap_or_default()))
}

fn rbac_reason_items(reason: &str) -> Vec<String> {
    let inner = reason.strip_prefix("RBAC: ").unwrap_or(reason);
    let inner = inner
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(inner);
    let mut items: Vec<String> = inner
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    items.sort();
    items
}

/// Sentinels, created last and deleted last: when the authorizer sees them, it has
/// seen everything created (or deleted) before them, informer by informer.
fn sentinels(prefix: &str) -> (Role, RoleBinding, ClusterRole, ClusterRoleBinding, User) {
    let user = User {
        name: format!("{prefix}-sentinel"),
        groups: vec![],
    };
    let meta = |name: &str, namespace: Option<&str>| ObjectMeta {
        name: Some(format!("{prefix}-{name}")),
        namespace: namespace.map(str::to_string),
        labels: Some([(LABEL.to_string(), prefix.to_string())].into()),
        ..Default::default()
    };
    let rule = |resource: &str| PolicyRule {
        verbs: vec!["get".into()],
        api_groups: Some(vec!["".into()]),
        resources: Some(vec![resource.into()]),
        ..Default::default()
    };
    let subject = Subject {
        kind: "User".into(),
        name: user.name.clone(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    };
    let role_ref = |kind: &str, name: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: format!("{prefix}-{name}"),
    };
    (
        Role {
            metadata: meta("sentinel", Some(NAMESPACES[0])),
            rules: Some(vec![rule("namespaced-sentinels")]),
        },
        RoleBinding {
            metadata: meta("sentinel", Some(NAMESPACES[0])),
            role_ref: role_ref("Role", "sentinel"),
            subjects: Some(vec![subject.clone()]),
        },
        ClusterRole {
            metadata: meta("sentinel", None),
            rules: Some(vec![rule("cluster-sentinels")]),
            aggregation_rule: None,
        },
        ClusterRoleBinding {
            metadata: meta("sentinel", None),
            role_ref: role_ref("ClusterRole", "sentinel"),
            subjects: Some(vec![subject]),
        },
        user,
    )
}

fn sentinel_requests() -> [Request; 2] {
    let ask = |resource: &str, namespace: &str| Request::Resource {
        verb: "get".into(),
        group: String::new(),
        resource: resource.into(),
        subresource: String::new(),
        name: String::new(),
        namespace: namespace.into(),
    };
    [
        ask("namespaced-sentinels", NAMESPACES[0]),
        ask("cluster-sentinels", ""),
    ]
}

/// Waits until the authorizer's answer for the sentinels is `allowed`.
async fn await_sentinels(
    client: &kube::Client,
    user: &User,
    allowed: bool,
) -> Result<(), kube::Error> {
    for _ in 0..600 {
        let mut all = true;
        for request in sentinel_requests() {
            all &= ask(client, user, &request).await?.0 == allowed;
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(kube::Error::Service(
        "the authorizer's caches did not catch up within 12 s".into(),
    ))
}

async fn create<K>(api: &Api<K>, object: &K) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), object).await.map(|_| ())
}

async fn apply_round(
    client: &kube::Client,
    policy: &generate::GeneratedPolicy,
) -> Result<User, kube::Error> {
    let roles = |ns: &str| Api::<Role>::namespaced(client.clone(), ns);
    let bindings = |ns: &str| Api::<RoleBinding>::namespaced(client.clone(), ns);
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    for role in &policy.roles {
        create(
            &roles(role.metadata.namespace.as_deref().unwrap_or_default()),
            role,
        )
        .await?;
    }
    for role in &policy.cluster_roles {
        create(&cluster_roles, role).await?;
    }
    for binding in &policy.role_bindings {
        create(
            &bindings(binding.metadata.namespace.as_deref().unwrap_or_default()),
            binding,
        )
        .await?;
    }
    for binding in &policy.cluster_bindings {
        create(&cluster_bindings, binding).await?;
    }
    let (role, role_binding, cluster_role, cluster_binding, user) = sentinels(&policy.prefix);
    create(&roles(NAMESPACES[0]), &role).await?;
    create(&cluster_roles, &cluster_role).await?;
    create(&bindings(NAMESPACES[0]), &role_binding).await?;
    create(&cluster_bindings, &cluster_binding).await?;
    await_sentinels(client, &user, true).await?;
    Ok(user)
}

async fn remove_round(
    client: &kube::Client,
    prefix: &str,
    sentinel: &User,
) -> Result<(), kube::Error> {
    let others = ListParams::default()
        .labels(&format!("{LABEL}={prefix}"))
        .fields(&format!("metadata.name!={prefix}-sentinel"));
    let params = DeleteParams::default();
    for ns in NAMESPACES {
        Api::<RoleBinding>::namespaced(client.clone(), ns)
            .delete_collection(&params, &others)
            .await?;
        Api::<Role>::namespaced(client.clone(), ns)
            .delete_collection(&params, &others)
            .await?;
    }
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete_collection(&params, &others)
        .await?;
    Api::<ClusterRole>::all(client.clone())
        .delete_collection(&params, &others)
        .await?;
    let name = format!("{prefix}-sentinel");
    Api::<RoleBinding>::namespaced(client.clone(), NAMESPACES[0])
        .delete(&name, &params)
        .await?;
    Api::<Role>::namespaced(client.clone(), NAMESPACES[0])
        .delete(&name, &params)
        .await?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&name, &params)
        .await?;
    Api::<ClusterRole>::all(client.clone())
        .delete(&name, &params)
        .await?;
    await_sentinels(client, sentinel, false).await
}

async fn ensure_namespaces(client: &kube::Client) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in NAMESPACES {
        if api.get_opt(name).await?.is_none() {
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            api.create(&PostParams::default(), &namespace).await?;
        }
    }
    Ok(())
}

pub async fn remove_namespaces(client: &kube::Client) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in NAMESPACES {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Runs `cases` cases in rounds of `per_round` requests against one random policy each.
pub async fn run(
    client: &kube::Client,
    cases: usize,
    per_round: usize,
    seed: u64,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Outcome, kube::Error> {
    ensure_namespaces(client).await?;
    let namespaces = [NAMESPACES[0].to_string(), NAMESPACES[1].to_string()];
    let mut rng = Rng::new(seed);
    let mut outcome = Outcome::default();
    let mut round = 0;
    while outcome.cases < cases {
        let prefix = format!("kl{seed}-{round}");
        let generated = generate::policy(&mut rng, &prefix, namespaces.clone());
        let sentinel = apply_round(client, &generated).await?;
        let policy = Policy::load(client).await?;
        let count = per_round.min(cases - outcome.cases);
        let asks: Vec<(User, Request)> = (0..count)
            .map(|_| generate::case(&mut rng, &generated))
            .collect();
        let answers: Vec<Result<(bool, String), kube::Error>> = futures::stream::iter(
            asks.iter()
                .map(|(user, request)| ask(client, user, request)),
        )
        .buffered(16)
        .collect()
        .await;
        for ((user, request), answer) in asks.into_iter().zip(answers) {
            let (apiserver_allowed, apiserver_reason) = answer?;
            let decision = decide(&policy, &user, &request);
            let engine_reasons = if decision.allowed {
                let mut reasons = allowing_reasons(&policy, &user, &request);
                if decision.grant.is_none() {
                    reasons.push(String::new()); // system:masters: no RBAC reason
                }
                reasons
            } else {
                vec![decision.denial_reason()]
            };
            outcome.cases += 1;
            outcome.allowed += usize::from(apiserver_allowed);
            let reason_agrees = if apiserver_allowed {
                engine_reasons.contains(&apiserver_reason)
            } else {
                rbac_reason_items(&engine_reasons[0]) == rbac_reason_items(&apiserver_reason)
            };
            let decision_agrees = decision.allowed == apiserver_allowed;
            if !decision_agrees {
                outcome.disagreements += 1;
            } else if !reason_agrees {
                outcome.reason_mismatches += 1;
            }
            if (!decision_agrees || !reason_agrees) && outcome.first.is_none() {
                outcome.first = Some(Disagreement {
                    round: prefix.clone(),
                    user,
                    request,
                    engine_allowed: decision.allowed,
                    engine_reasons,
                    apiserver_allowed,
                    apiserver_reason,
                    policy: serde_json::json!({
                        "roles": generated.roles, "clusterRoles": generated.cluster_roles,
                        "roleBindings": generated.role_bindings, "clusterRoleBindings": generated.cluster_bindings,
                    }),
                });
            }
        }
        remove_round(client, &prefix, &sentinel).await?;
        progress(outcome.cases, cases);
        round += 1;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_reasons_compare_as_sets() {
        assert_eq!(
            rbac_reason_items(
                "RBAC: [role.rbac.authorization.k8s.io \"a\" not found, clusterrole.rbac.authorization.k8s.io \"b\" not found]"
            ),
            rbac_reason_items(
                "RBAC: [clusterrole.rbac.authorization.k8s.io \"b\" not found, role.rbac.authorization.k8s.io \"a\" not found]"
            )
        );
        assert_eq!(rbac_reason_items(""), Vec::<String>::new());
    }

    #[test]
    fn reviews_carry_exactly_the_request() {
        let user = User::authenticated_as("alice", &[]);
        let review = review(
            &user,
            &Request::from_http("GET", "/api/v1/namespaces/a/pods/p/log", ""),
        );
        let attributes = review.spec.resource_attributes.unwrap();
        assert_eq!(attributes.verb.as_deref(), Some("get"));
        assert_eq!(attributes.subresource.as_deref(), Some("log"));
        assert_eq!(attributes.name.as_deref(), Some("p"));
        assert_eq!(
            review.spec.groups,
            Some(vec!["system:authenticated".to_string()])
        );
    }
}
