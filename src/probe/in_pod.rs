//! Probe kinds run inside a real pod through the exec API, exactly as a student would
//! type them in `kubectl exec -it <pod> -- sh`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;

use super::{
    Error, ProbeContext, command, exec, http_identity, observe_curl, service_account_user, token,
};
use crate::report::Observed;
use crate::scenario::{Probe, ProbeKind, TokenChoice};

/// How long a logs probe waits for the expected text (a container may still be
/// starting, or restarting after a fix).
const LOGS_TIMEOUT: Duration = Duration::from_secs(90);

fn sh(script: String) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script]
}

/// How long a probe waits for its container to run (it may still be starting, or
/// restarting after a rollout).
const CONTAINER_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until `container` of the pod is running: exec needs a live process.
async fn container_running(
    ctx: &ProbeContext,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let deadline = Instant::now() + CONTAINER_TIMEOUT;
    loop {
        let current = pods
            .get(pod)
            .await
            .map_err(|e| Error::Kube(format!("reading pod {namespace}/{pod}"), e))?;
        let running = current
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .any(|s| {
                s.name == container && s.state.as_ref().is_some_and(|st| st.running.is_some())
            });
        if running {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Pod(format!(
                "container {container} of pod {namespace}/{pod} is not running after {CONTAINER_TIMEOUT:?}: {}",
                crate::wait::describe_state(&current)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn probe(
    ctx: &ProbeContext,
    probe: &Probe,
    kind: ProbeKind,
    pod: &Pod,
) -> Result<(String, Observed), Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    // Like kubectl: the named container, else the first.
    let container = probe
        .container
        .clone()
        .or_else(|| super::container_of(pod, None).map(|c| c.name.clone()));
    let token_mounted = super::mounts_token(pod, container.as_deref());
    if kind != ProbeKind::Logs
        && let Some(container) = &container
    {
        container_running(ctx, &namespace, &name, container).await?;
    }
    let run = |command: Vec<String>| {
        let (client, namespace, name, container) = (
            ctx.client.clone(),
            namespace.clone(),
            name.clone(),
            container.clone(),
        );
        async move { exec::run(&client, &namespace, &name, container.as_deref(), &command).await }
    };
    match kind {
        ProbeKind::Http => {
            let http = probe.http.as_ref().expect("kind http");
            let shown = command::curl_in_pod(http);
            let mut script = format!(
                "{shown} -w '{}%{{http_code}}'",
                command::STATUS_MARKER.replace('\n', "\\n")
            );
            if http.token == TokenChoice::Invalid {
                script = format!("INVALID_TOKEN='{}'; {script}", token::invalid_token());
            }
            let out = run(sh(script)).await?;
            let mut observed = observe_curl(&out.stdout, &out.stderr, out.exit_code);
            let pod_token = ctx.token_in_pod(pod, container.as_deref()).await?;
            http_identity(
                &mut observed,
                http,
                pod,
                token_mounted,
                pod_token.as_deref(),
            );
            Ok((shown, observed))
        }
        ProbeKind::Kubectl => {
            let args = &probe.kubectl.as_ref().expect("kind kubectl").args;
            let shown = command::kubectl_in_pod(args);
            // Without variables, no shell is needed (kubectl images often have none).
            let command = if args.iter().any(|a| a.contains('$')) {
                sh(shown.clone())
            } else {
                std::iter::once("kubectl".to_string())
                    .chain(args.iter().cloned())
                    .collect()
            };
            let out = run(command).await?;
            let pod_token = ctx.token_in_pod(pod, container.as_deref()).await?;
            let observed = Observed {
                exit_code: Some(out.exit_code),
                body: format!("{}{}", out.stdout, out.stderr),
                identity: token_mounted.then(|| service_account_user(pod)),
                token: pod_token.as_deref().map(token::info),
                ..Default::default()
            };
            Ok((shown, observed))
        }
        ProbeKind::File => {
            let path = &probe.file.as_ref().expect("kind file").path;
            let out = run(vec!["test".into(), "-e".into(), path.clone()]).await?;
            let exists = match out.exit_code {
                0 => true,
                1 => false,
                other => {
                    return Err(Error::Pod(format!(
                        "`test -e {path}` in pod {namespace}/{name} exited {other}: {}",
                        out.stderr.trim()
                    )));
                }
            };
            let token = if exists && path.ends_with("/token") {
                ctx.token_in_pod(pod, container.as_deref()).await?
            } else {
                None
            };
            let observed = Observed {
                exists: Some(exists),
                token: token.as_deref().map(token::info),
                ..Default::default()
            };
            Ok((format!("ls {path}"), observed))
        }
        ProbeKind::Logs => {
            let wanted = probe.expect.output_contains.clone().unwrap_or_default();
            let body = logs_containing(ctx, &namespace, &name, container.clone(), &wanted).await?;
            let observed = Observed {
                body,
                identity: Some(service_account_user(pod)),
                ..Default::default()
            };
            let shown = match &probe.container {
                Some(container) => format!("kubectl logs -n {namespace} {name} -c {container}"),
                None => format!("kubectl logs -n {namespace} {name}"),
            };
            Ok((shown, observed))
        }
        ProbeKind::CanI => unreachable!("can-i does not run from a pod"),
    }
}

/// The pod's logs (current container, else the previous one after a restart), polled
/// until they contain `wanted` or the wait runs out; returns the last logs read.
async fn logs_containing(
    ctx: &ProbeContext,
    namespace: &str,
    pod: &str,
    container: Option<String>,
    wanted: &str,
) -> Result<String, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let deadline = Instant::now() + LOGS_TIMEOUT;
    let mut last = String::new();
    loop {
        for previous in [false, true] {
            let params = LogParams {
                container: container.clone(),
                previous,
                ..Default::default()
            };
            match pods.logs(pod, &params).await {
                Ok(text) if text.contains(wanted) => return Ok(text),
                Ok(text) if !previous || last.is_empty() => last = text,
                Ok(_) => {}
                // No previous container yet, or the container has not started.
                Err(kube::Error::Api(status)) if status.code == 400 || status.code == 404 => {}
                Err(e) => {
                    return Err(Error::Kube(
                        format!("reading logs of pod {namespace}/{pod}"),
                        e,
                    ));
                }
            }
        }
        if Instant::now() > deadline {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
