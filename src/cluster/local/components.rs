//! The command lines of etcd, kube-apiserver and kube-controller-manager. Pure
//! functions of the layout and ports, so they can be checked without starting anything.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::pki::PkiFiles;
use super::state::{Ports, StateDir};

pub const SERVICE_CIDR: &str = "10.96.0.0/12";
/// The first address of SERVICE_CIDR: the `kubernetes` Service's ClusterIP.
pub const SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1));
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The controllers the labs need: a `default` ServiceAccount and the `kube-root-ca.crt`
/// ConfigMap in every namespace, namespace deletion, garbage collection, the pods of
/// Deployments, Jobs, StatefulSets and DaemonSets, and the aggregated admin/edit/view
/// ClusterRoles.
pub const CONTROLLERS: &[&str] = &[
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "statefulset-controller",
    "daemonset-controller",
    "clusterrole-aggregation-controller",
    // Signs the client certificates a class's students get (CertificateSigningRequest
    // for kubernetes.io/kube-apiserver-client, approved by kubelab).
    "certificatesigningrequest-signing-controller",
];

fn flag(name: &str, value: impl AsRef<str>) -> String {
    format!("--{name}={}", value.as_ref())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

pub fn etcd_args(state: &StateDir, ports: &Ports) -> Vec<String> {
    let client = format!("http://127.0.0.1:{}", ports.etcd_client);
    let peer = format!("http://127.0.0.1:{}", ports.etcd_peer);
    vec![
        flag("name", "kubelab"),
        flag("data-dir", path(&state.etcd_data())),
        flag("listen-client-urls", &client),
        flag("advertise-client-urls", &client),
        flag("listen-peer-urls", &peer),
        flag("initial-advertise-peer-urls", &peer),
        flag("initial-cluster", format!("kubelab={peer}")),
        // The data is thrown away with the cluster: durability buys nothing here.
        flag("unsafe-no-fsync", "true"),
        // One member on loopback: it elects itself in tens of milliseconds, not after
        // the default one-second election timeout.
        flag("heartbeat-interval", "10"),
        flag("election-timeout", "100"),
        flag("log-level", "warn"),
    ]
}

/// `node`: a local node runs, so the API server listens on the node address, reconciles
/// the `kubernetes` Service's endpoints to it, and authorizes kubelets (Node, RBAC).
pub fn apiserver_args(state: &StateDir, pki: &PkiFiles, ports: &Ports, node: bool) -> Vec<String> {
    let mut args = vec![
        flag(
            "etcd-servers",
            format!("http://127.0.0.1:{}", ports.etcd_client),
        ),
        flag("bind-address", "127.0.0.1"),
        // No default route may exist on this machine; the address must be given.
        flag("advertise-address", "127.0.0.1"),
        flag("secure-port", ports.apiserver.to_string()),
        flag("cert-dir", path(&state.pki())),
        flag("tls-cert-file", path(&pki.apiserver_cert)),
        flag("tls-private-key-file", path(&pki.apiserver_key)),
        flag("client-ca-file", path(&pki.ca_cert)),
        flag("authorization-mode", "RBAC"),
        flag("service-cluster-ip-range", SERVICE_CIDR),
        // Issuer and signing key turn on the TokenRequest API; the ServiceAccount
        // admission plugin stays on (it is in the default set): the labs are about what
        // it injects into pods.
        flag("service-account-issuer", SERVICE_ACCOUNT_ISSUER),
        flag(
            "service-account-key-file",
            path(&pki.service_account_public),
        ),
        flag(
            "service-account-signing-key-file",
            path(&pki.service_account_key),
        ),
        // Nothing behind 127.0.0.1 can be a Service endpoint; the labs do not need one.
        flag("endpoint-reconciler-type", "none"),
        flag("allow-privileged", "true"),
        flag("profiling", "false"),
    ];
    if node {
        let address = super::node::NODE_IP.to_string();
        let replace = |args: &mut Vec<String>, name: &str, value: &str| {
            args.retain(|a| !a.starts_with(&format!("--{name}=")));
            args.push(flag(name, value));
        };
        replace(&mut args, "bind-address", &address);
        replace(&mut args, "advertise-address", &address);
        replace(&mut args, "authorization-mode", "Node,RBAC");
        args.retain(|a| !a.starts_with("--endpoint-reconciler-type="));
        args.extend([
            flag("enable-admission-plugins", "NodeRestriction"),
            flag(
                "kubelet-client-certificate",
                path(&pki.apiserver_kubelet_client_cert),
            ),
            flag(
                "kubelet-client-key",
                path(&pki.apiserver_kubelet_client_key),
            ),
            flag("kubelet-certificate-authority", path(&pki.ca_cert)),
            flag("kubelet-preferred-address-types", "InternalIP"),
        ]);
    }
    args
}

/// What a node adds to the controllers: the node lifecycle (it lifts the not-ready
/// taint) and the EndpointSlices kube-proxy reads.
pub const NODE_CONTROLLERS: &[&str] = &[
    "node-lifecycle-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
];

pub fn controller_manager_args(
    state: &StateDir,
    pki: &PkiFiles,
    ports: &Ports,
    node: bool,
) -> Vec<String> {
    let mut controllers = CONTROLLERS.to_vec();
    if node {
        controllers.extend(NODE_CONTROLLERS);
    }
    let kubeconfig = path(&state.controller_manager_kubeconfig());
    vec![
        flag("kubeconfig", &kubeconfig),
        flag("authentication-kubeconfig", &kubeconfig),
        flag("authorization-kubeconfig", &kubeconfig),
        flag("bind-address", "127.0.0.1"),
        flag("secure-port", ports.controller_manager.to_string()),
        flag("leader-elect", "false"),
        // Each controller acts as its own ServiceAccount in kube-system, as in kubeadm.
        flag("use-service-account-credentials", "true"),
        flag("root-ca-file", path(&pki.ca_cert)),
        flag("cluster-signing-cert-file", path(&pki.ca_cert)),
        flag("cluster-signing-key-file", path(&pki.ca_key)),
        flag("controllers", controllers.join(",")),
        // A class's namespaces go at once (the default, 10, serializes a class of 30's
        // hundreds of namespaces behind one another).
        flag("concurrent-namespace-syncs", "50"),
        // Deleting a namespace sweeps every resource type: with the default client
        // limit (20 requests a second) a class's namespaces queue for a minute.
        flag("kube-api-qps", "400"),
        flag("kube-api-burst", "800"),
        flag("profiling", "false"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (StateDir, PkiFiles, Ports) {
        let state = StateDir::new(Path::new("/state"), "c1");
        let pki = PkiFiles::in_dir(&state.pki());
        let ports = Ports {
            etcd_client: 1001,
            etcd_peer: 1002,
            apiserver: 1003,
            controller_manager: 1004,
        };
        (state, pki, ports)
    }

    fn value<'a>(args: &'a [String], name: &str) -> &'a str {
        let prefix = format!("--{name}=");
        args.iter()
            .find_map(|a| a.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {args:?}"))
    }

    #[test]
    fn the_apiserver_keeps_serviceaccount_admission_and_uses_rbac() {
        let (state, pki, ports) = fixture();
        let args = apiserver_args(&state, &pki, &ports, false);
        assert_eq!(value(&args, "authorization-mode"), "RBAC");
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--disable-admission-plugins")),
            "ServiceAccount admission must stay on: {args:?}"
        );
        assert_eq!(value(&args, "etcd-servers"), "http://127.0.0.1:1001");
        assert_eq!(value(&args, "secure-port"), "1003");
        assert_eq!(
            value(&args, "service-account-signing-key-file"),
            "/state/c1/pki/sa.key"
        );
    }

    #[test]
    fn with_a_node_the_apiserver_serves_the_node_address_and_authorizes_kubelets() {
        let (state, pki, ports) = fixture();
        let args = apiserver_args(&state, &pki, &ports, true);
        assert_eq!(value(&args, "bind-address"), "10.77.0.1");
        assert_eq!(value(&args, "advertise-address"), "10.77.0.1");
        assert_eq!(value(&args, "authorization-mode"), "Node,RBAC");
        assert_eq!(value(&args, "enable-admission-plugins"), "NodeRestriction");
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("--endpoint-reconciler-type")),
            "the kubernetes Service needs its endpoints"
        );
        assert_eq!(
            args.iter()
                .filter(|a| a.starts_with("--bind-address="))
                .count(),
            1
        );
    }

    #[test]
    fn the_service_ip_is_inside_the_service_range() {
        let IpAddr::V4(ip) = SERVICE_IP else {
            unreachable!()
        };
        let (net, bits) = SERVICE_CIDR.split_once('/').unwrap();
        let net: Ipv4Addr = net.parse().unwrap();
        let mask = u32::MAX << (32 - bits.parse::<u32>().unwrap());
        assert_eq!(u32::from(ip) & mask, u32::from(net));
        assert_eq!(u32::from(ip), u32::from(net) + 1);
    }

    #[test]
    fn etcd_listens_only_on_loopback_ports_it_was_given() {
        let (state, _, ports) = fixture();
        let args = etcd_args(&state, &ports);
        assert_eq!(value(&args, "listen-client-urls"), "http://127.0.0.1:1001");
        assert_eq!(value(&args, "listen-peer-urls"), "http://127.0.0.1:1002");
        assert_eq!(value(&args, "data-dir"), "/state/c1/etcd");
    }

    #[test]
    fn the_controller_manager_runs_the_controllers_the_labs_need() {
        let (state, pki, ports) = fixture();
        let args = controller_manager_args(&state, &pki, &ports, false);
        let controllers: Vec<&str> = value(&args, "controllers").split(',').collect();
        for needed in [
            "serviceaccount-controller",
            "root-ca-certificate-publisher-controller",
        ] {
            assert!(controllers.contains(&needed), "{needed} missing");
        }
        assert_eq!(value(&args, "leader-elect"), "false");
        assert_eq!(value(&args, "root-ca-file"), "/state/c1/pki/ca.crt");
    }
}
