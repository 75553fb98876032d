//! Load on the real local control plane: 200 probes at once in one lab, and ten
//! isolated `kubelab run` processes of every lab on one cluster at the same time. All
//! pass, and nothing is left. The figures are printed (`-- --nocapture`), not timed.

mod support;

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Instant;

use kubelab::report::{Outcome, RunReport};
use support::{Cluster, Lab, text};

fn labelled(cluster: &Cluster, selector: &str) -> Vec<String> {
    support::labelled_with(&cluster.kubeconfig, selector)
}

/// A lab whose one step asks 200 questions at once from one pod: half allowed (200),
/// half forbidden (403), each with the API server's answer checked.
fn two_hundred_probes(dir: &std::path::Path) {
    let lab = dir.join("01-two-hundred");
    std::fs::create_dir_all(&lab).unwrap();
    let mut yaml = String::from(
        "id: \"01\"\ntitle: 200 probes at once\nsummary: One pod asks 200 questions together.\nsource: tests\nnamespaces: [load-200]\nsteps:\n  - id: ask\n    name: 200 questions at once\n    do:\n      - apply: objects.yaml\n      - wait: pod/asker\n",
    );
    for i in 0..200 {
        let (path, status) = if i % 2 == 0 {
            ("/api/v1/namespaces/load-200/configmaps", 200)
        } else {
            ("/api/v1/namespaces/load-200/secrets", 403)
        };
        write!(
            yaml,
            "      - id: q{i}\n        name: question {i}\n        pod: asker\n        http: {{path: {path}, expect: {{status: {status}}}}}\n"
        )
        .unwrap();
    }
    std::fs::write(lab.join("lab.yaml"), yaml).unwrap();
    std::fs::write(
        lab.join("objects.yaml"),
        r#"apiVersion: v1
kind: Namespace
metadata: {name: load-200}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: asker, namespace: load-200}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: configmap-lister, namespace: load-200}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: asker-lists-configmaps, namespace: load-200}
subjects: [{kind: ServiceAccount, name: asker, namespace: load-200}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-lister}
---
apiVersion: v1
kind: Pod
metadata: {name: asker, namespace: load-200}
spec:
  serviceAccountName: asker
  containers: [{name: shell, image: "curlimages/curl:8.11.1", command: [sleep, "86400"]}]
  terminationGracePeriodSeconds: 1
"#,
    )
    .unwrap();
    std::fs::write(lab.join("explain.md.tera"), "Asked 200 questions.\n").unwrap();
}

#[test]
fn two_hundred_probes_at_once_all_get_the_api_servers_answer() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let dir = tempfile::tempdir().unwrap();
    two_hundred_probes(dir.path());
    let started = Instant::now();
    let out = lab
        .kubelab()
        .args(["run", "--dir", dir.path().to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    let probes: Vec<_> = report.checks().collect();
    assert_eq!(probes.len(), 200);
    let forbidden = probes
        .iter()
        .filter(|p| p.observed.status == Some(403))
        .count();
    assert_eq!(forbidden, 100);
    assert!(probes.iter().all(|p| p.outcome == Outcome::Passed));
    let mut times: Vec<u64> = probes.iter().map(|p| p.duration_ms).collect();
    times.sort();
    eprintln!(
        "load: 200 probes at once: run {took:?}; probe p50 {} ms, p95 {} ms, max {} ms",
        times[100], times[190], times[199]
    );
    assert!(labelled(&cluster, "kubelab.dev/lab").is_empty());
}

#[test]
fn ten_isolated_runs_of_every_lab_at_once_all_pass_and_leave_nothing() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let started = Instant::now();
    let runs: Vec<_> = (0..10)
        .map(|_| {
            lab.kubelab()
                .args(["run", "--isolate", "-o", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = runs
        .into_iter()
        .map(|run| run.wait_with_output().unwrap())
        .collect();
    let took = started.elapsed();
    let mut run_ids = Vec::new();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
        let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report.labs.len(), 12);
        assert!(report.labs.iter().all(|l| l.outcome == Outcome::Passed));
        run_ids.push(report.run_id);
    }
    run_ids.sort();
    run_ids.dedup();
    assert_eq!(run_ids.len(), 10, "each run has its own id");
    eprintln!("load: 10 isolated runs of 12 labs at once: {took:?}");
    let left = labelled(&cluster, "kubelab.dev/run");
    assert!(left.is_empty(), "left: {left:?}");
}
