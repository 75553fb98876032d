//! Where labs run: one trait, one implementation per provider (local/mod.rs, kind.rs,
//! existing.rs), chosen in one place.

use std::path::PathBuf;
use std::time::Duration;

use super::Error;
use crate::cli::Provider as Kind;
use crate::ui::Ui;

/// A connected cluster, as a run needs it.
pub struct Connection {
    pub client: kube::Client,
    /// The configuration the client came from (impersonating clients start from it).
    pub config: kube::Config,
    pub provider: &'static str,
    /// The cluster's name (local, kind) or the kubeconfig context.
    pub name: String,
    pub server: String,
    /// host:port of the API server as this machine reaches it (host-side probes).
    pub apiserver: String,
    /// The kubectl matching the cluster, when kubelab knows one.
    pub kubectl: Option<PathBuf>,
}

/// How to start a cluster; each provider takes what applies to it and refuses the rest.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub wait_timeout: Duration,
    /// local: a real node too.
    pub node: bool,
    /// local: the API server's port.
    pub port: Option<u16>,
    pub apiserver_args: Vec<String>,
    pub controller_manager_args: Vec<String>,
    /// kind: the node image and a config of the user's.
    pub kind_image: Option<String>,
    pub kind_config: Option<PathBuf>,
    /// kind: images the labs use, loaded into the nodes when the engine has them.
    pub images: Vec<String>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            wait_timeout: Duration::from_secs(60),
            node: false,
            port: None,
            apiserver_args: Vec::new(),
            controller_manager_args: Vec::new(),
            kind_image: None,
            kind_config: None,
            images: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    Started,
    Reused,
}

/// What `cluster status` prints.
pub struct Status {
    pub ready: bool,
    pub text: String,
    pub json: serde_json::Value,
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;

    /// Starts the cluster, or reuses a healthy one (for a cluster kubelab did not make:
    /// asks for consent to change it).
    async fn ensure(&self, options: &UpOptions, ui: &Ui) -> Result<Ensured, Error>;

    async fn connect(&self) -> Result<Connection, Error>;

    /// Stops the cluster and removes what kubelab made for it.
    async fn teardown(&self, ui: &Ui) -> Result<(), Error>;

    /// The kubeconfig file to use with kubectl, and its context.
    fn kubeconfig(&self) -> Result<(PathBuf, Option<String>), Error>;

    async fn status(&self) -> Result<Status, Error>;
}

/// Which cluster a command means, as its flags say.
#[derive(Clone, Debug)]
pub struct Choice {
    pub kind: Kind,
    pub name: String,
    /// The name was given on the command line (a kind cluster kubelab did not create
    /// may then be deleted).
    pub named: bool,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Consent to change a cluster kubelab did not make.
    pub yes: bool,
    /// KUBECONFIG in the environment names the cluster, as for kubectl (commands that
    /// use a cluster; not those that make and remove kubelab's own).
    pub kubeconfig_env: bool,
}

fn make(kind: Kind, name: &str, choice: &Choice) -> Box<dyn Provider> {
    match kind {
        Kind::Kind => Box::new(super::kind::Kind::new(name, choice.named)),
        Kind::Kubeconfig => Box::new(super::existing::FromKubeconfig::new(
            choice.kubeconfig.clone(),
            choice.context.clone(),
            choice.yes,
        )),
        Kind::Local | Kind::Auto => Box::new(super::local::Local::new(name)),
    }
}

/// What the command line and KUBECONFIG name, as kubectl reads them: --kubeconfig or
/// --context mean that cluster. With `auto` and neither, KUBECONFIG means its cluster:
/// a kubelab local cluster's own kubeconfig is that local cluster, a current context
/// of a kind cluster kubelab made is that kind cluster, anything else is the
/// kubeconfig provider.
fn explicit(choice: &Choice) -> Option<(Kind, String)> {
    if choice.kind != Kind::Auto {
        return None;
    }
    if choice.kubeconfig.is_some() || choice.context.is_some() {
        return Some((Kind::Kubeconfig, choice.name.clone()));
    }
    if !choice.kubeconfig_env {
        return None;
    }
    let variable = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty())?;
    Some(from_kubeconfig_variable(&variable).unwrap_or((Kind::Kubeconfig, choice.name.clone())))
}

/// The kubelab cluster a KUBECONFIG value points at, if it is one.
fn from_kubeconfig_variable(variable: &std::ffi::OsStr) -> Option<(Kind, String)> {
    let files: Vec<PathBuf> = std::env::split_paths(variable).collect();
    if let [file] = files.as_slice() {
        let canonical = |p: &std::path::Path| p.canonicalize().ok();
        let root = canonical(&super::local::state_root())?;
        let file = canonical(file)?;
        // <state root>/<name>/kubeconfig
        if file.file_name()? == "kubeconfig" && file.parent()?.parent()? == root {
            let name = file.parent()?.file_name()?.to_string_lossy().to_string();
            return Some((Kind::Local, name));
        }
    }
    let current = kube::config::Kubeconfig::read().ok()?.current_context?;
    let name = current.strip_prefix("kind-")?;
    super::kind::created_by_kubelab(name).then(|| (Kind::Kind, name.to_string()))
}

/// The provider to start (or reuse) a cluster with: `auto` is the local cluster of that
/// name when one exists (or a node is asked for, which only local gives), else kind
/// when kind and a working container engine are found, else the local control plane.
pub async fn to_start(choice: &Choice, node: bool) -> Box<dyn Provider> {
    if let Some((kind, name)) = explicit(choice) {
        return make(kind, &name, choice);
    }
    let kind = match choice.kind {
        Kind::Auto if node || super::local::state_root().join(&choice.name).exists() => Kind::Local,
        Kind::Auto if super::kind::detect().await.is_ok() => Kind::Kind,
        Kind::Auto => Kind::Local,
        other => other,
    };
    make(kind, &choice.name, choice)
}

/// The provider of a cluster that should exist: `auto` is the local cluster of that
/// name if its state exists, else kind when it works, else local (which says "none").
pub async fn existing(choice: &Choice) -> Box<dyn Provider> {
    if let Some((kind, name)) = explicit(choice) {
        return make(kind, &name, choice);
    }
    let kind = match choice.kind {
        Kind::Auto if super::local::state_root().join(&choice.name).exists() => Kind::Local,
        Kind::Auto if super::kind::detect().await.is_ok() => Kind::Kind,
        Kind::Auto => Kind::Local,
        other => other,
    };
    make(kind, &choice.name, choice)
}

/// The cluster a command that only reads means: as [`existing`], and where kubelab
/// has no cluster of its own, ~/.kube/config's, as kubectl would use it.
pub async fn to_read(choice: &Choice) -> Box<dyn Provider> {
    let own = choice.kind != Kind::Auto
        || explicit(choice).is_some()
        || super::local::state_root().join(&choice.name).exists()
        || super::kind::created_by_kubelab(&choice.name);
    let home_config = std::env::var_os("HOME")
        .map(|h| std::path::Path::new(&h).join(".kube/config"))
        .is_some_and(|p| p.is_file());
    if !own && home_config {
        return make(Kind::Kubeconfig, &choice.name, choice);
    }
    existing(choice).await
}
