//! Kubeconfig files kubelab writes for the clusters it starts, and kube clients built
//! from them.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cluster::Error;

/// One cluster, one client-certificate user, one context (also the current one).
pub struct ClientCertConfig<'a> {
    pub context: &'a str,
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub user: &'a str,
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

impl ClientCertConfig<'_> {
    /// The kubeconfig YAML, with certificates inline so the file can be copied anywhere.
    pub fn render(&self) -> String {
        let b64 = |pem: &str| STANDARD.encode(pem.as_bytes());
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: {context}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {context}
  context:
    cluster: {context}
    user: {user}
current-context: {context}
",
            context = self.context,
            server = self.server,
            ca = b64(self.ca_pem),
            user = self.user,
            cert = b64(self.cert_pem),
            key = b64(self.key_pem),
        )
    }
}

/// The client configuration for the kubeconfig at `path` (its current context), with
/// short timeouts suited to a local cluster.
pub async fn config(path: &Path) -> Result<kube::Config, Error> {
    let kube_err = |source| Error::Kube {
        context: format!("loading kubeconfig {}", path.display()),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| kube_err(e.into()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| kube_err(e.into()))?;
    // A refused connection fails fast; reads keep kube's default, which outlasts the
    // server's own watch timeout (a shorter one would break every quiet watch).
    config.connect_timeout = Some(Duration::from_secs(2));
    Ok(config)
}

/// A client for the kubeconfig at `path` (see [`config`]).
pub async fn client(path: &Path) -> Result<kube::Client, Error> {
    let config = config(path).await?;
    super::client::from_config(config).map_err(|source| Error::Kube {
        context: format!("loading kubeconfig {}", path.display()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_config_parses_and_names_its_context() {
        let text = ClientCertConfig {
            context: "local-kubelab",
            server: "https://127.0.0.1:6443",
            ca_pem: "ca",
            user: "admin",
            cert_pem: "cert",
            key_pem: "key",
        }
        .render();
        let parsed = Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("local-kubelab"));
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Y2E="));
        assert_eq!(parsed.auth_infos[0].name, "admin");
    }
}
