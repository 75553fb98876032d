//! The kubectl command a person would type for an operation: what reports show as the
//! command an operation ran, and what `kubelab solution` prints.

use super::model::{Action, Identity, PatchType, WaitFor};
use crate::probe::command::shell_quote;

/// `--as` and `--as-group` for an identity, as kubectl takes them.
fn acting_as(identity: Option<&Identity>, namespace: &str) -> String {
    let Some(identity) = identity else {
        return String::new();
    };
    let (user, groups) = identity.user_and_groups(namespace);
    let mut text = format!(" --as {}", shell_quote(&user));
    for group in &groups {
        text.push_str(&format!(" --as-group {}", shell_quote(group)));
    }
    text
}

/// The command for a non-probe operation in `namespace` (None for probes: they show
/// what runs in the pod).
pub fn command(action: &Action, namespace: &str) -> Option<String> {
    let ns = format!("-n {namespace}");
    Some(match action {
        Action::Apply(apply) | Action::Create(apply) => format!(
            "kubectl {} {ns} -f {}{}",
            if matches!(action, Action::Create(_)) {
                "create"
            } else {
                "apply --server-side"
            },
            apply.all_files().join(" -f "),
            acting_as(apply.identity.as_ref(), namespace)
        ),
        Action::Patch(patch) => format!(
            "kubectl patch {} {ns} --type {} -p {}{}",
            patch.object,
            match patch.patch_type {
                PatchType::Merge => "merge",
                PatchType::Strategic => "strategic",
                PatchType::Json => "json",
            },
            shell_quote(&patch.patch.to_string()),
            acting_as(patch.identity.as_ref(), namespace)
        ),
        Action::Delete(delete) => {
            let what = match (&delete.object, &delete.file) {
                (Some(object), _) => format!("{object} {ns}"),
                (None, Some(file)) => format!("-f {file} {ns}"),
                (None, None) => String::new(),
            };
            let grace = delete
                .grace_period
                .map(|g| format!(" --grace-period {g}"))
                .unwrap_or_default();
            format!(
                "kubectl delete {what}{grace} --wait{}",
                acting_as(delete.identity.as_ref(), namespace)
            )
        }
        Action::Assert(assert) => format!(
            "kubectl get {} {ns}{} -o yaml",
            assert.object,
            assert
                .selector
                .as_ref()
                .map(|s| format!(" -l {}", shell_quote(s)))
                .unwrap_or_default()
        ),
        Action::Events(events) => format!("kubectl events {ns} --for {}", events.object),
        Action::Wait(wait)
            if matches!(wait.until, WaitFor::Ready | WaitFor::Running)
                && rolls_out(&wait.object.resource) =>
        {
            // Workloads have no phase or Ready condition of their own: their rollout.
            format!("kubectl rollout status {} {ns}", wait.object)
        }
        Action::Wait(wait)
            if matches!(wait.until, WaitFor::Ready | WaitFor::Running)
                && is_job(&wait.object.resource) =>
        {
            format!(
                "kubectl wait pod -l batch.kubernetes.io/job-name={} {ns} --for condition=Ready",
                wait.object.name.as_deref().unwrap_or_default()
            )
        }
        Action::Wait(wait) => {
            let until = match &wait.until {
                WaitFor::Ready => "condition=Ready".to_string(),
                WaitFor::Running => "jsonpath={.status.phase}=Running".to_string(),
                WaitFor::Created => "create".to_string(),
                WaitFor::Deleted => "delete".to_string(),
                WaitFor::Condition(condition) => format!("condition={condition}"),
                WaitFor::Jsonpath(jsonpath) => format!(
                    "jsonpath={{.{}}}={}",
                    jsonpath.path,
                    match &jsonpath.value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }
                ),
            };
            format!(
                "kubectl wait {} {ns} --for {}",
                wait.object,
                shell_quote(&until)
            )
        }
        Action::Token(token) => format!(
            "kubectl create token {} {ns}{}{}{}",
            token.serviceaccount,
            token
                .audiences
                .iter()
                .map(|a| format!(" --audience {}", shell_quote(a)))
                .collect::<String>(),
            token
                .expiration_seconds
                .map(|s| format!(" --duration {s}s"))
                .unwrap_or_default(),
            token
                .bound_to
                .as_ref()
                .map(|b| format!(
                    " --bound-object-kind {} --bound-object-name {}",
                    bound_kind(&b.resource),
                    b.name.as_deref().unwrap_or_default()
                ))
                .unwrap_or_default()
        ),
        Action::Restart(target) => format!("kubectl rollout restart {target} {ns}"),
        Action::Probe(_) => return None,
    })
}

/// Kinds `kubectl rollout status` follows.
fn rolls_out(resource: &str) -> bool {
    matches!(
        resource.to_lowercase().as_str(),
        "deployment"
            | "deployments"
            | "deploy"
            | "statefulset"
            | "statefulsets"
            | "sts"
            | "daemonset"
            | "daemonsets"
            | "ds"
    )
}

fn is_job(resource: &str) -> bool {
    matches!(resource.to_lowercase().as_str(), "job" | "jobs")
}

/// kubectl's --bound-object-kind takes a Kind.
fn bound_kind(resource: &str) -> &str {
    match resource {
        "pod" | "pods" => "Pod",
        "secret" | "secrets" => "Secret",
        "node" | "nodes" => "Node",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{ObjectRef, PatchOp};

    #[test]
    fn a_workload_is_waited_for_by_its_rollout_and_a_pod_by_its_condition() {
        let wait = |object: &str, until: WaitFor| {
            command(
                &Action::Wait(crate::scenario::WaitOp {
                    object: ObjectRef::parse(object).unwrap(),
                    until,
                    timeout: None,
                    capture: Default::default(),
                }),
                "reports",
            )
            .unwrap()
        };
        assert_eq!(
            wait("deployment/reporter", WaitFor::Running),
            "kubectl rollout status deployment/reporter -n reports"
        );
        assert_eq!(
            wait("pod/mydemo", WaitFor::Ready),
            "kubectl wait pod/mydemo -n reports --for condition=Ready"
        );
        assert_eq!(
            wait("job/once", WaitFor::Ready),
            "kubectl wait pod -l batch.kubernetes.io/job-name=once -n reports --for condition=Ready"
        );
    }

    #[test]
    fn a_patch_keeps_its_json_exactly_and_quotes_it_for_the_shell() {
        let action = Action::Patch(PatchOp {
            object: ObjectRef::parse("deployment/pod-lister").unwrap(),
            patch_type: PatchType::Merge,
            patch: serde_json::json!({"spec": {"template": {"spec": {"serviceAccountName": "lister"}}}}),
            identity: None,
            expect_error: None,
        });
        assert_eq!(
            command(&action, "team-a").unwrap(),
            r#"kubectl patch deployment/pod-lister -n team-a --type merge -p '{"spec":{"template":{"spec":{"serviceAccountName":"lister"}}}}'"#
        );
    }
}
