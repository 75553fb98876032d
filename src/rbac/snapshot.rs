//! The cluster's RBAC as a run's probes explain it: one snapshot shared by every lab.
//! Each kind (Role, ClusterRole, RoleBinding, ClusterRoleBinding) is listed again only
//! after kubelab wrote an object of that kind since it was listed: labs side by side
//! would otherwise each list every Role and ClusterRole for every step.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Api;
use kube::api::ListParams;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, OnceCell};

use super::Policy;

/// The group whose objects change what RBAC allows.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A value read once for a given count of writes.
struct Versioned<T> {
    /// How many writes kubelab has finished: a value read before the last one may
    /// miss it.
    writes: AtomicU64,
    current: Mutex<Option<(u64, Arc<OnceCell<T>>)>>,
}

impl<T> Default for Versioned<T> {
    fn default() -> Self {
        Versioned {
            writes: AtomicU64::new(0),
            current: Mutex::new(None),
        }
    }
}

impl<T: Clone> Versioned<T> {
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The cell for `count` (a write ending after `count` was read makes a new one).
    async fn cell(&self, count: u64) -> Arc<OnceCell<T>> {
        let mut current = self.current.lock().await;
        match &*current {
            Some((at, cell)) if *at == count => cell.clone(),
            _ => {
                let cell = Arc::new(OnceCell::new());
                *current = Some((count, cell.clone()));
                cell
            }
        }
    }
}

/// One kind's objects, cluster-wide.
#[derive(Default)]
struct Listed<K: Clone>(Versioned<Arc<Vec<K>>>);

impl<K> Listed<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync,
{
    async fn list(&self, client: &kube::Client) -> Result<Arc<Vec<K>>, kube::Error> {
        let cell = self.0.cell(self.0.count()).await;
        cell.get_or_try_init(|| async {
            let api: Api<K> = Api::all(client.clone());
            Ok(Arc::new(api.list(&ListParams::default()).await?.items))
        })
        .await
        .cloned()
    }
}

#[derive(Default)]
pub struct Snapshots {
    roles: Listed<Role>,
    cluster_roles: Listed<ClusterRole>,
    role_bindings: Listed<RoleBinding>,
    cluster_bindings: Listed<ClusterRoleBinding>,
    /// The policy made from the four lists, for the sum of their write counts (the
    /// counts only grow: the sum changes when any of them does).
    policy: Versioned<Arc<Policy>>,
    /// kubelab may not list RBAC cluster-wide (a student's identity): each lab reads
    /// its own namespaces instead.
    namespaced_only: AtomicBool,
}

impl Snapshots {
    /// An object of `group` and `kind` was written (applied, patched or deleted) and
    /// the API server has answered.
    pub fn wrote(&self, group: &str, kind: &str) {
        if group != RBAC_GROUP {
            return;
        }
        match kind {
            "Role" => self.roles.0.wrote(),
            "ClusterRole" => self.cluster_roles.0.wrote(),
            "RoleBinding" => self.role_bindings.0.wrote(),
            "ClusterRoleBinding" => self.cluster_bindings.0.wrote(),
            _ => {}
        }
    }

    fn counts(&self) -> [u64; 4] {
        [
            self.roles.0.count(),
            self.cluster_roles.0.count(),
            self.role_bindings.0.count(),
            self.cluster_bindings.0.count(),
        ]
    }

    /// The cluster-wide snapshot; None when kubelab may not list RBAC cluster-wide.
    pub async fn cluster_wide(
        &self,
        client: &kube::Client,
    ) -> Result<Option<Arc<Policy>>, kube::Error> {
        if self.namespaced_only.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let cell = self.policy.cell(self.counts().iter().sum()).await;
        let made = cell
            .get_or_try_init(|| async {
                let (roles, cluster_roles, role_bindings, cluster_bindings) = tokio::try_join!(
                    self.roles.list(client),
                    self.cluster_roles.list(client),
                    self.role_bindings.list(client),
                    self.cluster_bindings.list(client),
                )?;
                Ok(Arc::new(Policy::from_objects(
                    &roles,
                    &cluster_roles,
                    &role_bindings,
                    &cluster_bindings,
                )))
            })
            .await;
        match made {
            Ok(policy) => Ok(Some(policy.clone())),
            Err(kube::Error::Api(e)) if e.code == 403 => {
                self.namespaced_only.store(true, Ordering::SeqCst);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_write_of_an_rbac_kind_counts_for_that_kind() {
        let snapshots = Snapshots::default();
        snapshots.wrote("", "Pod");
        snapshots.wrote("apps", "Deployment");
        snapshots.wrote("", "Role"); // not RBAC's group: some other Role
        assert_eq!(
            snapshots.counts(),
            [0, 0, 0, 0],
            "pods and deployments change no RBAC"
        );
        snapshots.wrote(RBAC_GROUP, "RoleBinding");
        snapshots.wrote(RBAC_GROUP, "RoleBinding");
        snapshots.wrote(RBAC_GROUP, "ClusterRole");
        assert_eq!(snapshots.counts(), [0, 1, 2, 0]);
    }

    #[tokio::test]
    async fn a_value_is_kept_until_a_write_ends_after_it_was_read() {
        let versioned: Versioned<u32> = Versioned::default();
        let first = versioned.cell(versioned.count()).await;
        first.set(1).unwrap();
        assert_eq!(versioned.cell(versioned.count()).await.get(), Some(&1));
        versioned.wrote();
        assert_eq!(
            versioned.cell(versioned.count()).await.get(),
            None,
            "read again"
        );
    }
}
