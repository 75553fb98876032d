//! Server-side apply of a lab's manifests (field manager `kubelab`), labelling every
//! object with its lab and run, and remembering exactly what this run created so that
//! cleanup deletes that and nothing else.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, ResourceExt};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::images::ImageMap;

pub const LAB_LABEL: &str = "kubelab.dev/lab";
pub const RUN_LABEL: &str = "kubelab.dev/run";
pub const FIELD_MANAGER: &str = "kubelab";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{object}: {source}")]
    Kube {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "{object} already exists and was not made by kubelab (no {LAB_LABEL} label): refusing to change it; delete it or use another cluster"
    )]
    NotOurs { object: String },
    #[error("{object} is invalid: {message}")]
    Invalid { object: String, message: String },
    #[error("{0} were still being deleted after {1:?}")]
    DeleteTimeout(String, Duration),
}

/// An object this run created (or took over from an earlier run of the same lab).
#[derive(Clone, Debug, Serialize)]
pub struct Created {
    #[serde(skip)]
    resource: ApiResource,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Created {
    pub fn describe(&self) -> String {
        describe(&self.kind, self.namespace.as_deref(), &self.name)
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        }
    }
}

fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// What applying one object did.
pub enum Applied {
    Created(Created),
    /// A namespace that existed before (not kubelab's): used as it is, never deleted.
    UsedExisting(String),
}

pub struct Applier {
    client: kube::Client,
    lab_id: String,
    run_id: String,
    default_namespace: String,
    /// Discovery answers, shared by all labs of a run.
    resources: &'static Mutex<HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>>,
    /// Image replacements from the command line.
    images: ImageMap,
}

fn discovery_cache() -> &'static Mutex<HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>> {
    static CACHE: std::sync::OnceLock<
        Mutex<HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>>,
    > = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Applier {
    pub fn new(
        client: kube::Client,
        lab_id: &str,
        run_id: &str,
        default_namespace: &str,
        images: ImageMap,
    ) -> Self {
        Applier {
            client,
            lab_id: lab_id.to_string(),
            run_id: run_id.to_string(),
            default_namespace: default_namespace.to_string(),
            resources: discovery_cache(),
            images,
        }
    }

    async fn resource_for(
        &self,
        gvk: &GroupVersionKind,
        object: &str,
    ) -> Result<(ApiResource, ApiCapabilities), Error> {
        if let Some(found) = self.resources.lock().await.get(gvk) {
            return Ok(found.clone());
        }
        let found = kube::discovery::pinned_kind(&self.client, gvk)
            .await
            .map_err(|source| Error::Kube {
                object: format!("{object} (looking up its API)"),
                source,
            })?;
        self.resources
            .lock()
            .await
            .insert(gvk.clone(), found.clone());
        Ok(found)
    }

    /// Applies one manifest document.
    pub async fn apply(&self, document: &serde_json::Value) -> Result<Applied, Error> {
        let mut document = document.clone();
        crate::images::rewrite(&mut document, &self.images);
        let document = &document;
        let mut object: DynamicObject =
            serde_json::from_value(document.clone()).map_err(|e| Error::Invalid {
                object: "a manifest document".into(),
                message: e.to_string(),
            })?;
        let types = object.types.clone().ok_or_else(|| Error::Invalid {
            object: object.name_any(),
            message: "no apiVersion/kind".into(),
        })?;
        let gvk = GroupVersionKind::try_from(&types).map_err(|e| Error::Invalid {
            object: object.name_any(),
            message: e.to_string(),
        })?;
        let name = object.name_any();
        let (resource, capabilities) = self
            .resource_for(&gvk, &describe(&gvk.kind, None, &name))
            .await?;
        let namespace = match capabilities.scope {
            Scope::Namespaced => Some(
                object
                    .namespace()
                    .unwrap_or_else(|| self.default_namespace.clone()),
            ),
            Scope::Cluster => None,
        };
        object.metadata.namespace = namespace.clone();
        let created = Created {
            resource,
            kind: gvk.kind.clone(),
            namespace,
            name: name.clone(),
        };
        let api = created.api(&self.client);
        let object_name = created.describe();
        let kube_err = |source| Error::Kube {
            object: object_name.clone(),
            source,
        };

        if let Some(existing) = self
            .wait_unless_terminating(&api, &name, &object_name)
            .await?
        {
            let ours = existing.labels().get(LAB_LABEL) == Some(&self.lab_id);
            if !ours && gvk.kind == "Namespace" {
                return Ok(Applied::UsedExisting(object_name));
            }
            if !ours {
                return Err(Error::NotOurs {
                    object: object_name,
                });
            }
        }
        self.label(&mut object, document);
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(kube_err)?;
        Ok(Applied::Created(created))
    }

    /// The existing object, or None; an object being deleted (a namespace from an
    /// earlier run, say) is waited for until it is gone.
    async fn wait_unless_terminating(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        object: &str,
    ) -> Result<Option<DynamicObject>, Error> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let existing = api.get_opt(name).await.map_err(|source| Error::Kube {
                object: object.to_string(),
                source,
            })?;
            match existing {
                Some(o) if o.metadata.deletion_timestamp.is_some() => {
                    if Instant::now() > deadline {
                        return Err(Error::DeleteTimeout(
                            object.to_string(),
                            Duration::from_secs(120),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return Ok(other),
            }
        }
    }

    /// The lab and run labels, on the object and on a pod template if it has one (so
    /// the pods a Deployment makes carry them too).
    fn label(&self, object: &mut DynamicObject, document: &serde_json::Value) {
        let labels = object.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(LAB_LABEL.into(), self.lab_id.clone());
        labels.insert(RUN_LABEL.into(), self.run_id.clone());
        if document.pointer("/spec/template/metadata").is_some()
            && let Some(template_labels) = object.data.pointer_mut("/spec/template/metadata")
        {
            let map = template_labels
                .as_object_mut()
                .expect("metadata is an object");
            let labels = map.entry("labels").or_insert_with(|| serde_json::json!({}));
            labels[LAB_LABEL] = self.lab_id.clone().into();
            labels[RUN_LABEL] = self.run_id.clone().into();
        }
    }
}

/// Deletes what a run created, newest first, then waits until all of it is gone (a
/// namespace takes the namespace controller a few seconds).
pub async fn delete_all(
    client: &kube::Client,
    created: &[Created],
    timeout: Duration,
) -> Result<(), Error> {
    for object in created.iter().rev() {
        let params = DeleteParams::background();
        match object.api(client).delete(&object.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::Kube {
                    object: object.describe(),
                    source,
                });
            }
        }
    }
    let deadline = Instant::now() + timeout;
    let mut remaining: Vec<&Created> = created.iter().collect();
    while !remaining.is_empty() {
        let mut still = Vec::new();
        for object in remaining {
            match object.api(client).get_opt(&object.name).await {
                Ok(None) => {}
                Ok(Some(_)) => still.push(object),
                Err(source) => {
                    return Err(Error::Kube {
                        object: object.describe(),
                        source,
                    });
                }
            }
        }
        remaining = still;
        if remaining.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let names: Vec<String> = remaining.iter().map(|o| o.describe()).collect();
            return Err(Error::DeleteTimeout(names.join(", "), timeout));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
