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
}

fn make(kind: Kind, choice: &Choice) -> Box<dyn Provider> {
    match kind {
        Kind::Kind => Box::new(super::kind::Kind::new(&choice.name, choice.named)),
        Kind::Kubeconfig => Box::new(super::existing::FromKubeconfig::new(
            choice.kubeconfig.clone(),
            choice.context.clone(),
            choice.yes,
        )),
        Kind::Local | Kind::Auto => Box::new(super::local::Local::new(&choice.name)),
    }
}

/// A kubeconfig or context on the command line means that cluster, as with kubectl.
fn explicit(choice: &Choice) -> Option<Kind> {
    (choice.kind == Kind::Auto && (choice.kubeconfig.is_some() || choice.context.is_some()))
        .then_some(Kind::Kubeconfig)
}

/// The provider to start (or reuse) a cluster with: `auto` is the local cluster of that
/// name when one exists (or a node is asked for, which only local gives), else kind
/// when kind and a working container engine are found, else the local control plane.
pub async fn to_start(choice: &Choice, node: bool) -> Box<dyn Provider> {
    let kind = match (choice.kind, explicit(choice)) {
        (_, Some(kind)) => kind,
        (Kind::Auto, None) if node || super::local::state_root().join(&choice.name).exists() => {
            Kind::Local
        }
        (Kind::Auto, None) if super::kind::detect().await.is_ok() => Kind::Kind,
        (Kind::Auto, None) => Kind::Local,
        (other, None) => other,
    };
    make(kind, choice)
}

/// The provider of a cluster that should exist: `auto` is the local cluster of that
/// name if its state exists, else kind when it works, else local (which says "none").
pub async fn existing(choice: &Choice) -> Box<dyn Provider> {
    let kind = match (choice.kind, explicit(choice)) {
        (_, Some(kind)) => kind,
        (Kind::Auto, None) if super::local::state_root().join(&choice.name).exists() => Kind::Local,
        (Kind::Auto, None) if super::kind::detect().await.is_ok() => Kind::Kind,
        (Kind::Auto, None) => Kind::Local,
        (other, None) => other,
    };
    make(kind, choice)
}
