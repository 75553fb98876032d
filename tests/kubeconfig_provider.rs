//! The kubeconfig provider against a real cluster (the local control plane, reached
//! only through its kubeconfig): context selection, the confirmation rule, and cleanup
//! of labelled objects only.

mod support;

use std::path::PathBuf;

use support::{Cluster, Lab, stderr, stdout, text};

/// The local cluster's kubeconfig plus a second context, `elsewhere`, made current, that
/// points at nothing: only an explicit --context reaches the real cluster.
fn two_contexts(cluster: &Cluster) -> PathBuf {
    let original = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let merged = original
        .replace("current-context: local-kubelab", "current-context: elsewhere")
        .replace(
            "contexts:\n",
            "contexts:\n- name: elsewhere\n  context:\n    cluster: nowhere\n    user: kubelab-admin\n",
        )
        .replace("clusters:\n", "clusters:\n- name: nowhere\n  cluster:\n    server: https://127.0.0.1:1\n");
    let path = cluster
        .lab
        .state_root
        .path()
        .join("two-contexts.kubeconfig");
    std::fs::write(&path, merged).unwrap();
    path
}

fn kubeconfig_run(lab: &Lab, kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    lab.kubelab()
        .env("KUBELAB_PROVIDER", "kubeconfig")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn without_a_terminal_it_needs_yes_or_an_explicit_context() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let out = kubeconfig_run(&lab, &cluster.kubeconfig, &["run", "01"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("context 'local-kubelab'"), "{err}");
    assert!(
        err.contains(&cluster.status()["server"].as_str().unwrap().to_string()),
        "{err}"
    );
    assert!(
        err.contains("confirm with --yes, or choose the context explicitly with --context"),
        "{err}"
    );
    assert!(
        cluster
            .kubectl_ok(&[
                "get",
                "pods,serviceaccounts,roles",
                "-A",
                "-l",
                "kubelab.dev/lab",
                "-o",
                "name"
            ])
            .is_empty()
    );

    let out = kubeconfig_run(&lab, &cluster.kubeconfig, &["run", "01", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("on kubeconfig"), "{}", text(&out));
    // No node runs pods here, so probes ran on the host for them; a cluster kubelab did
    // not make gets each lab in namespaces of its own.
    assert!(
        stderr(&out).contains("each lab in its own namespaces"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("(on host for pod default-01-"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_explicit_context_is_used_and_counts_as_consent() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let kubeconfig = two_contexts(&cluster);

    // The current context points nowhere: --yes alone goes there, and fails to connect.
    let out = kubeconfig_run(&lab, &kubeconfig, &["run", "01", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("https://127.0.0.1:1"),
        "{}",
        text(&out)
    );

    let out = kubeconfig_run(
        &lab,
        &kubeconfig,
        &[
            "run",
            "02",
            "--context",
            "local-kubelab",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: kubelab::report::RunReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.provider, "kubeconfig");
    assert_eq!(report.server, cluster.status()["server"].as_str().unwrap());

    // --kubeconfig works like KUBECONFIG; an unknown context is named with the known ones.
    let out = lab
        .kubelab()
        .args([
            "run",
            "01",
            "--provider",
            "kubeconfig",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--context",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains("kubeconfig: context 'nope' is not in it (it has: elsewhere, local-kubelab)"),
        "{}",
        text(&out)
    );
}

#[test]
fn it_creates_and_deletes_only_labelled_objects() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    cluster.kubectl_ok(&["-n", "default", "create", "serviceaccount", "users-own"]);
    cluster.kubectl_ok(&[
        "-n",
        "default",
        "create",
        "configmap",
        "users-config",
        "--from-literal=k=v",
    ]);
    // Lab 07 makes a ClusterRole: on a cluster kubelab did not make, that needs consent,
    // and without it nothing changes.
    let out = kubeconfig_run(
        &lab,
        &cluster.kubeconfig,
        &["run", "--context", "local-kubelab"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("these labs create cluster-wide objects on https://127.0.0.1:"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("  lab 07: ClusterRole "),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("confirm with --allow-cluster-wide"),
        "{}",
        text(&out)
    );
    let made = cluster.kubectl_ok(&[
        "get",
        "namespaces,clusterroles",
        "-l",
        "kubelab.dev/lab",
        "-o",
        "name",
    ]);
    assert_eq!(made.trim(), "", "nothing is made without consent");
    let out = kubeconfig_run(
        &lab,
        &cluster.kubeconfig,
        &["run", "--context", "local-kubelab", "--allow-cluster-wide"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    cluster.kubectl_ok(&["-n", "default", "get", "serviceaccount", "users-own"]);
    cluster.kubectl_ok(&["-n", "default", "get", "configmap", "users-config"]);
    let left = cluster.kubectl_ok(&[
        "get",
        "pods,serviceaccounts,roles,rolebindings,secrets,deployments,namespaces",
        "-A",
        "-l",
        "kubelab.dev/lab",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "{left}");
    // The cluster was not kubelab's to stop.
    assert!(cluster.kubectl(&["get", "namespaces"]).status.success());
}

#[test]
fn exec_in_pods_needs_a_node() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let out = kubeconfig_run(
        &lab,
        &cluster.kubeconfig,
        &["run", "01", "--yes", "--exec", "pod"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stderr(&out).contains("no node of"), "{}", text(&out));
    assert!(stderr(&out).contains("use --exec host"), "{}", text(&out));
}

#[test]
fn kubeconfig_flags_belong_to_the_kubeconfig_provider() {
    let lab = Lab::new();
    let out = lab.run(&["run", "01", "--provider", "local", "--context", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("--kubeconfig and --context are for --provider kubeconfig"),
        "{}",
        text(&out)
    );
    let out = lab.run(&["cluster", "up", "--provider", "kubeconfig"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("nothing to start"), "{}", text(&out));
}

/// kubectl's rule for every command that talks to a cluster: --kubeconfig and
/// --context, else KUBECONFIG, else kubelab's own cluster. Two clusters run; the
/// environment's own local cluster is not the one KUBECONFIG names.
#[test]
fn why_and_check_ask_the_cluster_kubeconfig_names_not_the_running_local_one() {
    let here = Lab::new();
    let local = here.up(&[]);
    let there = Lab::new();
    let elsewhere = there.up(&[]);
    // Only the cluster KUBECONFIG names lets the ServiceAccount list pods.
    elsewhere.kubectl_ok(&[
        "create",
        "rolebinding",
        "can-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ]);
    let why = |env_kubeconfig: Option<&std::path::Path>, extra: &[&str]| {
        let mut command = here.kubelab();
        command
            .env_remove("KUBELAB_PROVIDER")
            .env_remove("KUBECONFIG");
        if let Some(path) = env_kubeconfig {
            command.env("KUBECONFIG", path);
        }
        command
            .args([
                "why",
                "--as",
                "system:serviceaccount:default:default",
                "GET",
                "/api/v1/namespaces/default/pods",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // KUBECONFIG names the other cluster: asked there, allowed.
    let out = why(Some(&elsewhere.kubeconfig), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let server = elsewhere.status()["server"].as_str().unwrap().to_string();
    assert!(stderr(&out).contains(&server), "{}", text(&out));
    assert!(
        stdout(&out).contains("RoleBinding default/can-view"),
        "{}",
        text(&out)
    );
    // --kubeconfig beats KUBECONFIG, as with kubectl.
    let out = why(
        Some(&elsewhere.kubeconfig),
        &["--kubeconfig", local.kubeconfig.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Nothing named: this environment's own local cluster, where it is denied.
    let out = why(None, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let own = local.status()["server"].as_str().unwrap().to_string();
    assert!(stderr(&out).contains(&own), "{}", text(&out));
    // KUBECONFIG at this environment's own local kubeconfig: that local cluster.
    let out = why(Some(&local.kubeconfig), &[]);
    assert!(
        stderr(&out).contains(&format!("the local cluster at {own}")),
        "{}",
        text(&out)
    );

    // A lab started on the local cluster is checked there; KUBECONFIG pointing at
    // another cluster is refused by name, not silently used.
    let out = here.run(&["start", "03"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = here
        .kubelab()
        .env_remove("KUBELAB_PROVIDER")
        .env("KUBECONFIG", &elsewhere.kubeconfig)
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "lab 03 was started on the local cluster 'kubelab' ({own}), but the flags or KUBECONFIG name the cluster at {server}"
        )),
        "{}",
        text(&out)
    );
    let out = here
        .kubelab()
        .env_remove("KUBELAB_PROVIDER")
        .env("KUBECONFIG", &local.kubeconfig)
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the lab's own cluster: {}",
        text(&out)
    );

    // A lab on a cluster kubelab did not make: reset lists what it would delete and
    // needs consent (here no terminal: --yes).
    let on_elsewhere = |args: &[&str]| {
        here.kubelab()
            .env_remove("KUBELAB_PROVIDER")
            .env_remove("KUBECONFIG")
            .args(args)
            .output()
            .unwrap()
    };
    let kubeconfig = elsewhere.kubeconfig.to_str().unwrap();
    let out = on_elsewhere(&["start", "05", "--kubeconfig", kubeconfig, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = on_elsewhere(&["reset", "05"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("which kubelab did not make; this removes what was made in its namespaces since the lab started: Pod quiet-workloads/pure-workload, Pod quiet-workloads/sa-optout, ServiceAccount quiet-workloads/no-api. Confirm with --yes"),
        "{}",
        text(&out)
    );
    let out = on_elsewhere(&["reset", "05", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = on_elsewhere(&["check", "05"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// A run killed outright (SIGKILL: no cleanup) leaves its objects and its Lease; the
/// next run lists them and removes nothing without consent; `--remove-leftovers` (or a
/// yes on the terminal) removes exactly those. (Live Leases: unit tests in liveness.rs.)
#[test]
fn what_a_killed_run_left_is_offered_for_removal_and_removed_only_with_consent() {
    use std::io::{BufRead, BufReader};
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let mut killed = lab
        .kubelab()
        .env("KUBELAB_PROVIDER", "kubeconfig")
        .env("KUBECONFIG", &cluster.kubeconfig)
        // SIGKILL leaves its temporary files: kept out of the TMPDIR the Lab checks.
        .env("TMPDIR", lab.state_root.path())
        .args(["run", "--yes", "--no-isolate", "02"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut run_id = String::new();
    for line in BufReader::new(killed.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("run ") {
            run_id = rest.split(':').next().unwrap().to_string();
        }
        if line.contains('✓') && line.contains("applied") {
            break;
        }
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_eq!(run_id.len(), 8, "no run id seen");
    let selector = format!("kubelab.dev/run={run_id}");
    let left = |cluster: &Cluster| {
        cluster.kubectl_ok(&[
            "get",
            "serviceaccounts,roles,rolebindings,pods,namespaces,leases",
            "-A",
            "-l",
            &selector,
            "-o",
            "name",
        ])
    };
    let before = left(&cluster);
    assert!(
        before.contains("lease.coordination.k8s.io/kubelab-run-"),
        "{before}"
    );
    assert!(
        before.lines().count() >= 2,
        "objects besides the Lease: {before}"
    );

    // Without a terminal and without the flag: listed, not removed; the run goes on.
    let out = kubeconfig_run(&lab, &cluster.kubeconfig, &["run", "--yes", "01"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("run {run_id} (kubelab@")), "{err}");
    assert!(
        err.contains("`kubelab run --remove-leftovers` removes them"),
        "{err}"
    );
    assert_eq!(left(&cluster), before, "nothing removed without consent");

    // On a terminal it asks: "n" keeps them, and Ctrl-C at the question is a no that
    // ends kubelab with 130.
    let path = format!(
        "{}:{}",
        assert_cmd::cargo::cargo_bin("kubelab")
            .parent()
            .unwrap()
            .display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let terminal = support::terminal::Terminal::new(
        "kubelab-leftovers",
        lab.state_root.path(),
        &[
            ("PATH", path),
            (
                "KUBELAB_STATE_DIR",
                lab.state_root.path().display().to_string(),
            ),
            ("KUBELAB_PROVIDER", "kubeconfig".into()),
            ("KUBECONFIG", cluster.kubeconfig.display().to_string()),
        ],
    );
    let wait = std::time::Duration::from_secs(60);
    terminal.type_line("kubelab run --yes 01; echo \"exit $?\"");
    let screen = terminal.wait_for("Remove them? [y/N]", wait);
    assert!(
        screen.contains(&format!("run {run_id} (kubelab@")),
        "{screen}"
    );
    terminal.type_line("n");
    terminal.wait_for("exit 0", wait);
    assert_eq!(left(&cluster), before, "a no keeps them");
    terminal.type_line("kubelab run --yes 01; echo \"exit $?\"");
    terminal.wait_for_nth("Remove them? [y/N]", 2, wait);
    terminal.press("C-c");
    terminal.wait_for("exit 130", wait);
    assert_eq!(left(&cluster), before, "Ctrl-C keeps them");

    let out = kubeconfig_run(
        &lab,
        &cluster.kubeconfig,
        &["run", "--yes", "--remove-leftovers", "01"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("that 1 crashed runs left"),
        "{}",
        text(&out)
    );
    assert_eq!(left(&cluster).trim(), "", "{}", text(&out));
    // Each finished run removed its own Lease.
    let leases = cluster.kubectl_ok(&["get", "leases", "-n", "default", "-o", "name"]);
    assert!(!leases.contains("kubelab-run-"), "{leases}");
}

/// A lab that binds cluster-admin: on someone else's cluster it is named for what it
/// grants, and nothing is created without consent.
#[test]
fn a_lab_granting_cluster_admin_is_named_and_needs_consent() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let dir = format!(
        "{}/tests/fixtures/hostile/grants-cluster-admin",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = kubeconfig_run(&lab, &cluster.kubeconfig, &["run", "--yes", "--dir", &dir]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("  lab takeover: ClusterRoleBinding takeover-everything-takeover-")
            && stderr(&out).contains(" (grants cluster-admin: everything, everywhere)"),
        "{}",
        text(&out)
    );
    let made = support::labelled_with(&cluster.kubeconfig, "kubelab.dev/lab=takeover");
    assert!(made.is_empty(), "made without consent: {made:?}");
    let bindings = cluster.kubectl_ok(&["get", "clusterrolebindings", "-o", "name"]);
    assert!(!bindings.contains("takeover"), "{bindings}");
}
