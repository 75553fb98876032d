//! The API objects a node needs that no controller makes here: the API server's
//! identity on the kubelet API, CoreDNS's read access, and the kube-dns Service with an
//! EndpointSlice pointing at CoreDNS on the node address.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::{CLUSTER_DNS, NODE_IP};
use crate::cluster::Error;

/// The client certificate name the API server uses towards kubelets.
pub const APISERVER_KUBELET_CLIENT: &str = "kube-apiserver-kubelet-client";
pub const COREDNS_USER: &str = "system:coredns";

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: Some([("kubelab.dev/node".to_string(), "true".to_string())].into()),
        ..Default::default()
    }
}

fn user(name: &str) -> Subject {
    Subject {
        kind: "User".into(),
        name: name.into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    }
}

fn cluster_role_ref(name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: "ClusterRole".into(),
        name: name.into(),
    }
}

async fn server_side_apply<K>(api: &Api<K>, name: &str, object: &K) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply("kubelab").force(),
        &Patch::Apply(object),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Kube {
        context: format!("applying the node's {name}"),
        source,
    })
}

pub async fn apply(client: &kube::Client) -> Result<(), Error> {
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    // exec, logs and port-forward go from the API server to the kubelet as this user.
    let kubelet_api = ClusterRoleBinding {
        metadata: meta("kubelab:kubelet-api-admin", None),
        role_ref: cluster_role_ref("system:kubelet-api-admin"),
        subjects: Some(vec![user(APISERVER_KUBELET_CLIENT)]),
    };
    server_side_apply(&bindings, "kubelab:kubelet-api-admin", &kubelet_api).await?;
    let read = |groups: &[&str], resources: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: vec!["list".into(), "watch".into()],
        ..Default::default()
    };
    let coredns = ClusterRole {
        metadata: meta("kubelab:coredns", None),
        rules: Some(vec![
            read(&[""], &["endpoints", "services", "pods", "namespaces"]),
            read(&["discovery.k8s.io"], &["endpointslices"]),
        ]),
        aggregation_rule: None,
    };
    server_side_apply(&cluster_roles, "kubelab:coredns", &coredns).await?;
    let coredns_binding = ClusterRoleBinding {
        metadata: meta("kubelab:coredns", None),
        role_ref: cluster_role_ref("kubelab:coredns"),
        subjects: Some(vec![user(COREDNS_USER)]),
    };
    server_side_apply(&bindings, "kubelab:coredns", &coredns_binding).await?;

    let port = |name: &str, protocol: &str| ServicePort {
        name: Some(name.into()),
        port: 53,
        protocol: Some(protocol.into()),
        ..Default::default()
    };
    let service = Service {
        metadata: meta("kube-dns", Some("kube-system")),
        spec: Some(ServiceSpec {
            cluster_ip: Some(CLUSTER_DNS.into()),
            ports: Some(vec![port("dns", "UDP"), port("dns-tcp", "TCP")]),
            ..Default::default()
        }),
        ..Default::default()
    };
    server_side_apply(
        &Api::namespaced(client.clone(), "kube-system"),
        "kube-dns",
        &service,
    )
    .await?;
    let mut slice_meta = meta("kube-dns-kubelab", Some("kube-system"));
    slice_meta
        .labels
        .get_or_insert_with(Default::default)
        .extend([
            (
                "kubernetes.io/service-name".to_string(),
                "kube-dns".to_string(),
            ),
            (
                "endpointslice.kubernetes.io/managed-by".to_string(),
                "kubelab".to_string(),
            ),
        ]);
    let endpoint_port = |name: &str, protocol: &str| EndpointPort {
        name: Some(name.into()),
        port: Some(53),
        protocol: Some(protocol.into()),
        ..Default::default()
    };
    let slice = EndpointSlice {
        metadata: slice_meta,
        address_type: "IPv4".into(),
        endpoints: vec![Endpoint {
            addresses: vec![NODE_IP.to_string()],
            ..Default::default()
        }],
        ports: Some(vec![
            endpoint_port("dns", "UDP"),
            endpoint_port("dns-tcp", "TCP"),
        ]),
    };
    server_side_apply(
        &Api::namespaced(client.clone(), "kube-system"),
        "kube-dns-kubelab",
        &slice,
    )
    .await
}
