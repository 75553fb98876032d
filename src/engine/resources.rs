//! What the API server serves, asked once per command (aggregated discovery, two
//! requests) and again when a type is missing: object types as lab files name them
//! (`pod`, `deployments.apps`, `ClusterRoleBinding`) and as manifests name them
//! (apiVersion and kind), resolved to where they live.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::DynamicObject;
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use tokio::sync::Mutex;

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

/// How long a type a CRD defines may take to appear in the API server's discovery.
const CRD_DISCOVERY_WAIT: Duration = Duration::from_secs(10);

/// What the server serves now: aggregated discovery, or one request per group on
/// servers before it.
pub async fn discover(client: &kube::Client) -> Result<Discovery, kube::Error> {
    match Discovery::new(client.clone()).run_aggregated().await {
        Ok(found) => Ok(found),
        Err(_) => Discovery::new(client.clone()).run().await,
    }
}

pub struct Resources {
    client: kube::Client,
    /// The latest discovery: made at first use, made again when a type is missing.
    discovery: Mutex<Option<Arc<Discovery>>>,
}

impl Resources {
    pub fn new(client: kube::Client) -> Self {
        Resources {
            client,
            discovery: Mutex::default(),
        }
    }

    async fn discovery(&self) -> Result<Arc<Discovery>, Error> {
        self.rediscover(None).await
    }

    /// The discovery held, unless it is `stale` (or none is held yet): then a new one.
    async fn rediscover(&self, stale: Option<&Arc<Discovery>>) -> Result<Arc<Discovery>, Error> {
        let mut held = self.discovery.lock().await;
        if let Some(found) = &*held
            && stale.is_none_or(|stale| !Arc::ptr_eq(found, stale))
        {
            return Ok(found.clone());
        }
        let found = Arc::new(
            discover(&self.client)
                .await
                .map_err(|source| Error::Cluster {
                    doing: "discovering the API server's types".into(),
                    source,
                })?,
        );
        *held = Some(found.clone());
        Ok(found)
    }

    /// A type `find` picks from the discovery; else (Err) the latest discovery. A type
    /// missing from it may have come since (a CRD a lab applied): it is looked for in
    /// a new one. The API server may leave a CRD it has just Established out of its
    /// discovery a moment longer (kubectl then says "no matches for kind"), so while a
    /// CRD `defines` the type, it is looked for again, for a few seconds.
    async fn find(
        &self,
        find: impl Fn(&Discovery) -> Option<Resolved>,
        defines: impl Fn(&CustomResourceDefinition) -> bool,
    ) -> Result<Result<Resolved, Arc<Discovery>>, Error> {
        let mut discovery = self.discovery().await?;
        if let Some(found) = find(&discovery) {
            return Ok(Ok(found));
        }
        let deadline = tokio::time::Instant::now() + CRD_DISCOVERY_WAIT;
        let mut defined = None;
        loop {
            discovery = self.rediscover(Some(&discovery)).await?;
            if let Some(found) = find(&discovery) {
                return Ok(Ok(found));
            }
            if defined.is_none() {
                defined = Some(self.any_crd(&defines).await);
            }
            if defined != Some(true) || tokio::time::Instant::now() >= deadline {
                return Ok(Err(discovery));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether a CRD `defines` it (false where kubelab may not list CRDs).
    async fn any_crd(&self, defines: &impl Fn(&CustomResourceDefinition) -> bool) -> bool {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        crds.list(&Default::default())
            .await
            .is_ok_and(|list| list.items.iter().any(defines))
    }

    /// The type of a manifest's object.
    pub async fn for_gvk(&self, gvk: &GroupVersionKind, object: &str) -> Result<Resolved, Error> {
        let defines = |crd: &CustomResourceDefinition| {
            crd.spec.group == gvk.group
                && crd.spec.names.kind == gvk.kind
                && crd
                    .spec
                    .versions
                    .iter()
                    .any(|v| v.name == gvk.version && v.served)
        };
        self.find(|d| d.resolve_gvk(gvk).map(resolved), defines)
            .await?
            .map_err(|_| {
                Error::Lab(format!(
                    "{object}: the API server does not serve {}/{} kind {}",
                    gvk.group, gvk.version, gvk.kind
                ))
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
        let (wanted, group) = match name.split_once('.') {
            Some((wanted, group)) => (wanted.to_lowercase(), Some(group)),
            None => (name.to_lowercase(), None),
        };
        let named = |plural: &str, singular: Option<&str>, kind: &str| {
            plural == wanted || singular == Some(wanted.as_str()) || kind.to_lowercase() == wanted
        };
        let defines = |crd: &CustomResourceDefinition| {
            let names = &crd.spec.names;
            group.is_none_or(|g| g == crd.spec.group)
                && named(&names.plural, names.singular.as_deref(), &names.kind)
        };
        let find = |discovery: &Discovery| {
            groups_in_order(discovery, group)
                .into_iter()
                .flat_map(|g| g.recommended_resources())
                .find(|(resource, _)| named(&resource.plural, None, &resource.kind))
                .map(resolved)
        };
        let latest = match self.find(find, defines).await? {
            Ok(found) => return Ok(found),
            Err(latest) => latest,
        };
        let known: Vec<String> = groups_in_order(&latest, group)
            .into_iter()
            .flat_map(|g| g.recommended_resources())
            .map(|(resource, _)| resource.plural)
            .collect();
        let closest = crate::names::closest(&wanted, &known);
        Err(Error::Lab(format!(
            "the API server serves no type '{name}'{}",
            closest
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default()
        )))
    }
}

/// The groups to look in for a type: `group` only when given; else the core group
/// first, then apps, then the rest in discovery's order, as kubectl prefers.
fn groups_in_order<'a>(
    discovery: &'a Discovery,
    group: Option<&str>,
) -> Vec<&'a kube::discovery::ApiGroup> {
    let mut groups: Vec<_> = discovery
        .groups()
        .filter(|g| group.is_none_or(|wanted| wanted == g.name()))
        .collect();
    groups.sort_by_key(|g| (!g.name().is_empty(), g.name() != "apps"));
    groups
}
