//! A small builder over the real kubelab binary for integration tests: every test gets
//! its own state directory, and a cluster it starts is taken down when the test ends,
//! pass or fail.
#![allow(dead_code)] // each test crate uses a different part of this module

pub mod terminal;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;
use tempfile::TempDir;

/// The directory holding the upstream binaries the tests use (kubectl among them).
pub fn assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBELAB_ASSETS").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("controlplane/build.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("--print-dir")
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// An isolated kubelab environment: its own state root.
pub struct Lab {
    pub state_root: TempDir,
}

impl Lab {
    pub fn new() -> Self {
        let state_root = tempfile::Builder::new()
            .prefix("kubelab-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(state_root.path().join("tmp")).unwrap();
        Lab { state_root }
    }

    /// The TMPDIR of this environment's kubelab commands: whatever one leaves there
    /// (a pod's private directory, a token file) is found when the Lab is dropped.
    pub fn tmp(&self) -> PathBuf {
        self.state_root.path().join("tmp")
    }

    /// `kubelab` with this environment's state root.
    pub fn kubelab(&self) -> Command {
        let mut cmd = Command::new(cargo_bin("kubelab"));
        // Tests choose their provider: local unless a test says otherwise.
        cmd.env("KUBELAB_STATE_DIR", self.state_root.path())
            .env("KUBELAB_PROVIDER", "local")
            .env_remove("KUBELAB_CLUSTER")
            .env_remove("KUBECONFIG")
            .env("TMPDIR", self.tmp())
            .env("NO_COLOR", "1");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.kubelab().args(args).output().unwrap()
    }

    /// Starts the cluster `kubelab` (generous timeout: tests run side by side).
    pub fn up(&self, extra: &[&str]) -> Cluster<'_> {
        let mut args = vec!["cluster", "up", "--wait-timeout", "180s"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert!(out.status.success(), "cluster up failed:\n{}", text(&out));
        let kubeconfig = stdout(&self.run(&["cluster", "kubeconfig"]))
            .trim()
            .to_string();
        Cluster {
            lab: self,
            kubeconfig: kubeconfig.into(),
        }
    }

    /// Runs kubelab with `args`; once a stderr line satisfies `when`, calls `before` (to
    /// look at what exists mid-run) and sends SIGINT. Returns the exit code, the lines
    /// up to the trigger and the lines after it.
    pub fn interrupt_when(
        &self,
        args: &[&str],
        when: impl Fn(&str) -> bool,
        before: impl FnOnce(&[String]),
    ) -> (Option<i32>, Vec<String>, Vec<String>) {
        use std::io::{BufRead, BufReader};
        let mut child = self
            .kubelab()
            .args(args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let hit = when(&line);
            seen.push(line);
            if hit {
                break;
            }
        }
        before(&seen);
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
        (child.wait().unwrap().code(), seen, rest)
    }

    /// Processes whose command line mentions this environment's state root: what a
    /// cluster of this test started and what must be gone after `down` or a failure.
    pub fn processes(&self) -> Vec<(u32, String)> {
        let needle = self.state_root.path().to_string_lossy().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let zombie = std::fs::read_to_string(entry.path().join("stat"))
                .map(|s| {
                    s.rsplit_once(") ")
                        .map(|(_, r)| r.starts_with('Z'))
                        .unwrap_or(false)
                })
                .unwrap_or(true);
            if cmdline.contains(&needle) && !zombie {
                found.push((pid, cmdline));
            }
        }
        found
    }
}

/// A test that fails with a cluster up (an assertion between `cluster up` and its
/// `Cluster` handle) still takes it down.
/// And every command it ran removed its temporary files, also when it failed or was
/// interrupted (a command killed outright gets a TMPDIR of its own).
impl Drop for Lab {
    fn drop(&mut self) {
        if self.state_root.path().join("kubelab").exists() {
            let _ = self.run(&["cluster", "down"]);
        }
        let left: Vec<String> = std::fs::read_dir(self.tmp())
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !std::thread::panicking() {
            assert!(left.is_empty(), "kubelab left in its TMPDIR: {left:?}");
        }
    }
}

pub struct Cluster<'a> {
    pub lab: &'a Lab,
    pub kubeconfig: PathBuf,
}

/// Every kind kubelab's labs and runs make (Leases too: a run's proof of life).
pub const KUBELAB_KINDS: &str = "pods,deployments,replicasets,jobs,services,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,secrets,configmaps,namespaces,certificatesigningrequests,leases";

/// The objects of those kinds that match a label selector, as kind/name.
pub fn labelled_with(kubeconfig: &Path, selector: &str) -> Vec<String> {
    let out = kubectl_with(
        kubeconfig,
        &["get", KUBELAB_KINDS, "-A", "-l", selector, "-o", "name"],
    );
    assert!(out.status.success(), "{}", text(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

/// The real kubectl of the pinned version, with a cluster's admin kubeconfig.
pub fn kubectl_with(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(assets_dir().join("kubectl"))
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

impl Cluster<'_> {
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&self.kubeconfig, args)
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}",
            text(&out)
        );
        stdout(&out)
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).unwrap()
    }

    pub fn status(&self) -> Value {
        let out = self.lab.run(&["cluster", "status", "--output", "json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        let _ = self.lab.run(&["cluster", "down"]);
    }
}

/// One local cluster for all the tests of a test binary: the first test to ask starts
/// it, the last one to finish stops it (tests run side by side; each uses namespaces
/// of its own).
pub struct Shared {
    pub lab: Lab,
    pub kubeconfig: PathBuf,
}

static SHARED: std::sync::Mutex<(usize, Option<std::sync::Arc<Shared>>)> =
    std::sync::Mutex::new((0, None));

/// A handle on the shared cluster; dropping the last one takes the cluster down.
pub struct SharedUse(pub std::sync::Arc<Shared>);

impl std::ops::Deref for SharedUse {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub fn shared_cluster() -> SharedUse {
    let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    guard.0 += 1;
    if guard.1.is_none() {
        let lab = Lab::new();
        let out = lab.run(&["cluster", "up", "--wait-timeout", "180s"]);
        assert!(out.status.success(), "cluster up failed:\n{}", text(&out));
        let kubeconfig = stdout(&lab.run(&["cluster", "kubeconfig"])).trim().into();
        guard.1 = Some(std::sync::Arc::new(Shared { lab, kubeconfig }));
    }
    SharedUse(guard.1.clone().expect("started above"))
}

impl Drop for SharedUse {
    fn drop(&mut self) {
        let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 -= 1;
        if guard.0 == 0
            && let Some(shared) = guard.1.take()
        {
            let _ = shared.lab.run(&["cluster", "down"]);
        }
    }
}

impl Shared {
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&self.kubeconfig, args)
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

pub fn root_or_fail() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the node tests need root (kubelet, containerd, network interfaces): run them as root, as CI does"
    );
}

pub fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

/// What a node may leave on the machine, listed: interfaces, iptables chains, mounts,
/// network namespaces, kubelet's cgroups, processes.
pub fn node_leftovers(lab: &Lab) -> Vec<String> {
    let mut left = Vec::new();
    for name in ["kubelab0", "kubelab-br0"] {
        if exists(&format!("/sys/class/net/{name}")) {
            left.push(format!("interface {name}"));
        }
    }
    for table in ["filter", "nat", "mangle"] {
        let rules = Command::new("iptables-save")
            .args(["-t", table])
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&rules.stdout).lines() {
            if line.starts_with(':')
                && ["KUBE-", "CNI-", "KUBELAB-"]
                    .iter()
                    .any(|p| line[1..].starts_with(p))
            {
                left.push(format!("iptables {table} chain {}", &line[1..]));
            }
        }
    }
    let state = lab.state_root.path().display().to_string();
    for mount in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if let Some(point) = mount.split_whitespace().nth(4)
            && point.starts_with(&state)
        {
            left.push(format!("mount {point}"));
        }
    }
    for netns in std::fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = netns.file_name().to_string_lossy().into_owned();
        if name.starts_with("cni-") {
            left.push(format!("netns {name}"));
        }
    }
    if exists("/sys/fs/cgroup/memory/kubepods") || exists("/sys/fs/cgroup/kubepods.slice") {
        left.push("kubepods cgroup".into());
    }
    for (pid, cmdline) in lab.processes() {
        left.push(format!("process {pid}: {cmdline}"));
    }
    left
}

pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Decodes the claims of a JWT (no signature check: the apiserver already made it).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token
        .trim()
        .split('.')
        .nth(1)
        .expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).unwrap()
}

/// The page as headless Chromium renders it (scripts run), as its DOM.
pub fn chromium_dom(page: &Path, fragment: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}{fragment}", page.display()),
        ])
        .output()
        .expect("chromium is installed (apt-get install chromium)");
    assert!(out.status.success(), "chromium: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
