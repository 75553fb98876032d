//! A run's proof of life on the cluster: a Lease (default/kubelab-run-<id>) the run
//! renews while it works and deletes once it has cleaned up, as Kubernetes components
//! hold theirs. A Lease left behind that expired, or whose holder on this machine is
//! gone, belongs to a run that crashed: what is labelled with its run id is left over,
//! and a later run offers to remove it. Objects of runs without a Lease (hands-on labs,
//! `--keep`) are meant to stay and are never taken for leftovers.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};

use super::objects::{self, Created, RUN_LABEL};
use super::resources::Resources;
use super::{Error, FIELD_MANAGER};

/// Where the Leases live: a namespace every cluster has.
const NAMESPACE: &str = "default";
/// A Lease not renewed for this long is a crashed run's.
const LEASE_SECONDS: i32 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);

fn lease_name(run_id: &str) -> String {
    format!("kubelab-run-{run_id}")
}

/// "kubelab@host/pid": which process holds a Lease, and where (for people).
fn holder() -> String {
    format!("kubelab@{}/{}", hostname(), std::process::id())
}

/// The annotation that lets a run on this machine tell at once that a holder process
/// is gone: boot id, pid namespace and pid. A host name alone is not enough (two
/// containers may share one, each with its own pids).
const PROCESS_ANNOTATION: &str = "kubelab.dev/process";

/// This boot of this machine in this pid namespace, or None when it cannot be told.
fn this_machine() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let pids = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), pids.display()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Now by the API server's clock (`offset`: its lead over ours, in seconds), so a
/// machine whose clock is behind does not make its own run look expired.
fn now(offset: i64) -> MicroTime {
    let local = k8s_openapi::jiff::Timestamp::now();
    MicroTime(
        local
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(offset))
            .unwrap_or(local),
    )
}

/// The run's Lease while it is held; renewed in the background until released.
pub struct Held {
    api: Api<Lease>,
    name: String,
    renewing: tokio::task::JoinHandle<()>,
}

/// Takes the run's Lease. Fails when the cluster refuses it (then the run cannot show
/// that it lives, and says why).
/// `clock_offset`: how far the API server's clock is ahead of this machine's, seconds.
pub async fn hold(
    client: &kube::Client,
    run_id: &str,
    clock_offset: Option<i64>,
) -> Result<Held, Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let name = lease_name(run_id);
    let offset = clock_offset.unwrap_or(0);
    let mut lease = Lease {
        spec: Some(LeaseSpec {
            holder_identity: Some(holder()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(now(offset)),
            renew_time: Some(now(offset)),
            ..Default::default()
        }),
        ..Default::default()
    };
    lease.meta_mut().name = Some(name.clone());
    lease.meta_mut().labels = Some([(RUN_LABEL.to_string(), run_id.to_string())].into());
    if let Some(machine) = this_machine() {
        lease.meta_mut().annotations = Some(
            [(
                PROCESS_ANNOTATION.to_string(),
                format!("{machine}/{}", std::process::id()),
            )]
            .into(),
        );
    }
    api.create(&PostParams::default(), &lease)
        .await
        .map_err(|source| Error::from_kube(format!("creating Lease {NAMESPACE}/{name}"), source))?;
    let (renewer, renewed) = (api.clone(), name.clone());
    let renewing = tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let patch = serde_json::json!({"spec": {"renewTime": now(offset)}});
            // A missed renewal is retried; only a run silent for 30 s counts as gone.
            let _ = renewer
                .patch(
                    &renewed,
                    &PatchParams::apply(FIELD_MANAGER),
                    &Patch::Merge(&patch),
                )
                .await;
        }
    });
    Ok(Held {
        api,
        name,
        renewing,
    })
}

impl Held {
    /// The run cleaned up: its Lease goes.
    pub async fn release(self) {
        self.renewing.abort();
        let _ = self.api.delete(&self.name, &DeleteParams::default()).await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewing.abort();
    }
}

/// A run that stopped without cleaning up, and what it left.
#[derive(Debug)]
pub struct Crashed {
    pub run_id: String,
    /// Which process held it, where ("kubelab@ci-7/4242").
    pub holder: String,
    /// Seconds since it last showed it lived.
    pub silent_for: u64,
    pub objects: Vec<Created>,
}

impl Crashed {
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.objects.iter().map(Created::describe).collect();
        format!(
            "run {} ({}, silent for {}) left {}",
            self.run_id,
            self.holder,
            crate::ui::format_duration(Duration::from_secs(self.silent_for)),
            if names.is_empty() {
                "only its Lease".to_string()
            } else {
                names.join(", ")
            }
        )
    }
}

/// Whether a Lease's holder is gone: a process of this machine that no longer runs,
/// or a Lease not renewed in time (`now`: the server's clock, seconds since the epoch).
fn gone(lease: &Lease, now: i64) -> Option<u64> {
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0.as_second();
    let silent = u64::try_from(now - renewed).unwrap_or(0);
    let dead_here = lease
        .annotations()
        .get(PROCESS_ANNOTATION)
        .and_then(|process| process.rsplit_once('/'))
        .is_some_and(|(machine, pid)| {
            this_machine().is_some_and(|here| here == machine)
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
    let expired = silent > spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS) as u64;
    (dead_here || expired).then_some(silent)
}

/// The runs on this cluster that crashed, with what each left (found by its label
/// among every type the server lists; what is inside a leftover namespace goes with it).
pub async fn crashed_runs(
    client: &kube::Client,
    resources: &Resources,
    now: i64,
) -> Result<Vec<Crashed>, Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let leases = api
        .list(&ListParams::default().labels(RUN_LABEL))
        .await
        .map_err(|source| Error::from_kube("listing kubelab's run Leases", source))?;
    let mut crashed = Vec::new();
    for lease in &leases.items {
        let run_id = lease.labels().get(RUN_LABEL).cloned().unwrap_or_default();
        // A Lease a lab made carries the run label too: only a run's own counts.
        if lease.name_any() != lease_name(&run_id) {
            continue;
        }
        let Some(silent_for) = gone(lease, now) else {
            continue;
        };
        let objects = labelled(client, resources, &run_id).await?;
        crashed.push(Crashed {
            run_id,
            holder: lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default(),
            silent_for,
            objects,
        });
    }
    Ok(crashed)
}

/// Everything labelled with `run_id` but the run's Lease, outside namespaces that are
/// themselves on the list.
pub async fn labelled(
    client: &kube::Client,
    resources: &Resources,
    run_id: &str,
) -> Result<Vec<Created>, Error> {
    let selector = ListParams::default().labels(&format!("{RUN_LABEL}={run_id}"));
    let types = resources.listable().await?;
    let lists = futures::future::join_all(types.iter().map(|resolved| {
        let api =
            kube::Api::<kube::api::DynamicObject>::all_with(client.clone(), &resolved.resource);
        let selector = selector.clone();
        async move { api.list(&selector).await }
    }))
    .await;
    let mut found = Vec::new();
    for (resolved, list) in types.iter().zip(lists) {
        let list = match list {
            Ok(list) => list,
            // A type this identity may not list, or that its server does not serve
            // right now (an aggregated API that is down): what it holds is not seen.
            Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404 | 405 | 503) => {
                continue;
            }
            Err(source) => {
                return Err(Error::from_kube(
                    format!("listing {}", resolved.resource.plural),
                    source,
                ));
            }
        };
        for object in list.items {
            if resolved.resource.kind == "Lease" && object.name_any() == lease_name(run_id) {
                continue;
            }
            let namespace = object.namespace();
            found.push(Created::new(
                resolved.clone(),
                namespace.as_deref(),
                &object.name_any(),
            ));
        }
    }
    let namespaces: Vec<String> = found
        .iter()
        .filter(|c| c.kind == "Namespace")
        .map(|c| c.name.clone())
        .collect();
    found.retain(|c| {
        c.namespace
            .as_ref()
            .is_none_or(|namespace| !namespaces.contains(namespace))
    });
    Ok(found)
}

/// Removes what crashed runs left, then their Leases.
pub async fn remove(
    client: &kube::Client,
    crashed: &[Crashed],
    timeout: Duration,
) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    for run in crashed {
        objects::delete_all(client, &run.objects, timeout).await?;
        match api
            .delete(&lease_name(&run.run_id), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::from_kube(
                    format!("deleting Lease {NAMESPACE}/{}", lease_name(&run.run_id)),
                    source,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(process: &str, renewed: i64, seconds: i32) -> Lease {
        let mut lease = Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder()),
                lease_duration_seconds: Some(seconds),
                renew_time: Some(MicroTime(
                    k8s_openapi::jiff::Timestamp::from_second(renewed).unwrap(),
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        lease.meta_mut().annotations =
            Some([(PROCESS_ANNOTATION.to_string(), process.to_string())].into());
        lease
    }

    #[test]
    fn a_lease_is_gone_when_expired_or_its_process_here_has_ended() {
        let here = this_machine().expect("a Linux machine");
        let me = format!("{here}/{}", std::process::id());
        // This process lives, and renewed 5 s ago: not gone.
        assert_eq!(gone(&lease(&me, 1000, 30), 1005), None);
        // Not renewed for 31 s: gone, whoever held it.
        assert_eq!(gone(&lease(&me, 1000, 30), 1031), Some(31));
        let elsewhere = "another-boot/pid:[1]/1";
        assert_eq!(gone(&lease(elsewhere, 1000, 30), 1031), Some(31));
        // Another machine's run that renewed recently: alive, as far as anyone knows,
        // whatever its pid means here.
        assert_eq!(gone(&lease(elsewhere, 1000, 30), 1010), None);
        // A process of this machine that no longer exists: gone at once.
        let dead = format!("{here}/{}", u32::MAX);
        assert_eq!(gone(&lease(&dead, 1000, 30), 1001), Some(1));
    }
}
