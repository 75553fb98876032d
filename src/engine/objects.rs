//! Changing the cluster for a lab: server-side apply and create of its manifests (field
//! manager `kubelab`), patch and delete, as kubelab or as an identity it impersonates.
//! Every object is labelled with its lab and run, and exactly what this run created is
//! remembered, so cleanup deletes that and nothing else.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::wait::conditions;
use kube::{Api, ResourceExt};
use serde::Serialize;
use tokio::sync::Mutex;

use super::Error;
use super::resources::{Resolved, Resources};
use crate::images::ImageMap;
use crate::scenario::{Identity, ObjectRef, PatchType};

pub const LAB_LABEL: &str = "kubelab.dev/lab";
pub const RUN_LABEL: &str = "kubelab.dev/run";
/// On what `run --keep` leaves: a later run of the same lab may take it over. Without
/// it, an object belongs to its run alone (two runs at once never share objects).
pub const KEPT_LABEL: &str = "kubelab.dev/kept";
/// On what someone made for a lab ahead of it (a class's namespaces and shared
/// ClusterRoles): a lab uses it as it is, and never changes or removes it.
pub const PROVIDED_LABEL: &str = "kubelab.dev/provided";
pub const FIELD_MANAGER: &str = "kubelab";

/// When an object was made, in seconds since the epoch.
pub fn created_at(object: &DynamicObject) -> u64 {
    object
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second().max(0) as u64)
        .unwrap_or(0)
}

/// How long a new namespace's `default` ServiceAccount may take to appear.
const DEFAULT_ACCOUNT_WAIT: Duration = Duration::from_secs(30);

/// How long taking over a student's object may wait for it to go.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(60);

/// An object this run created (or took over from an earlier run of the same lab).
#[derive(Clone, Debug, Serialize)]
pub struct Created {
    #[serde(skip)]
    resolved: Resolved,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Created {
    pub fn new(resolved: Resolved, namespace: Option<&str>, name: &str) -> Self {
        Created {
            kind: resolved.resource.kind.clone(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            resolved,
        }
    }

    pub fn describe(&self) -> String {
        describe(&self.kind, self.namespace.as_deref(), &self.name)
    }

    /// The API group of its kind.
    pub fn group(&self) -> String {
        self.resolved.resource.group.clone()
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        self.resolved
            .api(client, self.namespace.as_deref().unwrap_or_default())
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

pub struct Objects {
    client: kube::Client,
    config: kube::Config,
    resources: Arc<Resources>,
    /// Told of every RBAC write, so probes read RBAC again.
    rbac_snapshots: Arc<crate::rbac::snapshot::Snapshots>,
    lab_id: String,
    run_id: String,
    /// Image replacements from the command line.
    images: ImageMap,
    /// A hands-on lab's solution: objects made since this time (seconds since the
    /// epoch) are the student's attempt, which the solution replaces.
    adopt_since: Option<u64>,
    /// A run takes over what an earlier run of the same lab kept (and removes it);
    /// a hands-on command removes only what it made itself.
    takes_over: bool,
    /// This run leaves its objects for a later run (`run --keep`).
    leaves_for_later: bool,
    /// Run ids of hands-on labs in progress (and their labs): never changed.
    protected: Arc<std::collections::BTreeMap<String, String>>,
    /// What this lab created and has not deleted yet.
    pub created: Arc<Mutex<Vec<Created>>>,
}

impl Objects {
    pub fn new(
        target: &super::Target,
        lab_id: &str,
        run_id: &str,
        settings: &super::Settings,
        created: Arc<Mutex<Vec<Created>>>,
    ) -> Self {
        Objects {
            client: target.client.clone(),
            config: target.config.clone(),
            resources: target.resources.clone(),
            rbac_snapshots: target.rbac_snapshots.clone(),
            lab_id: lab_id.to_string(),
            run_id: run_id.to_string(),
            images: settings.images.clone(),
            adopt_since: settings.adopt_since,
            takes_over: settings.part == crate::scenario::Part::All,
            leaves_for_later: settings.part == crate::scenario::Part::All
                && settings.keep == super::Keep::Everything,
            protected: settings.protected.clone(),
            created,
        }
    }

    /// Refuses an object of a hands-on lab in progress (another run's).
    fn not_in_progress(&self, object: &DynamicObject, what: &str) -> Result<(), Error> {
        match object.labels().get(RUN_LABEL) {
            Some(run) if *run != self.run_id => match self.protected.get(run) {
                Some(lab) => Err(Error::InProgress {
                    object: what.to_string(),
                    lab: lab.clone(),
                }),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Whether `object` is a student's, made since the hands-on lab started, in a
    /// namespace (a namespace itself, or anything cluster-wide, is never taken over:
    /// it may hold or serve more than the lab).
    fn adoptable(&self, object: &DynamicObject, namespaced: bool) -> bool {
        namespaced
            && object.types.as_ref().is_none_or(|t| t.kind != "Namespace")
            && self
                .adopt_since
                .is_some_and(|since| created_at(object) >= since)
    }

    /// kubelab's client, or one that impersonates `identity`.
    pub fn client_as(
        &self,
        identity: Option<&Identity>,
        namespace: &str,
    ) -> Result<(kube::Client, String), Error> {
        let Some(identity) = identity else {
            return Ok((self.client.clone(), "as kubelab".into()));
        };
        let (user, groups) = identity.user_and_groups(namespace);
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = (!groups.is_empty()).then_some(groups);
        let client =
            crate::cluster::client::from_config(config).map_err(|source| Error::Cluster {
                doing: format!("making a client that acts as {user}"),
                source,
            })?;
        Ok((client, format!("as {user}")))
    }

    /// Applies (server-side) or creates one manifest document, as kubelab or `identity`.
    pub async fn apply(
        &self,
        document: &serde_json::Value,
        default_namespace: &str,
        identity: Option<&Identity>,
        create: bool,
    ) -> Result<Applied, Error> {
        let mut document = document.clone();
        crate::images::rewrite(&mut document, &self.images);
        let mut object: DynamicObject = serde_json::from_value(document.clone())
            .map_err(|e| Error::Lab(format!("a manifest document: {e}")))?;
        let types = object
            .types
            .clone()
            .ok_or_else(|| Error::Lab(format!("{}: no apiVersion/kind", object.name_any())))?;
        let gvk = GroupVersionKind::try_from(&types)
            .map_err(|e| Error::Lab(format!("{}: {e}", object.name_any())))?;
        let name = object.name_any();
        let resolved = self
            .resources
            .for_gvk(&gvk, &describe(&gvk.kind, None, &name))
            .await?;
        let namespace = resolved.namespaced.then(|| {
            object
                .namespace()
                .unwrap_or_else(|| default_namespace.to_string())
        });
        object.metadata.namespace = namespace.clone();
        let created = Created {
            resolved: resolved.clone(),
            kind: gvk.kind.clone(),
            namespace,
            name: name.clone(),
        };
        let object_name = created.describe();
        let admin = created.api(&self.client);
        let mut existed = wait_unless_terminating(&admin, &name, &object_name).await?;
        if let Some(existing) = &existed
            && existing.labels().contains_key(PROVIDED_LABEL)
        {
            return Ok(Applied::UsedExisting(object_name));
        }
        if let Some(existing) = &existed {
            // Another hands-on lab's namespace is shared as it is, like any other.
            if gvk.kind == "Namespace" && self.not_in_progress(existing, &object_name).is_err() {
                return Ok(Applied::UsedExisting(object_name));
            }
            self.not_in_progress(existing, &object_name)?;
        }
        // The student's own attempt gives way to the solution, whole: fields such as a
        // pod's spec or a binding's roleRef cannot be changed in place.
        if let Some(existing) = &existed
            && existing.labels().get(LAB_LABEL) != Some(&self.lab_id)
            && self.adoptable(existing, resolved.namespaced)
        {
            delete_all(&self.client, std::slice::from_ref(&created), ADOPT_TIMEOUT).await?;
            existed = None;
        }
        if let Some(existing) = &existed {
            let ours = existing.labels().get(LAB_LABEL) == Some(&self.lab_id)
                && (existing.labels().get(RUN_LABEL) == Some(&self.run_id)
                    || existing
                        .labels()
                        .get(KEPT_LABEL)
                        .is_some_and(|v| v == "true"));
            if !ours && gvk.kind == "Namespace" {
                return Ok(Applied::UsedExisting(object_name));
            }
            if !ours {
                return Err(Error::NotOurs {
                    object: object_name,
                });
            }
        }
        self.label(&mut object);
        let (client, _) = self.client_as(identity, default_namespace)?;
        let api = created.api(&client);
        let verb = if create { "creating" } else { "applying" };
        // Recorded before the request: an interrupt while it is under way must not
        // leave an object nobody remembers (deleting one that never came is a 404). An
        // object that was there already is this run's to remove only in a run, which
        // takes over what an earlier run of its lab kept.
        if existed.is_none() || self.takes_over {
            self.created.lock().await.push(created.clone());
        }
        let send = || async {
            let answer = if create {
                api.create(&PostParams::default(), &object).await
            } else {
                api.patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&object),
                )
                .await
            };
            if let Ok(written) = &answer {
                self.rbac_snapshots.wrote(
                    &resolved.resource.group,
                    &resolved.resource.kind,
                    &written.metadata,
                );
            }
            answer.map(|_| ())
        };
        let mut result = send().await;
        // A namespace made a moment ago may not have its `default` ServiceAccount yet
        // (the controller makes it): wait for it, then ask again.
        if let (Err(kube::Error::Api(e)), Some(namespace)) = (&result, &created.namespace)
            && e.message.contains("error looking up service account")
            && e.message.contains("serviceaccount \"default\" not found")
        {
            let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
                Api::namespaced(self.client.clone(), namespace);
            let appeared = kube::runtime::wait::await_condition(
                accounts,
                "default",
                |sa: Option<&k8s_openapi::api::core::v1::ServiceAccount>| sa.is_some(),
            );
            if tokio::time::timeout(DEFAULT_ACCOUNT_WAIT, appeared)
                .await
                .is_ok()
            {
                result = send().await;
            } else {
                return Err(Error::Stuck {
                    what: object_name,
                    state: format!(
                        "namespace {namespace} has no ServiceAccount \"default\" after {} (kube-controller-manager's serviceaccount controller makes one in every namespace: is it running?)",
                        crate::ui::format_duration(DEFAULT_ACCOUNT_WAIT)
                    ),
                });
            }
        }
        if let Err(source) = result {
            if existed.is_none() {
                let mut recorded = self.created.lock().await;
                if let Some(at) = recorded.iter().rposition(|c| c.describe() == object_name) {
                    recorded.remove(at);
                }
            }
            return Err(Error::from_kube_as(
                format!("{verb} {object_name}"),
                source,
                identity.is_some(),
            ));
        }
        Ok(Applied::Created(created))
    }

    /// The lab and run labels, on the object and on a pod template if it has one (so
    /// the pods a Deployment makes carry them too).
    fn label(&self, object: &mut DynamicObject) {
        let labels = object.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(LAB_LABEL.into(), self.lab_id.clone());
        labels.insert(RUN_LABEL.into(), self.run_id.clone());
        if self.leaves_for_later {
            labels.insert(KEPT_LABEL.into(), "true".into());
        }
        if let Some(template) = object.data.pointer_mut("/spec/template") {
            if !template.is_object() {
                return; // not a pod template: the API server will say what is wrong
            }
            let metadata = template
                .as_object_mut()
                .expect("checked above")
                .entry("metadata")
                .or_insert_with(|| serde_json::json!({}));
            if !metadata.is_object() {
                *metadata = serde_json::json!({});
            }
            let labels = metadata
                .as_object_mut()
                .expect("made an object above")
                .entry("labels")
                .or_insert_with(|| serde_json::json!({}));
            if !labels.is_object() {
                *labels = serde_json::json!({});
            }
            labels[LAB_LABEL] = self.lab_id.clone().into();
            labels[RUN_LABEL] = self.run_id.clone().into();
        }
    }

    /// The object a reference names, after checking this run may change it: it carries
    /// this run's label, or lives in a namespace this run created.
    pub async fn owned(
        &self,
        reference: &ObjectRef,
        namespace: &str,
    ) -> Result<(Resolved, String), Error> {
        let resolved = self.resources.for_type(&reference.resource).await?;
        let name = reference.name.clone().unwrap_or_default();
        let what = resolved.describe(namespace, &name);
        let existing = resolved
            .api(&self.client, namespace)
            .get_opt(&name)
            .await
            .map_err(|source| Error::from_kube(format!("reading {what}"), source))?;
        let Some(existing) = existing else {
            return Err(Error::Missing(what));
        };
        self.may_change(&resolved, &existing, namespace, &what)
            .await?;
        Ok((resolved, what))
    }

    /// Whether a solution may take it as gone: the student may have deleted it.
    pub fn gone_is_fine(&self) -> bool {
        self.adopt_since.is_some()
    }

    /// Refuses to touch what this run does not own: its label, a namespace it made, or
    /// (in a hands-on solution) the student's attempt.
    async fn may_change(
        &self,
        resolved: &Resolved,
        existing: &DynamicObject,
        namespace: &str,
        what: &str,
    ) -> Result<(), Error> {
        self.not_in_progress(existing, what)?;
        let labelled = existing.labels().get(RUN_LABEL) == Some(&self.run_id);
        let in_our_namespace = resolved.namespaced
            && self
                .created
                .lock()
                .await
                .iter()
                .any(|c| c.kind == "Namespace" && c.name == namespace);
        if labelled || in_our_namespace || self.adoptable(existing, resolved.namespaced) {
            Ok(())
        } else {
            Err(Error::Lab(format!(
                "{what} was not made by this run and is not in a namespace it created: kubelab changes nothing it does not own"
            )))
        }
    }

    pub async fn patch(
        &self,
        reference: &ObjectRef,
        namespace: &str,
        patch_type: PatchType,
        patch: &serde_json::Value,
        identity: Option<&Identity>,
    ) -> Result<String, Error> {
        let (resolved, what) = self.owned(reference, namespace).await?;
        let (client, _) = self.client_as(identity, namespace)?;
        let api = resolved.api(&client, namespace);
        let name = reference.name.clone().unwrap_or_default();
        let params = PatchParams::default();
        let result = match patch_type {
            PatchType::Merge => api.patch(&name, &params, &Patch::Merge(patch)).await,
            PatchType::Strategic => api.patch(&name, &params, &Patch::Strategic(patch)).await,
            PatchType::Json => {
                let operations: json_patch::Patch = serde_json::from_value(patch.clone())
                    .map_err(|e| Error::Lab(format!("patching {what}: not a JSON patch: {e}")))?;
                api.patch(&name, &params, &Patch::Json::<()>(operations))
                    .await
            }
        };
        let patched = result.map_err(|source| {
            Error::from_kube_as(format!("patching {what}"), source, identity.is_some())
        })?;
        self.rbac_snapshots.wrote(
            &resolved.resource.group,
            &resolved.resource.kind,
            &patched.metadata,
        );
        Ok(format!("patched {what}"))
    }

    /// Deletes one object and waits until it is gone.
    pub async fn delete(
        &self,
        resolved: &Resolved,
        namespace: &str,
        name: &str,
        grace_period: Option<u32>,
        identity: Option<&Identity>,
        timeout: Duration,
    ) -> Result<String, Error> {
        let what = resolved.describe(namespace, name);
        let (client, _) = self.client_as(identity, namespace)?;
        let api = resolved.api(&client, namespace);
        let params = DeleteParams {
            grace_period_seconds: grace_period,
            propagation_policy: Some(kube::api::PropagationPolicy::Background),
            ..Default::default()
        };
        let answer = api.delete(name, &params).await;
        let uid = match answer {
            Ok(answer) => deleted_uid(answer),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(Error::Missing(what));
            }
            Err(source) => {
                return Err(Error::from_kube_as(
                    format!("deleting {what}"),
                    source,
                    identity.is_some(),
                ));
            }
        };
        self.rbac_snapshots.deleted(
            &resolved.resource.group,
            &resolved.resource.kind,
            resolved.namespaced.then_some(namespace),
            name,
            uid.as_deref(),
        );
        let admin = resolved.api(&self.client, namespace);
        wait_gone(admin, name, uid.as_deref(), &what, timeout).await?;
        self.created.lock().await.retain(|c| {
            !(c.name == name
                && c.kind == resolved.resource.kind
                && (c.namespace.as_deref() == Some(namespace) || !resolved.namespaced))
        });
        Ok(format!("deleted {what}"))
    }

    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }
}

/// The uid of what a DELETE removed: the object, when the API server returns it (it is
/// still finalizing), or the Status's details when it is gone at once. Waiting on the
/// uid, not the name, tells a deleted object from its recreation by a controller.
fn deleted_uid(answer: either::Either<DynamicObject, kube::core::Status>) -> Option<String> {
    match answer {
        either::Either::Left(object) => object.metadata.uid,
        either::Either::Right(status) => status
            .details
            .and_then(|d| (!d.uid.is_empty()).then_some(d.uid)),
    }
}

/// Waits until the object (of this uid, when known) is gone.
async fn wait_gone(
    api: Api<DynamicObject>,
    name: &str,
    uid: Option<&str>,
    what: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let gone = match uid {
        Some(uid) => {
            let deleted = conditions::is_deleted(uid);
            super::wait::object_until(api.clone(), name, timeout, |o: Option<&DynamicObject>| {
                kube::runtime::wait::Condition::matches_object(&deleted, o)
            })
            .await
        }
        None => super::wait::object_until(api.clone(), name, timeout, |o| o.is_none()).await,
    };
    match gone {
        Some(_) => Ok(()),
        None => {
            let state = match api.get_opt(name).await {
                Ok(Some(object)) => terminating_state(&object),
                Ok(None) => "gone just now".into(),
                Err(e) => e.to_string(),
            };
            Err(Error::Timeout {
                what: what.to_string(),
                until: "deleted".into(),
                timeout,
                state,
            })
        }
    }
}

/// Waits (watching, bounded) until namespace `name` (of `uid`, when known) is gone.
pub(crate) async fn wait_namespace_gone(
    client: &kube::Client,
    name: &str,
    uid: Option<&str>,
    timeout: Duration,
) -> Result<(), Error> {
    let resource =
        kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&());
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let what = describe("Namespace", None, name);
    wait_gone(api, name, uid, &what, timeout).await
}

/// Why an object is still there: its finalizers and, for a namespace, its conditions.
pub fn terminating_state(object: &DynamicObject) -> String {
    let mut parts = Vec::new();
    if let Some(finalizers) = object
        .metadata
        .finalizers
        .as_ref()
        .filter(|f| !f.is_empty())
    {
        parts.push(format!("finalizers {}", finalizers.join(", ")));
    }
    if let Some(spec) = object.data["spec"]["finalizers"]
        .as_array()
        .filter(|f| !f.is_empty())
    {
        let names: Vec<&str> = spec.iter().filter_map(|f| f.as_str()).collect();
        parts.push(format!("spec.finalizers {}", names.join(", ")));
    }
    let mut reported = false;
    for condition in object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        reported = true;
        if condition["status"] == "True" {
            parts.push(format!(
                "{}: {}",
                condition["type"].as_str().unwrap_or_default(),
                condition["message"].as_str().unwrap_or_default()
            ));
        }
    }
    // The namespace controller sets conditions on every namespace it works on: none
    // at all means it is not working on this one.
    let waits_for_controller = object.data["spec"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f == "kubernetes"));
    if waits_for_controller && !reported {
        parts.push(
            "no conditions: the namespace controller has not reported on it (is kube-controller-manager running?)"
                .into(),
        );
    }
    if parts.is_empty() {
        "still terminating".into()
    } else {
        parts.join("; ")
    }
}

/// The existing object, or None; an object being deleted (a namespace from an earlier
/// run or lab, say) is waited for until it is gone. A namespace kubelab made for a lab
/// is emptied and finalized meanwhile, as the namespace controller would after its
/// 5 s hold; any other is left to the controller.
async fn wait_unless_terminating(
    api: &Api<DynamicObject>,
    name: &str,
    object: &str,
) -> Result<Option<DynamicObject>, Error> {
    const TIMEOUT: Duration = Duration::from_secs(120);
    let existing = api
        .get_opt(name)
        .await
        .map_err(|source| Error::from_kube(format!("reading {object}"), source))?;
    match existing {
        Some(o)
            if o.metadata.deletion_timestamp.is_some()
                && o.types.as_ref().is_some_and(|t| t.kind == "Namespace")
                && o.labels().contains_key(LAB_LABEL)
                && !o.labels().contains_key(PROVIDED_LABEL) =>
        {
            let going = [(name, o.metadata.uid.as_deref())];
            let client = api.clone().into_client();
            let gone = super::namespaces::finish(&client, &going, TIMEOUT, |_| {}).await;
            gone.into_iter().next().unwrap_or(Ok(()))?;
            Ok(None)
        }
        Some(o) if o.metadata.deletion_timestamp.is_some() => {
            wait_gone(
                api.clone(),
                name,
                o.metadata.uid.as_deref(),
                object,
                TIMEOUT,
            )
            .await?;
            Ok(None)
        }
        other => Ok(other),
    }
}

/// Deletes what a run created, newest first, then waits until all of it is gone (a
/// namespace takes the namespace controller a few seconds).
pub async fn delete_all(
    client: &kube::Client,
    created: &[Created],
    timeout: Duration,
) -> Result<(), Error> {
    let deleting = request_deletes(client, created, false).await?;
    wait_all_gone(client, &deleting, timeout).await
}

/// An object whose deletion was asked for, by uid (a new one of the same name is
/// another object).
#[derive(Clone, Debug)]
pub struct Deleting {
    object: Created,
    uid: Option<String>,
}

impl Deleting {
    pub fn describe(&self) -> String {
        self.object.describe()
    }

    pub fn name(&self) -> &str {
        &self.object.name
    }

    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// Tells the run's RBAC view that it is gone (an RBAC object's deletion is then
    /// waited for before a probe explains itself).
    pub fn gone_from(&self, rbac: &crate::rbac::snapshot::Snapshots) {
        let object = &self.object;
        rbac.deleted(
            &object.group(),
            &object.kind,
            object.namespace.as_deref(),
            &object.name,
            self.uid(),
        );
    }
}

/// What a lab's cleanup deleted: its namespaces still going, and the rest, gone.
pub struct Removed {
    pub namespaces: Vec<Deleting>,
    pub gone: Vec<Deleting>,
}

/// Deletes `created` and waits for everything but its namespaces, which the namespace
/// controller takes seconds to empty: those are returned apart, to be waited for once,
/// at the end of the run. What lives in a namespace that goes is not deleted one by one.
pub async fn delete_leaving_namespaces(
    client: &kube::Client,
    created: &[Created],
    timeout: Duration,
    namespaces_waited_for: bool,
) -> Result<Removed, Error> {
    // When nobody waits for the namespaces, what is inside them is deleted and
    // checked gone here.
    let deleting = request_deletes(client, created, namespaces_waited_for).await?;
    let (namespaces, rest): (Vec<Deleting>, Vec<Deleting>) = deleting
        .into_iter()
        .partition(|d| d.object.kind == "Namespace");
    if !namespaces_waited_for {
        stop_pods_at_once(client, &namespaces).await;
    }
    wait_all_gone(client, &rest, timeout).await?;
    Ok(Removed {
        namespaces,
        gone: rest,
    })
}

/// Deletes every pod left in namespaces kubelab made and has just deleted, with grace
/// 0, as the namespace sweep does. Their workloads are being deleted, but the garbage
/// collector deletes their pods with the pods' own grace period, which the kubelet
/// then waits out; the terminating namespace refuses replacements. Best effort: what
/// is refused here still goes that slower way, and is waited for all the same.
async fn stop_pods_at_once(client: &kube::Client, namespaces: &[Deleting]) {
    use k8s_openapi::api::core::v1::Pod;
    let params = DeleteParams::background().grace_period(0);
    futures::future::join_all(namespaces.iter().map(|namespace| {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace.object.name);
        let params = params.clone();
        async move {
            let _ = pods
                .delete_collection(&params, &kube::api::ListParams::default())
                .await;
        }
    }))
    .await;
}

async fn request_deletes(
    client: &kube::Client,
    created: &[Created],
    skip_inside_deleted_namespaces: bool,
) -> Result<Vec<Deleting>, Error> {
    let going: Vec<&str> = created
        .iter()
        .filter(|c| skip_inside_deleted_namespaces && c.kind == "Namespace")
        .map(|c| c.name.as_str())
        .collect();
    let mut deleting = Vec::new();
    for object in created.iter().rev() {
        if object
            .namespace
            .as_deref()
            .is_some_and(|ns| going.contains(&ns))
        {
            continue;
        }
        // Foreground: the object goes only after what it owns (a Deployment's
        // ReplicaSets and pods), so "gone" means nothing of it is left. A pod goes at
        // once: labs' pods hold nothing to shut down gracefully.
        let mut params = DeleteParams::foreground();
        if object.kind == "Pod" {
            params = params.grace_period(0);
        }
        match object.api(client).delete(&object.name, &params).await {
            Ok(answer) => deleting.push(Deleting {
                object: object.clone(),
                uid: deleted_uid(answer),
            }),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::Cluster {
                    doing: format!("deleting {}", object.describe()),
                    source,
                });
            }
        }
    }
    Ok(deleting)
}

/// A namespace whose deletion was asked for is terminating (or gone already).
pub async fn check_terminating(client: &kube::Client, deleting: &Deleting) -> Result<(), Error> {
    let api = deleting.object.api(client);
    match api.get_opt(&deleting.object.name).await {
        Ok(None) => Ok(()),
        Ok(Some(object))
            if object.metadata.deletion_timestamp.is_some()
                || object.metadata.uid != deleting.uid =>
        {
            Ok(())
        }
        Ok(Some(_)) => Err(Error::Lab(format!(
            "{} was deleted but is not terminating",
            deleting.describe()
        ))),
        Err(source) => Err(Error::Cluster {
            doing: format!("reading {}", deleting.describe()),
            source,
        }),
    }
}

/// Waits (watching, together, bounded) until every one of `deleting` is gone.
pub async fn wait_all_gone(
    client: &kube::Client,
    deleting: &[Deleting],
    timeout: Duration,
) -> Result<(), Error> {
    let names: Vec<String> = deleting.iter().map(Deleting::describe).collect();
    let results = futures::future::join_all(deleting.iter().zip(&names).map(|(d, what)| {
        wait_gone(
            d.object.api(client),
            &d.object.name,
            d.uid.as_deref(),
            what,
            timeout,
        )
    }))
    .await;
    results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map(|_| ())
}
