//! Isolated copies: two runs of every lab on one cluster at the same time, each lab in
//! namespaces of its own, against the real local control plane.

mod support;

use kubelab::report::{Outcome, RunReport};
use support::{Lab, text};

#[test]
fn two_runs_of_every_lab_at_once_both_pass_and_leave_nothing_behind() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    // One asks for isolation; the other reaches the same cluster through a kubeconfig,
    // where kubelab did not make the cluster, so isolation is the default.
    let asked = lab
        .kubelab()
        .args(["run", "--isolate", "--output", "json"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let by_default = lab
        .kubelab()
        .env("KUBELAB_PROVIDER", "kubeconfig")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(["run", "--yes", "--allow-cluster-wide", "--output", "json"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let outputs = [
        asked.wait_with_output().unwrap(),
        by_default.wait_with_output().unwrap(),
    ];
    let mut run_ids = Vec::new();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("each lab in its own namespaces"),
            "{}",
            text(out)
        );
        let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report.labs.len(), 12);
        assert!(report.labs.iter().all(|l| l.outcome == Outcome::Passed));
        // Every probe ran in this run's copy: lab 03's pod is in project-swan-03-RUN.
        let swan = format!("project-swan-03-{}", report.run_id);
        let lab03: Vec<_> = report.labs[2]
            .steps
            .iter()
            .flat_map(|s| &s.operations)
            .filter(|op| op.ran.starts_with("on host for pod "))
            .collect();
        assert!(!lab03.is_empty());
        assert!(
            lab03.iter().all(|op| op.ran.contains(&swan)),
            "{:?}",
            lab03.iter().map(|op| &op.ran).collect::<Vec<_>>()
        );
        // The API server's own 403 words name the copy, as the rewritten lab expects.
        let forbidden = report.labs[0]
            .steps
            .iter()
            .flat_map(|s| &s.operations)
            .find_map(|op| {
                op.observed
                    .message
                    .clone()
                    .filter(|m| m.contains("forbidden"))
            })
            .unwrap();
        assert!(
            forbidden.contains(&format!(
                "system:serviceaccount:default-01-{}:default",
                report.run_id
            )),
            "{forbidden}"
        );
        run_ids.push(report.run_id);
    }
    assert_ne!(run_ids[0], run_ids[1]);

    // Nothing either run made is left: no namespace copy, no labelled object, no
    // ClusterRole copy (lab 07's secret-reader).
    let namespaces = cluster.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    let cluster_roles = cluster.kubectl_ok(&["get", "clusterroles", "-o", "name"]);
    let labelled = cluster.kubectl_ok(&[
        "get",
        "pods,serviceaccounts,roles,rolebindings,deployments,secrets,clusterroles,clusterrolebindings",
        "--all-namespaces",
        "-l",
        "kubelab.dev/run",
        "-o",
        "name",
    ]);
    for run_id in &run_ids {
        assert!(!namespaces.contains(run_id.as_str()), "{namespaces}");
        assert!(!cluster_roles.contains(run_id.as_str()), "{cluster_roles}");
    }
    assert!(labelled.trim().is_empty(), "{labelled}");
    // The namespaces the labs name were never touched.
    assert!(
        !namespaces.contains("namespace/project-swan\n"),
        "{namespaces}"
    );
}
