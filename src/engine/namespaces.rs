//! A lab namespace removed without the namespace controller's fixed 5 s hold (it
//! queues every deleted namespace for 5 s before it starts). Once the namespace is
//! terminating, admission refuses anything new in it; kubelab then does what the
//! controller would: lists which types hold objects in it, deletes those collections,
//! checks every listable type empty, and finalizes it, so the API server removes it at
//! once. Many namespaces at once (a class) are listed cluster-wide, a list per type. Whatever stops
//! this (another finalizer, a request the user may not make, an object that stays, a
//! type that cannot be deleted by collection holding objects) leaves the namespace to
//! the controller, and `finish` waits for it as for the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiResource, Scope};

/// Why the fast path was not taken (the controller finishes instead).
pub type Declined = String;

/// Conflicting updates (the controllers write the namespace too) before giving up.
const FINALIZE_TRIES: usize = 5;

/// Namespaces read or checked at the same time (a check sends a request per type at
/// once), and types listed cluster-wide at the same time.
const AT_ONCE: usize = 8;

/// Collections deleted at the same time.
const SWEEPS_AT_ONCE: usize = 32;

/// Every namespaced type that can be listed, and whether it can be deleted by
/// collection. Asked now, not from the run's cached discovery: a CRD a lab made
/// meanwhile must be swept too.
async fn namespaced_types(client: &kube::Client) -> Result<Vec<(ApiResource, bool)>, Declined> {
    let discovery = super::resources::discover(client)
        .await
        .map_err(|e| format!("discovering the API server's types: {e}"))?;
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
    let mut results: Vec<Result<(), Declined>> = Vec::with_capacity(going.len());
    // Each namespace still ours and terminating, by its place in `going`.
    let mut ours: BTreeMap<String, (usize, Namespace)> = BTreeMap::new();
    // The futures are made first: a stream mapping borrowed items is not Send in a
    // spawned lab (a higher-ranked lifetime).
    let reads: Vec<_> = going
        .iter()
        .map(|(name, uid)| ours_to_finalize(client, name, *uid))
        .collect();
    let read: Vec<_> = futures::stream::iter(reads)
        .buffered(AT_ONCE)
        .collect()
        .await;
    for (index, ((name, _), found)) in going.iter().zip(read).enumerate() {
        match found {
            Ok(Some(namespace)) => {
                ours.insert(name.to_string(), (index, namespace));
                results.push(Ok(()));
            }
            Ok(None) => results.push(Ok(())),
            Err(declined) => results.push(Err(declined)),
        }
    }
    let names: Vec<String> = ours.keys().cloned().collect();
    let mut held = holdings(client, &types, &names).await;
    sweep(client, &types, &mut held).await;
    // What a sweep could not delete (a type without deletecollection, a finalizer, an
    // object made meanwhile) is seen here.
    let swept: Vec<String> = held
        .iter()
        .filter(|(_, held)| held.is_ok())
        .map(|(name, _)| name.clone())
        .collect();
    let mut left = holdings(client, &types, &swept).await;
    let mut finalizing = Vec::new();
    for (name, held) in held {
        let (index, namespace) = &ours[&name];
        let verdict = match held {
            Err(declined) => Err(declined),
            Ok(_) => match left.remove(&name) {
                Some(Ok(held)) if held.is_empty() => Ok(()),
                Some(Ok(held)) => Err(format!(
                    "{} are left in {name}",
                    held.iter()
                        .map(|&t| types[t].0.plural.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(Err(declined)) => Err(declined),
                None => Err(format!("namespace {name} was not checked empty")),
            },
        };
        match verdict {
            Ok(()) => finalizing.push((*index, finalize(client, namespace))),
            Err(declined) => results[*index] = Err(declined),
        }
    }
    let (places, finalizes): (Vec<usize>, Vec<_>) = finalizing.into_iter().unzip();
    let finalized: Vec<_> = futures::stream::iter(finalizes)
        .buffered(SWEEPS_AT_ONCE)
        .collect()
        .await;
    for (index, result) in places.into_iter().zip(finalized) {
        results[index] = result;
    }
    results
}

/// The namespace, when it is the one kubelab deleted (`uid`), terminating, and held
/// by nothing but the namespace controller's finalizer. None: it is gone, or a new one
/// of the same name stands there.
async fn ours_to_finalize(
    client: &kube::Client,
    name: &str,
    uid: Option<&str>,
) -> Result<Option<Namespace>, Declined> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Some(namespace) = namespaces
        .get_opt(name)
        .await
        .map_err(|e| format!("reading namespace {name}: {e}"))?
    else {
        return Ok(None);
    };
    if uid.is_some() && namespace.metadata.uid.as_deref() != uid {
        return Ok(None); // ours is gone; this is a new one of the same name
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
    Ok(Some(namespace))
}

/// What each namespace holds: the types (indexes into the discovered types) with
/// objects in it, or why that is not known.
type Holdings = BTreeMap<String, Result<BTreeSet<usize>, Declined>>;

/// From this many namespaces on, one cluster-wide list per type finds what they hold
/// (a class's hundreds of namespaces: a few dozen requests instead of a few dozen per
/// namespace); below it, or where kubelab may not list cluster-wide, one list per type
/// and namespace.
const CLUSTER_WIDE_FROM: usize = 16;

/// Objects a cluster-wide list reads per page.
const PAGE: u32 = 500;

async fn holdings(
    client: &kube::Client,
    types: &[(ApiResource, bool)],
    namespaces: &[String],
) -> Holdings {
    use futures::StreamExt;
    if namespaces.len() >= CLUSTER_WIDE_FROM {
        match holdings_cluster_wide(client, types, namespaces).await {
            Ok(found) => return found,
            Err(None) => {} // forbidden: per namespace, as a namespace's user may
            Err(Some(declined)) => {
                return namespaces
                    .iter()
                    .map(|n| (n.clone(), Err(declined.clone())))
                    .collect();
            }
        }
    }
    let checks: Vec<_> = namespaces
        .iter()
        .map(|name| holdings_of(client, types, name))
        .collect();
    let found: Vec<_> = futures::stream::iter(checks)
        .buffered(AT_ONCE)
        .collect()
        .await;
    namespaces.iter().cloned().zip(found).collect()
}

/// Err(None): kubelab may not list some type cluster-wide.
async fn holdings_cluster_wide(
    client: &kube::Client,
    types: &[(ApiResource, bool)],
    namespaces: &[String],
) -> Result<Holdings, Option<Declined>> {
    use futures::StreamExt;
    let wanted: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
    let mut found: Holdings = namespaces
        .iter()
        .map(|n| (n.clone(), Ok(BTreeSet::new())))
        .collect();
    let wanted = &wanted;
    let lists: Vec<_> = types
        .iter()
        .enumerate()
        .map(|(index, (resource, _))| async move {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
            let mut held = BTreeSet::new();
            let mut params = ListParams::default().limit(PAGE);
            loop {
                let page = match api.list_metadata(&params).await {
                    Ok(page) => page,
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => break,
                    Err(kube::Error::Api(s)) if s.code == 403 => return Err(None),
                    Err(e) => return Err(Some(format!("listing {}: {e}", resource.plural))),
                };
                for item in &page.items {
                    if let Some(namespace) = item.metadata.namespace.as_deref() {
                        if wanted.contains(namespace) {
                            held.insert(namespace.to_string());
                        }
                    }
                }
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(next) => params = params.continue_token(&next),
                    None => break,
                }
            }
            Ok((index, held))
        })
        .collect();
    let lists: Vec<_> = futures::stream::iter(lists)
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    for listed in lists {
        let (index, held) = listed?;
        for namespace in held {
            if let Some(Ok(types)) = found.get_mut(&namespace) {
                types.insert(index);
            }
        }
    }
    Ok(found)
}

async fn holdings_of(
    client: &kube::Client,
    types: &[(ApiResource, bool)],
    name: &str,
) -> Result<BTreeSet<usize>, Declined> {
    let checks = types.iter().enumerate().map(|(index, (resource, _))| {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, resource);
        async move {
            match api.list_metadata(&ListParams::default().limit(1)).await {
                Ok(list) => Ok((!list.items.is_empty()).then_some(index)),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => Ok(None),
                Err(e) => Err(format!("listing {} in {name}: {e}", resource.plural)),
            }
        }
    });
    futures::future::join_all(checks)
        .await
        .into_iter()
        .filter_map(Result::transpose)
        .collect()
}

/// Deletes, by collection, each type a namespace holds; a namespace whose sweep fails
/// is declined.
async fn sweep(client: &kube::Client, types: &[(ApiResource, bool)], holdings: &mut Holdings) {
    use futures::StreamExt;
    // Pods go at once: nothing in a lab's pod needs a graceful stop. Background
    // propagation, as the namespace controller uses: a Job's default (orphan) would hold
    // it with the orphan finalizer until the garbage collector came by.
    let params = DeleteParams::background().grace_period(0);
    let pairs: Vec<(String, usize)> = holdings
        .iter()
        .filter_map(|(name, held)| held.as_ref().ok().map(|held| (name, held)))
        .flat_map(|(name, held)| held.iter().map(move |&t| (name.clone(), t)))
        .filter(|(_, t)| types[*t].1)
        .collect();
    let params = &params;
    let sweeps: Vec<_> = pairs
        .into_iter()
        .map(|(name, t)| async move {
            let resource = &types[t].0;
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &name, resource);
            match api.delete_collection(params, &ListParams::default()).await {
                Ok(_) => None,
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => None,
                Err(e) => {
                    let why = format!("deleting {} in {name}: {e}", resource.plural);
                    Some((name, why))
                }
            }
        })
        .collect();
    let failed: Vec<(String, Declined)> = futures::stream::iter(sweeps)
        .buffer_unordered(SWEEPS_AT_ONCE)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    for (name, why) in failed {
        holdings.insert(name, Err(why));
    }
}

/// Empty: the one thing left is the finalizer the controller would remove. The
/// object changes meanwhile (status, the garbage collector's own finalizer): each try
/// starts from the namespace as it is now.
async fn finalize(client: &kube::Client, namespace: &Namespace) -> Result<(), Declined> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let name = namespace.metadata.name.as_deref().unwrap_or_default();
    let mut last_error = String::new();
    // The first try sends the namespace as read: its resourceVersion makes the API
    // server refuse it (409) if anything changed it since, a new namespace of the same
    // name included.
    let mut current = namespace.clone();
    for attempt in 0..FINALIZE_TRIES {
        if attempt > 0 {
            match namespaces
                .get_opt(name)
                .await
                .map_err(|e| format!("reading namespace {name}: {e}"))?
            {
                Some(now) => current = now,
                None => return Ok(()),
            }
        }
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
