//! The kind provider: a kind cluster made from kind-config.yaml, driven through the
//! kind CLI and a container engine (docker, podman or nerdctl, as kind itself chooses:
//! KIND_EXPERIMENTAL_PROVIDER first). kubelab records the clusters it created and never
//! deletes another unless the user names it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::cluster::local::{cache_bin_dir, state_root};
use crate::cluster::{Error, IoContext};
use crate::ui::Ui;

/// The cluster definition kubelab uses unless given --config (the repository's
/// kind-config.yaml, built in).
pub const DEFAULT_CONFIG: &str = include_str!("../../kind-config.yaml");
pub const KIND_VERSION: &str = env!("KUBELAB_KIND_VERSION");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
    Nerdctl,
}

impl Engine {
    pub fn binary(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Nerdctl => "nerdctl",
        }
    }

    /// KIND_EXPERIMENTAL_PROVIDER's values, as kind reads them.
    fn from_env(value: &str) -> Option<Engine> {
        match value {
            "docker" => Some(Engine::Docker),
            "podman" => Some(Engine::Podman),
            "nerdctl" | "finch" | "nerdctl.lima" => Some(Engine::Nerdctl),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct KindTools {
    pub kind: PathBuf,
    pub engine: Engine,
}

/// The kubeconfig context kind writes for a cluster.
pub fn context(name: &str) -> String {
    format!("kind-{name}")
}

/// kind on PATH, else the one `kubelab setup kind` built.
fn find_kind() -> Option<PathBuf> {
    crate::system::on_path("kind")
        .or_else(|| Some(cache_bin_dir().join("kind")).filter(|p| p.is_file()))
}

/// Runs `<engine> info`: the engine works when that succeeds within 15 s.
async fn engine_works(binary: &Path) -> Result<(), String> {
    let run = tokio::process::Command::new(binary)
        .arg("info")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(15), run).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out.stderr);
            let line = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("failed");
            Err(line.trim().to_string())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 15 s".into()),
    }
}

/// kind and a working engine, or what is missing and how to get it. Asked once per
/// process: choosing the provider and then using it must not run `docker info` twice.
pub async fn detect() -> Result<KindTools, Error> {
    static DETECTED: tokio::sync::OnceCell<Result<KindTools, (String, String)>> =
        tokio::sync::OnceCell::const_new();
    let detected = DETECTED
        .get_or_init(|| async {
            detect_now().await.map_err(|e| match e {
                Error::KindUnavailable { missing, how } => (missing, how),
                other => (other.to_string(), String::new()),
            })
        })
        .await;
    detected
        .clone()
        .map_err(|(missing, how)| Error::KindUnavailable { missing, how })
}

async fn detect_now() -> Result<KindTools, Error> {
    let requested = std::env::var("KIND_EXPERIMENTAL_PROVIDER")
        .ok()
        .filter(|v| !v.is_empty());
    let candidates: Vec<Engine> = match requested.as_deref() {
        Some(value) => vec![
            Engine::from_env(value).ok_or_else(|| Error::KindUnavailable {
                missing: format!("KIND_EXPERIMENTAL_PROVIDER={value} is not an engine kind knows"),
                how: "use docker, podman or nerdctl, or unset it".into(),
            })?,
        ],
        None => vec![Engine::Docker, Engine::Podman, Engine::Nerdctl],
    };
    let mut found_but_down = Vec::new();
    let mut engine = None;
    for candidate in candidates {
        let Some(binary) = crate::system::on_path(candidate.binary()) else {
            continue;
        };
        match engine_works(&binary).await {
            Ok(()) => {
                engine = Some(candidate);
                break;
            }
            Err(why) => found_but_down.push(format!(
                "{} is installed but `{} info` fails: {why}",
                candidate.binary(),
                candidate.binary()
            )),
        }
    }
    let Some(engine) = engine else {
        return Err(Error::KindUnavailable {
            missing: if found_but_down.is_empty() {
                "no container engine (docker, podman or nerdctl) is installed".into()
            } else {
                format!("no working container engine: {}", found_but_down.join("; "))
            },
            how: if found_but_down.is_empty() {
                "install Docker (https://docs.docker.com/engine/install/) or Podman, or use --provider local".into()
            } else {
                "start the engine (e.g. `sudo systemctl start docker`), or use --provider local"
                    .into()
            },
        });
    };
    let kind = find_kind().ok_or_else(|| Error::KindUnavailable {
        missing: "kind is not installed".into(),
        how: format!("`kubelab setup kind` (builds kind {KIND_VERSION} into kubelab's cache), or https://kind.sigs.k8s.io/docs/user/quick-start/#installation"),
    })?;
    Ok(KindTools { kind, engine })
}

pub struct Ran {
    pub success: bool,
    pub output: String,
}

async fn run(program: &Path, args: &[String]) -> Result<Ran, Error> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context(|| format!("running {}", program.display()))?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Ran {
        success: out.status.success(),
        output,
    })
}

fn failed(command: &str, ran: &Ran) -> Error {
    let tail: Vec<&str> = ran.output.lines().rev().take(20).collect();
    Error::Kind {
        command: command.to_string(),
        output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    }
}

/// The names `kind get clusters` lists.
pub async fn clusters(tools: &KindTools) -> Result<Vec<String>, Error> {
    let ran = run(&tools.kind, &["get".into(), "clusters".into()]).await?;
    if !ran.success {
        return Err(failed("kind get clusters", &ran));
    }
    Ok(ran
        .output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(str::to_string)
        .collect())
}

/// Where kubelab notes that it created a kind cluster.
fn marker(name: &str) -> PathBuf {
    state_root().join("kind").join(format!("{name}.created"))
}

pub fn created_by_kubelab(name: &str) -> bool {
    marker(name).exists()
}

pub struct UpOptions {
    pub name: String,
    /// A kind config to use instead of the built-in kind-config.yaml.
    pub config: Option<PathBuf>,
    /// kindest/node image, e.g. kindest/node:v1.35.0.
    pub node_image: Option<String>,
    /// Images the labs use: loaded into the nodes when the engine has them.
    pub images: Vec<String>,
}

pub struct UpOutcome {
    pub created: bool,
    pub loaded: Vec<String>,
    /// Images the engine does not have: the nodes pull them from their registries.
    pub not_local: Vec<String>,
}

pub async fn up(tools: &KindTools, options: &UpOptions, ui: &Ui) -> Result<UpOutcome, Error> {
    let name = &options.name;
    let created = if clusters(tools).await?.iter().any(|c| c == name) {
        ui.info(format!(
            "kind cluster '{name}' exists: reusing it (context {})",
            context(name)
        ));
        false
    } else {
        create(tools, options, ui).await?;
        true
    };
    let mut loaded = Vec::new();
    let mut not_local = Vec::new();
    for image in &options.images {
        let engine = crate::system::on_path(tools.engine.binary())
            .unwrap_or_else(|| tools.engine.binary().into());
        let present = run(&engine, &["image".into(), "inspect".into(), image.clone()])
            .await?
            .success;
        if !present {
            not_local.push(image.clone());
            continue;
        }
        let step = ui.step(format!("loading {image} into kind cluster '{name}'"));
        let args = ["load", "docker-image", image, "--name", name].map(String::from);
        let ran = run(&tools.kind, &args).await?;
        if !ran.success {
            return Err(failed(
                &format!("kind load docker-image {image} --name {name}"),
                &ran,
            ));
        }
        step.done(format!("{image} loaded into kind cluster '{name}'"));
        loaded.push(image.clone());
    }
    Ok(UpOutcome {
        created,
        loaded,
        not_local,
    })
}

async fn create(tools: &KindTools, options: &UpOptions, ui: &Ui) -> Result<(), Error> {
    let name = &options.name;
    let dir = state_root().join("kind");
    std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
    let config = match &options.config {
        Some(path) => path.clone(),
        None => {
            let path = dir.join(format!("{name}-config.yaml"));
            std::fs::write(&path, DEFAULT_CONFIG)
                .context(|| format!("writing {}", path.display()))?;
            path
        }
    };
    let mut args: Vec<String> = ["create", "cluster", "--name", name]
        .map(String::from)
        .to_vec();
    args.extend([
        "--config".to_string(),
        config.display().to_string(),
        "--wait".into(),
        "5m".into(),
    ]);
    if let Some(image) = &options.node_image {
        args.extend(["--image".to_string(), image.clone()]);
    }
    let step = ui.step(format!(
        "creating kind cluster '{name}' with {} (a minute or two)",
        tools.engine.binary()
    ));
    let ran = run(&tools.kind, &args).await?;
    if !ran.success {
        return Err(failed(&format!("kind {}", args.join(" ")), &ran));
    }
    // Only now is it ours: a failed create left nothing to own.
    std::fs::write(marker(name), "").context(|| format!("writing {}", marker(name).display()))?;
    step.done(format!(
        "kind cluster '{name}' created (context {})",
        context(name)
    ));
    Ok(())
}

pub enum DownOutcome {
    NothingToDo,
    Deleted,
}

/// Deletes the cluster if kubelab created it, or if the user named it explicitly.
pub async fn down(
    tools: &KindTools,
    name: &str,
    named_explicitly: bool,
    ui: &Ui,
) -> Result<DownOutcome, Error> {
    let ours = created_by_kubelab(name);
    if !clusters(tools).await?.iter().any(|c| c == name) {
        let _ = std::fs::remove_file(marker(name));
        return Ok(DownOutcome::NothingToDo);
    }
    if !ours && !named_explicitly {
        return Err(Error::NotCreatedByKubelab {
            name: name.to_string(),
        });
    }
    let step = ui.step(format!("deleting kind cluster '{name}'"));
    let args = ["delete", "cluster", "--name", name].map(String::from);
    let ran = run(&tools.kind, &args).await?;
    if !ran.success {
        return Err(failed(&format!("kind delete cluster --name {name}"), &ran));
    }
    let _ = std::fs::remove_file(marker(name));
    let _ = std::fs::remove_file(
        state_root()
            .join("kind")
            .join(format!("{name}-config.yaml")),
    );
    step.done(format!("kind cluster '{name}' deleted"));
    Ok(DownOutcome::Deleted)
}

/// The kind provider for the cluster `name`.
pub struct Kind {
    name: String,
    /// The user named the cluster: it may be deleted even if kubelab did not create it.
    named: bool,
}

impl Kind {
    pub fn new(name: &str, named: bool) -> Self {
        Kind {
            name: name.to_string(),
            named,
        }
    }
}

/// The kubeconfig kind writes into: KUBECONFIG's first file, else ~/.kube/config.
fn kind_kubeconfig() -> PathBuf {
    std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube/config")))
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl super::Provider for Kind {
    fn name(&self) -> &'static str {
        "kind"
    }

    async fn ensure(&self, options: &super::UpOptions, ui: &Ui) -> Result<super::Ensured, Error> {
        if options.node
            || options.port.is_some()
            || !options.apiserver_args.is_empty()
            || !options.controller_manager_args.is_empty()
        {
            return Err(Error::Usage(
                "--node, --port, --apiserver-arg and --controller-manager-arg are for --provider local; for kind, put them in a kind config (--config)".into(),
            ));
        }
        let tools = detect().await?;
        let outcome = up(
            &tools,
            &UpOptions {
                name: self.name.clone(),
                config: options.kind_config.clone(),
                node_image: options.kind_image.clone(),
                images: options.images.clone(),
            },
            ui,
        )
        .await?;
        if !outcome.not_local.is_empty() {
            ui.info(format!(
                "not in the local {} (the nodes will pull them): {}",
                tools.engine.binary(),
                outcome.not_local.join(", ")
            ));
        }
        Ok(if outcome.created {
            super::Ensured::Started
        } else {
            super::Ensured::Reused
        })
    }

    async fn connect(&self) -> Result<super::Connection, Error> {
        let cluster = super::existing::connect(None, Some(&context(&self.name))).await?;
        Ok(super::Connection {
            apiserver: cluster.authority(),
            client: cluster.client,
            config: cluster.config,
            provider: "kind",
            name: self.name.clone(),
            server: cluster.server,
            kubectl: None,
        })
    }

    async fn teardown(&self, ui: &Ui) -> Result<(), Error> {
        let tools = detect().await?;
        if let DownOutcome::NothingToDo = down(&tools, &self.name, self.named, ui).await? {
            ui.info(format!(
                "no kind cluster named '{}': nothing to delete",
                self.name
            ));
        }
        Ok(())
    }

    fn kubeconfig(&self) -> Result<(PathBuf, Option<String>), Error> {
        Ok((kind_kubeconfig(), Some(context(&self.name))))
    }

    async fn status(&self) -> Result<super::Status, Error> {
        let tools = detect().await?;
        let exists = clusters(&tools).await?.contains(&self.name);
        let text = if exists {
            format!(
                "kind cluster '{}' ({}), context {}, engine {}",
                self.name,
                if created_by_kubelab(&self.name) {
                    "created by kubelab"
                } else {
                    "not created by kubelab"
                },
                context(&self.name),
                tools.engine.binary()
            )
        } else {
            format!("no kind cluster named '{}'", self.name)
        };
        Ok(super::Status {
            ready: exists,
            json: serde_json::json!({
                "name": self.name, "provider": "kind", "exists": exists,
                "created_by_kubelab": created_by_kubelab(&self.name), "context": context(&self.name),
                "engine": tools.engine.binary(),
            }),
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_config_is_a_kind_cluster() {
        assert!(DEFAULT_CONFIG.contains("kind: Cluster"));
        assert!(DEFAULT_CONFIG.contains("apiVersion: kind.x-k8s.io/v1alpha4"));
    }

    #[test]
    fn kind_provider_names_map_to_engines() {
        assert_eq!(Engine::from_env("podman"), Some(Engine::Podman));
        assert_eq!(Engine::from_env("docker"), Some(Engine::Docker));
        assert_eq!(Engine::from_env("rkt"), None);
        assert_eq!(context("kubelab"), "kind-kubelab");
    }
}
