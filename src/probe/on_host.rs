//! The host standing in for the kubelet, for a pod no node runs: the pod's volume is
//! materialized (host.rs), its HTTPS requests are made by kubelab as curl in the pod
//! would make them (host_http.rs), kubectl runs on the host against the API server as
//! the pod would reach it, and any other command runs in a private mount namespace
//! where the pod's files sit at their in-pod paths (sandbox.rs).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::access::{CurlRequest, FileFacts, Output, PodAccess, PodCommand, RequestToken};
use super::command::SERVICE_ACCOUNT_DIR;
use super::host::{HostTools, PodFiles};
use super::host_http::{PodHttp, Sent};
use super::{Error, sandbox, token};
use crate::scenario::vars::{self, Reference};

/// kubectl lives for one command: its garbage collector only costs CPU (a quarter of a
/// `kubectl get`'s, measured), so it is off, under a memory limit that turns it back
/// on should an answer be huge.
const KUBECTL_GO_RUNTIME: [(&str, &str); 2] = [("GOGC", "off"), ("GOMEMLIMIT", "256MiB")];

pub struct OnHost {
    pod: Pod,
    container: Option<String>,
    tools: HostTools,
    files: Arc<PodFiles>,
    http: Arc<PodHttp>,
}

impl OnHost {
    pub async fn new(
        client: &kube::Client,
        tools: HostTools,
        pod: Pod,
        container: Option<String>,
    ) -> Result<Self, Error> {
        let files = Arc::new(super::host::materialize(client, &pod, container.as_deref()).await?);
        Ok(OnHost {
            pod,
            container,
            http: tools.http.clone(),
            tools,
            files,
        })
    }

    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> String {
        let from_file = self.files.namespace_file();
        if from_file.trim().is_empty() {
            self.pod.metadata.namespace.clone().unwrap_or_default()
        } else {
            from_file.trim().to_string()
        }
    }

    /// What the pod's shell would make of `$(hostname)`, `${NAMESPACE}`, `$(cat …)`
    /// and the token variables of `secrets`.
    fn expand_with(&self, text: &str, secrets: &[(String, String)]) -> String {
        vars::expand(text, false, |reference| match reference {
            Reference::Hostname => Some(self.name().to_string()),
            Reference::Variable(vars::NAMESPACE) => Some(self.namespace()),
            // cat of a missing file prints nothing to stdout, as in the pod.
            Reference::Cat(path) => Some(self.files.read(path).unwrap_or_default()),
            Reference::Variable(name) => secrets
                .iter()
                .find(|(var, _)| var == name)
                .map(|(_, v)| v.clone()),
            Reference::Token(_) => None,
        })
    }

    fn expand(&self, text: &str) -> String {
        self.expand_with(text, &[])
    }

    /// A private file (0600, in the pod's 0700 directory) for one request: probes of
    /// a pod run side by side, so each gets its own; it is deleted when dropped.
    fn private(&self, name: &str, contents: &str) -> Result<tempfile::NamedTempFile, Error> {
        use std::io::Write;
        let dir = self.files.dir()?;
        let mut file = tempfile::Builder::new()
            .prefix(name)
            .tempfile_in(&dir)
            .map_err(|e| {
                Error::Host(format!("creating a private file in {}: {e}", dir.display()))
            })?;
        file.write_all(contents.as_bytes())
            .map_err(|e| Error::Host(format!("writing {}: {e}", file.path().display())))?;
        Ok(file)
    }

    /// The request curl in the pod would make, made by kubelab (host_http.rs): the
    /// pod's texts given their values here, as the pod's shell would.
    async fn request(&self, request: &CurlRequest) -> Result<Output, Error> {
        let bearer = match &request.token {
            RequestToken::Pod => Some(
                self.files
                    .read(&format!("{SERVICE_ACCOUNT_DIR}/token"))
                    .unwrap_or_default(),
            ),
            RequestToken::File(path) => Some(self.files.read(path).unwrap_or_default()),
            RequestToken::Invalid => Some(token::invalid_token()),
            RequestToken::Named { value, .. } => Some(value.clone()),
            RequestToken::None => None,
        };
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), self.expand_with(v, &request.secrets)))
            .collect();
        let body = request
            .body
            .as_ref()
            .map(|b| self.expand_with(b, &request.secrets));
        let target = self.expand(&request.target);
        let ca_path = format!("{SERVICE_ACCOUNT_DIR}/ca.crt");
        let ca = self.files.read_bytes(&ca_path);
        let sent = Sent {
            method: &request.method,
            target: &target,
            bearer: bearer.as_deref(),
            headers: &headers,
            body: body.as_deref(),
            insecure: request.insecure,
        };
        self.http.send(&ca_path, ca, &sent).await
    }

    /// The real kubectl with the pod's in-cluster identity: its token file, its CA, its
    /// namespace, and the server name the pod would use.
    async fn kubectl(&self, args: &[String]) -> Result<Output, Error> {
        let token = self
            .files
            .host_path(&format!("{SERVICE_ACCOUNT_DIR}/token"))?;
        let ca = self
            .files
            .host_path(&format!("{SERVICE_ACCOUNT_DIR}/ca.crt"))?;
        let user = if token.exists() {
            format!("    tokenFile: {}\n", token.display())
        } else {
            "    {}\n".to_string()
        };
        let kubeconfig = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: in-cluster
  cluster:
    server: https://{server}
    tls-server-name: kubernetes.default.svc
    certificate-authority: {ca}
users:
- name: pod
  user:
{user}contexts:
- name: in-cluster
  context: {{cluster: in-cluster, user: pod, namespace: '{namespace}'}}
current-context: in-cluster
",
            server = self.tools.apiserver,
            ca = ca.display(),
            namespace = self.namespace(),
        );
        let file = self.private("kubeconfig", &kubeconfig)?;
        let mut all: Vec<String> = args.iter().map(|a| self.expand(a)).collect();
        all.insert(0, format!("--kubeconfig={}", file.path().display()));
        all.insert(
            1,
            format!("--cache-dir={}", self.tools.kubectl_cache()?.display()),
        );
        let home = self.files.dir()?.display().to_string();
        let mut env = vec![("HOME", home)];
        env.extend(KUBECTL_GO_RUNTIME.map(|(name, value)| (name, value.to_string())));
        let out = run(&self.tools.kubectl, &all, &env).await;
        drop(file);
        out
    }

    /// What the container runs, when it is kubectl (the only program kubelab can stand
    /// in for on the host): the arguments after `kubectl`.
    fn container_kubectl_args(&self) -> Result<Vec<String>, Error> {
        let chosen = super::access::container_of(&self.pod, self.container.as_deref())
            .ok_or_else(|| Error::Pod("no such container".into()))?;
        let mut words: Vec<String> = chosen.command.clone().unwrap_or_default();
        words.extend(chosen.args.clone().unwrap_or_default());
        match words.split_first() {
            Some((program, rest)) if program.rsplit('/').next() == Some("kubectl") => {
                Ok(rest.to_vec())
            }
            _ => Err(Error::Unsupported(format!(
                "without a node kubelab can only stand in for containers that run kubectl; container {} runs {:?}",
                chosen.name, words
            ))),
        }
    }
}

#[async_trait::async_trait]
impl PodAccess for OnHost {
    fn pod(&self) -> &Pod {
        &self.pod
    }

    fn container(&self) -> Option<&str> {
        self.container
            .as_deref()
            .or_else(|| super::access::container_of(&self.pod, None).map(|c| c.name.as_str()))
    }

    fn ran(&self) -> String {
        format!("on host for pod {}/{}", self.namespace(), self.name())
    }

    async fn run(&self, command: &PodCommand) -> Result<Output, Error> {
        match command {
            PodCommand::Curl(request) => self.request(request).await,
            PodCommand::Kubectl(args) => self.kubectl(args).await,
            PodCommand::Argv(argv) => {
                let argv: Vec<String> = argv.iter().map(|a| self.expand(a)).collect();
                sandbox::run(&self.sandbox(), &argv).await
            }
            PodCommand::Script(script) => {
                let argv = vec![
                    "sh".into(),
                    "-c".into(),
                    super::command::script_in_pod(script),
                ];
                sandbox::run(&self.sandbox(), &argv).await
            }
        }
    }

    async fn read_file(&self, path: &str) -> Result<FileFacts, Error> {
        if self.files.covers(path) {
            let content = self.files.read(path);
            return Ok(FileFacts {
                exists: content.is_some(),
                content,
                ..Default::default()
            });
        }
        if path.starts_with("/var/run/secrets/") {
            // Nothing there comes from an image: without a volume, it does not exist.
            return Ok(FileFacts::default());
        }
        Err(Error::Host(format!(
            "{path} is not in a volume of pod {}/{}: on the host kubelab can only check the files it materializes (mounted at {})",
            self.namespace(),
            self.name(),
            if self.files.mounts.is_empty() {
                "nothing".to_string()
            } else {
                self.files.mounts.join(", ")
            }
        )))
    }

    async fn logs(
        &self,
        _done: &(dyn for<'t> Fn(&'t str) -> bool + Sync),
        _timeout: Duration,
    ) -> Result<Output, Error> {
        // No container ran: run its command once, as it would have run.
        let args = self.container_kubectl_args()?;
        let out = self.kubectl(&args).await?;
        Ok(Output {
            stdout: format!("{}{}", out.stdout, out.stderr),
            ..out
        })
    }

    async fn shell(&self) -> Result<i32, Error> {
        let prompt = format!("{} (stand-in) $ ", self.name());
        // Ctrl-C belongs to the shell while it runs.
        let _interrupts = crate::system::CtrlCToShell::new();
        let status = self
            .sandbox()
            .command(&["sh".to_string()])?
            .env("PS1", prompt)
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .await
            .map_err(|e| Error::Host(format!("starting a shell in the pod's stand-in: {e}")))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

impl OnHost {
    fn sandbox(&self) -> sandbox::Sandbox<'_> {
        sandbox::Sandbox {
            files: &self.files,
            hostname: self.name(),
            apiserver: &self.tools.apiserver,
            curl: &self.tools.curl,
        }
    }
}

/// Runs a program on the host and collects its output.
pub async fn run(program: &Path, args: &[String], env: &[(&str, String)]) -> Result<Output, Error> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::Host(format!("running {}: {e}", program.display())))?;
    Ok(Output {
        exit_code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
