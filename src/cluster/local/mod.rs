//! The local provider: a real control plane (etcd, kube-apiserver,
//! kube-controller-manager) from upstream binaries, as child processes on 127.0.0.1.
//! `up` leaves them running and records them in the state directory; `status` and
//! `down` find them there.

mod assets;
mod components;
mod lock;
mod pki;
mod ports;
mod process;
mod readiness;
mod state;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use self::assets::{Assets, SearchPath};
use self::pki::Pki;
use self::process::{ProcessRecord, Started};
use self::state::{ClusterRecord, Phase, Ports, StateDir};
use crate::cluster::Error;
use crate::cluster::kubeconfig::{self, ClientCertConfig};
use crate::ui::Ui;

pub use self::assets::cache_bin_dir;
pub use self::state::state_root;

/// How long `down` waits for SIGTERM before it uses SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub struct UpOptions {
    pub name: String,
    pub wait_timeout: Duration,
    pub apiserver_port: Option<u16>,
    pub extra_apiserver_args: Vec<String>,
    pub extra_controller_manager_args: Vec<String>,
}

pub enum UpOutcome {
    Started(ClusterRecord),
    Reused(ClusterRecord),
}

fn state_for(name: &str) -> StateDir {
    StateDir::new(&state_root(), name)
}

pub fn kubeconfig_path(name: &str) -> Result<PathBuf, Error> {
    let state = state_for(name);
    match state.read_record()? {
        Some(_) => Ok(state.kubeconfig()),
        None => Err(Error::NoCluster {
            name: name.to_string(),
            dir: state.dir,
        }),
    }
}

impl UpOptions {
    /// What `kubelab run` uses when it has to start a cluster itself.
    pub fn defaults(name: &str) -> Self {
        UpOptions {
            name: name.to_string(),
            wait_timeout: Duration::from_secs(60),
            apiserver_port: None,
            extra_apiserver_args: Vec::new(),
            extra_controller_manager_args: Vec::new(),
        }
    }
}

pub async fn up(options: &UpOptions, ui: &Ui) -> Result<UpOutcome, Error> {
    let root = state_root();
    let _lock = lock::exclusive(&root, ui).await?;
    let state = StateDir::new(&root, &options.name);

    if let Some(record) = state.read_record()? {
        if record.phase == Phase::Ready && is_healthy(&state, &record).await {
            return Ok(UpOutcome::Reused(record));
        }
        ui.info(format!(
            "cluster '{}' in {} is not healthy: replacing it",
            options.name,
            state.dir.display()
        ));
        process::stop_all(&record.processes, STOP_GRACE).await;
    }
    state.remove()?;

    let assets = SearchPath::from_env().resolve()?;
    if let Some(port) = options.apiserver_port {
        ports::ensure_free(port, "--port")?;
    }

    let mut startup = Startup {
        state: state.clone(),
        started: Vec::new(),
    };
    let result = tokio::select! {
        result = startup.run(options, &assets, ui) => result,
        _ = crate::system::interrupted() => Err(Error::Interrupted),
    };
    match result {
        Ok(record) => Ok(UpOutcome::Started(record)),
        Err(e) => {
            startup.abort().await;
            Err(e)
        }
    }
}

async fn is_healthy(state: &StateDir, record: &ClusterRecord) -> bool {
    if !record.processes.iter().all(ProcessRecord::is_running) {
        return false;
    }
    let Ok(client) = kubeconfig::client(&state.kubeconfig()).await else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), readiness::apiserver_ready(&client)).await,
        Ok(Ok(()))
    )
}

/// One `up` in progress: what it has started so far, so a failure or an interrupt can
/// stop exactly that and remove the state directory.
struct Startup {
    state: StateDir,
    started: Vec<Started>,
}

impl Startup {
    async fn run(
        &mut self,
        options: &UpOptions,
        assets: &Assets,
        ui: &Ui,
    ) -> Result<ClusterRecord, Error> {
        let began = Instant::now();
        let state = self.state.clone();
        let timeout = options.wait_timeout;

        let step = ui.step("writing certificates and kubeconfigs");
        state.create()?;
        let free = ports::pick_free(4)?;
        let ports = Ports {
            etcd_client: free[0],
            etcd_peer: free[1],
            apiserver: options.apiserver_port.unwrap_or(free[2]),
            controller_manager: free[3],
        };
        let server = format!("https://127.0.0.1:{}", ports.apiserver);
        let pki = Pki::generate(components::SERVICE_IP)?;
        let files = pki.write(&state.pki())?;
        write_kubeconfigs(&state, &pki, &server, &options.name)?;
        let mut record = ClusterRecord {
            name: options.name.clone(),
            phase: Phase::Starting,
            kubernetes_version: String::new(),
            etcd_version: String::new(),
            server: server.clone(),
            ports: ports.clone(),
            processes: Vec::new(),
            kubectl: assets.kubectl.clone(),
        };
        state.write_record(&record)?;
        step.done(format!(
            "certificates and kubeconfigs written to {}",
            state.dir.display()
        ));

        let step = ui.step("starting etcd");
        let etcd_args = components::etcd_args(&state, &ports);
        self.start(&mut record, "etcd", &assets.etcd, etcd_args)?;
        let log = state.log("etcd");
        let port = ports.etcd_client;
        readiness::wait_until("etcd", timeout, &mut self.started, &log, || {
            readiness::etcd_healthy(port)
        })
        .await?;
        record.etcd_version = etcd_version(port).await;
        step.done(format!(
            "etcd {} ready on 127.0.0.1:{port}",
            record.etcd_version
        ));

        let step = ui.step("starting kube-apiserver");
        let mut args = components::apiserver_args(&state, &files, &ports);
        args.extend(options.extra_apiserver_args.iter().cloned());
        self.start(&mut record, "kube-apiserver", &assets.kube_apiserver, args)?;
        let client = kubeconfig::client(&state.kubeconfig()).await?;
        let log = state.log("kube-apiserver");
        readiness::wait_until("kube-apiserver", timeout, &mut self.started, &log, || {
            readiness::apiserver_ready(&client)
        })
        .await?;
        record.kubernetes_version = client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .map_err(|source| Error::Kube {
                context: "reading the apiserver's /version".into(),
                source,
            })?;
        step.done(format!(
            "kube-apiserver {} ready on {server}",
            record.kubernetes_version
        ));

        let step = ui.step("starting kube-controller-manager");
        let mut args = components::controller_manager_args(&state, &files, &ports);
        args.extend(options.extra_controller_manager_args.iter().cloned());
        self.start(
            &mut record,
            "kube-controller-manager",
            &assets.kube_controller_manager,
            args,
        )?;
        let log = state.log("kube-controller-manager");
        readiness::wait_until(
            "default ServiceAccount and kube-root-ca.crt",
            timeout,
            &mut self.started,
            &log,
            || readiness::namespace_defaults_present(&client),
        )
        .await?;
        step.done("kube-controller-manager ready: namespace default has its ServiceAccount and kube-root-ca.crt");

        record.phase = Phase::Ready;
        state.write_record(&record)?;
        ui.info(format!(
            "cluster '{}' is up in {}",
            options.name,
            crate::ui::format_duration(began.elapsed())
        ));
        Ok(record)
    }

    /// Starts a component and records it at once, so even a kubelab killed right after
    /// this leaves a record that the next `up` or `down` can clean up from.
    fn start(
        &mut self,
        record: &mut ClusterRecord,
        component: &str,
        binary: &std::path::Path,
        args: Vec<String>,
    ) -> Result<(), Error> {
        let started = process::start(component, binary, &args, &self.state.log(component))?;
        record.processes.push(started.record.clone());
        self.started.push(started);
        self.state.write_record(record)
    }

    async fn abort(&mut self) {
        let records: Vec<ProcessRecord> = self.started.iter().map(|s| s.record.clone()).collect();
        process::stop_all(&records, Duration::from_secs(2)).await;
        for started in &mut self.started {
            let _ = started.child.wait(); // reap: we are still their parent
        }
        let _ = self.state.remove();
    }
}

fn write_kubeconfigs(state: &StateDir, pki: &Pki, server: &str, name: &str) -> Result<(), Error> {
    let context = format!("local-{name}");
    let admin = ClientCertConfig {
        context: &context,
        server,
        ca_pem: &pki.ca.cert_pem,
        user: "kubelab-admin",
        cert_pem: &pki.admin.cert_pem,
        key_pem: &pki.admin.key_pem,
    };
    state::write_private(&state.kubeconfig(), admin.render().as_bytes())?;
    let controller_manager = ClientCertConfig {
        user: "system:kube-controller-manager",
        cert_pem: &pki.controller_manager.cert_pem,
        key_pem: &pki.controller_manager.key_pem,
        ..admin
    };
    state::write_private(
        &state.controller_manager_kubeconfig(),
        controller_manager.render().as_bytes(),
    )
}

/// etcd's /version: {"etcdserver":"3.6.16","etcdcluster":"3.6.0"}.
async fn etcd_version(port: u16) -> String {
    let body = readiness::http_get(port, "/version")
        .await
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["etcdserver"].as_str().map(|s| format!("v{s}")))
        .unwrap_or_else(|| "(unknown version)".into())
}

#[derive(Debug, Serialize)]
pub struct ComponentStatus {
    pub component: String,
    pub running: bool,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub name: String,
    pub phase: Phase,
    pub kubernetes_version: String,
    pub etcd_version: String,
    pub server: String,
    pub apiserver_ready: bool,
    pub kubeconfig: PathBuf,
    pub state_dir: PathBuf,
    pub components: Vec<ComponentStatus>,
}

pub async fn status(name: &str) -> Result<Status, Error> {
    let state = state_for(name);
    let record = state.read_record()?.ok_or_else(|| Error::NoCluster {
        name: name.to_string(),
        dir: state.dir.clone(),
    })?;
    let apiserver_ready = is_healthy(&state, &record).await;
    let port_of = |component: &str| match component {
        "etcd" => record.ports.etcd_client,
        "kube-apiserver" => record.ports.apiserver,
        _ => record.ports.controller_manager,
    };
    let components = record
        .processes
        .iter()
        .map(|p| ComponentStatus {
            component: p.component.clone(),
            running: p.is_running(),
            pid: p.pid,
            port: port_of(&p.component),
            log: p.log.clone(),
        })
        .collect();
    Ok(Status {
        name: record.name.clone(),
        phase: record.phase,
        kubernetes_version: record.kubernetes_version.clone(),
        etcd_version: record.etcd_version.clone(),
        server: record.server.clone(),
        apiserver_ready,
        kubeconfig: state.kubeconfig(),
        state_dir: state.dir.clone(),
        components,
    })
}

pub enum DownOutcome {
    NothingToDo(PathBuf),
    /// Removed, naming the components that needed SIGKILL.
    Removed {
        killed: Vec<String>,
    },
}

pub async fn down(name: &str, ui: &Ui) -> Result<DownOutcome, Error> {
    let root = state_root();
    let _lock = lock::exclusive(&root, ui).await?;
    let state = StateDir::new(&root, name);
    if !state.exists() {
        return Ok(DownOutcome::NothingToDo(state.dir));
    }
    let step = ui.step(format!("stopping cluster '{name}'"));
    let processes = state
        .read_record()?
        .map(|r| r.processes)
        .unwrap_or_default();
    let stopped: Vec<String> = processes
        .iter()
        .filter(|p| p.is_running())
        .map(|p| p.component.clone())
        .collect();
    let killed = process::stop_all(&processes, STOP_GRACE).await;
    state.remove()?;
    let what = if stopped.is_empty() {
        "nothing was running".to_string()
    } else {
        format!("stopped {}", stopped.join(", "))
    };
    step.done(format!(
        "cluster '{name}': {what}; removed {}",
        state.dir.display()
    ));
    Ok(DownOutcome::Removed { killed })
}

/// A running local cluster as a run needs it.
pub struct Running {
    pub record: ClusterRecord,
    pub kubeconfig: PathBuf,
    /// This run started it (and stops it again unless told to keep it).
    pub started_here: bool,
}

/// The healthy cluster `name`, started now when it is not running.
pub async fn ensure_running(name: &str, ui: &Ui) -> Result<Running, Error> {
    let state = state_for(name);
    if let Some(record) = state.read_record()?
        && record.phase == Phase::Ready
        && is_healthy(&state, &record).await
    {
        return Ok(Running {
            record,
            kubeconfig: state.kubeconfig(),
            started_here: false,
        });
    }
    ui.info(format!(
        "no local cluster '{name}' is running: starting one for this run"
    ));
    let (record, started_here) = match up(&UpOptions::defaults(name), ui).await? {
        UpOutcome::Started(record) => (record, true),
        UpOutcome::Reused(record) => (record, false),
    };
    Ok(Running {
        record,
        kubeconfig: state.kubeconfig(),
        started_here,
    })
}
