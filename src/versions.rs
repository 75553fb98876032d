//! Upstream versions pinned in controlplane/versions.env (read by build.rs).

pub const KUBERNETES: &str = env!("KUBELAB_KUBERNETES_VERSION");

/// `kubelab --version`: the crate's version and the upstream versions it runs.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (Kubernetes ",
    env!("KUBELAB_KUBERNETES_VERSION"),
    ", etcd ",
    env!("KUBELAB_ETCD_VERSION"),
    ")"
);
