//! The binary on its own: copied out of the build, run from an empty directory, with
//! the source tree out of reach (as root: hidden under an empty tmpfs in a private
//! mount namespace), it lists, checks and runs its built-in labs.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::cargo_bin;
use support::{assets_dir, stdout, text};

struct Installed {
    _dir: tempfile::TempDir,
    binary: PathBuf,
    empty: tempfile::TempDir,
    state: tempfile::TempDir,
    assets: PathBuf,
}

impl Installed {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kubelab-installed-")
            .tempdir()
            .unwrap();
        let binary = dir.path().join("kubelab");
        std::fs::copy(cargo_bin("kubelab"), &binary).unwrap();
        Installed {
            _dir: dir,
            binary,
            empty: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
            // Found before the checkout is hidden: the upstream binaries live outside it.
            assets: assets_dir(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let checkout = env!("CARGO_MANIFEST_DIR");
        let mut command = if nix::unistd::geteuid().is_root() {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount -t tmpfs kubelab-hidden "$0" && test ! -e "$0/Cargo.toml" && exec "$@""#)
                .arg(checkout)
                .arg(&self.binary);
            c
        } else {
            Command::new(&self.binary)
        };
        command
            .args(args)
            .current_dir(self.empty.path())
            .env("KUBELAB_STATE_DIR", self.state.path())
            .env("KUBELAB_PROVIDER", "local")
            .env("KUBELAB_ASSETS", &self.assets)
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .env_remove("KUBELAB_SCENARIOS")
            .env_remove("KUBELAB_CLUSTER")
            .output()
            .unwrap()
    }
}

#[test]
fn the_binary_alone_runs_its_built_in_labs_from_an_empty_directory() {
    let installed = Installed::new();
    assert!(Path::new(&installed.binary).exists());

    let out = installed.run(&["list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stdout(&out).lines().filter(|l| !l.starts_with(' ')).count(),
        12,
        "{}",
        text(&out)
    );
    let out = installed.run(&["lint", "--suite", "conformance"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).starts_with("16 labs,"), "{}", text(&out));
    let out = installed.run(&["show", "02"]);
    assert!(
        stdout(&out).contains("apply rbac.yaml: Role default/pod-reader"),
        "{}",
        text(&out)
    );

    // Run two labs: a cluster is started from the cached upstream binaries and stopped.
    let out = installed.run(&["run", "01", "02"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("2/2 labs passed"), "{}", text(&out));
    assert!(
        !installed.state.path().join("kubelab").exists(),
        "the cluster it started is gone"
    );
    assert_eq!(
        std::fs::read_dir(installed.empty.path()).unwrap().count(),
        0,
        "it wrote nothing where it ran"
    );
}
