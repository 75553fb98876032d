//! Reaching a pod: one small interface (run a command in the pod, read a file in the
//! pod, read what its container printed) with two implementations: exec inside the
//! real pod (`in_pod.rs`), and the host standing in for the kubelet (`on_host.rs`).
//! Probe kinds are written once against this interface.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::Error;

/// Which token a request carries. A named token's value travels separately (stdin in a
/// pod, a private file on the host) and never appears in a command line.
#[derive(Clone, Debug)]
pub enum RequestToken {
    /// The pod's mounted ServiceAccount token.
    Pod,
    /// A token file at this path in the pod.
    File(String),
    None,
    /// Well formed, wrongly signed: authentication fails.
    Invalid,
    /// A token kubelab requested (`token` operation): its name and value.
    Named {
        name: String,
        value: String,
    },
}

/// A request to the API server as the pod would make it, with curl. Texts may still
/// hold `$(hostname)`, `${NAMESPACE}` and `$(cat /path)`: the pod's shell (or the host,
/// from the pod's files) gives them their values.
#[derive(Clone, Debug)]
pub struct CurlRequest {
    pub method: String,
    /// Path and query: `/api/v1/namespaces/${NAMESPACE}/pods?watch=true`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub token: RequestToken,
    /// `curl -k`.
    pub insecure: bool,
    /// Shell variables that hold tokens (`TOKEN_VAULT`) and their values: they reach
    /// the pod on stdin (the host writes them to private files), never a command line.
    pub secrets: Vec<(String, String)>,
}

/// What to run in the pod.
#[derive(Clone, Debug)]
pub enum PodCommand {
    Curl(CurlRequest),
    /// `kubectl <args>` with the pod's in-cluster identity.
    Kubectl(Vec<String>),
    /// Any program, run without a shell.
    Argv(Vec<String>),
    /// A script for `sh -c`.
    Script(String),
}

#[derive(Clone, Debug, Default)]
pub struct Output {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// What a file in the pod is. `mode` and `owner` are None where they cannot be seen
/// as the kubelet would set them (the host stand-in).
#[derive(Clone, Debug, Default)]
pub struct FileFacts {
    pub exists: bool,
    /// "644", as `stat -c %a`.
    pub mode: Option<String>,
    /// "0:0", as `stat -c %u:%g`.
    pub owner: Option<String>,
    pub content: Option<String>,
}

#[async_trait::async_trait]
pub trait PodAccess: Send + Sync {
    /// The pod, as the API server has it.
    fn pod(&self) -> &Pod;

    /// The container probes run in (the named one, else the first).
    fn container(&self) -> Option<&str>;

    /// Where probes run, for reports: "in pod ns/x" or "on host for pod ns/x".
    fn ran(&self) -> String;

    async fn run(&self, command: &PodCommand) -> Result<Output, Error>;

    async fn read_file(&self, path: &str) -> Result<FileFacts, Error>;

    /// What the container printed, read until `done` says so or `timeout` ends; the
    /// last text read either way.
    async fn logs(
        &self,
        done: &(dyn for<'t> Fn(&'t str) -> bool + Sync),
        timeout: Duration,
    ) -> Result<Output, Error>;

    /// An interactive shell on the user's terminal, until it exits; its exit code.
    async fn shell(&self) -> Result<i32, Error>;
}

/// The named container of a pod, or its first, as kubectl picks it.
pub fn container_of<'a>(
    pod: &'a Pod,
    name: Option<&str>,
) -> Option<&'a k8s_openapi::api::core::v1::Container> {
    let containers = &pod.spec.as_ref()?.containers;
    match name {
        Some(name) => containers.iter().find(|c| c.name == name),
        None => containers.first(),
    }
}

/// `ns/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}
