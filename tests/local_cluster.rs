//! The local provider against the real upstream processes it starts.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Lab, jwt_claims, port_is_free, stderr, text};

fn pids(status: &serde_json::Value) -> Vec<u32> {
    status["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pid"].as_u64().unwrap() as u32)
        .collect()
}

fn ports(status: &serde_json::Value) -> Vec<u16> {
    status["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["port"].as_u64().unwrap() as u16)
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

#[test]
fn the_local_control_plane_gives_pods_what_the_labs_are_about() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);

    // The real apiserver, at the pinned version.
    let version = cluster.kubectl_json(&["version"]);
    assert_eq!(
        version["serverVersion"]["gitVersion"],
        env!("KUBELAB_KUBERNETES_VERSION")
    );
    let namespaces = cluster.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    for ns in [
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
    ] {
        assert!(namespaces.contains(ns), "{ns} missing from:\n{namespaces}");
    }

    // RBAC is on: the default ServiceAccount may not list pods.
    let can_i = cluster.kubectl(&[
        "auth",
        "can-i",
        "list",
        "pods",
        "--as=system:serviceaccount:default:default",
        "-n",
        "default",
    ]);
    assert_eq!(support::stdout(&can_i).trim(), "no", "{}", text(&can_i));
    assert_eq!(can_i.status.code(), Some(1));

    // The serviceaccount controller gives a new namespace its `default` ServiceAccount.
    cluster.kubectl_ok(&["create", "namespace", "swan"]);
    wait_for(
        "ServiceAccount swan/default",
        Duration::from_secs(10),
        || {
            cluster
                .kubectl(&["-n", "swan", "get", "serviceaccount", "default"])
                .status
                .success()
        },
    );

    // ServiceAccount admission injects the projected token volume into a new pod.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"probe","namespace":"swan"},
        "spec":{"containers":[{"name":"c","image":"curlimages/curl:8.11.1"}]}}"#;
    let path = lab.state_root.path().join("pod.json");
    std::fs::write(&path, pod).unwrap();
    cluster.kubectl_ok(&["create", "-f", path.to_str().unwrap()]);
    let pod = cluster.kubectl_json(&["-n", "swan", "get", "pod", "probe"]);
    assert_eq!(
        pod["status"]["phase"], "Pending",
        "there is no node to run it"
    );
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str().unwrap().starts_with("kube-api-access-"))
        .unwrap_or_else(|| panic!("no kube-api-access-* volume in {pod}"));
    let sources = volume["projected"]["sources"].as_array().unwrap();
    assert_eq!(sources[0]["serviceAccountToken"]["path"], "token");
    assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
    assert_eq!(sources[1]["configMap"]["items"][0]["key"], "ca.crt");
    assert_eq!(
        sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );

    // A TokenRequest bound to that pod yields a token whose claims name pod and SA.
    let token = cluster.kubectl_ok(&[
        "-n",
        "swan",
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=probe",
    ]);
    let claims = jwt_claims(&token);
    assert_eq!(claims["sub"], "system:serviceaccount:swan:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "probe");
    assert_eq!(
        claims["kubernetes.io"]["pod"]["uid"],
        pod["metadata"]["uid"]
    );
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "default");
    assert_eq!(
        claims["iss"],
        "https://kubernetes.default.svc.cluster.local"
    );

    // The namespace controller finishes a deletion.
    let started = Instant::now();
    cluster.kubectl_ok(&[
        "delete",
        "namespace",
        "swan",
        "--wait=true",
        "--timeout=30s",
    ]);
    wait_for(
        "namespace swan gone",
        Duration::from_secs(30).saturating_sub(started.elapsed()),
        || {
            !cluster
                .kubectl(&["get", "namespace", "swan"])
                .status
                .success()
        },
    );

    // `down` stops every process and frees every port.
    let status = cluster.status();
    let (pids, ports) = (pids(&status), ports(&status));
    assert_eq!(pids.len(), 3, "{status}");
    let out = lab.run(&["cluster", "down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        lab.processes().is_empty(),
        "left running: {:?}",
        lab.processes()
    );
    for pid in pids {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit_once(") ").unwrap().1.starts_with('Z'))
            .unwrap_or(false);
        assert!(!alive, "pid {pid} still runs");
    }
    for port in ports {
        assert!(port_is_free(port), "port {port} still taken");
    }
    assert!(
        !lab.state_root.path().join("kubelab").exists(),
        "state left behind"
    );
}

#[test]
fn a_second_up_reuses_a_healthy_cluster_and_replaces_a_dead_one() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let first = pids(&cluster.status());

    let again = lab.run(&["cluster", "up"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(stderr(&again).contains("reusing"), "{}", text(&again));
    assert_eq!(
        pids(&cluster.status()),
        first,
        "a healthy cluster is kept as it is"
    );

    // Kill the apiserver behind kubelab's back: the cluster is no longer healthy.
    kill(Pid::from_raw(first[1] as i32), Signal::SIGKILL).unwrap();
    // kill returns before the process is dead: wait until the kernel says so (gone, or
    // a zombie init has not reaped yet).
    let stat = format!("/proc/{}/stat", first[1]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(&stat).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the apiserver survived SIGKILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = lab.run(&["cluster", "status"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    assert!(
        support::stdout(&status).contains("exited"),
        "{}",
        text(&status)
    );

    let replaced = lab.run(&["cluster", "up", "--wait-timeout", "180s"]);
    assert!(replaced.status.success(), "{}", text(&replaced));
    assert!(
        stderr(&replaced).contains("replacing"),
        "{}",
        text(&replaced)
    );
    let second = pids(&cluster.status());
    assert!(
        second.iter().all(|pid| !first.contains(pid)),
        "{first:?} vs {second:?}"
    );
    assert!(
        cluster
            .kubectl(&["get", "namespace", "default"])
            .status
            .success()
    );
    // Only the new cluster's three processes remain.
    assert_eq!(lab.processes().len(), 3, "{:?}", lab.processes());
}

#[test]
fn a_component_that_exits_during_start_is_shown_with_its_log_and_nothing_is_left() {
    let lab = Lab::new();
    let out = lab.run(&["cluster", "up", "--apiserver-arg=--no-such-flag"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("kube-apiserver exited during start"), "{err}");
    // The apiserver's own words, from the last lines of its log.
    assert!(err.contains("unknown flag: --no-such-flag"), "{err}");
    assert!(err.contains("kube-apiserver.log"), "{err}");
    assert!(
        lab.processes().is_empty(),
        "etcd left running: {:?}",
        lab.processes()
    );
    assert!(!lab.state_root.path().join("kubelab").exists());
}

#[test]
fn a_readiness_timeout_is_reported_and_stops_what_was_started() {
    let lab = Lab::new();
    let out = lab.run(&["cluster", "up", "--wait-timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("not ready after 0.2s"), "{err}");
    assert!(err.contains("--wait-timeout"), "{err}");
    assert!(
        lab.processes().is_empty(),
        "left running: {:?}",
        lab.processes()
    );
    assert!(!lab.state_root.path().join("kubelab").exists());
}

#[test]
fn a_port_in_use_is_refused_before_anything_starts() {
    let lab = Lab::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = lab.run(&["cluster", "up", "--port", &port]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("port 127.0.0.1:{port} is already in use")),
        "{}",
        text(&out)
    );
    assert!(lab.processes().is_empty());
    assert!(!lab.state_root.path().join("kubelab").exists());
}

#[test]
fn an_interrupted_up_removes_what_it_started() {
    let lab = Lab::new();
    // Interrupt once etcd is up and the apiserver is starting.
    let (code, seen, rest) = lab.interrupt_when(
        &["cluster", "up", "--wait-timeout", "180s"],
        |line| line.contains("etcd") && line.contains("ready"),
        |seen| {
            assert!(
                !lab.processes().is_empty(),
                "etcd should run by now: {seen:?}"
            )
        },
    );
    assert_eq!(code, Some(130), "{seen:?} {rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    assert!(
        lab.processes().is_empty(),
        "left running: {:?}",
        lab.processes()
    );
    assert!(!lab.state_root.path().join("kubelab").exists());
}

#[test]
fn kubebuilder_assets_work_with_the_controller_manager_from_the_cache() {
    // setup-envtest's layout: etcd, kube-apiserver and kubectl, but no controller manager.
    let envtest = tempfile::tempdir().unwrap();
    let assets = support::assets_dir();
    for binary in ["etcd", "kube-apiserver", "kubectl"] {
        std::os::unix::fs::symlink(assets.join(binary), envtest.path().join(binary)).unwrap();
    }
    let lab = Lab::new();
    let out = lab
        .kubelab()
        .env_remove("KUBELAB_ASSETS")
        .env("KUBEBUILDER_ASSETS", envtest.path())
        .args(["cluster", "up", "--wait-timeout", "180s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let processes = lab.processes();
    let apiserver = envtest.path().join("kube-apiserver").display().to_string();
    assert!(
        processes.iter().any(|(_, cmd)| cmd.starts_with(&apiserver)),
        "{processes:?}"
    );
    let down = lab.run(&["cluster", "down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(lab.processes().is_empty());
}
