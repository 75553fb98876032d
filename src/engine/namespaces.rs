//! A lab namespace removed without the namespace controller's fixed 5 s hold (it
//! queues every deleted namespace for 5 s before it starts). Once the namespace is
//! terminating, admission refuses anything new in it; kubelab then does what the
//! controller would: deletes every namespaced collection in it, checks every listable
//! type empty, and finalizes it, so the API server removes it at once. Whatever stops
//! this (another finalizer, a request the user may not make, an object that stays, a
//! type that cannot be deleted by collection holding objects) leaves the namespace to
//! the controller, and `finish` waits for it as for the others.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope};

/// Why the fast path was not taken (the controller finishes instead).
pub type Declined = String;

/// Conflicting updates (the controllers write the namespace too) before giving up.
const FINALIZE_TRIES: usize = 5;

/// Namespaces emptied at the same time (each sends a request per type at once).
const AT_ONCE: usize = 8;

/// Every namespaced type that can be listed, and whether it can be deleted by
/// collection. Asked now, not from the run's cached discovery: a CRD a lab made
/// meanwhile must be swept too.
async fn namespaced_types(client: &kube::Client) -> Result<Vec<(ApiResource, bool)>, Declined> {
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(found) => found,
        Err(_) => Discovery::new(client.clone())
            .run()
            .await
            .map_err(|e| format!("discovering the API server's types: {e}"))?,
    };
    Ok(discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .filter(|(_, caps)| caps.scope == Scope::Namespaced && caps.supports_operation("list"))
        .map(|(resource, caps)| (resource, caps.supports_operation("deletecollection")))
        .collect())
}

/// Namespaces already deleted, gone: emptied and finalized here where it can be, the
/// rest left to the namespace controller (each reason told to `declined`), then waited
/// for (watching, together, each within `timeout`). Each one's result, in order.
pub async fn finish(
    client: &kube::Client,
    going: &[(&str, Option<&str>)],
    timeout: Duration,
    declined: impl Fn(&Declined),
) -> Vec<Result<(), super::Error>> {
    for reason in remove_now(client, going)
        .await
        .iter()
        .filter_map(|r| r.as_ref().err())
    {
        declined(reason);
    }
    futures::future::join_all(
        going
            .iter()
            .map(|(name, uid)| super::objects::wait_namespace_gone(client, name, *uid, timeout)),
    )
    .await
}

/// Empties and finalizes each namespace `(name, uid)` (all of them already deleted),
/// with one discovery for all of them: each one's result, in order. Ok: it is gone, or
/// going now without anything left in it.
async fn remove_now(
    client: &kube::Client,
    going: &[(&str, Option<&str>)],
) -> Vec<Result<(), Declined>> {
    use futures::StreamExt;
    if going.is_empty() {
        return Vec::new();
    }
    let types = match namespaced_types(client).await {
        Ok(types) => types,
        Err(declined) => return going.iter().map(|_| Err(declined.clone())).collect(),
    };
    // Owned names: a stream of futures borrowing them is not Send in a spawned lab.
    let owned: Vec<(String, Option<String>)> = going
        .iter()
        .map(|(name, uid)| (name.to_string(), uid.map(str::to_string)))
        .collect();
    let types = &types;
    futures::stream::iter(owned)
        .map(|(name, uid)| async move { remove_one(client, types, &name, uid.as_deref()).await })
        .buffered(AT_ONCE)
        .collect()
        .await
}

async fn remove_one(
    client: &kube::Client,
    types: &[(ApiResource, bool)],
    name: &str,
    uid: Option<&str>,
) -> Result<(), Declined> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Some(namespace) = namespaces
        .get_opt(name)
        .await
        .map_err(|e| format!("reading namespace {name}: {e}"))?
    else {
        return Ok(());
    };
    if uid.is_some() && namespace.metadata.uid.as_deref() != uid {
        return Ok(()); // ours is gone; this is a new one of the same name
    }
    if namespace.metadata.deletion_timestamp.is_none() {
        return Err(format!("namespace {name} is not terminating"));
    }
    let finalizers = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if finalizers.iter().any(|f| f != "kubernetes") {
        return Err(format!(
            "namespace {name} has other finalizers: {finalizers:?}"
        ));
    }
    // Pods go at once: nothing in a lab's pod needs a graceful stop. Background
    // propagation, as the namespace controller uses: a Job's default (orphan) would hold
    // it with the orphan finalizer until the garbage collector came by.
    let params = DeleteParams::background().grace_period(0);
    let sweeps = types
        .iter()
        .filter(|(_, collection)| *collection)
        .map(|(resource, _)| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, resource);
            let params = params.clone();
            async move {
                match api.delete_collection(&params, &ListParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => Ok(()),
                    Err(e) => Err(format!("deleting {} in {name}: {e}", resource.plural)),
                }
            }
        });
    for result in futures::future::join_all(sweeps).await {
        result?;
    }
    let checks = types.iter().map(|(resource, _)| {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, resource);
        async move {
            match api.list_metadata(&ListParams::default().limit(1)).await {
                Ok(list) if list.items.is_empty() => Ok(()),
                Ok(_) => Err(format!("{} are left in {name}", resource.plural)),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => Ok(()),
                Err(e) => Err(format!("listing {} in {name}: {e}", resource.plural)),
            }
        }
    });
    for result in futures::future::join_all(checks).await {
        result?;
    }
    // Empty: the one thing left is the finalizer the controller would remove. The
    // object changes meanwhile (status, the garbage collector's own finalizer): each
    // try starts from the namespace as it is now.
    let mut last_error = String::new();
    for _ in 0..FINALIZE_TRIES {
        let Some(mut current) = namespaces
            .get_opt(name)
            .await
            .map_err(|e| format!("reading namespace {name}: {e}"))?
        else {
            return Ok(());
        };
        // Finalizing must never reach a namespace made again under the same name.
        if current.metadata.uid != namespace.metadata.uid {
            return Ok(());
        }
        if current.metadata.deletion_timestamp.is_none() {
            return Err(format!("namespace {name} is not terminating"));
        }
        if let Some(spec) = current.spec.as_mut() {
            spec.finalizers = Some(Vec::new());
        }
        match namespaces
            .replace_subresource("finalize", name, &PostParams::default(), &current)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => last_error = s.message,
            Err(e) => return Err(format!("finalizing namespace {name}: {e}")),
        }
    }
    Err(format!("finalizing namespace {name}: {last_error}"))
}
