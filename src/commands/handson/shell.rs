//! `kubelab shell [LAB] [POD]`: an interactive shell in the lab's pod, as `kubectl
//! exec -it POD -- sh` gives; on a cluster without a node, the host stand-in (a private
//! mount namespace with the pod's files at their in-pod paths), saying what differs.

use std::process::ExitCode;

use super::{Session, target};
use crate::AppError;
use crate::cli::ShellArgs;
use crate::engine::Pace;
use crate::probe::{ProbeContext, sandbox};
use crate::scenario::{LoadedLab, ObjectRef, Operation};
use crate::ui::Ui;

/// A pod to open a shell in, as a lab's operation names it.
struct Place {
    pod: String,
    namespace: Option<String>,
    container: Option<String>,
}

pub async fn shell(args: ShellArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    // `shell X`: the lab X when one of that name is started, else the pod X.
    let (session, pod) = match (&args.lab, &args.pod) {
        (Some(lab), pod) => match Session::open(Some(lab)) {
            Ok(session) => (session, pod.clone()),
            Err(_) if pod.is_none() => (Session::open(None)?, Some(lab.clone())),
            Err(e) => return Err(e),
        },
        (None, pod) => (Session::open(None)?, pod.clone()),
    };
    let place = match pod {
        Some(pod) => Place {
            pod,
            namespace: None,
            container: None,
        },
        None => default_pod(&session.loaded)?,
    };
    let lab = &session.loaded.lab;
    let namespace = args
        .namespace
        .clone()
        .or(place.namespace)
        .unwrap_or_else(|| lab.namespaces[0].clone());
    let container = args.container.clone().or(place.container);
    let reference = ObjectRef::pod(&place.pod).map_err(AppError::Usage)?;
    let connection = session.connect(&args.cluster).await?;
    let target = target(&connection, args.exec).await?;
    let probes = ProbeContext::new(
        target.client.clone(),
        target.execution.clone(),
        lab.namespaces.clone(),
        Pace::Run,
        target.rbac_snapshots.clone(),
    );
    let access = probes
        .pod_access(&reference, &namespace, container.as_deref())
        .await
        .map_err(|e| {
            let message = format!("no shell in {reference} of {namespace}: {e}");
            match e {
                // The API server could not be asked: the environment's problem.
                crate::probe::Error::Kube(..) => AppError::Environment(message),
                _ => AppError::Usage(message),
            }
        })?;
    if target.execution.runs_pods() {
        ui.info(format!(
            "a shell in {} (exit or Ctrl-D leaves it)",
            access.ran().trim_start_matches("in ")
        ));
    } else {
        ui.info(format!(
            "no node runs pod {namespace}/{}: this shell is its stand-in, {}. (exit or Ctrl-D leaves it)",
            access
                .pod()
                .metadata
                .name
                .as_deref()
                .unwrap_or_default(),
            sandbox::DIFFERENCES
        ));
    }
    let code = access
        .shell()
        .await
        .map_err(|e| AppError::Environment(format!("the shell could not run: {e}")))?;
    // The pod's materialized files (host stand-in) go with the access.
    drop(access);
    probes.clear().await;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Where the lab's checks probe from (else its start's): pod, namespace, container.
fn default_pod(loaded: &LoadedLab) -> Result<Place, AppError> {
    let lab = &loaded.lab;
    let operations: Vec<&Operation> = lab
        .checks
        .iter()
        .flat_map(|c| &c.operations)
        .chain(&lab.start)
        .collect();
    operations
        .iter()
        .find_map(|op| {
            Some(Place {
                pod: op.pod.clone()?,
                namespace: op.namespace.clone(),
                container: op.container.clone(),
            })
        })
        .ok_or_else(|| {
            AppError::Usage(format!(
                "lab {} names no pod to open a shell in: name one, e.g. `kubelab shell {} POD`",
                lab.id, lab.id
            ))
        })
}
