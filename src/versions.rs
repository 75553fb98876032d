//! Upstream versions pinned in controlplane/versions.env (read by build.rs).

pub const KUBERNETES: &str = env!("KUBELAB_KUBERNETES_VERSION");
pub const ETCD: &str = env!("KUBELAB_ETCD_VERSION");
pub const KIND: &str = env!("KUBELAB_KIND_VERSION");
pub const COREDNS: &str = env!("KUBELAB_COREDNS_VERSION");
pub const CHAINSAW: &str = env!("KUBELAB_CHAINSAW_VERSION");
pub const KUTTL: &str = env!("KUBELAB_KUTTL_VERSION");
pub const HARNESS_GO: &str = env!("KUBELAB_HARNESS_GO");

/// `kubelab --version`: the crate's version and the upstream versions it runs.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (Kubernetes ",
    env!("KUBELAB_KUBERNETES_VERSION"),
    ", etcd ",
    env!("KUBELAB_ETCD_VERSION"),
    ")"
);
