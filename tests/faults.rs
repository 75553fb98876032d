//! Components that fail under a run, on the real local control plane: a killed API
//! server or etcd ends the run with exit 3 and a message naming the server, what was
//! being done and what to do next; a namespace that cannot go is named with what holds
//! it; a later `cluster up` recovers; a lab whose task panics leaves nothing behind.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Cluster, Lab, stderr, text};

fn labelled(cluster: &Cluster, selector: &str) -> Vec<String> {
    support::labelled_with(&cluster.kubeconfig, selector)
}

fn component_pid(cluster: &Cluster, name: &str) -> i32 {
    let status = cluster.status();
    status["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status}"))["pid"]
        .as_i64()
        .unwrap() as i32
}

/// SIGKILL, then wait until the kernel says the process is gone (or a zombie).
fn kill_dead(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let stat = format!("/proc/{pid}/stat");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&stat).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    }) {
        assert!(Instant::now() < deadline, "{pid} survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `command` and reads its stderr until a line satisfies `when`; returns the
/// child, the lines so far, and the rest of stderr as it comes.
fn run_until(
    mut command: std::process::Command,
    when: impl Fn(&str) -> bool,
) -> (Child, Vec<String>, impl Iterator<Item = String>) {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(|l| l.unwrap());
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let hit = when(&line);
        seen.push(line);
        if hit {
            break;
        }
    }
    (child, seen, lines)
}

/// Kills `component` once the run has applied a step, and returns the exit code, how
/// long the run took to end after the kill, and everything the run printed.
fn kill_mid_run(lab: &Lab, cluster: &Cluster, component: &str) -> (Option<i32>, Duration, String) {
    let pid = component_pid(cluster, component);
    let mut command = lab.kubelab();
    command.args(["run", "--jobs", "2"]).stdout(Stdio::null());
    let (mut child, seen, rest) = run_until(command, |line| {
        line.contains('✓') && line.contains("applied")
    });
    kill_dead(pid);
    let killed = Instant::now();
    let rest: Vec<String> = rest.collect();
    let status = child.wait().unwrap();
    let code = status.code();
    let mut all = [seen, rest].concat().join("\n");
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        all.push_str(&format!("\n(killed by signal {signal})"));
    }
    (code, killed.elapsed(), all)
}

#[test]
fn a_killed_api_server_ends_the_run_with_exit_3_naming_the_server_and_the_next_step() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let (code, took, said) = kill_mid_run(&lab, &cluster, "kube-apiserver");
    assert_eq!(code, Some(3), "{said}");
    assert!(
        took < Duration::from_secs(30),
        "ended {took:?} after the kill"
    );
    let error = said
        .lines()
        .skip_while(|l| !l.starts_with("error: "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        error.starts_with("error: the API server at https://127.0.0.1:"),
        "{said}"
    );
    assert!(
        error.contains("stopped serving while kubelab was at lab "),
        "{error}"
    );
    assert!(error.contains("the server: GET /readyz"), "{error}");
    assert!(error.contains("next: `kubelab cluster status`"), "{error}");
    // What the run could not remove is named by its label.
    assert!(
        error.contains("objects this run made are still there, labelled kubelab.dev/run="),
        "{error}"
    );
    // A later `cluster up` replaces the dead cluster, and labs run again.
    let up = lab.run(&["cluster", "up", "--wait-timeout", "180s"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(stderr(&up).contains("replacing"), "{}", text(&up));
    let again = lab.run(&["run", "01", "02"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

#[test]
fn a_killed_etcd_ends_the_run_with_exit_3_naming_the_storage() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let (code, took, said) = kill_mid_run(&lab, &cluster, "etcd");
    assert_eq!(code, Some(3), "{said}");
    // The API server answers without its storage only after its own timeouts.
    assert!(
        took < Duration::from_secs(120),
        "ended {took:?} after the kill"
    );
    assert!(
        said.contains("error: the API server at https://127.0.0.1:"),
        "{said}"
    );
    assert!(said.contains("the server: GET /readyz: 500"), "{said}");
    assert!(said.contains("etcd failed"), "{said}");
    let up = lab.run(&["cluster", "up", "--wait-timeout", "180s"]);
    assert!(up.status.success(), "{}", text(&up));
    let again = lab.run(&["run", "01"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

fn held_namespace_dir() -> String {
    format!(
        "{}/tests/fixtures/faults/held-namespace",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Lets the held namespace go: the finalizer on the ConfigMap is removed.
fn release(cluster: &Cluster) {
    let _ = cluster.kubectl(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "fault-held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}

#[test]
fn a_namespace_that_cannot_go_times_out_naming_the_namespace_and_its_conditions() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let dir = held_namespace_dir();
    let out = lab.run(&["run", "--dir", &dir, "--cleanup-timeout", "12s"]);
    release(&cluster);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("Namespace fault-held: not deleted after 12.0s"),
        "{said}"
    );
    assert!(said.contains("finalizers kubernetes"), "{said}");
    // The namespace controller said why: content with finalizers remains.
    assert!(said.contains("NamespaceFinalizersRemaining"), "{said}");
    assert!(said.contains("kubelab.dev/test-hold"), "{said}");
}

#[test]
fn without_the_controller_manager_a_held_namespace_times_out_saying_no_controller_reported() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let dir = held_namespace_dir();
    // Through the kubeconfig: a local `run` would replace the broken cluster first.
    let run = [
        "run",
        "--yes",
        "--no-isolate",
        "--dir",
        &dir,
        "--cleanup-timeout",
        "5s",
    ];
    let through_kubeconfig = |lab: &Lab| {
        let mut command = lab.kubelab();
        command
            .env("KUBELAB_PROVIDER", "kubeconfig")
            .env("KUBECONFIG", &cluster.kubeconfig);
        command
    };
    // The controller manager dies once the pod made its ConfigMap.
    let mut command = through_kubeconfig(&lab);
    command.args(run).stdout(Stdio::piped());
    let (child, mut said, rest) = run_until(command, |line| {
        line.contains('✓') && line.contains("holds the namespace")
    });
    kill_dead(component_pid(&cluster, "kube-controller-manager"));
    let killed = Instant::now();
    said.extend(rest);
    let out = child.wait_with_output().unwrap();
    let took = killed.elapsed();
    release(&cluster);
    let said = format!("{}\n{}", said.join("\n"), support::stdout(&out));
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        said.contains("Namespace fault-held: not deleted after 5.0s"),
        "{said}"
    );
    assert!(said.contains("spec.finalizers kubernetes"), "{said}");
    assert!(
        said.contains("no conditions: the namespace controller has not reported on it (is kube-controller-manager running?)"),
        "{said}"
    );
    // With the controller manager still dead, a lab's pod in a new namespace has no
    // ServiceAccount: kubelab says what is missing and who makes it.
    let other = format!(
        "{}/tests/fixtures/labs/wrong-expectation",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = through_kubeconfig(&lab)
        .args([
            "run",
            "--yes",
            "--no-isolate",
            "--dir",
            &other,
            "--cleanup-timeout",
            "5s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("namespace wrong-expectation has no ServiceAccount \"default\" after 30.0s (kube-controller-manager's serviceaccount controller makes one in every namespace: is it running?)"),
        "{}",
        text(&out)
    );
    // A later `cluster up` sees the dead controller manager and replaces the cluster.
    let up = lab.run(&["cluster", "up", "--wait-timeout", "180s"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(stderr(&up).contains("replacing"), "{}", text(&up));
    assert!(
        !cluster
            .kubectl(&["get", "namespace", "fault-held"])
            .status
            .success(),
        "the new cluster starts empty"
    );
}

#[test]
fn a_lab_whose_task_panics_is_reported_and_what_it_made_is_removed() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let out = lab
        .kubelab()
        .env("KUBELAB_TEST_PANIC_IN_LAB", "02")
        .args(["run", "01", "02", "03", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = stderr(&out);
    assert!(
        said.contains("[02] ✗ kubelab failed inside this lab (a bug, please report it)"),
        "{said}"
    );
    // The other labs ran to their end.
    let report: kubelab::report::RunReport = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes: Vec<(&str, kubelab::report::Outcome)> = report
        .labs
        .iter()
        .map(|l| (l.id.as_str(), l.outcome))
        .collect();
    use kubelab::report::Outcome::{Error, Passed};
    assert_eq!(outcomes, [("01", Passed), ("02", Error), ("03", Passed)]);
    let left = labelled(&cluster, "kubelab.dev/lab");
    assert!(left.is_empty(), "left: {left:?}\n{said}");
}
