//! The kind provider. This machine has no container engine, so the driver is tested
//! against stand-in `kind` and `docker` (or `podman`) executables first on PATH that
//! record their arguments; the real kind binary (built by controlplane/build.sh) is
//! run as far as it goes without an engine.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Lab, stderr, stdout, text};
use tempfile::TempDir;

const CURL: &str = "curlimages/curl:8.11.1";
const KUBECTL: &str = concat!(
    "registry.k8s.io/kubectl:",
    env!("KUBELAB_KUBERNETES_VERSION")
);

/// A directory of stand-in programs and the files they keep.
struct StandIns {
    dir: TempDir,
}

impl StandIns {
    /// `engine` is docker or podman; `present` the images its store holds;
    /// `clusters` the kind clusters that already exist.
    fn new(engine: &str, engine_works: bool, present: &[&str], clusters: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("present"), present.join("\n") + "\n").unwrap();
        std::fs::write(
            root.join("clusters"),
            clusters
                .iter()
                .map(|c| format!("{c}\n"))
                .collect::<String>(),
        )
        .unwrap();
        std::fs::write(root.join("log"), "").unwrap();
        let kind = format!(
            r#"#!/bin/sh
root={root}
echo "kind $*" >> $root/log
case "$1 $2" in
  "get clusters") if [ -s $root/clusters ]; then cat $root/clusters; else echo "No kind clusters found." >&2; fi ;;
  "create cluster")
    name=""; config=""
    while [ $# -gt 0 ]; do case "$1" in --name) name=$2; shift;; --config) config=$2; shift;; esac; shift; done
    cp "$config" $root/config-seen.yaml
    echo "$name" >> $root/clusters ;;
  "delete cluster")
    grep -vx "$4" $root/clusters > $root/clusters.new; mv $root/clusters.new $root/clusters ;;
  "load docker-image") ;;
  *) echo "stand-in kind: unexpected $*" >&2; exit 9 ;;
esac
"#,
            root = root.display()
        );
        let engine_script = format!(
            r#"#!/bin/sh
root={root}
echo "{engine} $*" >> $root/log
case "$1" in
  info) {info} ;;
  image) grep -qx "$3" $root/present ;;
  *) exit 9 ;;
esac
"#,
            root = root.display(),
            info = if engine_works {
                "exit 0"
            } else {
                "echo 'Cannot connect to the engine' >&2; exit 1"
            }
        );
        for (name, script) in [("kind", kind), (engine, engine_script)] {
            let path = root.join(name);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        StandIns { dir }
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn clusters(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clusters")).unwrap()
    }

    /// kubelab with only the stand-ins and the basic tools on PATH.
    fn kubelab(&self, lab: &Lab) -> Command {
        let mut cmd = lab.kubelab();
        cmd.env(
            "PATH",
            format!("{}:/usr/bin:/bin", self.dir.path().display()),
        )
        .env_remove("KIND_EXPERIMENTAL_PROVIDER");
        cmd
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn up_creates_the_cluster_from_kind_config_and_loads_the_images_the_engine_has() {
    let lab = Lab::new();
    let standins = StandIns::new("docker", true, &[CURL], &[]);
    let out = standins
        .kubelab(&lab)
        .args(["cluster", "up", "--provider", "kind", "--name", "demo"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let log = standins.log();
    let create = log
        .iter()
        .find(|l| l.starts_with("kind create cluster"))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(
        create.starts_with("kind create cluster --name demo --config "),
        "{create}"
    );
    assert!(create.ends_with("--wait 5m"), "{create}");
    // The config kind was given is the repository's kind-config.yaml.
    let seen = std::fs::read_to_string(standins.dir.path().join("config-seen.yaml")).unwrap();
    assert_eq!(
        seen,
        std::fs::read_to_string(manifest_dir().join("kind-config.yaml")).unwrap()
    );
    // The curl image is in docker: loaded. The kubectl image is not: left to the registry.
    assert!(
        log.contains(&format!("kind load docker-image {CURL} --name demo")),
        "{log:?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains(&format!("load docker-image {KUBECTL}"))),
        "{log:?}"
    );
    assert!(
        stderr(&out).contains(&format!(
            "not in the local docker (the nodes will pull them): {KUBECTL}"
        )),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("kubectl --context kind-demo get nodes"),
        "{}",
        text(&out)
    );
}

#[test]
fn up_reuses_an_existing_cluster_and_passes_the_node_image() {
    let lab = Lab::new();
    let standins = StandIns::new("docker", true, &[], &["kubelab"]);
    let out = standins
        .kubelab(&lab)
        .args(["cluster", "up", "--provider", "kind"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stderr(&out).contains("kind cluster 'kubelab' exists: reusing it"),
        "{}",
        text(&out)
    );
    assert!(
        !standins.log().iter().any(|l| l.starts_with("kind create")),
        "{:?}",
        standins.log()
    );

    let out = standins
        .kubelab(&lab)
        .args([
            "cluster",
            "up",
            "--provider",
            "kind",
            "--name",
            "pinned",
            "--image",
            "kindest/node:v1.35.0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let log = standins.log();
    let create = log
        .iter()
        .find(|l| l.starts_with("kind create cluster --name pinned"))
        .unwrap();
    assert!(create.ends_with("--image kindest/node:v1.35.0"), "{create}");
}

#[test]
fn down_deletes_only_what_kubelab_created_unless_named() {
    let lab = Lab::new();
    // "kubelab" exists but was made by someone else; "mine" kubelab creates now.
    let standins = StandIns::new("docker", true, &[], &["kubelab"]);
    let up = standins
        .kubelab(&lab)
        .args(["cluster", "up", "--provider", "kind", "--name", "mine"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", text(&up));

    let refused = standins
        .kubelab(&lab)
        .args(["cluster", "down", "--provider", "kind"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(
        stderr(&refused).contains("kind cluster 'kubelab' was not created by kubelab"),
        "{}",
        text(&refused)
    );
    assert!(
        stderr(&refused).contains("kubelab cluster down --provider kind --name kubelab"),
        "{}",
        text(&refused)
    );
    assert!(!standins.log().iter().any(|l| l.starts_with("kind delete")));

    let mine = standins
        .kubelab(&lab)
        .env_remove("KUBELAB_CLUSTER")
        .args(["cluster", "down", "--provider", "kind", "--name", "mine"])
        .output()
        .unwrap();
    assert!(mine.status.success(), "{}", text(&mine));
    assert!(
        standins
            .log()
            .contains(&"kind delete cluster --name mine".to_string())
    );

    // Naming the other cluster explicitly is the user's decision.
    let named = standins
        .kubelab(&lab)
        .args(["cluster", "down", "--provider", "kind", "--name", "kubelab"])
        .output()
        .unwrap();
    assert!(named.status.success(), "{}", text(&named));
    assert!(
        standins
            .log()
            .contains(&"kind delete cluster --name kubelab".to_string())
    );
    assert_eq!(standins.clusters().trim(), "");
}

#[test]
fn kind_experimental_provider_selects_podman() {
    let lab = Lab::new();
    let standins = StandIns::new("podman", true, &[KUBECTL], &[]);
    let out = standins
        .kubelab(&lab)
        .env("KIND_EXPERIMENTAL_PROVIDER", "podman")
        .args(["cluster", "up", "--provider", "kind"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let log = standins.log();
    assert!(log.contains(&"podman info".to_string()), "{log:?}");
    assert!(
        log.contains(&format!("podman image inspect {KUBECTL}")),
        "{log:?}"
    );
    assert!(
        log.contains(&format!("kind load docker-image {KUBECTL} --name kubelab")),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.starts_with("docker")), "{log:?}");
}

#[test]
fn auto_picks_kind_when_kind_and_an_engine_work() {
    let lab = Lab::new();
    let standins = StandIns::new("docker", true, &[], &[]);
    let out = standins
        .kubelab(&lab)
        .env_remove("KUBELAB_PROVIDER")
        .args(["cluster", "up"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        standins
            .log()
            .iter()
            .any(|l| l.starts_with("kind create cluster --name kubelab"))
    );
}

#[test]
fn an_engine_that_does_not_answer_is_named_with_what_to_do() {
    let lab = Lab::new();
    let standins = StandIns::new("docker", false, &[], &[]);
    let out = standins
        .kubelab(&lab)
        .args(["cluster", "up", "--provider", "kind"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("docker is installed but `docker info` fails: Cannot connect to the engine"),
        "{err}"
    );
    assert!(err.contains("start the engine"), "{err}");
    assert!(!standins.log().iter().any(|l| l.starts_with("kind create")));
}

/// The kind that controlplane/build.sh built (the real one).
fn real_kind() -> PathBuf {
    let kind = support::assets_dir().join("kind");
    assert!(
        kind.is_file(),
        "run controlplane/build.sh (it builds kind too)"
    );
    kind
}

#[test]
fn the_real_kind_accepts_kind_config_and_fails_only_for_want_of_an_engine() {
    let kind = real_kind();
    let run = |config: &Path| {
        let out = Command::new(&kind)
            .args([
                "create",
                "cluster",
                "--name",
                "kubelab-config-check",
                "--config",
            ])
            .arg(config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // kind decodes the config strictly before it talks to the engine: our config gets
    // past decoding and fails at the engine; a typo fails at decoding.
    let (ok, ours) = run(&manifest_dir().join("kind-config.yaml"));
    assert!(
        !ok,
        "there is no container engine here, kind cannot have succeeded"
    );
    assert!(!ours.contains("unable to decode config"), "{ours}");
    assert!(
        ours.contains("docker") || ours.contains("podman") || ours.contains("nerdctl"),
        "{ours}"
    );

    let broken = tempfile::tempdir().unwrap();
    let typo = broken.path().join("kind-config.yaml");
    let text = std::fs::read_to_string(manifest_dir().join("kind-config.yaml"))
        .unwrap()
        .replace("nodes:", "nodez:");
    std::fs::write(&typo, text).unwrap();
    let (_, theirs) = run(&typo);
    assert!(theirs.contains("unable to decode config"), "{theirs}");
    assert!(theirs.contains("field nodez not found"), "{theirs}");
}

#[test]
fn without_a_running_engine_the_kind_provider_fails_with_exit_3_and_says_why() {
    let lab = Lab::new();
    // This machine as it is: kind from the build cache, docker's client maybe, no engine.
    let _ = real_kind();
    let out = lab
        .kubelab()
        .args(["cluster", "up", "--provider", "kind"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("the kind provider cannot run here"), "{err}");
    assert!(err.contains("--provider local"), "{err}");
    let docker_client = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .any(|d| d.join("docker").is_file());
    if docker_client {
        assert!(
            err.contains("docker is installed but `docker info` fails"),
            "{err}"
        );
    } else {
        assert!(
            err.contains("no container engine (docker, podman or nerdctl) is installed"),
            "{err}"
        );
    }
    let out = lab
        .kubelab()
        .args(["run", "01", "--provider", "kind"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn images_lists_what_the_labs_run_with_replacements() {
    let lab = Lab::new();
    let out = lab
        .kubelab()
        .current_dir(manifest_dir())
        .args(["images"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listed = stdout(&out);
    assert!(
        listed.contains(&format!("{CURL}  labs 01, 02, 03, 05")),
        "{listed}"
    );
    assert!(listed.contains(&format!("{KUBECTL}  labs 04")), "{listed}");

    let out = lab
        .kubelab()
        .current_dir(manifest_dir())
        .args([
            "images",
            "--curl-image",
            "mirror.example/curl:8",
            "--use-image",
            &format!("{KUBECTL}=mirror.example/kubectl:1"),
        ])
        .output()
        .unwrap();
    let listed = stdout(&out);
    assert!(
        listed.contains("mirror.example/curl:8  labs 01, 02, 03, 05"),
        "{listed}"
    );
    assert!(
        listed.contains("mirror.example/kubectl:1  labs 04"),
        "{listed}"
    );
    assert!(!listed.contains(CURL), "{listed}");

    let out = lab
        .kubelab()
        .args(["images", "--use-image", "no-equals-sign"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Hands-on mode on the kind provider: the stand-in kind "creates" the cluster, and
/// the kubeconfig's `kind-kubelab` context reaches a real API server (a local control
/// plane), so start, check, solution and reset run the kind provider's own code from
/// choosing the cluster to connecting through the context, against real Kubernetes.
#[test]
fn hands_on_commands_use_the_kind_cluster_through_its_context() {
    let lab = Lab::new();
    let local = lab.up(&[]);
    let kubeconfig = lab.state_root.path().join("kind.kubeconfig");
    let text_of = std::fs::read_to_string(&local.kubeconfig)
        .unwrap()
        .replace("local-kubelab", "kind-kubelab");
    std::fs::write(&kubeconfig, text_of).unwrap();
    let stand_ins = StandIns::new("docker", true, &[CURL], &[]);
    let kubelab = |args: &[&str]| {
        stand_ins
            .kubelab(&lab)
            .env_remove("KUBELAB_PROVIDER")
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    let out = kubelab(&["start", "03", "--provider", "kind"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stand_ins
            .log()
            .iter()
            .any(|l| l.starts_with("kind create cluster --name kubelab")),
        "{:?}",
        stand_ins.log()
    );
    let shown = stdout(&out);
    assert!(
        shown.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{shown}"
    );
    assert!(
        shown.contains("kubectl config use-context kind-kubelab"),
        "{shown}"
    );
    assert!(
        shown.contains("Your cluster: the kind cluster 'kubelab'"),
        "{shown}"
    );
    // Later commands name no provider: KUBECONFIG's current context is the kind
    // cluster kubelab made, and the lab's record agrees.
    let out = kubelab(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("wrong: no RoleBinding in project-swan"),
        "{}",
        text(&out)
    );
    let out = kubelab(&["solution", "--apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = kubelab(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = kubelab(&["reset"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = kubelab(&["progress", "-o", "json"]);
    let progress: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cluster = &progress["labs"]["seed/03"]["cluster"];
    assert_eq!(cluster["provider"], "kind", "{progress:#}");
    assert_eq!(cluster["name"], "kubelab", "{progress:#}");
}
