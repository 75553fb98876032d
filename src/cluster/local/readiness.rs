//! Waiting for components to become ready, while watching that the processes we just
//! started are still alive: a crash is reported at once, with its log, not as a timeout.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::process::{Started, log_tail};
use crate::cluster::Error;

const POLL: Duration = Duration::from_millis(100);
const LOG_LINES: usize = 20;

/// Polls `check` until it returns `Ok`, failing early if any of `processes` exits, and
/// with [`Error::NotReady`] (showing `log`) once `timeout` has passed.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    processes: &mut [Started],
    log: &Path,
    mut check: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error: String;
    loop {
        for process in processes.iter_mut() {
            if let Some(status) = process.exit_status() {
                return Err(Error::ExitedDuringStart {
                    component: process.record.component.clone(),
                    status,
                    log: process.record.log.clone(),
                    tail: log_tail(&process.record.log, LOG_LINES),
                });
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining.max(POLL), check()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(message)) => last_error = message,
            Err(_) => last_error = "the check itself timed out".into(),
        }
        if Instant::now() >= deadline {
            return Err(Error::NotReady {
                what: what.to_string(),
                timeout,
                last_error,
                log: log.to_path_buf(),
                tail: log_tail(log, LOG_LINES),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A bare HTTP/1.0 GET against etcd's plain-HTTP client port; returns the body of a 200.
pub async fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(body.to_string())
    } else {
        Err(format!("GET {path}: {status_line}"))
    }
}

/// etcd answers /health with {"health":"true",...} once it can serve.
pub async fn etcd_healthy(port: u16) -> Result<(), String> {
    let body = http_get(port, "/health").await?;
    if body.contains(r#""health":"true""#) {
        Ok(())
    } else {
        Err(format!("GET /health: {}", body.trim()))
    }
}

/// The apiserver's /readyz: "ok" once every post-start hook (RBAC bootstrap among
/// them) has finished.
pub async fn apiserver_ready(client: &kube::Client) -> Result<(), String> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .expect("static request");
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ok" => Ok(()),
        Ok(body) => Err(format!("GET /readyz: {}", body.trim())),
        Err(e) => Err(format!("GET /readyz: {e}")),
    }
}

/// What the controller manager provides to every namespace, checked in `default`.
pub async fn namespace_defaults_present(client: &kube::Client) -> Result<(), String> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    match accounts.get_opt("default").await {
        Ok(Some(_)) => {}
        Ok(None) => return Err("no ServiceAccount default/default yet".into()),
        Err(e) => return Err(format!("get ServiceAccount default/default: {e}")),
    }
    match config_maps.get_opt("kube-root-ca.crt").await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("no ConfigMap default/kube-root-ca.crt yet".into()),
        Err(e) => Err(format!("get ConfigMap default/kube-root-ca.crt: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::process::start;
    use super::*;

    #[tokio::test]
    async fn a_process_that_dies_is_reported_with_its_log_not_as_a_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("dies.log");
        let args = [
            "-c".to_string(),
            "echo 'bad flag --x' >&2; exit 7".to_string(),
        ];
        let started = start("dies", Path::new("/bin/sh"), &args, &log, dir.path()).unwrap();
        let mut processes = vec![started];
        let result: Result<(), _> = wait_until(
            "dies",
            Duration::from_secs(10),
            &mut processes,
            &log,
            || async { Err("never ready".to_string()) },
        )
        .await;
        match result {
            Err(Error::ExitedDuringStart {
                component,
                status,
                tail,
                ..
            }) => {
                assert_eq!(component, "dies");
                assert!(status.contains('7'), "{status}");
                assert!(tail.contains("bad flag --x"), "{tail}");
            }
            other => panic!("expected ExitedDuringStart, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_check_that_never_passes_times_out_with_its_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("none.log");
        let result: Result<(), _> = wait_until(
            "thing",
            Duration::from_millis(250),
            &mut [],
            &log,
            || async { Err("still starting".to_string()) },
        )
        .await;
        match result {
            Err(Error::NotReady {
                what, last_error, ..
            }) => {
                assert_eq!(what, "thing");
                assert_eq!(last_error, "still starting");
            }
            other => panic!("expected NotReady, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn http_get_reports_a_closed_port() {
        let port = super::super::ports::pick_free(1).unwrap()[0];
        let err = http_get(port, "/health").await.unwrap_err();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}
