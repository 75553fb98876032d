//! The local node (root only): a real kubelet, containerd, kube-proxy and CoreDNS. Lab
//! pods run; probes exec inside them; `down` leaves nothing of the node behind.

mod support;

use kubelab::report::RunReport;
use support::{Lab, jwt_claims, node_leftovers, root_or_fail, stderr, stdout, text};

#[test]
fn a_real_node_runs_the_lab_pods_and_down_leaves_nothing() {
    root_or_fail();
    let lab = Lab::new();
    let cluster = lab.up(&["--node"]);

    // The node registered and is Ready.
    let node = cluster.kubectl_json(&["get", "node", "kubelab-node"]);
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True", "{node}");
    assert_eq!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .split("://")
            .next(),
        Some("containerd")
    );

    // A pod with no serviceAccountName gets its token, CA and namespace from the kubelet.
    cluster.kubectl_ok(&[
        "run",
        "plain",
        "--image=curlimages/curl:8.11.1",
        "--command",
        "--",
        "sh",
        "-c",
        "echo hello from the pod; sleep 3600",
    ]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/plain",
        "--timeout=120s",
    ]);
    let listed = cluster.kubectl_ok(&[
        "exec",
        "plain",
        "--",
        "ls",
        "/var/run/secrets/kubernetes.io/serviceaccount",
    ]);
    for file in ["ca.crt", "namespace", "token"] {
        assert!(
            listed.lines().any(|l| l == file),
            "{file} not mounted: {listed}"
        );
    }
    let token = cluster.kubectl_ok(&[
        "exec",
        "plain",
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ]);
    let claims = jwt_claims(&token);
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "plain");
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");

    // From inside: the name resolves (CoreDNS), the ClusterIP routes (kube-proxy), TLS
    // verifies with the mounted CA, and the token authenticates.
    let status = cluster.kubectl_ok(&[
        "exec", "plain", "--", "sh", "-c",
        "curl -sS -o /dev/null -w '%{http_code}' --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt -H \"Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\" https://kubernetes.default.svc/api",
    ]);
    assert_eq!(status.trim(), "200");
    let resolved = cluster.kubectl_ok(&["exec", "plain", "--", "sh", "-c", "getent hosts kubernetes.default.svc.cluster.local || nslookup kubernetes.default.svc.cluster.local"]);
    assert!(resolved.contains("10.96.0.1"), "{resolved}");
    // kubectl logs go through the kubelet too.
    assert_eq!(
        cluster.kubectl_ok(&["logs", "plain"]).trim(),
        "hello from the pod"
    );

    // The default suite's labs, unchanged, with every pod probe inside its pod.
    let out = lab.run(&["run", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.labs.len(), 12);
    let probes: Vec<_> = report.checks().collect();
    assert!(
        probes
            .iter()
            .all(|p| p.ran.starts_with("in pod ") || p.ran.starts_with("as kubelab")),
        "{:?}",
        probes.iter().map(|p| &p.ran).collect::<Vec<_>>()
    );
    assert!(
        probes
            .iter()
            .filter(|p| p.ran.starts_with("in pod "))
            .count()
            >= 20
    );
    // Lab 04's log probe read the real container's log: after the solution and the
    // restart, `kubectl get pods` in the container listed the Deployment's pods.
    let logs = report.labs[3]
        .steps
        .iter()
        .flat_map(|s| &s.operations)
        .find(|op| op.id == "logs")
        .unwrap();
    assert!(
        logs.ran.starts_with("in pod project-swan/pod-lister-"),
        "{}",
        logs.ran
    );
    assert!(
        logs.observed.body.contains("pod-lister-"),
        "{}",
        logs.observed.body
    );

    // The conformance suite: every lab, the node-only one too, with probes in pods.
    let out = lab.run(&["run", "--suite", "conformance", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.labs.len(), 16);
    for lab_report in &report.labs {
        assert_eq!(
            lab_report.outcome,
            kubelab::report::Outcome::Passed,
            "{lab_report:?}"
        );
    }
    let permissions = report.labs[3].steps[0]
        .operations
        .iter()
        .find(|op| op.id == "runasuser")
        .unwrap();
    assert_eq!(permissions.observed.mode.as_deref(), Some("600"));
    assert_eq!(permissions.observed.owner.as_deref(), Some("1000:0"));

    // Every probe kind in a real pod: exec, and the mode and owner the kubelet wrote.
    let probes =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/operations/probes");
    let out = lab.run(&["run", "--dir", probes.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    let operations: Vec<_> = report.operations().collect();
    let find = |id: &str| *operations.iter().find(|op| op.id == id).unwrap();
    let mode = find("file_mode");
    assert_eq!(mode.outcome, kubelab::report::Outcome::Passed, "{mode:#?}");
    assert_eq!(mode.observed.mode.as_deref(), Some("644"));
    assert_eq!(mode.observed.owner.as_deref(), Some("0:0"));
    assert!(
        find("exec_script")
            .ran
            .starts_with("in pod op-probes/prober")
    );
    assert_eq!(
        find("exec_script").observed.stdout.as_deref(),
        Some("prober in op-probes\n")
    );

    // A pod's probes share one shell: exit codes, stdout and stderr stay per command,
    // a syntax error or a forged end marker ends only its own command.
    let shell = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node-shell");
    let out = lab.run(&["run", "--dir", shell.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    let operations: Vec<_> = report.operations().filter(|op| op.check).collect();
    assert_eq!(operations.len(), 5, "{operations:#?}");
    assert!(
        operations
            .iter()
            .all(|op| op.outcome == kubelab::report::Outcome::Passed
                && op.ran.starts_with("in pod node-shell/keeper")),
        "{operations:#?}"
    );

    // --no-wait: the pods of a namespace the run made go with grace 0. Left to the
    // garbage collector (the Deployment's deletion), each would take its own 300 s
    // grace period and the cleanup would fail its 60 s timeout.
    let stubborn =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node-stubborn");
    let out = lab.run(&[
        "run",
        "--no-wait",
        "--cleanup-timeout",
        "60s",
        "--dir",
        stubborn.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.labs[0].outcome, kubelab::report::Outcome::Passed);
    let pods = cluster.kubectl_ok(&["get", "pods", "-n", "node-stubborn", "-o", "name"]);
    assert!(pods.trim().is_empty(), "pods left: {pods}");

    // Hands-on with real pods: lab 04's kubectl in the pod is Forbidden and diagnosed;
    // the solution's restart makes the real container list the pods.
    let out = lab.run(&["start", "04"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !stdout(&out).contains("No node runs pods"),
        "{}",
        text(&out)
    );
    let out = lab.run(&["check", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let grade: kubelab::report::Grade = serde_json::from_slice(&out.stdout).unwrap();
    let kubectl = grade.checks[0]
        .problems
        .iter()
        .find(|p| p.kind == "kubectl")
        .unwrap_or_else(|| panic!("{grade:#?}"));
    assert!(
        kubectl.ran.starts_with("in pod project-swan/pod-lister-"),
        "{}",
        kubectl.ran
    );
    assert_eq!(
        kubectl.observed.diagnosis[0].object,
        "no RoleBinding in project-swan"
    );
    let out = lab.run(&["solution", "--apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = lab.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A shell in a real pod, through the exec API, in a real terminal.
    let out = lab.run(&["start", "02"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let work = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("kubelab");
    let terminal = support::terminal::Terminal::new(
        "kubelab-node-shell",
        work.path(),
        &[
            (
                "PATH",
                format!(
                    "{}:{}",
                    bin.parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
            (
                "KUBELAB_STATE_DIR",
                lab.state_root.path().display().to_string(),
            ),
        ],
    );
    let quick = std::time::Duration::from_secs(60);
    terminal.type_line("kubelab shell");
    terminal.wait_for("a shell in pod default/mydemo", quick);
    terminal.type_line("echo in-pod-$((6*7)) $(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace) $(hostname)");
    let screen = terminal.wait_for("in-pod-42 default mydemo", quick);
    assert!(!screen.contains("stand-in"), "{screen}");
    terminal.type_line("exit 3");
    terminal.wait_for_nth("student$ ", 2, quick);
    terminal.type_line("echo shell-exit=$?");
    terminal.wait_for("shell-exit=3", quick);

    // down: nothing of the node is left on the machine.
    let out = lab.run(&["cluster", "down"]);
    assert!(out.status.success(), "{}", text(&out));
    let left = node_leftovers(&lab);
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(!lab.state_root.path().join("kubelab").exists());
}

#[test]
fn node_preflight_names_what_is_missing_before_anything_starts() {
    root_or_fail();
    let lab = Lab::new();
    // Control-plane binaries only: the node binaries are missing.
    let partial = tempfile::tempdir().unwrap();
    let assets = support::assets_dir();
    for binary in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kubectl",
    ] {
        std::os::unix::fs::symlink(assets.join(binary), partial.path().join(binary)).unwrap();
    }
    let out = lab
        .kubelab()
        .env("KUBELAB_ASSETS", partial.path())
        .args(["cluster", "up", "--node"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("kubelet is missing"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("kubelab setup --node"),
        "{}",
        text(&out)
    );
    assert!(lab.processes().is_empty());
    assert!(!lab.state_root.path().join("kubelab").exists());
    assert!(stdout(&out).is_empty());
}
