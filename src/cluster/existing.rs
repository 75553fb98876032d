//! The kubeconfig provider: any cluster reachable through a kubeconfig, chosen like
//! kubectl chooses (--kubeconfig, else KUBECONFIG, else ~/.kube/config; --context,
//! else the current context). kubelab did not create it, so before changing anything
//! it shows where it is about to work and asks.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cluster::Error;

pub struct Existing {
    pub client: kube::Client,
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
    let client =
        kube::Client::try_from(config).map_err(kube_err(format!("connecting to {server}")))?;
    Ok(Existing {
        client,
        context: chosen,
        server,
    })
}

/// The confirmation rule: `--yes` or an explicit `--context` is consent; otherwise ask
/// on a terminal, and refuse without one.
pub fn confirm(existing: &Existing, explicit_context: bool, yes: bool) -> Result<(), Error> {
    if yes || explicit_context {
        return Ok(());
    }
    let needs = || Error::NeedsConfirmation {
        context: existing.context.clone(),
        server: existing.server.clone(),
    };
    if !std::io::stdin().is_terminal() {
        return Err(needs());
    }
    eprint!(
        "kubelab will create and delete objects labelled kubelab.dev/lab in\n  context {}\n  server  {}\nContinue? [y/N] ",
        existing.context, existing.server
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|_| needs())?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::Declined {
            context: existing.context.clone(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn authority_of(server: &str) -> String {
        // Only `server` matters for authority(); build the rest cheaply.
        let config = kube::Config::new(server.parse().unwrap());
        Existing {
            client: kube::Client::try_from(config).unwrap(),
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
