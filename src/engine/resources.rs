//! What the API server serves, asked once per run (aggregated discovery): object types
//! as lab files name them (`pod`, `deployments.apps`, `ClusterRoleBinding`) and as
//! manifests name them (apiVersion and kind), resolved to where they live.

use std::collections::HashMap;

use kube::Api;
use kube::api::DynamicObject;
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use tokio::sync::{Mutex, OnceCell};

use super::Error;

/// A type the API server serves.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl Resolved {
    /// The API for objects of this type in `namespace` (ignored for cluster-scoped ones).
    pub fn api(&self, client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(client.clone(), namespace, &self.resource)
        } else {
            Api::all_with(client.clone(), &self.resource)
        }
    }

    /// "Pod default/mydemo", "ClusterRole x".
    pub fn describe(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{} {namespace}/{name}", self.resource.kind)
        } else {
            format!("{} {name}", self.resource.kind)
        }
    }
}

fn resolved((resource, capabilities): (ApiResource, ApiCapabilities)) -> Resolved {
    Resolved {
        resource,
        namespaced: capabilities.scope == Scope::Namespaced,
    }
}

pub struct Resources {
    client: kube::Client,
    discovery: OnceCell<Discovery>,
    by_gvk: Mutex<HashMap<GroupVersionKind, Resolved>>,
}

impl Resources {
    pub fn new(client: kube::Client) -> Self {
        Resources {
            client,
            discovery: OnceCell::new(),
            by_gvk: Mutex::default(),
        }
    }

    async fn discovery(&self) -> Result<&Discovery, Error> {
        self.discovery
            .get_or_try_init(|| async {
                match Discovery::new(self.client.clone()).run_aggregated().await {
                    Ok(found) => Ok(found),
                    // Servers before aggregated discovery: one request per group.
                    Err(_) => Discovery::new(self.client.clone()).run().await,
                }
            })
            .await
            .map_err(|source| Error::Cluster {
                doing: "discovering the API server's types".into(),
                source,
            })
    }

    /// The type of a manifest's object.
    pub async fn for_gvk(&self, gvk: &GroupVersionKind, object: &str) -> Result<Resolved, Error> {
        if let Some(found) = self.by_gvk.lock().await.get(gvk) {
            return Ok(found.clone());
        }
        let found = kube::discovery::pinned_kind(&self.client, gvk)
            .await
            .map(resolved)
            .map_err(|source| match source {
                kube::Error::Api(status) if status.code == 404 => Error::Lab(format!(
                    "{object}: the API server does not serve {}/{} kind {}",
                    gvk.group, gvk.version, gvk.kind
                )),
                source => Error::Cluster {
                    doing: format!("{object}: looking up its API"),
                    source,
                },
            })?;
        self.by_gvk.lock().await.insert(gvk.clone(), found.clone());
        Ok(found)
    }

    /// Every type the server lists, in its preferred version.
    pub async fn listable(&self) -> Result<Vec<Resolved>, Error> {
        let discovery = self.discovery().await?;
        Ok(discovery
            .groups()
            .flat_map(|group| group.recommended_resources())
            .filter(|(_, capabilities)| {
                capabilities.supports_operation(kube::discovery::verbs::LIST)
            })
            .map(resolved)
            .collect())
    }

    /// A type as kubectl names it: plural, singular or kind, optionally `.group`.
    pub async fn for_type(&self, name: &str) -> Result<Resolved, Error> {
        let discovery = self.discovery().await?;
        let (wanted, group) = match name.split_once('.') {
            Some((wanted, group)) => (wanted, Some(group)),
            None => (name, None),
        };
        let wanted = wanted.to_lowercase();
        let mut known = Vec::new();
        // The core group first, then the rest in discovery's order, as kubectl prefers.
        let mut groups: Vec<_> = discovery.groups().collect();
        groups.sort_by_key(|g| (!g.name().is_empty(), g.name() != "apps"));
        for api_group in groups {
            if group.is_some_and(|g| g != api_group.name()) {
                continue;
            }
            for (resource, capabilities) in api_group.recommended_resources() {
                let kind = resource.kind.to_lowercase();
                if resource.plural == wanted || kind == wanted {
                    return Ok(resolved((resource, capabilities)));
                }
                known.push(resource.plural.clone());
            }
        }
        let closest = crate::names::closest(&wanted, &known);
        Err(Error::Lab(format!(
            "the API server serves no type '{name}'{}",
            closest
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default()
        )))
    }
}
