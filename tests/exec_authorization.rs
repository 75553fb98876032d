//! kubelab's own identity and pods/exec, against the real apiserver: without `create`
//! on pods/exec (Kubernetes 1.35 checks it for the websocket exec kubelab uses) the exec
//! is denied, and kubelab reports that as its own problem, not as a probe result.

mod support;

use kubelab::probe::Error;
use kubelab::probe::exec;
use support::Lab;

/// A kubeconfig for ServiceAccount `account` (a real token from a TokenRequest).
fn kubeconfig_for(cluster: &support::Cluster, account: &str) -> std::path::PathBuf {
    let admin = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let field = |name: &str| {
        admin
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap()
            .to_string()
    };
    let token = cluster.kubectl_ok(&["-n", "default", "create", "token", account]);
    let path = cluster
        .lab
        .state_root
        .path()
        .join(format!("{account}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
            field("server"),
            field("certificate-authority-data"),
            token.trim()
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_needs_get_and_create_on_pods_exec_and_a_denial_is_kubelabs_problem() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    cluster.kubectl_ok(&[
        "-n",
        "default",
        "run",
        "target",
        "--image=curlimages/curl:8.11.1",
        "--",
        "sleep",
        "60",
    ]);
    for (account, verbs) in [
        ("exec-none", ""),
        ("exec-get-only", "get"),
        ("exec-both", "get,create"),
    ] {
        cluster.kubectl_ok(&["-n", "default", "create", "serviceaccount", account]);
        cluster.kubectl_ok(&[
            "-n",
            "default",
            "create",
            "role",
            account,
            "--verb=get",
            "--resource=pods",
        ]);
        if !verbs.is_empty() {
            let role = format!("{account}-exec");
            cluster.kubectl_ok(&[
                "-n",
                "default",
                "create",
                "role",
                &role,
                &format!("--verb={verbs}"),
                "--resource=pods/exec",
            ]);
            cluster.kubectl_ok(&[
                "-n",
                "default",
                "create",
                "rolebinding",
                &role,
                &format!("--role={role}"),
                &format!("--serviceaccount=default:{account}"),
            ]);
        }
        cluster.kubectl_ok(&[
            "-n",
            "default",
            "create",
            "rolebinding",
            account,
            &format!("--role={account}"),
            &format!("--serviceaccount=default:{account}"),
        ]);
    }
    let command = vec!["true".to_string()];
    let run = |account: &'static str| {
        let path = kubeconfig_for(&cluster, account);
        let command = command.clone();
        async move {
            let client = kubelab::cluster::kubeconfig::client(&path).await.unwrap();
            exec::run(&client, "default", "target", None, &command).await
        }
    };

    for (account, lacks) in [("exec-none", "get or create"), ("exec-get-only", "create")] {
        match run(account).await {
            Err(Error::ExecDenied(message)) => {
                // The apiserver's own words, then who kubelab is and what it lacks.
                assert!(
                    message.starts_with("pods \"target\" is forbidden"),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("kubelab acts as system:serviceaccount:default:{account}, which may not {lacks} pods/exec")),
                    "{message}"
                );
                assert!(
                    message
                        .contains("kubelab's own identity needs `create` and `get` on pods/exec"),
                    "{message}"
                );
            }
            Err(other) => panic!("{account}: expected a denial, got {other}"),
            Ok(_) => panic!("{account}: exec was allowed"),
        }
    }
    // With both verbs authorization passes; the pod has no node, so the exec itself fails.
    match run("exec-both").await {
        Err(Error::ExecDenied(message)) => panic!("exec-both was denied: {message}"),
        Err(other) => assert!(
            other.to_string().contains("exec in pod default/target"),
            "{other}"
        ),
        Ok(_) => panic!("a pod without a node cannot run a command"),
    }
}
