//! The node components' configuration files, as pure functions of the layout: what
//! kubelab writes for containerd, the CNI bridge, kubelet, kube-scheduler, kube-proxy
//! and CoreDNS.

use std::path::Path;

use super::{BRIDGE, CLUSTER_DNS, NODE_IP, NODE_NAME, POD_CIDR};

/// containerd 1.6, config version 2: its own root, state and socket (never the
/// system's), the CRI plugin with the locally built pause image, overlayfs, runc with
/// cgroupfs, and CNI from the Debian plugins directory with kubelab's one conflist.
/// `restrict_oom_score_adj`: without CAP_SYS_RESOURCE (some sandboxes and CI machines
/// drop it), no process may lower its oom_score_adj, and the pod sandbox asks for -998:
/// containerd must then keep containers at its own value or runc fails to start them.
pub fn containerd(
    root: &Path,
    state: &Path,
    socket: &Path,
    cni_conf: &Path,
    pause_image: &str,
    restrict_oom_score_adj: bool,
) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  enable_selinux = false
  restrict_oom_score_adj = {restrict_oom_score_adj}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{state}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
"#,
        root = root.display(),
        state = state.display(),
        socket = socket.display(),
        cni_conf = cni_conf.display(),
    )
}

/// One bridge network for all pods: no masquerading (nothing leaves the machine), IP
/// allocations kept in kubelab's state directory.
pub fn cni_conflist(ipam_dir: &Path) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "kubelab",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir.display().to_string()
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    }))
    .expect("static JSON")
}

pub struct KubeletFiles<'a> {
    pub ca: &'a Path,
    pub serving_cert: &'a Path,
    pub serving_key: &'a Path,
    pub containerd_socket: &'a Path,
    pub resolv_conf: &'a Path,
}

/// KubeletConfiguration: webhook authn/authz (the API server's exec and logs go
/// through them), cgroupfs on this machine's cgroup v1 (kubelet 1.35 refuses v1 unless
/// failCgroupV1 is false), no image GC (nothing could pull a collected image back).
pub fn kubelet(files: &KubeletFiles, port: u16, healthz_port: u16) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: "{ca}"}}
authorization:
  mode: Webhook
tlsCertFile: "{cert}"
tlsPrivateKeyFile: "{key}"
cgroupDriver: cgroupfs
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: "unix://{socket}"
clusterDNS: ["{CLUSTER_DNS}"]
clusterDomain: cluster.local
resolvConf: "{resolv}"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
serializeImagePulls: false
registerNode: true
"#,
        ca = files.ca.display(),
        cert = files.serving_cert.display(),
        key = files.serving_key.display(),
        socket = files.containerd_socket.display(),
        resolv = files.resolv_conf.display(),
    )
}

pub fn scheduler(kubeconfig: &Path) -> String {
    format!(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: \"{}\"\nleaderElection:\n  leaderElect: false\n",
        kubeconfig.display()
    )
}

/// kube-proxy in iptables mode; conntrack left as the kernel has it (zeros skip the
/// sysctls), NodePorts only on the node address, health and metrics on loopback.
pub fn kube_proxy(kubeconfig: &Path, healthz_port: u16, metrics_port: u16) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: "{kubeconfig}"
mode: iptables
hostnameOverride: {NODE_NAME}
clusterCIDR: {POD_CIDR}
healthzBindAddress: 127.0.0.1:{healthz_port}
metricsBindAddress: 127.0.0.1:{metrics_port}
nodePortAddresses: ["{NODE_IP}/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
"#,
        kubeconfig = kubeconfig.display()
    )
}

/// CoreDNS on the node address, serving cluster.local from the API; no forwarding:
/// nothing is resolved outside this machine.
pub fn corefile(kubeconfig: &Path, ready_port: u16) -> String {
    format!(
        r#".:53 {{
    bind {NODE_IP}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"#,
        kubeconfig = kubeconfig.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_keeps_to_kubelabs_own_paths() {
        let text = containerd(
            Path::new("/s/root"),
            Path::new("/s/state"),
            Path::new("/s/containerd.sock"),
            Path::new("/s/cni"),
            "kubelab.local/pause:1.0",
            true,
        );
        let parsed: toml_like::Doc = toml_like::parse(&text);
        assert_eq!(parsed.get("root"), Some("/s/root"));
        assert_eq!(parsed.get("state"), Some("/s/state"));
        assert!(text.contains(r#"address = "/s/containerd.sock""#));
        assert!(text.contains("SystemdCgroup = false"));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains(r#"sandbox_image = "kubelab.local/pause:1.0""#));
        assert!(
            !text.contains("/run/containerd/containerd.sock"),
            "never the system socket"
        );
        assert!(!text.contains("/etc/containerd"), "never the system config");
    }

    /// Just enough of TOML to read top-level string keys in a test.
    mod toml_like {
        pub struct Doc(Vec<(String, String)>);
        impl Doc {
            pub fn get(&self, key: &str) -> Option<&str> {
                self.0
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            }
        }
        pub fn parse(text: &str) -> Doc {
            Doc(text
                .lines()
                .take_while(|l| !l.starts_with('['))
                .filter_map(|l| l.split_once(" = "))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect())
        }
    }

    #[test]
    fn the_cni_network_never_masquerades() {
        let conflist: serde_json::Value =
            serde_json::from_str(&cni_conflist(Path::new("/s/ipam"))).unwrap();
        let bridge = &conflist["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], POD_CIDR);
        assert_eq!(bridge["ipam"]["dataDir"], "/s/ipam");
    }

    #[test]
    fn kubelet_accepts_cgroup_v1_and_never_collects_images() {
        let files = KubeletFiles {
            ca: Path::new("/ca"),
            serving_cert: Path::new("/c"),
            serving_key: Path::new("/k"),
            containerd_socket: Path::new("/s/containerd.sock"),
            resolv_conf: Path::new("/s/resolv.conf"),
        };
        let config: serde_json::Value =
            serde_saphyr::from_str(&kubelet(&files, 10250, 10248)).unwrap();
        assert_eq!(config["failCgroupV1"], false);
        assert_eq!(config["cgroupDriver"], "cgroupfs");
        assert_eq!(config["imageGCHighThresholdPercent"], 100);
        assert_eq!(config["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(config["authorization"]["mode"], "Webhook");
        assert_eq!(
            config["containerRuntimeEndpoint"],
            "unix:///s/containerd.sock"
        );
        assert_eq!(config["clusterDNS"][0], CLUSTER_DNS);
    }

    #[test]
    fn kube_proxy_and_coredns_stay_on_the_node_address() {
        let proxy: serde_json::Value =
            serde_saphyr::from_str(&kube_proxy(Path::new("/kc"), 1, 2)).unwrap();
        assert_eq!(proxy["mode"], "iptables");
        assert_eq!(proxy["nodePortAddresses"][0], format!("{NODE_IP}/32"));
        assert_eq!(proxy["conntrack"]["maxPerCore"], 0);
        let corefile = corefile(Path::new("/kc"), 3);
        assert!(corefile.contains(&format!("bind {NODE_IP}")));
        assert!(
            !corefile.contains("forward"),
            "nothing is resolved outside the machine"
        );
    }
}
