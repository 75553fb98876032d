//! Reaching a real pod through the API: commands through the exec websocket, exactly
//! as a student would type them in `kubectl exec -it <pod> -- sh`; logs through the
//! log endpoint.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;

use super::access::{FileFacts, Output, PodAccess, PodCommand, RequestToken};
use super::shell_session::ShellSession;
use super::{Error, command, exec, token};

/// How long a probe waits for its container to run (it may still be starting, or
/// restarting after a rollout).
const CONTAINER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct InPod {
    client: kube::Client,
    pod: Pod,
    container: Option<String>,
    /// How long to wait for the container to run (a check waits briefly).
    container_timeout: Duration,
    /// Shells open in the container, idle between commands, reused by the next probe.
    shells: tokio::sync::Mutex<Vec<ShellSession>>,
    /// A turn at a shell: at most `SHELLS_PER_POD` exist, and a probe waits for a free
    /// one rather than opening more.
    turns: tokio::sync::Semaphore,
}

/// Shells one pod's probes share. Opening one (API server, kubelet, containerd, runc
/// exec) costs far more CPU and time than a command in an open one, and opens
/// serialize on the node: six probes opening six shells at once were slower, each,
/// than six commands taking turns in two.
const SHELLS_PER_POD: usize = 2;

impl InPod {
    /// The pod's `container` (or first), once it runs: exec needs a live process.
    pub async fn new(
        client: kube::Client,
        pod: Pod,
        container: Option<String>,
        pace: crate::engine::Pace,
    ) -> Result<Self, Error> {
        let container =
            container.or_else(|| super::access::container_of(&pod, None).map(|c| c.name.clone()));
        let access = InPod {
            client,
            pod,
            container,
            container_timeout: pace.limit(None, CONTAINER_TIMEOUT),
            shells: Default::default(),
            turns: tokio::sync::Semaphore::new(SHELLS_PER_POD),
        };
        Ok(access)
    }

    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    async fn container_running(&self) -> Result<(), Error> {
        let Some(container) = &self.container else {
            return Ok(());
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), self.namespace());
        let running = |pod: Option<&Pod>| {
            pod.and_then(|p| p.status.as_ref())
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .any(|s| {
                    &s.name == container && s.state.as_ref().is_some_and(|st| st.running.is_some())
                })
        };
        match crate::engine::wait::object_until(
            pods.clone(),
            self.name(),
            self.container_timeout,
            running,
        )
        .await
        {
            Some(_) => Ok(()),
            None => {
                let state = match pods.get_opt(self.name()).await {
                    Ok(Some(pod)) => crate::engine::describe_pod_state(&pod),
                    _ => "gone".into(),
                };
                Err(Error::Pod(format!(
                    "container {container} of pod {}/{} is not running after {}: {state}",
                    self.namespace(),
                    self.name(),
                    crate::ui::format_duration(self.container_timeout)
                )))
            }
        }
    }

    /// A program without a shell: one exec of its own.
    async fn exec(&self, argv: Vec<String>) -> Result<Output, Error> {
        self.container_running().await?;
        exec::run(
            &self.client,
            self.namespace(),
            self.name(),
            self.container.as_deref(),
            &argv,
        )
        .await
    }

    /// A script, as `sh -c` runs it, in an idle shell of this pod's (or a new one).
    /// A shell that failed is not kept.
    async fn sh(&self, script: &str, secrets: &[(String, String)]) -> Result<Output, Error> {
        let _turn = self
            .turns
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let idle = self.shells.lock().await.pop();
        let mut shell = match idle.and_then(|mut shell| shell.is_open().then_some(shell)) {
            Some(shell) => shell,
            None => {
                self.container_running().await?;
                ShellSession::open(
                    &self.client,
                    self.namespace(),
                    self.name(),
                    self.container.as_deref(),
                )
                .await?
            }
        };
        let out = shell.run(script, secrets).await?;
        self.shells.lock().await.push(shell);
        Ok(out)
    }
}

#[async_trait::async_trait]
impl PodAccess for InPod {
    fn pod(&self) -> &Pod {
        &self.pod
    }

    fn container(&self) -> Option<&str> {
        self.container.as_deref()
    }

    fn ran(&self) -> String {
        format!("in pod {}/{}", self.namespace(), self.name())
    }

    async fn run(&self, command: &PodCommand) -> Result<Output, Error> {
        match command {
            PodCommand::Curl(request) => {
                let mut script = format!(
                    "{} -w '{}%{{http_code}}'",
                    command::curl_in_pod(request),
                    command::STATUS_MARKER.replace('\n', "\\n")
                );
                if let RequestToken::Invalid = &request.token {
                    script = format!("INVALID_TOKEN='{}'; {script}", token::invalid_token());
                }
                // Tokens are set by the shell from a here-document: never a command line.
                self.sh(&script, &request.secrets).await
            }
            PodCommand::Kubectl(args) => {
                // Without variables no shell is needed (kubectl images often have none).
                if args.iter().any(|a| a.contains('$')) {
                    self.sh(&command::kubectl_in_pod(args), &[]).await
                } else {
                    let argv = std::iter::once("kubectl".to_string())
                        .chain(args.iter().cloned())
                        .collect();
                    self.exec(argv).await
                }
            }
            PodCommand::Argv(argv) => self.exec(argv.clone()).await,
            PodCommand::Script(script) => self.sh(&command::script_in_pod(script), &[]).await,
        }
    }

    async fn read_file(&self, path: &str) -> Result<FileFacts, Error> {
        let quoted = command::shell_quote(path);
        let script = format!(
            "if [ -e {quoted} ]; then stat -L -c '%a %u:%g' {quoted} && cat {quoted}; else exit 3; fi"
        );
        let out = self.sh(&script, &[]).await?;
        match out.exit_code {
            3 => Ok(FileFacts::default()),
            0 => {
                let (facts, content) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
                let (mode, owner) = facts.split_once(' ').unwrap_or((facts, ""));
                Ok(FileFacts {
                    exists: true,
                    mode: Some(mode.trim().to_string()),
                    owner: Some(owner.trim().to_string()),
                    content: Some(content.to_string()),
                })
            }
            other => Err(Error::Pod(format!(
                "reading {path} in pod {}/{} (sh, stat and cat) exited {other}: {}",
                self.namespace(),
                self.name(),
                out.stderr.trim()
            ))),
        }
    }

    async fn shell(&self) -> Result<i32, Error> {
        self.container_running().await?;
        exec::interactive(
            &self.client,
            self.namespace(),
            self.name(),
            self.container.as_deref(),
            &["sh".to_string()],
        )
        .await
    }

    async fn logs(
        &self,
        done: &(dyn for<'t> Fn(&'t str) -> bool + Sync),
        timeout: Duration,
    ) -> Result<Output, Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), self.namespace());
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            // The current container, else the previous one after a restart.
            for previous in [false, true] {
                let params = LogParams {
                    container: self.container.clone(),
                    previous,
                    ..Default::default()
                };
                match pods.logs(self.name(), &params).await {
                    Ok(text) if done(&text) => {
                        return Ok(Output {
                            stdout: text,
                            ..Default::default()
                        });
                    }
                    Ok(text) if !previous || last.is_empty() => last = text,
                    Ok(_) => {}
                    // No previous container yet, or the container has not started.
                    Err(kube::Error::Api(status)) if status.code == 400 || status.code == 404 => {}
                    Err(e) => {
                        return Err(Error::Kube(
                            format!("reading logs of pod {}/{}", self.namespace(), self.name()),
                            e,
                        ));
                    }
                }
            }
            if Instant::now() > deadline {
                return Ok(Output {
                    stdout: last,
                    ..Default::default()
                });
            }
            // Logs have no watch: a container's output is polled.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
