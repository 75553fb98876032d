//! Probe kinds run on the host for a pod no node runs: against the pod's materialized
//! volume, with the real curl and kubectl (see host.rs).

use k8s_openapi::api::core::v1::Pod;

use super::host::{self, HostTools};
use super::{
    Error, ProbeContext, command, http_identity, observe_curl, service_account_user, token,
};
use crate::report::Observed;
use crate::scenario::{Probe, ProbeKind};

pub async fn probe(
    ctx: &ProbeContext,
    tools: &HostTools,
    probe: &Probe,
    kind: ProbeKind,
    pod: &Pod,
) -> Result<(String, Observed), Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let container = probe.container.as_deref();
    let files = ctx.files_for(pod, container).await?;
    match kind {
        ProbeKind::Http => {
            let http = probe.http.as_ref().expect("kind http");
            let out = host::curl(tools, &files, http).await?;
            let mut observed = observe_curl(&out.stdout, &out.stderr, out.exit_code);
            http_identity(
                &mut observed,
                http,
                pod,
                files.token.is_some(),
                files.token.as_deref(),
            );
            Ok((command::curl_in_pod(http), observed))
        }
        ProbeKind::Kubectl => {
            let args = &probe.kubectl.as_ref().expect("kind kubectl").args;
            let out = host::kubectl(tools, &files, args).await?;
            let observed = Observed {
                exit_code: Some(out.exit_code),
                body: format!("{}{}", out.stdout, out.stderr),
                identity: files.token.as_ref().map(|_| service_account_user(pod)),
                token: files.token.as_deref().map(token::info),
                ..Default::default()
            };
            Ok((command::kubectl_in_pod(args), observed))
        }
        ProbeKind::File => {
            let path = &probe.file.as_ref().expect("kind file").path;
            let exists = if files.covers(path) {
                files.host_path(path).exists()
            } else if path.starts_with("/var/run/secrets/") {
                // Nothing there comes from an image: without a volume, it does not exist.
                false
            } else {
                return Err(Error::Host(format!(
                    "{path} is not in a volume of pod {namespace}/{pod_name}: on the host kubelab can only check the files it materializes (mounted at {})",
                    if files.mounts.is_empty() {
                        "nothing".to_string()
                    } else {
                        files.mounts.join(", ")
                    }
                )));
            };
            let observed = Observed {
                exists: Some(exists),
                token: if exists && path.ends_with("/token") {
                    files.token.as_deref().map(token::info)
                } else {
                    None
                },
                ..Default::default()
            };
            Ok((format!("ls {path}"), observed))
        }
        ProbeKind::Logs => {
            let args = container_kubectl_args(pod, container)?;
            let out = host::kubectl(tools, &files, &args).await?;
            let observed = Observed {
                exit_code: Some(out.exit_code),
                body: format!("{}{}", out.stdout, out.stderr),
                identity: files.token.as_ref().map(|_| service_account_user(pod)),
                ..Default::default()
            };
            let shown = format!(
                "kubectl logs -n {namespace} {pod_name}   # its container runs: {}",
                command::kubectl_in_pod(&args)
            );
            Ok((shown, observed))
        }
        ProbeKind::CanI => unreachable!("can-i does not run from a pod"),
    }
}

/// What the container runs, when it is kubectl (the only program kubelab can stand in
/// for on the host): the arguments after `kubectl`.
fn container_kubectl_args(pod: &Pod, container: Option<&str>) -> Result<Vec<String>, Error> {
    let chosen = super::container_of(pod, container)
        .ok_or_else(|| Error::Pod("no such container".into()))?;
    let mut words: Vec<String> = chosen.command.clone().unwrap_or_default();
    words.extend(chosen.args.clone().unwrap_or_default());
    match words.split_first() {
        Some((program, rest)) if program.rsplit('/').next() == Some("kubectl") => Ok(rest.to_vec()),
        _ => Err(Error::Host(format!(
            "without a node kubelab can only stand in for containers that run kubectl; container {} runs {:?}",
            chosen.name, words
        ))),
    }
}
