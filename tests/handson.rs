//! Hands-on mode on a real control plane, as a student uses it: every hands-on lab
//! starts, fails its check with the diagnosis its starting mistake calls for, passes
//! after `solution --apply`, and fails again after `reset`; and one student's whole
//! flow through a real terminal (tmux): start, kubectl, check, hint, shell, progress.

mod support;

use std::time::Duration;

use kubelab::report::Grade;
use support::terminal::Terminal;
use support::{Cluster, Lab, assets_dir, stdout, text};

/// What `check` must show on a lab's starting state: the check that fails, and either
/// the diagnosis (object, field) or a line of what it saw.
struct AtStart {
    lab: &'static str,
    check: &'static str,
    diagnosis: Option<(&'static str, &'static str)>,
    saw: &'static str,
}

const LABS: &[AtStart] = &[
    AtStart {
        lab: "01",
        check: "pod",
        diagnosis: None,
        saw: "no Pod default/testpod",
    },
    AtStart {
        lab: "02",
        check: "reads_pods",
        diagnosis: Some(("no RoleBinding in default", "")),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "03",
        check: "reads_secrets",
        diagnosis: Some(("no RoleBinding in project-swan", "")),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "04",
        check: "kubectl_works",
        diagnosis: Some(("no RoleBinding in project-swan", "")),
        saw: "exit-code: expected 0, got 1",
    },
    AtStart {
        lab: "05",
        check: "pod_optout",
        diagnosis: None,
        saw: "spec.automountServiceAccountToken: expected false",
    },
    AtStart {
        lab: "06",
        check: "works",
        diagnosis: Some((
            "RoleBinding shop/inventory-reads-pods",
            "subjects[0].namespace",
        )),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "07",
        check: "works",
        diagnosis: Some((
            "RoleBinding vault-sync/syncer-reads-secrets",
            "roleRef.kind",
        )),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "08",
        check: "works",
        diagnosis: Some(("Role feature-flags/configmap-reader", "rules[0].verbs")),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "09",
        check: "works",
        diagnosis: Some(("Role release-board/deployment-viewer", "rules[0].apiGroups")),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "10",
        check: "works",
        diagnosis: Some((
            "RoleBinding ci/build-runner-watches-pods",
            "subjects[0].kind",
        )),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "11",
        check: "works",
        diagnosis: Some((
            "Deployment reports/reporter",
            "spec.template.spec.serviceAccountName",
        )),
        saw: "status: expected 200, got 403",
    },
    AtStart {
        lab: "12",
        check: "works",
        diagnosis: Some((
            "ServiceAccount monitoring/metrics",
            "automountServiceAccountToken",
        )),
        saw: "status: expected 200, got 403",
    },
];

fn check(lab: &Lab, expect: i32) -> Grade {
    let out = lab.run(&["check", "-o", "json"]);
    assert_eq!(out.status.code(), Some(expect), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn every_hands_on_lab_fails_with_its_diagnosis_then_passes_with_the_solution_and_resets() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    for at_start in LABS {
        let id = at_start.lab;
        let out = lab.run(&["start", id]);
        assert_eq!(out.status.code(), Some(0), "start {id}: {}", text(&out));
        let shown = stdout(&out);
        assert!(shown.starts_with(&format!("Lab {id} · ")), "{shown}");
        assert!(
            shown.contains(&format!(
                "export KUBECONFIG={}",
                cluster.kubeconfig.display()
            )),
            "{shown}"
        );

        // The starting state fails, and says what is wrong.
        let grade = check(&lab, 1);
        assert_eq!(grade.lab, id);
        assert_eq!(grade.points, 0, "{id}: nothing is done yet: {grade:#?}");
        let failing = grade
            .checks
            .iter()
            .find(|c| c.id == at_start.check)
            .unwrap_or_else(|| panic!("{id} has no check {}", at_start.check));
        assert!(!failing.passed);
        let seen: Vec<String> = failing
            .problems
            .iter()
            .flat_map(|p| {
                let mut lines = kubelab::report::brief(p);
                lines.push(kubelab::report::observed_summary(p));
                lines
            })
            .collect();
        assert!(
            seen.iter().any(|l| l.contains(at_start.saw)),
            "{id}: {seen:#?}"
        );
        if let Some((object, field)) = at_start.diagnosis {
            let diagnoses: Vec<_> = failing
                .problems
                .iter()
                .flat_map(|p| &p.observed.diagnosis)
                .collect();
            assert!(
                diagnoses
                    .iter()
                    .any(|d| d.object == object && d.field == field),
                "{id}: expected a diagnosis of {object} {field}: {diagnoses:#?}"
            );
        }

        // The solution passes every check.
        let out = lab.run(&["solution", "--apply"]);
        assert_eq!(out.status.code(), Some(0), "solution {id}: {}", text(&out));
        let grade = check(&lab, 0);
        assert!(grade.passed);
        assert_eq!(grade.points, grade.max_points);

        // Reset: back to the start, which fails again.
        let out = lab.run(&["reset"]);
        assert_eq!(out.status.code(), Some(0), "reset {id}: {}", text(&out));
        let grade = check(&lab, 1);
        assert_eq!(grade.points, 0, "{id} after reset: {grade:#?}");
    }

    // Progress remembers every lab, solved with the solution.
    let out = lab.run(&["progress", "-o", "json"]);
    let progress: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for at_start in LABS {
        let entry = &progress["labs"][format!("seed/{}", at_start.lab)];
        assert_eq!(entry["solved"], true, "{entry:#}");
        assert_eq!(entry["solved_with_solution"], true, "{entry:#}");
        assert_eq!(entry["checks_made"], 3, "{entry:#}");
    }
    assert_eq!(
        progress["current"],
        format!("seed/{}", LABS.last().unwrap().lab)
    );

    // A run of a lab in progress leaves the student's lab alone, and says whose it is.
    let out = lab.run(&["run", "11"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        support::stderr(&out)
            .contains("belongs to hands-on lab seed/11, which is set up on this cluster"),
        "{}",
        text(&out)
    );
    let namespace = cluster.kubectl_json(&["get", "namespace", "reports"]);
    assert!(
        namespace["metadata"]["deletionTimestamp"].is_null(),
        "{namespace:#}"
    );
    // Stopping the lab ends it: its objects go, its progress stays, runs may use it.
    let out = lab.run(&["stop", "11"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("Lab 11 is stopped (removed Namespace reports"),
        "{}",
        text(&out)
    );
    let out = lab.run(&["check", "11"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        support::stderr(&out).contains("lab 11 is not set up on its cluster"),
        "{}",
        text(&out)
    );
    let out = lab.run(&["run", "11"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Lab 12, half fixed: the ServiceAccount allows the token now, but the pod was made
    // without one; the pod is what is wrong (not "grant system:anonymous").
    cluster.kubectl_ok(&[
        "-n",
        "monitoring",
        "patch",
        "serviceaccount",
        "metrics",
        "-p",
        r#"{"automountServiceAccountToken":true}"#,
    ]);
    let grade = check(&lab, 1);
    assert_eq!(grade.lab, "12", "the current lab is still there to check");
    let diagnoses: Vec<_> = grade
        .checks
        .iter()
        .flat_map(|c| &c.problems)
        .flat_map(|p| &p.observed.diagnosis)
        .collect();
    assert!(
        diagnoses
            .iter()
            .any(|d| d.object == "Pod monitoring/metrics" && d.field == "spec.volumes"),
        "{diagnoses:#?}"
    );
    assert!(
        !diagnoses
            .iter()
            .any(|d| d.message.contains("nothing grants")),
        "{diagnoses:#?}"
    );
    // The file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(lab.state_root.path().join("progress.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_student_does_lab_02_by_hand_in_a_real_terminal() {
    let lab = Lab::new();
    let work = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("kubelab");
    let path = format!(
        "{}:{}:{}",
        bin.parent().unwrap().display(),
        assets_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let terminal = Terminal::new(
        "kubelab-student",
        work.path(),
        &[
            ("PATH", path),
            (
                "KUBELAB_STATE_DIR",
                lab.state_root.path().display().to_string(),
            ),
        ],
    );
    let slow = Duration::from_secs(120);
    let quick = Duration::from_secs(30);

    // The first command starts the cluster too, and prints the task.
    let screen = terminal.run("kubelab start 02", slow);
    // Taken down when the test ends, pass or fail.
    let kubeconfig = lab.state_root.path().join("kubelab/kubeconfig");
    let _cluster = Cluster {
        lab: &lab,
        kubeconfig: kubeconfig.clone(),
    };
    assert!(
        screen.contains("Lab 02 · A custom ServiceAccount with a Role"),
        "{screen}"
    );
    assert!(
        screen.contains("Give it a ServiceAccount named"),
        "{screen}"
    );
    // The student copies the line kubelab printed.
    let export = screen
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("export KUBECONFIG="))
        .unwrap_or_else(|| panic!("no export line:\n{screen}"))
        .to_string();
    assert_eq!(
        export,
        format!("export KUBECONFIG={}", kubeconfig.display())
    );
    terminal.run(&export, quick);

    // Half the work: the RBAC objects, but the pod still runs as default.
    terminal.run("kubectl create serviceaccount tokendemo", quick);
    terminal.run(
        "kubectl create role pod-reader --verb=get,list,watch --resource=pods",
        quick,
    );
    terminal.run(
        "kubectl create rolebinding read-pods --role=pod-reader --serviceaccount=default:tokendemo",
        quick,
    );
    let screen = terminal.run("kubelab check", quick);
    assert!(
        screen.contains("✓ ServiceAccount tokendemo exists in default"),
        "{screen}"
    );
    assert!(
        screen.contains("✗ pod mydemo runs as tokendemo"),
        "{screen}"
    );
    assert!(
        screen.contains("wrong: Pod default/mydemo spec.serviceAccountName: Pod default/mydemo runs as ServiceAccount default"),
        "{screen}"
    );
    assert!(screen.contains("1/6 points"), "{screen}");

    let screen = terminal.run("kubelab hint", quick);
    assert!(screen.contains("Hint 1 of 3"), "{screen}");
    let screen = terminal.run("kubelab hint", quick);
    assert!(screen.contains("Hint 2 of 3"), "{screen}");

    // The pod again, as the ServiceAccount.
    terminal.run("kubectl delete pod mydemo --wait", quick);
    terminal.run(
        r#"kubectl run mydemo --image=curlimages/curl:8.11.1 --overrides='{"spec":{"serviceAccountName":"tokendemo","terminationGracePeriodSeconds":1}}' --command -- sleep 86400"#,
        quick,
    );
    let screen = terminal.run("kubelab check; echo \"exit=$?\"", quick);
    assert!(
        screen.contains("Done: all 4 checks pass: 6/6 points. Lab 02 solved ("),
        "{screen}"
    );
    assert!(screen.contains("exit=0"), "{screen}");

    // In the pod's shell (here its stand-in: no node), the seed text's curl works.
    let prompts = terminal.screen().matches("student$ ").count();
    terminal.type_line("kubelab shell");
    terminal.wait_for("mydemo (stand-in) $ ", quick);
    terminal.type_line(
        r#"curl -s --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt -H "Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)" https://kubernetes.default.svc/api/v1/namespaces/default/pods | grep -c '"kind": "PodList"'"#,
    );
    terminal.type_line("hostname; exit");
    let screen = terminal.wait_for_nth("student$ ", prompts + 1, quick);
    assert!(
        screen.contains("no node runs pod default/mydemo: this shell is its stand-in"),
        "{screen}"
    );
    let after_shell = &screen[screen.rfind("mydemo (stand-in) $ ").unwrap()..];
    assert!(screen.contains("\n1\n"), "{screen}");
    assert!(after_shell.contains("mydemo"), "{screen}");

    let screen = terminal.run("kubelab progress", quick);
    let row = screen
        .lines()
        .find(|l| l.contains("seed/02"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(row.contains("solved"), "{row}");
    assert!(!row.contains("with solution"), "{row}");
    assert!(row.contains("6/6"), "{row}");
    assert!(
        screen.contains("1 of 1 started labs solved (1 without the solution)"),
        "{screen}"
    );
}
