//! What RBAC says about a probe's request, from one policy snapshot per step: the
//! bindings that name the identity (for explanations) and the evaluator's "why".

use crate::rbac::{self, Policy, Request, User};
use crate::report::BindingInfo;

/// The bindings in `namespaces` and cluster-wide that name `user` or its groups.
pub fn bindings_naming(policy: &Policy, user: &User, namespaces: &[String]) -> Vec<BindingInfo> {
    let mut sets = vec![&policy.cluster_bindings];
    sets.extend(
        namespaces
            .iter()
            .filter_map(|ns| policy.role_bindings.get(ns)),
    );
    let keys = rbac::subject_keys(user);
    let mut found = Vec::new();
    for set in sets {
        for index in set.naming(&keys) {
            let binding = &set.bindings[index];
            let Some(subject) = rbac::subject_naming(binding, user) else {
                continue;
            };
            let subject = match subject.kind {
                rbac::SubjectKind::ServiceAccount => {
                    let namespace = if subject.namespace.is_empty() {
                        &binding.namespace
                    } else {
                        &subject.namespace
                    };
                    format!("ServiceAccount {namespace}/{}", subject.name)
                }
                kind => format!("{kind:?} {}", subject.name),
            };
            found.push(BindingInfo {
                binding: binding.describe(),
                role: binding.describe_role(),
                subject,
                rules: policy
                    .rules_of(binding)
                    .unwrap_or(&[])
                    .iter()
                    .map(rbac::rule_text)
                    .collect(),
            });
        }
    }
    found
}

/// The evaluator's answer for `identity` making `request`.
pub fn why(policy: &Policy, identity: &str, request: &Request) -> rbac::Why {
    rbac::why(policy, &User::authenticated_as(identity, &[]), request)
}
