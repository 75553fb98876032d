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

    /// The installed binary from `cargo install --path . --root <tmp>`, as a user gets it.
    fn cargo_install() -> Self {
        let installed = Installed::new();
        // The tests' own target directory: cargo install reuses what they compiled.
        let target = cargo_bin("kubelab")
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_path_buf();
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                "--debug",
                "--locked",
                "--offline",
                "--quiet",
                "--path",
            ])
            .arg(env!("CARGO_MANIFEST_DIR"))
            .arg("--root")
            .arg(installed._dir.path())
            .env("CARGO_TARGET_DIR", target)
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo install: {}", text(&out));
        let binary = installed._dir.path().join("bin/kubelab");
        assert!(binary.exists(), "cargo install put no bin/kubelab");
        Installed {
            binary,
            ..installed
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
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
            .env_remove("KUBELAB_CLUSTER");
        command
    }
}

/// As a person sees it in a terminal: a bar per component, packages compiled of those
/// needed, and the time left; then a line per component built. (A private Go build
/// cache, so that there is something to compile.)
#[test]
fn setup_shows_a_bar_with_the_time_left_in_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let terminal = support::terminal::Terminal::new(
        "setup",
        home.path(),
        &[
            (
                "KUBELAB_CACHE",
                home.path().join("cache").display().to_string(),
            ),
            ("GOCACHE", home.path().join("gocache").display().to_string()),
            ("PATH", std::env::var("PATH").unwrap()),
        ],
    );
    terminal.type_line(&format!("{} setup kind", cargo_bin("kubelab").display()));
    let screen = terminal.wait_for("packages, ", std::time::Duration::from_secs(120));
    let bar = screen
        .lines()
        .find(|l| l.contains("packages, "))
        .unwrap()
        .to_string();
    assert!(
        bar.starts_with(&format!("kind {} [", env!("KUBELAB_KIND_VERSION"))),
        "{screen}"
    );
    assert!(bar.contains(" left"), "{screen}");
    let screen = terminal.wait_for("✓ kind", std::time::Duration::from_secs(300));
    assert!(screen.contains("packages compiled"), "{screen}");
}

#[test]
fn installed_with_cargo_install_it_sets_itself_up_and_runs_from_an_empty_directory() {
    let installed = Installed::cargo_install();
    // setup with an empty cache: kind is built by the go command from the module
    // compiled into kubelab (the checkout is out of reach).
    let cache = tempfile::tempdir().unwrap();
    let setup = |args: &[&str]| {
        installed
            .command(args)
            .env_remove("KUBELAB_ASSETS")
            .env_remove("KUBEBUILDER_ASSETS")
            .env("KUBELAB_CACHE", cache.path())
            .output()
            .unwrap()
    };
    let out = setup(&["setup", "kind"]);
    assert!(out.status.success(), "{}", text(&out));
    let kind = cache
        .path()
        .join("bin")
        .join(env!("KUBELAB_KUBERNETES_VERSION"))
        .join("kind");
    let version = Command::new(&kind).arg("version").output().unwrap();
    assert!(
        stdout(&version).contains(env!("KUBELAB_KIND_VERSION")),
        "{}",
        text(&version)
    );
    let out = setup(&["setup", "kind"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        support::stderr(&out).contains(&format!("✓ kind {}: cached", env!("KUBELAB_KIND_VERSION"))),
        "{}",
        text(&out)
    );
    // Binaries given through KUBELAB_ASSETS are used, not built.
    let out = installed.run(&["setup"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        support::stderr(&out).contains("(KUBELAB_ASSETS)"),
        "{}",
        text(&out)
    );

    let out = installed.run(&["run", "01"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("1/1 labs passed"), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(installed.empty.path()).unwrap().count(),
        0,
        "it wrote nothing where it ran"
    );
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
