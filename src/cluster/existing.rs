//! The kubeconfig provider: any cluster reachable through a kubeconfig, chosen like
//! kubectl chooses (--kubeconfig, else KUBECONFIG, else ~/.kube/config; --context,
//! else the current context). kubelab did not create it, so before changing anything
//! it shows where it is about to work and asks.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cluster::Error;

pub struct Existing {
    /// A class's student's context (kubelab made it for kubelab: no need to ask).
    pub seat: Option<crate::class::Seat>,
    pub client: kube::Client,
    pub config: kube::Config,
    pub context: String,
    /// The server URL as the kubeconfig gives it.
    pub server: String,
}

impl Existing {
    /// host:port of the server, for host-side probes.
    pub fn authority(&self) -> String {
        let rest = self.server.split("://").nth(1).unwrap_or(&self.server);
        let authority = rest.split('/').next().unwrap_or(rest);
        if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:443")
        }
    }
}

pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Existing, Error> {
    let kube_err = |what: String| {
        move |source: kube::Error| Error::Kube {
            context: what,
            source,
        }
    };
    let config_file = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(|e| {
        kube_err("reading the kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config)".into())(
            e.into(),
        )
    })?;
    let chosen = context
        .map(str::to_string)
        .or_else(|| config_file.current_context.clone())
        .ok_or_else(|| Error::Kubeconfig("it has no current-context: pass --context".into()))?;
    if !config_file.contexts.iter().any(|c| c.name == chosen) {
        let known: Vec<&str> = config_file
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(Error::Kubeconfig(format!(
            "context '{chosen}' is not in it (it has: {})",
            known.join(", ")
        )));
    }
    let seat = config_file
        .contexts
        .iter()
        .find(|c| c.name == chosen)
        .and_then(|c| c.context.as_ref())
        .and_then(crate::class::Seat::of_context);
    let options = KubeConfigOptions {
        context: Some(chosen.clone()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(config_file, &options)
        .await
        .map_err(|e| kube_err(format!("loading context '{chosen}'"))(e.into()))?;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let client = super::client::from_config(config.clone())
        .map_err(kube_err(format!("connecting to {server}")))?;
    Ok(Existing {
        seat,
        client,
        config,
        context: chosen,
        server,
    })
}

/// The confirmation rule: `--yes` or an explicit `--context` is consent; otherwise ask
/// on a terminal, and refuse without one.
pub fn confirm(existing: &Existing, explicit_context: bool, yes: bool) -> Result<(), Error> {
    if yes || explicit_context || existing.seat.is_some() {
        return Ok(());
    }
    let needs = || Error::NeedsConfirmation {
        context: existing.context.clone(),
        server: existing.server.clone(),
    };
    match crate::ui::ask(&format!(
        "kubelab will create and delete objects labelled kubelab.dev/lab in\n  context {}\n  server  {}\nContinue?",
        existing.context, existing.server
    )) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::Declined {
            context: existing.context.clone(),
        }),
        None => Err(needs()),
    }
}

/// Whether some node is Ready, i.e. whether lab pods will really run.
pub async fn has_ready_node(client: &kube::Client, server: &str) -> Result<bool, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube {
            context: format!("listing the nodes of {server}"),
            source,
        })?;
    Ok(list.items.iter().any(|node| {
        node.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }))
}

/// The kubeconfig provider: a cluster kubelab did not make, chosen as kubectl chooses.
pub struct FromKubeconfig {
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    yes: bool,
}

impl FromKubeconfig {
    pub fn new(kubeconfig: Option<PathBuf>, context: Option<String>, yes: bool) -> Self {
        FromKubeconfig {
            kubeconfig,
            context,
            yes,
        }
    }
}

#[async_trait::async_trait]
impl super::Provider for FromKubeconfig {
    fn name(&self) -> &'static str {
        "kubeconfig"
    }

    /// Nothing to start; before anything changes, consent.
    async fn ensure(
        &self,
        _options: &super::UpOptions,
        _ui: &crate::ui::Ui,
    ) -> Result<super::Ensured, Error> {
        let cluster = connect(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        confirm(&cluster, self.context.is_some(), self.yes)?;
        Ok(super::Ensured::Reused)
    }

    async fn connect(&self) -> Result<super::Connection, Error> {
        let cluster = connect(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        Ok(super::Connection {
            apiserver: cluster.authority(),
            client: cluster.client,
            config: cluster.config,
            provider: "kubeconfig",
            name: cluster.context,
            server: cluster.server,
            kubectl: None,
        })
    }

    async fn teardown(&self, _ui: &crate::ui::Ui) -> Result<(), Error> {
        Err(Error::Usage(
            "kubelab did not create the kubeconfig's cluster, so it never stops it; only what runs created (labelled kubelab.dev/run) is removed".into(),
        ))
    }

    fn kubeconfig(&self) -> Result<(PathBuf, Option<String>), Error> {
        let path = self.kubeconfig.clone().or_else(|| {
            std::env::var_os("KUBECONFIG")
                .and_then(|v| std::env::split_paths(&v).next())
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube/config")))
        });
        Ok((path.unwrap_or_default(), self.context.clone()))
    }

    async fn status(&self) -> Result<super::Status, Error> {
        let cluster = connect(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        let version = cluster
            .client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .map_err(|source| Error::Kube {
                context: format!("reading /version of {}", cluster.server),
                source,
            })?;
        let nodes = has_ready_node(&cluster.client, &cluster.server).await?;
        Ok(super::Status {
            ready: true,
            text: format!(
                "context {} at {}: Kubernetes {version}, {}",
                cluster.context,
                cluster.server,
                if nodes {
                    "a node is Ready (probes run in pods)"
                } else {
                    "no Ready node (probes run on the host)"
                }
            ),
            json: serde_json::json!({"provider": "kubeconfig", "context": cluster.context, "server": cluster.server, "kubernetes_version": version, "ready_node": nodes}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority_of(server: &str) -> String {
        // Only `server` matters for authority(); build the rest cheaply.
        let config = kube::Config::new(server.parse().unwrap());
        Existing {
            seat: None,
            client: kube::Client::try_from(config.clone()).unwrap(),
            config,
            context: "x".into(),
            server: server.into(),
        }
        .authority()
    }

    #[tokio::test]
    async fn the_server_authority_keeps_its_port_or_gets_443() {
        assert_eq!(authority_of("https://127.0.0.1:6443"), "127.0.0.1:6443");
        assert_eq!(
            authority_of("https://api.example.com"),
            "api.example.com:443"
        );
        assert_eq!(authority_of("https://[::1]:6443/"), "[::1]:6443");
    }
}
