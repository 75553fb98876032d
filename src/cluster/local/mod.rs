//! The local provider: a real control plane (etcd, kube-apiserver,
//! kube-controller-manager) from upstream binaries, as child processes on 127.0.0.1.
//! `up` leaves them running and records them in the state directory; `status` and
//! `down` find them there.

mod assets;
mod components;
mod lock;
pub mod node;
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

pub use self::assets::{cache_bin_dir, images_dir};

/// What starting a node needs: the tools found on this machine and its record.
type NodeParts<'a> = (&'a node::preflight::NodeTools, &'a node::NodeRecord);
pub use self::state::state_root;

/// How long `down` waits for SIGTERM before it uses SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub struct UpOptions {
    pub name: String,
    pub wait_timeout: Duration,
    pub apiserver_port: Option<u16>,
    pub extra_apiserver_args: Vec<String>,
    pub extra_controller_manager_args: Vec<String>,
    /// Give the cluster a real node (kubelet, containerd, kube-proxy, CoreDNS).
    pub node: bool,
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
            node: false,
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
        teardown(&state, &record).await;
    }
    state.remove()?;

    let assets = SearchPath::from_env().resolve()?;
    if let Some(port) = options.apiserver_port {
        ports::ensure_free(port, "--port")?;
    }
    let node_tools = match options.node {
        true => Some(node::preflight::check(
            &assets::node_bin_dir(),
            &assets::images_dir(),
        )?),
        false => None,
    };

    // Free ports are picked before the components bind them: another program may take
    // one in between. A component that finds its port taken is started again on others.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut startup = Startup {
            state: state.clone(),
            started: Vec::new(),
        };
        let result = tokio::select! {
            result = startup.run(options, &assets, node_tools.as_ref(), ui) => result,
            _ = crate::system::interrupted() => Err(Error::Interrupted),
        };
        match result {
            Ok(record) => return Ok(UpOutcome::Started(record)),
            Err(e) => {
                startup.abort().await;
                let port_taken = matches!(&e, Error::ExitedDuringStart { tail, .. } if tail.contains("address already in use"));
                if !(port_taken && options.apiserver_port.is_none() && attempts < 3) {
                    return Err(e);
                }
                ui.info("a port kubelab chose was taken by another program meanwhile: starting again on other ports");
                state.remove()?;
            }
        }
    }
}

/// The node's components, in start order.
const NODE_COMPONENTS: &[&str] = &[
    "containerd",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "coredns",
];

/// Stops what a record names and removes what a node added to the machine; returns the
/// components that needed SIGKILL. With a node: pods are deleted first (the kubelet
/// tears their containers and networks down), then the node components stop, leftover
/// containers are killed while containerd still runs, then the rest stops, then the
/// machine is cleaned.
async fn teardown(state: &StateDir, record: &ClusterRecord) -> Vec<String> {
    let Some(node_record) = &record.node else {
        return process::stop_all(&record.processes, STOP_GRACE).await;
    };
    let ctr = crate::system::on_path("ctr").unwrap_or_else(|| "ctr".into());
    let apiserver_runs = record
        .processes
        .iter()
        .any(|p| p.component == "kube-apiserver" && p.is_running());
    let client = match apiserver_runs {
        true => kubeconfig::client(&state.kubeconfig()).await.ok(),
        false => None,
    };
    node::drain(client.as_ref(), &ctr, &node_record.containerd_socket).await;
    let (node_processes, rest): (Vec<ProcessRecord>, Vec<ProcessRecord>) =
        record.processes.iter().cloned().partition(|p| {
            NODE_COMPONENTS.contains(&p.component.as_str()) && p.component != "containerd"
        });
    let mut killed = process::stop_all(&node_processes, STOP_GRACE).await;
    node::kill_tasks(&ctr, &node_record.containerd_socket);
    killed.extend(process::stop_all(&rest, STOP_GRACE).await);
    node::clean_host(node_record);
    killed
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
        node_tools: Option<&node::preflight::NodeTools>,
        ui: &Ui,
    ) -> Result<ClusterRecord, Error> {
        let began = Instant::now();
        let state = self.state.clone();
        let timeout = options.wait_timeout;

        let step = ui.step("writing certificates and kubeconfigs");
        state.create()?;
        let free = ports::pick_free(10)?;
        let ports = Ports {
            etcd_client: free[0],
            etcd_peer: free[1],
            apiserver: options.apiserver_port.unwrap_or(free[2]),
            controller_manager: free[3],
        };
        let node_layout = node::NodeLayout::new(&state.dir);
        let node_record = node_tools.map(|tools| node::NodeRecord {
            dir: node_layout.dir.clone(),
            containerd_socket: node_layout.containerd_socket(),
            netns_before: node::host::netns_names(),
            kube_proxy: tools.kube_proxy.clone(),
            kube_proxy_config: node_layout.file("kube-proxy.yaml"),
            ports: node::NodePorts {
                kubelet: free[4],
                kubelet_healthz: free[5],
                scheduler: free[6],
                kube_proxy_healthz: free[7],
                kube_proxy_metrics: free[8],
                coredns_ready: free[9],
            },
        });
        // With a node the API server listens on the node address: pods reach it there.
        let host = if node_tools.is_some() {
            node::NODE_IP.to_string()
        } else {
            "127.0.0.1".to_string()
        };
        let server = format!("https://{host}:{}", ports.apiserver);
        let mut record = ClusterRecord {
            name: options.name.clone(),
            phase: Phase::Starting,
            kubernetes_version: String::new(),
            etcd_version: String::new(),
            server: server.clone(),
            ports: ports.clone(),
            processes: Vec::new(),
            kubectl: assets.kubectl.clone(),
            node: node_record.clone(),
        };
        // Recorded before the machine changes, so that a failure can undo it.
        state.write_record(&record)?;
        if node_tools.is_some() {
            node::host::add_node_address()?;
            node::host::add_guard()?;
        }
        let node_ip = node_tools.map(|_| std::net::IpAddr::V4(node::NODE_IP));
        let pki = Pki::generate(components::SERVICE_IP, node_ip)?;
        let files = pki.write(&state.pki())?;
        write_kubeconfigs(&state, &pki, &server, &options.name)?;
        step.done(format!(
            "certificates and kubeconfigs written to {}",
            state.dir.display()
        ));
        let images = match (node_tools, &node_record) {
            (Some(tools), Some(node_record)) => Some(
                self.start_runtime(
                    &mut record,
                    (tools, node_record),
                    &pki,
                    &server,
                    timeout,
                    ui,
                )
                .await?,
            ),
            _ => None,
        };

        // etcd and kube-apiserver start together: the API server's storage client
        // connects once etcd listens, so etcd's start hides in the API server's.
        let step = ui.step("starting etcd");
        let etcd_args = components::etcd_args(&state, &ports);
        self.start(&mut record, "etcd", &assets.etcd, etcd_args)?;
        let mut args = components::apiserver_args(&state, &files, &ports, node_tools.is_some());
        args.extend(options.extra_apiserver_args.iter().cloned());
        self.start(&mut record, "kube-apiserver", &assets.kube_apiserver, args)?;
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

        if let (Some(tools), Some(node_record)) = (node_tools, &node_record) {
            self.start_node_agents(&mut record, (tools, node_record), &client)
                .await?;
        }

        let step = ui.step("starting kube-controller-manager");
        let mut args =
            components::controller_manager_args(&state, &files, &ports, node_tools.is_some());
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

        if let (Some(tools), Some(node_record), Some(images)) = (node_tools, &node_record, images) {
            self.finish_node(
                &mut record,
                (tools, node_record),
                images,
                &client,
                timeout,
                ui,
            )
            .await?;
        }

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
        let started = process::start(
            component,
            binary,
            &args,
            &self.state.log(component),
            &self.state.scratch(),
        )?;
        record.processes.push(started.record.clone());
        self.started.push(started);
        self.state.write_record(record)
    }

    /// The node: its API objects, configuration, containerd with the local images, then
    /// kube-scheduler, kubelet (until the node is Ready), kube-proxy and CoreDNS.
    /// The node's container runtime, started before the control plane (it needs none
    /// of it): its configs, containerd, and the image import, which goes on in the
    /// background while the control plane starts.
    async fn start_runtime(
        &mut self,
        record: &mut ClusterRecord,
        (tools, node_record): NodeParts<'_>,
        pki: &Pki,
        server: &str,
        timeout: Duration,
        ui: &Ui,
    ) -> Result<tokio::task::JoinHandle<Result<(), Error>>, Error> {
        let layout = node::NodeLayout::new(&self.state.dir);
        let node_pki = pki.node.as_ref().expect("generated with the node");
        let step = ui.step("starting containerd");
        node::write_configs(
            &layout,
            &self.state.pki(),
            &node_record.ports,
            &tools.pause_image,
        )?;
        write_node_kubeconfigs(&layout, pki, node_pki, server)?;
        let config = layout.containerd_config().display().to_string();
        self.start(
            record,
            "containerd",
            &tools.containerd,
            vec![format!("--config={config}")],
        )?;
        let socket = layout.containerd_socket();
        let log = self.state.log("containerd");
        readiness::wait_until("containerd", timeout, &mut self.started, &log, || {
            let socket = socket.clone();
            async move {
                if socket.exists() {
                    Ok(())
                } else {
                    Err(format!("no socket at {} yet", socket.display()))
                }
            }
        })
        .await?;
        step.done(format!(
            "containerd ready; importing the local images {} meanwhile",
            tools
                .images
                .iter()
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let (ctr, images) = (tools.ctr.clone(), tools.images.clone());
        Ok(tokio::task::spawn_blocking(move || {
            node::import_images(&ctr, &socket, &images)
        }))
    }

    /// The node's agents, once the API server serves: its objects, kube-scheduler and
    /// the kubelet (their start overlaps the controller manager's).
    async fn start_node_agents(
        &mut self,
        record: &mut ClusterRecord,
        (tools, node_record): NodeParts<'_>,
        client: &kube::Client,
    ) -> Result<(), Error> {
        let layout = node::NodeLayout::new(&self.state.dir);
        node::apply_objects(client).await?;
        let arg = |name: &str, value: String| format!("--{name}={value}");
        let scheduler_kubeconfig = layout.file("scheduler.kubeconfig").display().to_string();
        self.start(
            record,
            "kube-scheduler",
            &tools.kube_scheduler,
            vec![
                arg(
                    "config",
                    layout.file("scheduler.yaml").display().to_string(),
                ),
                arg("bind-address", "127.0.0.1".into()),
                arg("secure-port", node_record.ports.scheduler.to_string()),
                arg("authentication-kubeconfig", scheduler_kubeconfig.clone()),
                arg("authorization-kubeconfig", scheduler_kubeconfig),
            ],
        )?;
        self.start(
            record,
            "kubelet",
            &tools.kubelet,
            vec![
                arg("config", layout.file("kubelet.yaml").display().to_string()),
                arg(
                    "kubeconfig",
                    layout.file("kubelet.kubeconfig").display().to_string(),
                ),
                arg("hostname-override", node::NODE_NAME.into()),
                arg("node-ip", node::NODE_IP.to_string()),
                arg("root-dir", layout.kubelet_root().display().to_string()),
            ],
        )?;
        Ok(())
    }

    /// The node, finished: its images imported, the kubelet's node Ready, kube-proxy
    /// and CoreDNS serving.
    async fn finish_node(
        &mut self,
        record: &mut ClusterRecord,
        (tools, node_record): NodeParts<'_>,
        images: tokio::task::JoinHandle<Result<(), Error>>,
        client: &kube::Client,
        timeout: Duration,
        ui: &Ui,
    ) -> Result<(), Error> {
        let layout = node::NodeLayout::new(&self.state.dir);
        let arg = |name: &str, value: String| format!("--{name}={value}");
        let step = ui.step("kubelet: node registered and Ready, images imported");
        images.await.map_err(|e| Error::Io {
            context: "importing the node's images".into(),
            source: std::io::Error::other(e),
        })??;
        let log = self.state.log("kubelet");
        readiness::wait_until("node", timeout, &mut self.started, &log, || {
            node::node_ready(client)
        })
        .await?;
        step.done(format!(
            "kubelet ready: node {} is Ready, the local images imported",
            node::NODE_NAME
        ));

        let step = ui.step("starting kube-proxy and CoreDNS");
        self.start(
            record,
            "kube-proxy",
            &tools.kube_proxy,
            vec![arg(
                "config",
                layout.file("kube-proxy.yaml").display().to_string(),
            )],
        )?;
        let healthz = node_record.ports.kube_proxy_healthz;
        let log = self.state.log("kube-proxy");
        readiness::wait_until(
            "kube-proxy",
            timeout,
            &mut self.started,
            &log,
            || async move { readiness::http_get(healthz, "/healthz").await.map(|_| ()) },
        )
        .await?;
        self.start(
            record,
            "coredns",
            &tools.coredns,
            vec![
                "-conf".into(),
                layout.file("Corefile").display().to_string(),
            ],
        )?;
        let ready = node_record.ports.coredns_ready;
        let log = self.state.log("coredns");
        readiness::wait_until("CoreDNS", timeout, &mut self.started, &log, || async move {
            readiness::http_get(ready, "/ready").await.map(|_| ())
        })
        .await?;
        step.done(format!(
            "kube-proxy and CoreDNS ready (cluster DNS {})",
            node::CLUSTER_DNS
        ));
        Ok(())
    }

    async fn abort(&mut self) {
        let records: Vec<ProcessRecord> = self.started.iter().map(|s| s.record.clone()).collect();
        match self.state.read_record() {
            // With a node, the teardown also undoes what the node did to the machine.
            Ok(Some(record)) if record.node.is_some() => {
                let record = ClusterRecord {
                    processes: records.clone(),
                    ..record
                };
                teardown(&self.state, &record).await;
            }
            _ => {
                process::stop_all(&records, Duration::from_secs(2)).await;
            }
        }
        for started in &mut self.started {
            let _ = started.child.wait(); // reap: we are still their parent
        }
        let _ = self.state.remove();
    }
}

/// Each node component's kubeconfig, with its own client certificate.
fn write_node_kubeconfigs(
    layout: &node::NodeLayout,
    pki: &Pki,
    node: &pki::NodePki,
    server: &str,
) -> Result<(), Error> {
    for (file, user, identity) in [
        (
            "kubelet.kubeconfig",
            format!("system:node:{}", node::NODE_NAME),
            &node.kubelet_client,
        ),
        (
            "scheduler.kubeconfig",
            "system:kube-scheduler".to_string(),
            &node.scheduler,
        ),
        (
            "kube-proxy.kubeconfig",
            "system:kube-proxy".to_string(),
            &node.kube_proxy,
        ),
        (
            "coredns.kubeconfig",
            node::objects::COREDNS_USER.to_string(),
            &node.coredns,
        ),
    ] {
        let config = ClientCertConfig {
            context: "kubelab-node",
            server,
            ca_pem: &pki.ca.cert_pem,
            user: &user,
            cert_pem: &identity.cert_pem,
            key_pem: &identity.key_pem,
        };
        state::write_private(&layout.file(file), config.render().as_bytes())?;
    }
    Ok(())
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
    let node_ports = record
        .node
        .as_ref()
        .map(|n| n.ports.clone())
        .unwrap_or_default();
    let port_of = |component: &str| match component {
        "etcd" => record.ports.etcd_client,
        "kube-apiserver" => record.ports.apiserver,
        "kube-controller-manager" => record.ports.controller_manager,
        "kube-scheduler" => node_ports.scheduler,
        "kubelet" => node_ports.kubelet,
        "kube-proxy" => node_ports.kube_proxy_healthz,
        "coredns" => 53,
        _ => 0, // containerd: a unix socket
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
    let record = state.read_record()?;
    let stopped: Vec<String> = record
        .iter()
        .flat_map(|r| r.processes.iter())
        .filter(|p| p.is_running())
        .map(|p| p.component.clone())
        .collect();
    let killed = match &record {
        Some(record) => teardown(&state, record).await,
        None => Vec::new(),
    };
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

/// The local provider: etcd, kube-apiserver and kube-controller-manager (and with
/// `--node` a real node) on this machine, from the upstream binaries.
pub struct Local {
    name: String,
}

impl Local {
    pub fn new(name: &str) -> Self {
        Local {
            name: name.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl super::Provider for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn ensure(&self, options: &super::UpOptions, ui: &Ui) -> Result<super::Ensured, Error> {
        if options.kind_image.is_some() || options.kind_config.is_some() {
            return Err(Error::Usage(
                "--image and --config are for --provider kind".into(),
            ));
        }
        let state = state_for(&self.name);
        if !options.node
            && let Some(record) = state.read_record()?
            && record.phase == Phase::Ready
            && is_healthy(&state, &record).await
        {
            return Ok(super::Ensured::Reused);
        }
        let local = UpOptions {
            name: self.name.clone(),
            wait_timeout: options.wait_timeout,
            apiserver_port: options.port,
            extra_apiserver_args: options.apiserver_args.clone(),
            extra_controller_manager_args: options.controller_manager_args.clone(),
            node: options.node,
        };
        Ok(match up(&local, ui).await? {
            UpOutcome::Started(_) => super::Ensured::Started,
            UpOutcome::Reused(_) => super::Ensured::Reused,
        })
    }

    async fn connect(&self) -> Result<super::Connection, Error> {
        let state = state_for(&self.name);
        let record = state.read_record()?.ok_or_else(|| Error::NoCluster {
            name: self.name.clone(),
            dir: state.dir.clone(),
        })?;
        let config = super::kubeconfig::config(&state.kubeconfig()).await?;
        let client = super::client::from_config(config.clone()).map_err(|source| Error::Kube {
            context: format!("connecting to {}", record.server),
            source,
        })?;
        let apiserver = record
            .server
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        Ok(super::Connection {
            client,
            config,
            provider: "local",
            name: self.name.clone(),
            server: record.server.clone(),
            apiserver,
            kubectl: Some(record.kubectl.clone()),
        })
    }

    async fn teardown(&self, ui: &Ui) -> Result<(), Error> {
        match down(&self.name, ui).await? {
            DownOutcome::NothingToDo(dir) => ui.info(format!(
                "no local cluster named '{}' (nothing in {}): nothing to stop",
                self.name,
                dir.display()
            )),
            DownOutcome::Removed { killed } if !killed.is_empty() => ui.info(format!(
                "note: {} did not stop on SIGTERM and was killed",
                killed.join(", ")
            )),
            DownOutcome::Removed { .. } => {}
        }
        Ok(())
    }

    fn kubeconfig(&self) -> Result<(PathBuf, Option<String>), Error> {
        Ok((kubeconfig_path(&self.name)?, None))
    }

    async fn status(&self) -> Result<super::Status, Error> {
        let status = status(&self.name).await?;
        let mut text = format!(
            "cluster '{}': Kubernetes {}, etcd {}, apiserver {} at {}\n",
            status.name,
            status.kubernetes_version,
            status.etcd_version,
            if status.apiserver_ready {
                "ready"
            } else {
                "NOT ready"
            },
            status.server
        );
        text.push_str(&format!(
            "{:<24} {:<8} {:>8} {:>6}  LOG\n",
            "COMPONENT", "STATE", "PID", "PORT"
        ));
        for c in &status.components {
            text.push_str(&format!(
                "{:<24} {:<8} {:>8} {:>6}  {}\n",
                c.component,
                if c.running { "running" } else { "exited" },
                c.pid,
                c.port,
                c.log.display()
            ));
        }
        text.push_str(&format!("kubeconfig: {}", status.kubeconfig.display()));
        Ok(super::Status {
            ready: status.apiserver_ready,
            text,
            json: serde_json::to_value(&status).expect("status serializes"),
        })
    }
}
