//! Commands run inside real pods through the API (`kubectl exec`'s websocket), with
//! stdout, stderr and the exit code the kubelet reports in the final Status.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::AttachParams;
use tokio::io::AsyncReadExt;

use super::Error;

pub struct Output {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
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

/// Runs `command` in the pod's container (default: the first) and waits for it.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    command: &[String],
) -> Result<Output, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut params = AttachParams::default()
        .stdout(true)
        .stderr(true)
        .stdin(false);
    if let Some(container) = container {
        params = params.container(container);
    }
    let mut attached = match pods.exec(pod, command.to_vec(), &params).await {
        Ok(attached) => attached,
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Err(Error::ExecDenied(format!(
                "{} (kubelab's own identity needs `create` and `get` on pods/exec in {namespace})",
                status.message
            )));
        }
        Err(e) => return Err(Error::Kube(format!("exec in pod {namespace}/{pod}"), e)),
    };
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
