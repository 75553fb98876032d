//! Every operation and probe kind of the lab model against the real local control
//! plane: what each does when it passes, and what the report says when it fails. The
//! labs are in tests/fixtures/operations/; the same probe lab runs in pods in node.rs.

mod support;

use std::path::{Path, PathBuf};

use kubelab::report::{LabReport, OperationReport, Outcome, RunReport};
use support::{SharedUse, shared_cluster, stderr, text};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/operations")
        .join(name)
}

/// Runs labs of a fixture folder on the shared cluster: exit code, report, stderr.
fn run(cluster: &SharedUse, folder: &str, labs: &[&str]) -> (Option<i32>, RunReport, String) {
    let path = fixture(folder);
    let mut args = vec!["run", "--dir", path.to_str().unwrap(), "--output", "json"];
    args.extend_from_slice(labs);
    let out = cluster.lab.run(&args);
    let report: RunReport = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: no JSON report\n{}", text(&out)));
    (out.status.code(), report, stderr(&out))
}

fn op<'a>(lab: &'a LabReport, id: &str) -> &'a OperationReport {
    lab.steps
        .iter()
        .flat_map(|s| &s.operations)
        .find(|o| o.id == id)
        .unwrap_or_else(|| panic!("no operation {id} in {}", lab.folder))
}

/// Whether anything labelled with the run's id is left in the cluster.
fn leftovers(cluster: &SharedUse, run_id: &str) -> String {
    let out = cluster.kubectl(&[
        "get",
        "pods,deployments,replicasets,serviceaccounts,configmaps,roles,rolebindings,clusterrolebindings,customresourcedefinitions,namespaces",
        "-A",
        "-l",
        &format!("kubelab.dev/run={run_id}"),
        "-o",
        "name",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_object_operation_does_what_it_says() {
    let cluster = shared_cluster();
    let (code, report, err) = run(&cluster, "objects", &[]);
    assert_eq!(code, Some(0), "{err}");
    let lab = &report.labs[0];
    assert_eq!(lab.outcome, Outcome::Passed, "{lab:#?}");

    // create, and a create of the same name rejected as the lab expected.
    assert_eq!(
        op(lab, "created").actions,
        ["created ConfigMap op-objects/extra"]
    );
    let again = op(lab, "created_again");
    assert!(again.check && again.passed);
    assert_eq!(again.observed.status, Some(409));
    assert_eq!(
        again.observed.message.as_deref(),
        Some("configmaps \"extra\" already exists")
    );
    // apply as a ServiceAccount: impersonated, and forbidden in the API server's words.
    let forbidden = op(lab, "forbidden_apply");
    assert_eq!(forbidden.ran, "as system:serviceaccount:op-objects:reader");
    assert_eq!(
        forbidden.observed.message.as_deref(),
        Some(
            "configmaps \"extra\" is forbidden: User \"system:serviceaccount:op-objects:reader\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"op-objects\""
        )
    );
    // Merge, JSON and strategic patches all landed; the assert captured the uid, and
    // the selector-based assert matched it.
    let patched = op(lab, "patched");
    let uid = &patched.observed.captured["SETTINGS_UID"];
    assert_eq!(uid.len(), 36, "{uid}");
    assert!(op(lab, "by_selector").passed);
    // Waits on a condition (the CRD's Established, set by the API server) and a field.
    assert!(op(lab, "established").actions[0].contains("Established"));
    // A type the run's discovery did not know (the CRD came after it) is looked up,
    // by its kind in a manifest and by its name in a lab file.
    assert_eq!(
        op(lab, "widget").actions,
        ["applied Widget op-objects/sprocket"]
    );
    assert_eq!(
        op(lab, "widget_there").actions,
        ["Widget op-objects/sprocket created"]
    );
    assert!(op(lab, "field").actions[0].contains("data.mode = \"merged\""));
    // A wait right after a restart names the new ReplicaSet's pod, not the old one the
    // Deployment controller has yet to replace.
    let pod_of = |id: &str| {
        let line = &op(lab, id).actions[0];
        let start = line.find("(web-").unwrap_or_else(|| panic!("{line}"));
        line[start..].to_string()
    };
    assert_ne!(pod_of("web_created"), pod_of("web_restarted"));
    // The ReplicaSet's FailedCreate event, as the controller wrote it.
    let event = op(lab, "ghost_event");
    assert!(
        event
            .observed
            .body
            .starts_with("FailedCreate: Error creating: pods \"ghost-"),
        "{}",
        event.observed.body
    );
    assert!(
        event
            .observed
            .body
            .contains("serviceaccount \"ghost\" not found")
    );
    // The token: claims shown, audience as asked, never the token itself.
    let token = op(lab, "token").observed.token.as_ref().unwrap();
    assert_eq!(token.claims["aud"], serde_json::json!(["lab"]));
    assert_eq!(
        token.claims["sub"],
        "system:serviceaccount:op-objects:reader"
    );
    assert!(token.prefix.ends_with('…') && token.prefix.chars().count() == 13);
    // delete waits until the object is gone.
    assert!(op(lab, "extra_gone").passed);
    assert!(op(lab, "ghost_deleted").passed);
    assert!(leftovers(&cluster, &report.run_id).is_empty());
}

#[test]
fn every_probe_kind_runs_from_the_pod() {
    let cluster = shared_cluster();
    let (code, report, err) = run(&cluster, "probes", &[]);
    let lab = &report.labs[0];
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(lab.outcome, Outcome::Passed, "{lab:#?}");
    for id in [
        "own_pod",
        "headers",
        "body_file",
        "named_token",
        "file_token",
        "no_token",
        "invalid_token",
        "kubectl",
        "file_content",
        "can_i",
    ] {
        assert_eq!(op(lab, id).outcome, Outcome::Passed, "{id}");
    }
    // A captured value made it into a later request: the named token read the same pod.
    let own = op(lab, "own_pod");
    assert_eq!(
        own.observed.captured["READ_UID"],
        op(lab, "wait_3").observed.captured["POD_UID"]
    );
    assert_eq!(
        op(lab, "named_token").observed.identity.as_deref(),
        Some("system:serviceaccount:op-probes:prober")
    );
    // The pod a wait resolved is forgotten once it is deleted: the new pod of that
    // name is reached with its own token (the old pod's is rejected, its pod gone).
    let remade = op(lab, "remade_pod");
    assert_eq!(remade.outcome, Outcome::Passed, "{remade:#?}");
    assert_ne!(
        remade.observed.captured["NEW_UID"],
        op(lab, "wait_3").observed.captured["POD_UID"],
        "the new pod read itself"
    );
    // The named token's value reached the request, not the command shown.
    assert!(
        op(lab, "named_token")
            .command
            .contains("Bearer $TOKEN_MINE")
    );
    // Without a node, mode and owner are the kubelet's to say: skipped, with the reason.
    let mode = op(lab, "file_mode");
    assert_eq!(mode.outcome, Outcome::Skipped);
    assert!(
        mode.error
            .as_deref()
            .unwrap()
            .contains("only a node can show it")
    );
    // exec runs in the host's stand-in for the pod when kubelab may make one (root).
    let exec = op(lab, "exec_script");
    if nix::unistd::geteuid().is_root() {
        assert_eq!(exec.outcome, Outcome::Passed, "{exec:#?}");
        assert_eq!(
            exec.observed.stdout.as_deref(),
            Some("prober in op-probes\n")
        );
        assert_eq!(exec.observed.stderr.as_deref(), Some("warned\n"));
        assert_eq!(
            op(lab, "exec_command").observed.stdout.as_deref(),
            Some("op-probes")
        );
    } else {
        assert_eq!(exec.outcome, Outcome::Skipped);
    }
    assert!(leftovers(&cluster, &report.run_id).is_empty());
}

#[test]
fn each_failing_check_says_what_it_expected_and_what_came() {
    let cluster = shared_cluster();
    let junit = cluster.lab.state_root.path().join("failing.xml");
    let path = fixture("failing");
    let out = cluster.lab.run(&[
        "run",
        "--dir",
        path.to_str().unwrap(),
        "--output",
        "json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    let lab = &report.labs[0];
    assert_eq!(lab.outcome, Outcome::Failed);
    let failures = |id: &str| op(lab, id).failures.clone();

    assert_eq!(
        failures("wrong_rejection"),
        ["status: expected 403, got 409"]
    );
    assert_eq!(
        failures("accepted"),
        ["expected the API server to reject it, but it accepted it"]
    );
    let mismatch = op(lab, "mismatch");
    assert_eq!(
        mismatch.failures,
        [
            "ConfigMap op-failing/settings does not match after 1.0s",
            "data.mode: expected \"production\", got \"lab\""
        ]
    );
    let diff = mismatch.observed.diff.as_deref().unwrap();
    assert!(diff.contains("--- expected\n+++ actual"), "{diff}");
    assert!(diff.contains("-  mode: production\n+  mode: lab"), "{diff}");
    assert_eq!(
        failures("missing_event"),
        ["no NeverHappens event of a ConfigMap in op-failing after 1.0s"]
    );
    assert_eq!(
        failures("wrong_status"),
        [
            "status: expected 403, got 200",
            "json.kind: expected \"Status\", got \"APIVersions\""
        ]
    );
    // A token file's content is never shown, not even when it is the failure.
    let token = failures("token_content");
    assert_eq!(
        token,
        ["content: expected \"not-the-token\", got a token (not shown)"]
    );
    assert_eq!(
        failures("wrong_can_i"),
        ["allowed: expected true, got false"]
    );
    // kubectl and the log (on the host: the container's kubectl run once) say Forbidden.
    let forbidden = "Error from server (Forbidden): pods is forbidden: User \\\"system:serviceaccount:op-failing:default\\\" cannot list resource \\\"pods\\\"";
    let kubectl = failures("kubectl_output");
    assert_eq!(kubectl[0], "exit-code: expected 0, got 1");
    let wanted =
        format!("output: expected text containing \"No resources found\", got \"{forbidden}");
    assert!(kubectl[1].starts_with(&wanted), "{kubectl:?}");
    let logs = failures("logs_never");
    assert!(logs[0].starts_with(&wanted), "{logs:?}");
    let exec = op(lab, "exec_exit");
    if nix::unistd::geteuid().is_root() {
        assert_eq!(
            exec.failures,
            [
                "exit-code: expected 0, got 3",
                "stderr: expected text containing \"nothing\", got \"err\\n\""
            ]
        );
    }
    // Every failing check is a JUnit failure, with its reasons.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.matches("<failure").count() >= 7, "{xml}");
    assert!(xml.contains("data.mode: expected &quot;production&quot;, got &quot;lab&quot;"));
    assert!(leftovers(&cluster, &report.run_id).is_empty());
}

#[test]
fn a_lab_the_cluster_rejects_is_exit_2_and_an_outage_of_the_cluster_is_exit_3() {
    let cluster = shared_cluster();
    let (code, report, err) = run(&cluster, "stops", &["01", "02", "03", "04", "06", "07"]);
    assert_eq!(code, Some(2), "{err}");
    let expect = [
        (
            "01-rejected",
            "applying ClusterRoleBinding op-stop-rejected: the API server rejected it: 422 Invalid: ClusterRoleBinding.rbac.authorization.k8s.io \"op-stop-rejected\" is invalid: subjects[0].namespace: Required value",
        ),
        (
            "02-not-owned",
            "ConfigMap default/kube-root-ca.crt was not made by this run and is not in a namespace it created: kubelab changes nothing it does not own",
        ),
        (
            "03-delete-missing",
            "ConfigMap op-stop-missing/nope does not exist",
        ),
        (
            "04-unknown-type",
            "the API server serves no type 'serviceacount' (did you mean serviceaccounts?)",
        ),
        (
            "06-token-missing-account",
            "requesting a token for ServiceAccount op-stop-token/nobody: the API server rejected it: 404 NotFound: serviceaccounts \"nobody\" not found",
        ),
        (
            "07-restart-deleted",
            "restarting deployment op-stop-restart/web: the API server rejected it: 404 NotFound: deployments.apps \"web\" not found",
        ),
    ];
    for ((folder, why), lab) in expect.iter().zip(&report.labs) {
        assert_eq!(&lab.folder, folder);
        assert_eq!(lab.outcome, Outcome::Invalid, "{lab:#?}");
        assert!(
            lab.error.as_deref().unwrap().ends_with(why),
            "{:?}",
            lab.error
        );
    }
    // kube-root-ca.crt of default is as it was.
    let root_ca = cluster.kubectl(&[
        "-n",
        "default",
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-o",
        "jsonpath={.data.extra}",
    ]);
    assert!(root_ca.stdout.is_empty());

    let (code, report, err) = run(&cluster, "stops", &["05"]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(report.labs[0].outcome, Outcome::Error);
    assert!(
        report.labs[0]
            .error
            .as_deref()
            .unwrap()
            .ends_with("Pod op-stop-wait/never: not created after 1.0s: no pod exists")
    );
    assert!(leftovers(&cluster, &report.run_id).is_empty());
}
