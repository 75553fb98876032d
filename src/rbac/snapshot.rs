//! The cluster's RBAC as a run's probes explain it: one view shared by every lab.
//! Each kind (Role, ClusterRole, RoleBinding, ClusterRoleBinding) is kept by a
//! kube-runtime reflector: one watch per kind for the whole run, where a list after
//! every RBAC write made labs side by side each read every Role and ClusterRole again.
//!
//! An explanation must never miss a write kubelab finished before it, so a policy is
//! made only once the watches show each of those writes (a barrier). Resource versions
//! of one resource are comparable integers (KEP-5504, GA in 1.35): a write is shown
//! once its kind's watch has passed the version the API server answered with; a
//! deletion once the object has left the store.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, Notify, OnceCell, oneshot};
use tokio::task::AbortHandle;

use super::Policy;

/// The group whose objects change what RBAC allows.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// How long an explanation waits for the watches to show kubelab's own writes (they
/// arrive within milliseconds; this bounds a watch that has broken off, or one that
/// kubelab may list but not watch). After it, the run reads RBAC directly.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("watching {kind}: {source}")]
    Watch {
        kind: &'static str,
        #[source]
        source: watcher::Error,
    },
    #[error("the watch on {kind} ended before its first list")]
    Ended { kind: &'static str },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl Kind {
    fn of(group: &str, kind: &str) -> Option<Kind> {
        if group != RBAC_GROUP {
            return None;
        }
        match kind {
            "Role" => Some(Kind::Role),
            "ClusterRole" => Some(Kind::ClusterRole),
            "RoleBinding" => Some(Kind::RoleBinding),
            "ClusterRoleBinding" => Some(Kind::ClusterRoleBinding),
            _ => None,
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Role => "roles",
            Kind::ClusterRole => "clusterroles",
            Kind::RoleBinding => "rolebindings",
            Kind::ClusterRoleBinding => "clusterrolebindings",
        }
    }
}

/// What the watches must show of one write before a policy may be made.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shown {
    /// The object as the write left it, at this resource version (or later).
    AtLeast(u64),
    /// The object deleted: no object of that name with this uid (any, when unknown).
    Gone(Option<String>),
}

/// One of kubelab's RBAC writes, and what the watches must show of it.
#[derive(Clone, Debug)]
struct Expected {
    kind: Kind,
    namespace: Option<String>,
    name: String,
    shown: Shown,
    /// When it finished, counted in writes: a watch whose last full list began after
    /// it holds it.
    seq: u64,
    /// When the first write of the object still not shown finished: a barrier begun
    /// after it waits, even once a later write of the object has superseded it.
    first_seq: u64,
}

/// How far one kind's watch has come.
#[derive(Default)]
struct Progress {
    /// The store holds every change of this kind up to this resource version.
    seen: AtomicU64,
    /// Writes counted before the watch's latest full list began: the list holds them.
    listed_after: AtomicU64,
    /// Changes about to be applied to the store, counted before the reflector applies
    /// each one.
    applying: AtomicU64,
    /// Changes applied to the store (a policy made before the last one is stale).
    changes: AtomicU64,
}

/// One kind, kept by a reflector.
struct Reflected<K: Resource + Clone + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store: Store<K>,
    progress: Arc<Progress>,
}

impl<K> Reflected<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn objects(&self) -> Vec<K> {
        self.store.state().iter().map(|o| (**o).clone()).collect()
    }

    /// Whether the store shows `expected` (a write of this kind).
    fn shows(&self, expected: &Expected) -> bool {
        if expected.seq < self.progress.listed_after.load(Ordering::SeqCst) {
            return true;
        }
        match &expected.shown {
            Shown::AtLeast(version) => self.progress.seen.load(Ordering::SeqCst) >= *version,
            Shown::Gone(uid) => {
                let mut key = ObjectRef::<K>::new(&expected.name);
                if let Some(ns) = &expected.namespace {
                    key = key.within(ns);
                }
                match self.store.get(&key) {
                    None => true,
                    Some(object) => uid.is_some() && object.meta().uid.as_deref() != uid.as_deref(),
                }
            }
        }
    }
}

/// Starts the reflector of one kind; `ready` gets the first list's outcome.
fn reflect<K>(
    client: &kube::Client,
    kind: Kind,
    writes: Arc<AtomicU64>,
    changed: Arc<Notify>,
    ready: oneshot::Sender<Result<(), Error>>,
) -> (Reflected<K>, AbortHandle)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let progress = Arc::new(Progress::default());
    let api: Api<K> = Api::all(client.clone());
    let counter = progress.clone();
    let events = watch(api, watcher::Config::default())
        .default_backoff()
        .inspect(move |event| {
            if event.is_ok() {
                counter.applying.fetch_add(1, Ordering::SeqCst);
            }
        })
        .reflect(writer);
    let shared = progress.clone();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready);
        let (mut listing_from, mut listed) = (0, 0);
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            // The reflector has applied the event to the store before it comes here.
            match event {
                Ok(Event::Init) => (listing_from, listed) = (writes.load(Ordering::SeqCst), 0),
                Ok(Event::InitApply(object)) => listed = listed.max(version(object.meta())),
                Ok(Event::InitDone) => {
                    shared.seen.fetch_max(listed, Ordering::SeqCst);
                    shared.listed_after.store(listing_from, Ordering::SeqCst);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(()));
                    }
                }
                Ok(Event::Apply(object) | Event::Delete(object)) => {
                    shared
                        .seen
                        .fetch_max(version(object.meta()), Ordering::SeqCst);
                }
                Err(e) => {
                    // Before the first list this ends the watch (a 403: kubelab may not
                    // list RBAC cluster-wide); after it the watcher retries, backing off.
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(Error::Watch {
                            kind: kind.plural(),
                            source: e,
                        }));
                        return;
                    }
                    continue;
                }
            }
            shared.changes.fetch_add(1, Ordering::SeqCst);
            changed.notify_waiters();
        }
    });
    (Reflected { store, progress }, task.abort_handle())
}

fn version(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The four reflectors; they stop with it.
struct Watches {
    roles: Reflected<Role>,
    cluster_roles: Reflected<ClusterRole>,
    role_bindings: Reflected<RoleBinding>,
    cluster_bindings: Reflected<ClusterRoleBinding>,
    /// Woken by every change any of them applies.
    changed: Arc<Notify>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

impl Watches {
    async fn start(client: &kube::Client, writes: &Arc<AtomicU64>) -> Result<Watches, Error> {
        let changed = Arc::new(Notify::new());
        let channels: [_; 4] = std::array::from_fn(|_| oneshot::channel());
        let [
            (roles_tx, roles_rx),
            (crs_tx, crs_rx),
            (rbs_tx, rbs_rx),
            (crbs_tx, crbs_rx),
        ] = channels;
        let (w, c) = (writes.clone(), changed.clone());
        let (roles, a) = reflect(client, Kind::Role, w.clone(), c.clone(), roles_tx);
        let (cluster_roles, b) = reflect(client, Kind::ClusterRole, w.clone(), c.clone(), crs_tx);
        let (role_bindings, d) = reflect(client, Kind::RoleBinding, w.clone(), c.clone(), rbs_tx);
        let (cluster_bindings, e) = reflect(client, Kind::ClusterRoleBinding, w, c, crbs_tx);
        let watches = Watches {
            roles,
            cluster_roles,
            role_bindings,
            cluster_bindings,
            changed,
            tasks: vec![a, b, d, e],
        };
        let ended = |kind: Kind| {
            move |_| Error::Ended {
                kind: kind.plural(),
            }
        };
        let (r, c, b, d) = tokio::join!(roles_rx, crs_rx, rbs_rx, crbs_rx);
        r.map_err(ended(Kind::Role))??;
        c.map_err(ended(Kind::ClusterRole))??;
        b.map_err(ended(Kind::RoleBinding))??;
        d.map_err(ended(Kind::ClusterRoleBinding))??;
        Ok(watches)
    }

    fn shows(&self, expected: &Expected) -> bool {
        match expected.kind {
            Kind::Role => self.roles.shows(expected),
            Kind::ClusterRole => self.cluster_roles.shows(expected),
            Kind::RoleBinding => self.role_bindings.shows(expected),
            Kind::ClusterRoleBinding => self.cluster_bindings.shows(expected),
        }
    }

    /// Changes applied to the four stores, once none is being applied: a store is
    /// changed (and a barrier may see it) a moment before its change is counted.
    fn settled_generation(&self) -> Option<u64> {
        let progress = [
            &self.roles.progress,
            &self.cluster_roles.progress,
            &self.role_bindings.progress,
            &self.cluster_bindings.progress,
        ];
        let applied: u64 = progress
            .iter()
            .map(|p| p.changes.load(Ordering::SeqCst))
            .sum();
        let applying: u64 = progress
            .iter()
            .map(|p| p.applying.load(Ordering::SeqCst))
            .sum();
        (applied == applying).then_some(applied)
    }

    async fn generation(&self) -> u64 {
        loop {
            match self.settled_generation() {
                Some(generation) => return generation,
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
}

#[derive(Default)]
pub struct Snapshots {
    /// Set before the watches start: a write before it is in their first lists, and
    /// is not recorded.
    watching: AtomicBool,
    watches: OnceCell<Watches>,
    /// RBAC writes kubelab has finished.
    writes: Arc<AtomicU64>,
    /// Those the watches may not show yet, the latest per object.
    expected: SyncMutex<Vec<Expected>>,
    /// The policy last made, and the generation it was made at.
    policy: Mutex<Option<(u64, Arc<Policy>)>>,
    /// Each lab reads its own namespaces' RBAC instead: kubelab may not list RBAC
    /// cluster-wide (a student's identity), or the watches fell behind.
    namespaced_only: AtomicBool,
    /// When kubelab last wrote an RBAC object.
    last_write: SyncMutex<Option<std::time::Instant>>,
}

impl Snapshots {
    /// kubelab wrote (applied or patched) an RBAC object (any other is ignored), and
    /// the API server answered with `object`.
    pub fn wrote(&self, group: &str, kind: &str, object: &ObjectMeta) {
        let shown = Shown::AtLeast(version(object));
        self.expect(
            group,
            kind,
            object.namespace.as_deref(),
            object.name.as_deref(),
            shown,
        );
    }

    /// kubelab deleted an RBAC object (any other is ignored), of `uid` when known.
    pub fn deleted(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
    ) {
        let shown = Shown::Gone(uid.map(str::to_string));
        self.expect(group, kind, namespace, Some(name), shown);
    }

    fn expect(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        shown: Shown,
    ) {
        let (Some(kind), Some(name)) = (Kind::of(group, kind), name) else {
            return;
        };
        *self.last_write.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::time::Instant::now());
        if self.namespaced_only.load(Ordering::SeqCst) {
            return;
        }
        let seq = self.writes.fetch_add(1, Ordering::SeqCst);
        if !self.watching.load(Ordering::SeqCst) {
            return;
        }
        let namespace = namespace.filter(|ns| !ns.is_empty()).map(str::to_string);
        let mut expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        // An object's latest write supersedes the ones before, which a barrier begun
        // before it still waits for.
        let same = |e: &Expected| e.kind == kind && e.name == name && e.namespace == namespace;
        let first_seq = expected
            .iter()
            .find(|e| same(e))
            .map_or(seq, |e| e.first_seq);
        expected.retain(|e| !same(e));
        expected.push(Expected {
            kind,
            namespace,
            name: name.to_string(),
            shown,
            seq,
            first_seq,
        });
    }

    /// Whether kubelab wrote an RBAC object less than `span` ago.
    pub fn written_within(&self, span: Duration) -> bool {
        self.last_write
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < span)
    }

    /// Waits until the watches show every write finished before this call: false if
    /// they have not within the timeout.
    async fn barrier(&self, watches: &Watches) -> bool {
        let before = self.writes.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + BARRIER_TIMEOUT;
        loop {
            let changed = watches.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let waiting = {
                let mut expected = self.expected.lock().unwrap_or_else(|e| e.into_inner());
                expected.retain(|e| !watches.shows(e));
                expected.iter().any(|e| e.first_seq < before)
            };
            if !waiting {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    /// From now on each lab reads RBAC itself.
    fn read_directly(&self) {
        self.namespaced_only.store(true, Ordering::SeqCst);
        self.expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The cluster-wide policy, showing every RBAC write kubelab finished before the
    /// call; None when kubelab may not list RBAC cluster-wide.
    pub async fn cluster_wide(&self, client: &kube::Client) -> Result<Option<Arc<Policy>>, Error> {
        if self.namespaced_only.load(Ordering::SeqCst) {
            return Ok(None);
        }
        self.watching.store(true, Ordering::SeqCst);
        let started = self
            .watches
            .get_or_try_init(|| Watches::start(client, &self.writes))
            .await;
        let watches = match started {
            Ok(watches) => watches,
            Err(Error::Watch {
                source: watcher::Error::InitialListFailed(kube::Error::Api(e)),
                ..
            }) if e.code == 403 => {
                self.read_directly();
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if !self.barrier(watches).await {
            self.read_directly();
            return Ok(None);
        }
        let mut made = self.policy.lock().await;
        let generation = watches.generation().await;
        if let Some((at, policy)) = &*made
            && *at == generation
        {
            return Ok(Some(policy.clone()));
        }
        let policy = Arc::new(Policy::from_objects(
            &watches.roles.objects(),
            &watches.cluster_roles.objects(),
            &watches.role_bindings.objects(),
            &watches.cluster_bindings.objects(),
        ));
        // Kept only if no change came in while it was made from the stores.
        if watches.settled_generation() == Some(generation) {
            *made = Some((generation, policy.clone()));
        }
        Ok(Some(policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(namespace: Option<&str>, name: &str, version: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: namespace.map(str::to_string),
            name: Some(name.into()),
            resource_version: Some(version.into()),
            ..Default::default()
        }
    }

    fn watching() -> Snapshots {
        let snapshots = Snapshots::default();
        snapshots.watching.store(true, Ordering::SeqCst);
        snapshots
    }

    #[test]
    fn a_write_before_the_watches_start_is_not_recorded_but_counted() {
        let snapshots = Snapshots::default();
        snapshots.wrote(RBAC_GROUP, "Role", &meta(Some("a"), "r", "10"));
        assert!(expected(&snapshots).is_empty(), "their first lists hold it");
        assert_eq!(
            snapshots.writes.load(Ordering::SeqCst),
            1,
            "a list that begins now starts after it"
        );
    }

    fn expected(snapshots: &Snapshots) -> Vec<Expected> {
        snapshots.expected.lock().unwrap().clone()
    }

    #[test]
    fn only_a_write_of_an_rbac_kind_is_waited_for() {
        let snapshots = watching();
        snapshots.wrote("", "Pod", &meta(Some("a"), "p", "5"));
        snapshots.wrote("apps", "Deployment", &meta(Some("a"), "d", "6"));
        snapshots.wrote("", "Role", &meta(Some("a"), "r", "7")); // some other Role
        assert!(
            expected(&snapshots).is_empty(),
            "pods and deployments change no RBAC"
        );
        snapshots.wrote(RBAC_GROUP, "RoleBinding", &meta(Some("a"), "rb", "8"));
        snapshots.deleted(RBAC_GROUP, "ClusterRole", None, "cr", Some("uid-1"));
        let kinds: Vec<(Kind, Shown)> = expected(&snapshots)
            .into_iter()
            .map(|e| (e.kind, e.shown))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::RoleBinding, Shown::AtLeast(8)),
                (Kind::ClusterRole, Shown::Gone(Some("uid-1".into())))
            ]
        );
    }

    #[test]
    fn a_later_write_of_an_object_supersedes_the_one_before() {
        let snapshots = watching();
        snapshots.wrote(RBAC_GROUP, "Role", &meta(Some("a"), "r", "10"));
        snapshots.wrote(RBAC_GROUP, "Role", &meta(Some("b"), "r", "11"));
        snapshots.deleted(RBAC_GROUP, "Role", Some("a"), "r", None);
        let left: Vec<(Option<String>, Shown, u64, u64)> = expected(&snapshots)
            .into_iter()
            .map(|e| (e.namespace, e.shown, e.seq, e.first_seq))
            .collect();
        assert_eq!(
            left,
            [
                (Some("b".into()), Shown::AtLeast(11), 1, 1),
                (Some("a".into()), Shown::Gone(None), 2, 0)
            ],
            "a/r's apply is superseded by its deletion (a barrier begun before the \
             deletion still waits for it); b/r is another object"
        );
    }

    #[test]
    fn a_write_is_shown_once_the_watch_passes_its_version_or_lists_after_it() {
        let (store, _writer) = reflector::store::<Role>();
        let reflected = Reflected {
            store,
            progress: Arc::new(Progress::default()),
        };
        let write = Expected {
            kind: Kind::Role,
            namespace: Some("a".into()),
            name: "r".into(),
            shown: Shown::AtLeast(20),
            seq: 3,
            first_seq: 3,
        };
        reflected.progress.seen.store(19, Ordering::SeqCst);
        assert!(
            !reflected.shows(&write),
            "the watch is at 19, the write at 20"
        );
        reflected.progress.seen.store(20, Ordering::SeqCst);
        assert!(reflected.shows(&write));
        reflected.progress.seen.store(0, Ordering::SeqCst);
        reflected.progress.listed_after.store(4, Ordering::SeqCst);
        assert!(
            reflected.shows(&write),
            "a list begun after the write holds it"
        );
    }
}
