//! The local node (`cluster up --node`): containerd and runc from Debian, kubelet,
//! kube-scheduler, kube-proxy and CoreDNS from the build cache, one CNI bridge, and
//! images built without a registry, so that lab pods really run and probes exec in
//! them. Everything it adds to the machine is recorded and removed by `down`.

pub mod config;
pub mod host;
pub mod objects;
pub mod preflight;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde::{Deserialize, Serialize};

use crate::cluster::{Error, IoContext};

pub const NODE_NAME: &str = "kubelab-node";
/// The node address: on a dummy interface, so it exists only on this machine.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const DUMMY: &str = "kubelab0";
pub const BRIDGE: &str = "kubelab-br0";
pub const POD_CIDR: &str = "10.244.0.0/24";
pub const CLUSTER_DNS: &str = "10.96.0.10";
pub const GUARD_CHAIN: &str = "KUBELAB-GUARD";

/// What `down` needs to take the node apart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeRecord {
    pub dir: PathBuf,
    pub containerd_socket: PathBuf,
    /// Network namespaces that existed before the node: never removed.
    pub netns_before: Vec<String>,
    pub kube_proxy: PathBuf,
    pub kube_proxy_config: PathBuf,
    pub ports: NodePorts,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodePorts {
    pub kubelet: u16,
    pub kubelet_healthz: u16,
    pub scheduler: u16,
    pub kube_proxy_healthz: u16,
    pub kube_proxy_metrics: u16,
    pub coredns_ready: u16,
}

/// Where the node's files live inside the cluster's state directory.
pub struct NodeLayout {
    pub dir: PathBuf,
}

impl NodeLayout {
    pub fn new(state_dir: &Path) -> Self {
        NodeLayout {
            dir: state_dir.join("node"),
        }
    }
    pub fn containerd_config(&self) -> PathBuf {
        self.dir.join("containerd/config.toml")
    }
    pub fn containerd_root(&self) -> PathBuf {
        self.dir.join("containerd/root")
    }
    pub fn containerd_state(&self) -> PathBuf {
        self.dir.join("containerd/state")
    }
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.join("containerd/containerd.sock")
    }
    pub fn cni_conf(&self) -> PathBuf {
        self.dir.join("cni/net.d")
    }
    pub fn cni_ipam(&self) -> PathBuf {
        self.dir.join("cni/ipam")
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.dir.join("kubelet")
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff).
fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        })
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// Writes every node configuration file.
pub fn write_configs(
    layout: &NodeLayout,
    pki: &Path,
    ports: &NodePorts,
    pause_image: &str,
) -> Result<(), Error> {
    let write = |path: PathBuf, text: String| -> Result<(), Error> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).context(|| format!("writing {}", path.display()))
    };
    write(
        layout.containerd_config(),
        config::containerd(
            &layout.containerd_root(),
            &layout.containerd_state(),
            &layout.containerd_socket(),
            &layout.cni_conf(),
            pause_image,
            !has_cap_sys_resource(),
        ),
    )?;
    write(
        layout.cni_conf().join("10-kubelab.conflist"),
        config::cni_conflist(&layout.cni_ipam()),
    )?;
    write(layout.file("resolv.conf"), String::new())?;
    let files = config::KubeletFiles {
        ca: &pki.join("ca.crt"),
        serving_cert: &pki.join("kubelet-serving.crt"),
        serving_key: &pki.join("kubelet-serving.key"),
        containerd_socket: &layout.containerd_socket(),
        resolv_conf: &layout.file("resolv.conf"),
    };
    write(
        layout.file("kubelet.yaml"),
        config::kubelet(&files, ports.kubelet, ports.kubelet_healthz),
    )?;
    write(
        layout.file("scheduler.yaml"),
        config::scheduler(&layout.file("scheduler.kubeconfig")),
    )?;
    write(
        layout.file("kube-proxy.yaml"),
        config::kube_proxy(
            &layout.file("kube-proxy.kubeconfig"),
            ports.kube_proxy_healthz,
            ports.kube_proxy_metrics,
        ),
    )?;
    write(
        layout.file("Corefile"),
        config::corefile(&layout.file("coredns.kubeconfig"), ports.coredns_ready),
    )?;
    Ok(())
}

/// Imports the locally built images into the node's containerd under the names the lab
/// pods use, so no pod ever pulls.
pub fn import_images(ctr: &Path, socket: &Path, images: &[(PathBuf, String)]) -> Result<(), Error> {
    for (archive, reference) in images {
        let base = reference
            .rsplit_once(':')
            .map(|(base, _)| base)
            .unwrap_or(reference);
        let socket = socket.display().to_string();
        let archive = archive.display().to_string();
        host::run(
            &ctr.display().to_string(),
            &[
                "--address",
                &socket,
                "--namespace",
                "k8s.io",
                "images",
                "import",
                "--base-name",
                base,
                &archive,
            ],
        )
        .map_err(|e| Error::Node(format!("importing {reference}: {e}")))?;
    }
    Ok(())
}

/// Whether the node reports Ready.
pub async fn node_ready(client: &kube::Client) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes
        .get_opt(NODE_NAME)
        .await
        .map_err(|e| format!("reading node {NODE_NAME}: {e}"))?
        .ok_or_else(|| format!("node {NODE_NAME} has not registered yet"))?;
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready");
    match ready {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => Err(format!(
            "node {NODE_NAME} is not Ready: {}",
            c.message.unwrap_or_default()
        )),
        None => Err(format!("node {NODE_NAME} reports no Ready condition yet")),
    }
}

pub use objects::apply as apply_objects;

/// Before the processes stop: delete every pod, so the kubelet tears down containers
/// and networks the ordinary way (CNI DEL), and wait until containerd runs none.
pub async fn drain(client: Option<&kube::Client>, ctr: &Path, socket: &Path) {
    if let Some(client) = client {
        let pods: Api<Pod> = Api::all(client.clone());
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for pod in list.items {
                let namespace = pod.metadata.namespace.unwrap_or_default();
                let name = pod.metadata.name.unwrap_or_default();
                let _ = Api::<Pod>::namespaced(client.clone(), &namespace)
                    .delete(
                        &name,
                        &DeleteParams {
                            grace_period_seconds: Some(0),
                            ..Default::default()
                        },
                    )
                    .await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !tasks(ctr, socket).is_empty() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Container task ids containerd runs in the k8s.io namespace (none without its socket:
/// ctr would wait for it).
pub fn tasks(ctr: &Path, socket: &Path) -> Vec<String> {
    if !socket.exists() {
        return Vec::new();
    }
    let socket = socket.display().to_string();
    host::run(
        &ctr.display().to_string(),
        &[
            "--address",
            &socket,
            "--namespace",
            "k8s.io",
            "tasks",
            "ls",
            "-q",
        ],
    )
    .unwrap_or_default()
    .lines()
    .map(str::to_string)
    .filter(|l| !l.is_empty())
    .collect()
}

/// Kills what the drain left (containerd still runs): every task, then its container.
pub fn kill_tasks(ctr: &Path, socket: &Path) {
    let program = ctr.display().to_string();
    let socket = socket.display().to_string();
    for id in tasks(ctr, socket.as_ref()) {
        let _ = host::run(
            &program,
            &[
                "--address",
                &socket,
                "--namespace",
                "k8s.io",
                "tasks",
                "kill",
                "--all",
                "--signal",
                "SIGKILL",
                &id,
            ],
        );
        let _ = host::run(
            &program,
            &[
                "--address",
                &socket,
                "--namespace",
                "k8s.io",
                "tasks",
                "delete",
                "--force",
                &id,
            ],
        );
    }
}

/// After the processes stopped: whatever remains on the machine goes, in an order that
/// never needs what was already removed.
pub fn clean_host(record: &NodeRecord) {
    // Container shims outlive containerd by design; they carry its socket path.
    let socket = record.containerd_socket.display().to_string();
    for pid in host::processes_mentioning(&socket) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    // kube-proxy removes its own rules; then kubelab's guard and any CNI leftovers.
    let _ = host::run(
        &record.kube_proxy.display().to_string(),
        &[
            "--cleanup",
            "--config",
            &record.kube_proxy_config.display().to_string(),
        ],
    );
    host::remove_chains();
    host::remove_netns_except(&record.netns_before);
    host::unmount_all_under(&record.dir);
    host::remove_interfaces();
    host::remove_cgroups();
}
