//! Commands run inside real pods through the API (`kubectl exec`'s websocket), with
//! stdout, stderr and the exit code the kubelet reports in the final Status.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::AttachParams;
use tokio::io::AsyncReadExt;

use super::Error;
use super::access::Output;

/// Who kubelab is and which pods/exec verbs it lacks, asked of the API server
/// (SelfSubjectReview, SelfSubjectAccessReview): "kubelab acts as X, which may not create".
async fn diagnose_denial(client: &kube::Client, namespace: &str, pod: &str) -> String {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    use kube::api::PostParams;

    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let me = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()
        .and_then(|r| r.status?.user_info?.username)
        .unwrap_or_else(|| "an identity it could not name".into());
    let access: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for verb in ["get", "create"] {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    resource: Some("pods".into()),
                    subresource: Some("exec".into()),
                    name: Some(pod.into()),
                    namespace: Some(namespace.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let allowed = access
            .create(&PostParams::default(), &review)
            .await
            .ok()
            .and_then(|r| r.status)
            .is_some_and(|s| s.allowed);
        if !allowed {
            missing.push(verb);
        }
    }
    if missing.is_empty() {
        format!("kubelab acts as {me}")
    } else {
        format!(
            "kubelab acts as {me}, which may not {} pods/exec",
            missing.join(" or ")
        )
    }
}

/// The exit code from the Status that ends an exec stream: "Success" is 0; a failure
/// with reason NonZeroExitCode carries the code as the message of an `ExitCode` cause.
/// Anything else means the command did not run (not found, container gone, ...).
pub fn exit_code(status: Option<&Status>) -> Result<i32, String> {
    let Some(status) = status else {
        return Err("the exec stream ended without a status".into());
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let message = status.message.clone().unwrap_or_default();
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .iter()
            .flat_map(|d| d.causes.iter().flatten())
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref()?.parse().ok());
        return code.ok_or_else(|| format!("NonZeroExitCode without an ExitCode cause: {message}"));
    }
    Err(if message.is_empty() {
        status.reason.clone().unwrap_or_default()
    } else {
        message
    })
}

/// Starts `command` in the pod's container (default: the first).
pub async fn attach(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
    mut params: AttachParams,
) -> Result<kube::api::AttachedProcess, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    if let Some(container) = container {
        params = params.container(container);
    }
    match pods.exec(pod, command.to_vec(), &params).await {
        Ok(attached) => Ok(attached),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            let diagnosis = diagnose_denial(client, namespace, pod).await;
            Err(Error::ExecDenied(format!(
                "{} ({diagnosis}; kubelab's own identity needs `create` and `get` on pods/exec in {namespace})",
                status.message.trim()
            )))
        }
        Err(e) => Err(Error::Kube(
            format!("exec in pod {namespace}/{pod} ({:?})", command.join(" ")),
            e,
        )),
    }
}

/// Runs `command` in the pod on the user's terminal, as `kubectl exec -it` does: a
/// TTY in raw mode that follows the terminal's size (plain pipes when kubelab's own
/// input or output is not a terminal). Returns its exit code.
pub async fn interactive(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
) -> Result<i32, Error> {
    use super::terminal;
    let tty = terminal::is_interactive();
    let params = if tty {
        AttachParams::interactive_tty()
    } else {
        AttachParams::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
    };
    let mut attached = attach(client, namespace, pod, container, command, params).await?;
    // From here Ctrl-C belongs to the shell (before, it still stops kubelab's wait).
    let _interrupts = crate::system::CtrlCToShell::new();
    let _raw = if tty {
        Some(
            terminal::RawMode::enable()
                .map_err(|e| Error::Host(format!("putting the terminal in raw mode: {e}")))?,
        )
    } else {
        None
    };
    if tty && let Some(mut sizes) = attached.terminal_size() {
        tokio::spawn(async move {
            use futures::SinkExt;
            use tokio::signal::unix::{SignalKind, signal};
            let send = |(width, height): (u16, u16)| kube::api::TerminalSize { width, height };
            if let Some(now) = terminal::size() {
                let _ = sizes.send(send(now)).await;
            }
            let Ok(mut changes) = signal(SignalKind::window_change()) else {
                return;
            };
            while changes.recv().await.is_some() {
                if let Some(now) = terminal::size()
                    && sizes.send(send(now)).await.is_err()
                {
                    break;
                }
            }
        });
    }
    let mut to_pod = attached.stdin().expect("stdin requested");
    // Typing reaches the pod until the shell ends; the task is dropped with it.
    let typing = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut to_pod).await;
    });
    let mut from_pod = attached.stdout().expect("stdout requested");
    let errors = attached.stderr();
    let status = attached.take_status().expect("status taken once");
    let output = async {
        let _ = tokio::io::copy(&mut from_pod, &mut tokio::io::stdout()).await;
    };
    let error_output = async {
        if let Some(mut errors) = errors {
            let _ = tokio::io::copy(&mut errors, &mut tokio::io::stderr()).await;
        }
    };
    let ((), (), status) = tokio::join!(output, error_output, status);
    typing.abort();
    let _ = attached.join().await;
    exit_code(status.as_ref()).map_err(|why| {
        Error::Pod(format!(
            "{:?} in pod {namespace}/{pod} did not run: {why}",
            command.join(" ")
        ))
    })
}

/// Runs `command` in the pod's container (default: the first) and waits for it.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
) -> Result<Output, Error> {
    let params = AttachParams::default().stdout(true).stderr(true);
    let mut attached = attach(client, namespace, pod, container, command, params).await?;
    let mut stdout = attached.stdout().expect("stdout requested");
    let mut stderr = attached.stderr().expect("stderr requested");
    let status = attached.take_status().expect("status taken once");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (read_out, read_err, status) = tokio::join!(
        stdout.read_to_end(&mut out),
        stderr.read_to_end(&mut err),
        status
    );
    read_out
        .and(read_err)
        .map_err(|e| Error::Pod(format!("reading exec output from {namespace}/{pod}: {e}")))?;
    let _ = attached.join().await;
    let exit_code = exit_code(status.as_ref()).map_err(|why| {
        Error::Pod(format!(
            "{:?} in pod {namespace}/{pod} did not run: {why}",
            command.join(" ")
        ))
    })?;
    Ok(Output {
        exit_code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn status(summary: &str, reason: &str, message: &str, causes: Vec<StatusCause>) -> Status {
        Status {
            status: Some(summary.into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            details: Some(StatusDetails {
                causes: Some(causes),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn success_is_exit_code_zero() {
        assert_eq!(exit_code(Some(&status("Success", "", "", vec![]))), Ok(0));
    }

    #[test]
    fn a_non_zero_exit_code_comes_from_the_exitcode_cause() {
        let failed = status(
            "Failure",
            "NonZeroExitCode",
            "command terminated with non-zero exit code: error executing command [kubectl get pods], exit code 1",
            vec![StatusCause {
                reason: Some("ExitCode".into()),
                message: Some("1".into()),
                ..Default::default()
            }],
        );
        assert_eq!(exit_code(Some(&failed)), Ok(1));
    }

    #[test]
    fn a_command_that_did_not_run_is_an_error_not_an_exit_code() {
        let missing = status(
            "Failure",
            "InternalError",
            "failed to exec in container: exec: \"curl\": executable file not found in $PATH",
            vec![],
        );
        let err = exit_code(Some(&missing)).unwrap_err();
        assert!(err.contains("executable file not found"), "{err}");
        assert!(exit_code(None).is_err());
        let no_cause = status("Failure", "NonZeroExitCode", "exit code ?", vec![]);
        assert!(exit_code(Some(&no_cause)).is_err());
    }
}
