//! Each RBAC mistake a person makes, made on a real control plane: `kubelab why` names
//! the binding or role and the field to change, the API server agrees that the request
//! is denied, and where kubelab offers a one-edit fix, that edit (run with the real
//! kubectl) makes the API server allow the request.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Cluster, Lab, assets_dir, text};

/// `kubelab why` as JSON: the evaluator's answer, checked against the API server.
fn why(lab: &Lab, user: &str, path: &str) -> (Option<i32>, serde_json::Value) {
    let out = lab.run(&["why", "--as", user, "GET", path, "-o", "json"]);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("why {user} {path}: {e}\n{}", text(&out)));
    (out.status.code(), json)
}

/// Runs a `fix:` command as printed, with the real kubectl and the cluster's kubeconfig.
fn run_fix(cluster: &Cluster, command: &str) {
    let path = format!(
        "{}:{}",
        assets_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", command])
        .env("PATH", path)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}\n{}", text(&out));
}

struct Mistake {
    namespace: &'static str,
    /// The request, as the app's ServiceAccount makes it.
    path: String,
    object: &'static str,
    field: &'static str,
    /// Whether kubelab offers one edit that fixes it.
    one_edit: bool,
}

fn mistake(
    namespace: &'static str,
    path: &str,
    object: &'static str,
    field: &'static str,
    one_edit: bool,
) -> Mistake {
    Mistake {
        namespace,
        path: path.replace("NS", namespace),
        object,
        field,
        one_edit,
    }
}

#[test]
fn every_rbac_mistake_is_named_by_object_and_field_and_its_one_edit_fix_works() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mistakes/rbac.yaml");
    cluster.kubectl_ok(&["apply", "-f", manifest.to_str().unwrap()]);

    let pods = "/api/v1/namespaces/NS/pods";
    let mistakes = [
        mistake(
            "m-subject-namespace",
            pods,
            "RoleBinding m-subject-namespace/read-pods",
            "subjects[0].namespace",
            true,
        ),
        mistake(
            "m-account-name",
            pods,
            "RoleBinding m-account-name/read-pods",
            "subjects[0].name",
            true,
        ),
        mistake(
            "m-user-kind",
            pods,
            "RoleBinding m-user-kind/read-pods",
            "subjects[0].kind",
            true,
        ),
        mistake(
            "m-other-namespace",
            pods,
            "RoleBinding m-other-namespace-data/read-pods",
            "metadata.namespace",
            false,
        ),
        mistake(
            "m-roleref-kind",
            pods,
            "RoleBinding m-roleref-kind/read-pods",
            "roleRef.kind",
            false,
        ),
        mistake(
            "m-roleref-name",
            pods,
            "RoleBinding m-roleref-name/read-pods",
            "roleRef.name",
            false,
        ),
        mistake(
            "m-missing-verb",
            pods,
            "Role m-missing-verb/pod-reader",
            "rules[0].verbs",
            true,
        ),
        mistake(
            "m-singular",
            pods,
            "Role m-singular/pod-reader",
            "rules[0].resources[0]",
            true,
        ),
        mistake(
            "m-typo",
            pods,
            "Role m-typo/pod-reader",
            "rules[0].resources[0]",
            true,
        ),
        mistake(
            "m-subresource",
            "/api/v1/namespaces/NS/pods/web/log",
            "Role m-subresource/pod-reader",
            "rules[0].resources",
            true,
        ),
        mistake(
            "m-api-group",
            "/apis/apps/v1/namespaces/NS/deployments",
            "Role m-api-group/pod-reader",
            "rules[0].apiGroups",
            true,
        ),
        mistake(
            "m-resource-names",
            "/api/v1/namespaces/NS/configmaps",
            "Role m-resource-names/pod-reader",
            "rules[0].resourceNames",
            true,
        ),
    ];
    for m in &mistakes {
        let user = format!("system:serviceaccount:{}:app", m.namespace);
        let (code, json) = why(&lab, &user, &m.path);
        // Denied, by kubelab's evaluator and by the API server alike.
        assert_eq!(code, Some(1), "{}: {json:#}", m.namespace);
        assert_eq!(json["apiserver"]["allowed"], false, "{}", m.namespace);
        let diagnosis = &json["why"]["diagnosis"][0];
        assert_eq!(diagnosis["object"], m.object, "{}: {json:#}", m.namespace);
        assert_eq!(diagnosis["field"], m.field, "{}: {json:#}", m.namespace);
        let patch = diagnosis["patch"].as_str();
        assert_eq!(
            patch.is_some(),
            m.one_edit,
            "{}: {diagnosis:#}",
            m.namespace
        );
        if let Some(patch) = patch {
            run_fix(&cluster, patch);
            let (code, json) = why(&lab, &user, &m.path);
            assert_eq!(code, Some(0), "{} after `{patch}`: {json:#}", m.namespace);
            assert_eq!(json["apiserver"]["allowed"], true, "{}", m.namespace);
        }
    }

    // The text form says the same, with the edit to make.
    let out = lab.run(&[
        "why",
        "--as",
        "system:serviceaccount:m-roleref-kind:app",
        "GET",
        "/api/v1/namespaces/m-roleref-kind/pods",
    ]);
    let shown = support::stdout(&out);
    assert!(
        shown.contains("what is wrong: RoleBinding m-roleref-kind/read-pods roleRef.kind: RoleBinding m-roleref-kind/read-pods refers to Role m-roleref-kind-pod-reader, which does not exist; ClusterRole m-roleref-kind-pod-reader does"),
        "{shown}"
    );
    assert!(shown.contains("kube-apiserver agrees: denied"), "{shown}");
}
