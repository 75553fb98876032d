//! From a command's cluster flags to a connected cluster and the target labs run on:
//! one place for what every command that talks to a cluster does first.

use std::sync::Arc;

use crate::AppError;
use crate::cli::{ClusterArgs, Consent, ExecMode, Provider};
use crate::cluster::{self, Choice, Connection, existing, local};
use crate::engine::{self, Target};
use crate::probe::{Execution, host::HostTools};

/// The cluster the flags (and KUBECONFIG) mean.
pub fn choice(args: &ClusterArgs, consent: Option<Consent>) -> Result<Choice, AppError> {
    let named_cluster = args.kubeconfig.is_some() || args.context.is_some();
    if named_cluster && matches!(args.provider, Provider::Local | Provider::Kind) {
        return Err(AppError::Usage(
            "--kubeconfig and --context are for --provider kubeconfig (or leave --provider out: they imply it)".into(),
        ));
    }
    Ok(Choice {
        kind: args.provider,
        name: args.name.clone(),
        named: false,
        // Recorded for later commands, which may run in another directory.
        kubeconfig: args
            .kubeconfig
            .as_ref()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())),
        context: args.context.clone(),
        yes: consent.is_some_and(|c| c.yes),
        kubeconfig_env: true,
    })
}

/// Whether the flags or KUBECONFIG name a cluster (else a command may use the one a
/// lab was started on).
pub fn names_a_cluster(args: &ClusterArgs) -> bool {
    args.provider != Provider::Auto
        || args.kubeconfig.is_some()
        || args.context.is_some()
        || std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty())
}

/// The uid of kube-system: which cluster this is, beyond its address (a cluster made
/// again at the same address is another cluster).
pub async fn cluster_uid(connection: &Connection) -> Result<String, AppError> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(connection.client.clone());
    let namespace = namespaces
        .get("kube-system")
        .await
        .map_err(|source| cluster::Error::Kube {
            context: format!("reading namespace kube-system of {}", connection.server),
            source,
        })?;
    Ok(namespace.metadata.uid.unwrap_or_default())
}

/// The API server's version and how far its clock (its Date header) is ahead of this
/// machine's, in seconds, from one `GET /version`.
async fn version_and_clock(client: &kube::Client) -> Result<(String, Option<i64>), kube::Error> {
    let request = http::Request::get("/version")
        .body(Vec::<u8>::new())
        .map_err(kube::Error::HttpError)?;
    let response = client.send(request.map(Into::into)).await?;
    let local = crate::progress::now() as i64;
    let offset = response
        .headers()
        .get(http::header::DATE)
        .and_then(|date| date.to_str().ok())
        .and_then(|date| k8s_openapi::jiff::fmt::rfc2822::parse(date).ok())
        .map(|when| when.timestamp().as_second() - local);
    if !response.status().is_success() {
        // kube's own call turns the answer into its error.
        return client
            .apiserver_version()
            .await
            .map(|v| (v.git_version, offset));
    }
    let body = response.into_body().collect_bytes().await?;
    let info: k8s_openapi::apimachinery::pkg::version::Info =
        serde_json::from_slice(&body).map_err(kube::Error::SerdeError)?;
    Ok((info.git_version, offset))
}

/// The target labs run on: the connection, where probes run, the server's version.
pub async fn target(connection: &Connection, mode: ExecMode) -> Result<Target, AppError> {
    let execution = execution(mode, connection).await?;
    let (version, clock_offset) =
        version_and_clock(&connection.client)
            .await
            .map_err(|source| cluster::Error::Kube {
                context: format!("reading /version of {}", connection.server),
                source,
            })?;
    Ok(Target {
        client: connection.client.clone(),
        config: connection.config.clone(),
        execution,
        provider: connection.provider.to_string(),
        server: connection.server.clone(),
        kubernetes_version: version,
        clock_offset,
        resources: Arc::new(engine::resources::Resources::new(connection.client.clone())),
        rbac_snapshot: Default::default(),
        rbac_snapshots: Default::default(),
    })
}

/// In pods where a node runs them; otherwise (or when asked) on the host for them.
async fn execution(mode: ExecMode, connection: &Connection) -> Result<Execution, AppError> {
    let has_node = existing::has_ready_node(&connection.client, &connection.server).await?;
    match (mode, has_node) {
        (ExecMode::Pod, false) => Err(AppError::Environment(format!(
            "--exec pod: no node of {} is Ready, so lab pods cannot run; use --exec host (or auto)",
            connection.server
        ))),
        (ExecMode::Pod, true) | (ExecMode::Auto, true) => Ok(Execution::InPod),
        (ExecMode::Host, _) | (ExecMode::Auto, false) => {
            let curl = crate::system::on_path("curl").ok_or_else(|| {
                AppError::Environment(
                    "curl is not installed: the probes run the real curl (apt-get install curl)"
                        .into(),
                )
            })?;
            let kubectl = connection
                .kubectl
                .clone()
                .or_else(|| Some(local::cache_bin_dir().join("kubectl")).filter(|p| p.is_file()))
                .or_else(|| crate::system::on_path("kubectl"))
                .ok_or_else(|| {
                    AppError::Environment(
                        "kubectl is not installed: kubectl probes on the host run the real kubectl"
                            .into(),
                    )
                })?;
            Ok(Execution::Host(HostTools::new(
                &connection.apiserver,
                kubectl,
                curl,
            )))
        }
    }
}

/// On someone else's cluster, objects outside the labs' namespaces need a yes.
/// (`run`, `start` and `class up` ask; a class's student works inside their fence.)
pub async fn consent_to_cluster_wide(
    target: &Target,
    labs: &[crate::scenario::LoadedLab],
    consent: &crate::cli::Consent,
) -> Result<(), AppError> {
    if target.provider != "kubeconfig" || consent.allow_cluster_wide {
        return Ok(());
    }
    let wide = engine::cluster_wide::planned(&target.resources, labs).await?;
    if wide.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = wide.iter().map(|w| format!("  {w}")).collect();
    let list = list.join("\n");
    match crate::ui::ask(&format!(
        "These labs create cluster-wide objects on {}, outside their namespaces:\n{list}\nCreate them?",
        target.server
    )) {
        Some(true) => Ok(()),
        Some(false) => Err(AppError::Usage(
            "not confirmed: nothing was changed on the cluster".into(),
        )),
        None => Err(AppError::Usage(format!(
            "these labs create cluster-wide objects on {}, which kubelab did not make:\n{list}\n  confirm with --allow-cluster-wide, or choose labs without them",
            target.server
        ))),
    }
}
