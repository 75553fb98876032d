//! The command line without a cluster: help, usage errors, and the errors a user meets
//! before anything can start.

mod support;

use support::{Lab, stderr, stdout, text};

#[test]
fn help_names_the_cluster_commands_and_the_exit_codes() {
    let out = Lab::new().run(&["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    assert!(help.contains("cluster"), "{help}");
    assert!(
        help.contains("Exit codes: 0 ok, 1 a check failed, 2 usage or lab error"),
        "{help}"
    );

    let out = Lab::new().run(&["cluster", "up", "--help"]);
    let help = stdout(&out);
    for flag in [
        "--provider",
        "--wait-timeout",
        "--port",
        "--apiserver-arg",
        "--name",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
}

#[test]
fn version_names_the_upstream_versions() {
    let out = Lab::new().run(&["--version"]);
    assert!(
        stdout(&out).contains(env!("KUBELAB_KUBERNETES_VERSION")),
        "{}",
        text(&out)
    );
}

#[test]
fn unknown_flags_and_bad_values_are_usage_errors() {
    let lab = Lab::new();
    let out = lab.run(&["cluster", "up", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("unexpected argument '--no-such-flag'"),
        "{}",
        text(&out)
    );

    let out = lab.run(&["cluster", "up", "--wait-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("not a duration"), "{}", text(&out));

    let out = lab.run(&["cluster", "down", "--name", "../etc"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = lab.run(&["cluster", "up", "--provider", "minikube"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn down_with_nothing_running_succeeds_and_says_so() {
    let out = Lab::new().run(&["cluster", "down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("nothing to stop"), "{}", text(&out));
}

#[test]
fn status_and_kubeconfig_without_a_cluster_say_how_to_start_one() {
    let lab = Lab::new();
    for args in [&["cluster", "status"][..], &["cluster", "kubeconfig"][..]] {
        let out = lab.run(args);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(
            stderr(&out).contains("kubelab cluster up"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn missing_binaries_name_each_one_and_what_to_set() {
    let lab = Lab::new();
    let empty = tempfile::tempdir().unwrap();
    let out = lab
        .kubelab()
        .env("KUBELAB_ASSETS", empty.path())
        .args(["cluster", "up"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    for binary in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kubectl",
    ] {
        assert!(err.contains(binary), "{binary} not named:\n{err}");
    }
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
    assert!(err.contains("KUBELAB_ASSETS"), "{err}");
    assert!(
        !lab.state_root.path().join("kubelab").exists(),
        "nothing may be created"
    );
}

#[test]
fn without_go_or_binaries_the_hint_says_to_install_go_or_set_assets() {
    let lab = Lab::new();
    let empty_cache = tempfile::tempdir().unwrap();
    let out = lab
        .kubelab()
        .env_remove("KUBELAB_ASSETS")
        .env_remove("KUBEBUILDER_ASSETS")
        .env("KUBELAB_CACHE", empty_cache.path())
        .env("PATH", "/nonexistent")
        .args(["cluster", "up"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("Go is not installed"), "{err}");
    assert!(err.contains("controlplane/build.sh"), "{err}");
    assert!(err.contains("set KUBELAB_ASSETS"), "{err}");
}
