//! The cluster's certificates and keys, made with rcgen: a CA, the apiserver's serving
//! certificate, client identities (admin in system:masters, the controller manager),
//! and the key pair that signs ServiceAccount tokens. All keys are ECDSA P-256, which
//! kube-apiserver accepts for serving, client auth and ES256 token signing.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use super::state::write_private;
use crate::cluster::Error;

/// A certificate and its private key, PEM encoded.
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct Pki {
    pub ca: CertAndKey,
    pub apiserver: CertAndKey,
    pub admin: CertAndKey,
    pub controller_manager: CertAndKey,
    pub service_account_key_pem: String,
    pub service_account_public_pem: String,
    /// The identities of a local node's components, when there is one.
    pub node: Option<NodePki>,
}

/// Client and serving certificates of the node components, each with the name the
/// bootstrap RBAC policy (or kubelab's own bindings) knows it by.
pub struct NodePki {
    /// CN=system:node:<node>, O=system:nodes: the Node authorizer's convention.
    pub kubelet_client: CertAndKey,
    pub kubelet_serving: CertAndKey,
    pub scheduler: CertAndKey,
    pub kube_proxy: CertAndKey,
    pub coredns: CertAndKey,
    /// The API server's identity towards kubelets (exec, logs).
    pub apiserver_kubelet_client: CertAndKey,
}

/// File locations of a written [`Pki`], as the components' flags name them.
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_public: PathBuf,
    pub kubelet_serving_cert: PathBuf,
    pub kubelet_serving_key: PathBuf,
    pub apiserver_kubelet_client_cert: PathBuf,
    pub apiserver_kubelet_client_key: PathBuf,
}

impl PkiFiles {
    pub fn in_dir(dir: &Path) -> Self {
        PkiFiles {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            apiserver_cert: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            service_account_key: dir.join("sa.key"),
            service_account_public: dir.join("sa.pub"),
            kubelet_serving_cert: dir.join("kubelet-serving.crt"),
            kubelet_serving_key: dir.join("kubelet-serving.key"),
            apiserver_kubelet_client_cert: dir.join("apiserver-kubelet-client.crt"),
            apiserver_kubelet_client_key: dir.join("apiserver-kubelet-client.key"),
        }
    }
}

/// The names a pod uses for the API server, plus loopback for the host.
pub fn apiserver_sans(service_ip: IpAddr) -> Vec<String> {
    vec![
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        "localhost".into(),
        "127.0.0.1".into(),
        service_ip.to_string(),
    ]
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn leaf(
    issuer: &CertifiedIssuer<'_, KeyPair>,
    sans: Vec<String>,
    subject: DistinguishedName,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertAndKey, Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name = subject;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl Pki {
    /// `node_ip`: the address of a local node, added to the serving certificate, with
    /// the node components' identities; None without a node.
    pub fn generate(service_ip: IpAddr, node_ip: Option<IpAddr>) -> Result<Pki, Error> {
        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("kubelab-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

        let mut sans = apiserver_sans(service_ip);
        sans.extend(node_ip.map(|ip| ip.to_string()));
        let apiserver = leaf(
            &ca,
            sans,
            name("kube-apiserver", None),
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let admin = leaf(
            &ca,
            vec![],
            name("kubelab-admin", Some("system:masters")),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        // The name the bootstrap RBAC policy binds system:kube-controller-manager to.
        let controller_manager = leaf(
            &ca,
            vec![],
            name("system:kube-controller-manager", None),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let service_account = KeyPair::generate()?;
        let client = |cn: &str, org: Option<&str>| {
            leaf(
                &ca,
                vec![],
                name(cn, org),
                ExtendedKeyUsagePurpose::ClientAuth,
            )
        };
        let node = match node_ip {
            None => None,
            Some(ip) => {
                let node_name = super::node::NODE_NAME;
                Some(NodePki {
                    kubelet_client: client(
                        &format!("system:node:{node_name}"),
                        Some("system:nodes"),
                    )?,
                    kubelet_serving: leaf(
                        &ca,
                        vec![node_name.to_string(), ip.to_string()],
                        name(node_name, None),
                        ExtendedKeyUsagePurpose::ServerAuth,
                    )?,
                    scheduler: client("system:kube-scheduler", None)?,
                    kube_proxy: client("system:kube-proxy", None)?,
                    coredns: client(super::node::objects::COREDNS_USER, None)?,
                    apiserver_kubelet_client: client(
                        super::node::objects::APISERVER_KUBELET_CLIENT,
                        None,
                    )?,
                })
            }
        };
        Ok(Pki {
            ca: CertAndKey {
                cert_pem: ca.pem(),
                key_pem: ca_key_pem,
            },
            apiserver,
            admin,
            controller_manager,
            service_account_key_pem: service_account.serialize_pem(),
            service_account_public_pem: service_account.public_key_pem(),
            node,
        })
    }

    /// Writes the files the components read; private keys are 0600.
    pub fn write(&self, dir: &Path) -> Result<PkiFiles, Error> {
        let files = PkiFiles::in_dir(dir);
        for (path, contents) in [
            (&files.ca_cert, &self.ca.cert_pem),
            (&files.ca_key, &self.ca.key_pem),
            (&files.apiserver_cert, &self.apiserver.cert_pem),
            (&files.apiserver_key, &self.apiserver.key_pem),
            (&files.service_account_key, &self.service_account_key_pem),
            (
                &files.service_account_public,
                &self.service_account_public_pem,
            ),
        ] {
            write_private(path, contents.as_bytes())?;
        }
        if let Some(node) = &self.node {
            for (path, contents) in [
                (&files.kubelet_serving_cert, &node.kubelet_serving.cert_pem),
                (&files.kubelet_serving_key, &node.kubelet_serving.key_pem),
                (
                    &files.apiserver_kubelet_client_cert,
                    &node.apiserver_kubelet_client.cert_pem,
                ),
                (
                    &files.apiserver_kubelet_client_key,
                    &node.apiserver_kubelet_client.key_pem,
                ),
            ] {
                write_private(path, contents.as_bytes())?;
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_certificate_covers_every_name_a_pod_uses() {
        let sans = apiserver_sans("10.96.0.1".parse().unwrap());
        for expected in [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "localhost",
            "127.0.0.1",
            "10.96.0.1",
        ] {
            assert!(sans.iter().any(|s| s == expected), "missing SAN {expected}");
        }
    }

    #[test]
    fn generated_material_is_pem_of_the_right_kinds() {
        let pki = Pki::generate("10.96.0.1".parse().unwrap(), None).unwrap();
        for cert in [&pki.ca, &pki.apiserver, &pki.admin, &pki.controller_manager] {
            assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        assert!(
            pki.service_account_public_pem
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        // Every key is fresh.
        assert_ne!(pki.admin.key_pem, pki.controller_manager.key_pem);
    }

    #[test]
    fn written_keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate("10.96.0.1".parse().unwrap(), None).unwrap();
        let files = pki.write(dir.path()).unwrap();
        for key in [
            &files.ca_key,
            &files.apiserver_key,
            &files.service_account_key,
        ] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }
}
