//! Everything a node needs, checked before anything starts (exit code 3 with what is
//! missing and how to get it): root on Linux, the cgroup controllers, a working
//! iptables nat table, the Debian packages, the node binaries and images, and a free
//! node address.

use std::path::{Path, PathBuf};

use super::host::{self, interface_exists};
use super::{BRIDGE, DUMMY, NODE_IP};
use crate::cluster::Error;
use crate::system::{is_executable, on_path};

pub struct NodeTools {
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    pub kubelet: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kube_proxy: PathBuf,
    pub coredns: PathBuf,
    /// (archive, image reference) of the locally built images.
    pub images: Vec<(PathBuf, String)>,
    pub pause_image: String,
}

fn fail(message: String) -> Error {
    Error::Node(message)
}

/// Enabled cgroup controllers: cgroup v1 from /proc/cgroups, v2 from the root's
/// cgroup.controllers.
fn cgroup_controllers() -> Vec<String> {
    if let Ok(v2) = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers") {
        return v2.split_whitespace().map(str::to_string).collect();
    }
    std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.len() >= 4 && fields[3] == "1").then(|| fields[0].to_string())
        })
        .collect()
}

pub fn check(bin_dir: &Path, images_dir: &Path) -> Result<NodeTools, Error> {
    if !cfg!(target_os = "linux") {
        return Err(fail(
            "a local node needs Linux (kubelet, containerd and runc run only there)".into(),
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(fail("a local node needs root: it runs containerd and kubelet, and makes network interfaces and iptables rules; run as root (e.g. with sudo)".into()));
    }
    let controllers = cgroup_controllers();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let needed: &[&str] = if v2 {
        &["cpu", "cpuset", "memory", "pids"]
    } else {
        &["cpu", "cpuacct", "cpuset", "memory", "pids"]
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| !controllers.iter().any(|have| have == c))
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "the cgroup controllers {} are not enabled (kubelet needs them)",
            missing.join(", ")
        )));
    }
    let programs = [
        ("containerd", "containerd"),
        ("ctr", "containerd"),
        ("runc", "runc"),
        ("iptables", "iptables"),
        ("iptables-save", "iptables"),
        ("ip", "iproute2"),
        ("conntrack", "conntrack"),
    ];
    let mut missing_packages: Vec<&str> = programs
        .iter()
        .filter(|(p, _)| on_path(p).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    for plugin in ["bridge", "host-local", "portmap", "loopback"] {
        if !is_executable(&Path::new("/usr/lib/cni").join(plugin))
            && !missing_packages.contains(&"containernetworking-plugins")
        {
            missing_packages.push("containernetworking-plugins");
        }
    }
    missing_packages.dedup();
    if !missing_packages.is_empty() {
        return Err(fail(format!(
            "missing programs of the Debian packages: apt-get install {}",
            missing_packages.join(" ")
        )));
    }
    host::run("iptables", &["-w", "-t", "nat", "-L", "-n"]).map_err(|e| {
        fail(format!(
            "the iptables nat table is not usable (kube-proxy needs it): {e}"
        ))
    })?;
    let binary = |name: &str| -> Result<PathBuf, Error> {
        let path = bin_dir.join(name);
        if is_executable(&path) {
            Ok(path)
        } else {
            Err(fail(format!(
                "{name} is missing from {}: run `kubelab setup --node`",
                bin_dir.display()
            )))
        }
    };
    let (kubelet, kube_scheduler, kube_proxy, coredns) = (
        binary("kubelet")?,
        binary("kube-scheduler")?,
        binary("kube-proxy")?,
        binary("coredns")?,
    );
    let list = std::fs::read_to_string(images_dir.join("images.list")).map_err(|_| {
        fail(format!(
            "no node images in {}: run `kubelab setup --node`",
            images_dir.display()
        ))
    })?;
    let images: Vec<(PathBuf, String)> = list
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(archive, name)| (images_dir.join(archive), name.trim().to_string()))
        .collect();
    if let Some((archive, _)) = images.iter().find(|(archive, _)| !archive.is_file()) {
        return Err(fail(format!(
            "{} is missing: run `kubelab setup --node`",
            archive.display()
        )));
    }
    let pause_image = images
        .iter()
        .find(|(archive, _)| archive.ends_with("pause.tar"))
        .map(|(_, name)| name.clone())
        .ok_or_else(|| fail("no pause image in images.list: run `kubelab setup --node`".into()))?;
    for name in [DUMMY, BRIDGE] {
        if interface_exists(name) {
            return Err(fail(format!(
                "the interface {name} exists: another local node runs, or one was not taken down (`kubelab cluster down`, or `ip link delete {name}`)"
            )));
        }
    }
    let addresses = host::run("ip", &["-o", "addr", "show"]).unwrap_or_default();
    if addresses.contains(&format!(" {NODE_IP}/")) {
        return Err(fail(format!(
            "the node address {NODE_IP} is already in use on this machine"
        )));
    }
    Ok(NodeTools {
        containerd: on_path("containerd").expect("checked"),
        ctr: on_path("ctr").expect("checked"),
        kubelet,
        kube_scheduler,
        kube_proxy,
        coredns,
        images,
        pause_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machines_cgroup_controllers_are_read() {
        let controllers = cgroup_controllers();
        assert!(controllers.iter().any(|c| c == "memory"), "{controllers:?}");
    }
}
