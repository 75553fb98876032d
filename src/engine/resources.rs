//! What the API server serves, asked once per run (aggregated discovery, two requests):
//! object types as lab files name them (`pod`, `deployments.apps`, `ClusterRoleBinding`)
//! and as manifests name them (apiVersion and kind), resolved to where they live.

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

/// How long a kind a CRD defines may take to appear in the API server's discovery.
const CRD_DISCOVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server does not serve the group version (404), or it lacks the kind.
fn is_missing(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 404,
        kube::Error::Discovery(_) => true,
        _ => false,
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
        // The run's discovery knows what the server served when the run began; a type
        // made since (a CRD a lab applied) is looked up on its own.
        let discovered = match self.discovery().await {
            Ok(discovery) => discovery.resolve_gvk(gvk).map(resolved),
            Err(_) => None,
        };
        let found = match discovered {
            Some(found) => Ok(found),
            None => self.look_up(gvk).await,
        }
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

    /// One type, asked of the server now. A CRD the API server has just Established may
    /// be missing from its discovery a moment longer (kubectl then says "no matches for
    /// kind"): while a CRD defines the kind, it is asked again, for a few seconds.
    async fn look_up(&self, gvk: &GroupVersionKind) -> Result<Resolved, kube::Error> {
        let deadline = tokio::time::Instant::now() + CRD_DISCOVERY_WAIT;
        let mut defined = None;
        loop {
            let missing = match kube::discovery::pinned_kind(&self.client, gvk).await {
                Ok(found) => return Ok(resolved(found)),
                Err(e) if is_missing(&e) => e,
                Err(e) => return Err(e),
            };
            if defined.is_none() {
                defined = Some(self.defined_by_a_crd(gvk).await);
            }
            if defined != Some(true) || tokio::time::Instant::now() >= deadline {
                return Err(missing);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Whether a CRD serves `gvk` (false where kubelab may not list CRDs).
    async fn defined_by_a_crd(&self, gvk: &GroupVersionKind) -> bool {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        crds.list(&Default::default()).await.is_ok_and(|list| {
            list.items.iter().any(|crd| {
                crd.spec.group == gvk.group
                    && crd.spec.names.kind == gvk.kind
                    && crd
                        .spec
                        .versions
                        .iter()
                        .any(|v| v.name == gvk.version && v.served)
            })
        })
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
