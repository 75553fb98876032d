//! The node's footprint on this machine, made and removed: the dummy interface that
//! carries the node address, the guard that keeps pod traffic inside the machine, and
//! the teardown of everything the node leaves (bridge, network namespaces, iptables
//! chains, mounts, container shims).

use std::path::Path;
use std::process::Command;

use super::{BRIDGE, DUMMY, GUARD_CHAIN, NODE_IP, POD_CIDR};
use crate::cluster::Error;

/// Runs a command; Err(its stderr) when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn node_error(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |message| Error::Node(format!("{what}: {message}"))
}

pub fn interface_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The node address lives on an interface of its own: it exists only on this machine,
/// is not loopback (the `kubernetes` Service cannot point at 127.0.0.1), and routes
/// nowhere. A dummy interface where the kernel has them, else a bridge with no ports
/// (kernels without the dummy module, like this project's CI machines).
pub fn add_node_address() -> Result<(), Error> {
    let address = format!("{NODE_IP}/32");
    if run("ip", &["link", "add", DUMMY, "type", "dummy"]).is_err() {
        run("ip", &["link", "add", DUMMY, "type", "bridge"])
            .map_err(node_error("creating the node interface"))?;
    }
    run("ip", &["addr", "add", &address, "dev", DUMMY])
        .map_err(node_error("adding the node address"))?;
    run("ip", &["link", "set", DUMMY, "up"])
        .map_err(node_error("bringing the node interface up"))?;
    Ok(())
}

/// Drops anything the pods send that the machine would forward elsewhere: traffic to
/// the API server, DNS and other pods is delivered locally or bridged, never forwarded.
pub fn add_guard() -> Result<(), Error> {
    run("iptables", &["-w", "-N", GUARD_CHAIN]).map_err(node_error("creating the guard chain"))?;
    run(
        "iptables",
        &["-w", "-A", GUARD_CHAIN, "-s", POD_CIDR, "-j", "DROP"],
    )
    .map_err(node_error("filling the guard chain"))?;
    run("iptables", &["-w", "-I", "FORWARD", "1", "-j", GUARD_CHAIN])
        .map_err(node_error("hooking the guard chain"))?;
    Ok(())
}

/// iptables chains of one table whose names start with one of `prefixes`.
pub fn chains(table: &str, prefixes: &[&str]) -> Vec<String> {
    run("iptables-save", &["-t", table])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| prefixes.iter().any(|p| name.starts_with(p)))
        .map(str::to_string)
        .collect()
}

/// Removes the rules that jump to `chain` from the built-in chains, then the chain.
fn remove_chain(table: &str, chain: &str) {
    let rules = run("iptables-save", &["-t", table]).unwrap_or_default();
    for rule in rules
        .lines()
        .filter(|l| l.starts_with("-A ") && l.contains(&format!("-j {chain}")))
    {
        let words: Vec<&str> = rule.split_whitespace().collect();
        let mut args = vec!["-w", "-t", table, "-D"];
        args.extend(&words[1..]);
        let _ = run("iptables", &args);
    }
    let _ = run("iptables", &["-w", "-t", table, "-F", chain]);
    let _ = run("iptables", &["-w", "-t", table, "-X", chain]);
}

/// The chains the node leaves: kubelab's guard, kube-proxy's KUBE-*, the CNI plugins'.
pub const CHAIN_PREFIXES: &[&str] = &["KUBE-", "CNI-", "KUBELAB-"];

pub fn remove_chains() {
    for table in ["filter", "nat", "mangle"] {
        // Flush all first (rules of one chain may jump to another), then delete.
        let found = chains(table, CHAIN_PREFIXES);
        for chain in &found {
            let _ = run("iptables", &["-w", "-t", table, "-F", chain]);
        }
        for chain in &found {
            remove_chain(table, chain);
        }
    }
}

/// Removes the cgroups kubelet made (`kubepods` in every hierarchy), deepest first:
/// cgroup directories go with rmdir, once no process is left in them.
pub fn remove_cgroups() {
    let mut dirs = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        collect_dirs(&hierarchy.path().join("kubepods"), &mut dirs);
    }
    collect_dirs(Path::new("/sys/fs/cgroup/kubepods.slice"), &mut dirs);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        let _ = std::fs::remove_dir(&dir);
    }
}

fn collect_dirs(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    found.push(dir.to_path_buf());
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&entry.path(), found);
        }
    }
}

pub fn remove_interfaces() {
    for name in [BRIDGE, DUMMY] {
        if interface_exists(name) {
            let _ = run("ip", &["link", "delete", name]);
        }
    }
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let mut found: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(unescape_mount_path)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.len()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(path: &str) -> String {
    path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub fn unmount_all_under(dir: &Path) {
    for mount in mounts_under(dir) {
        let target = std::ffi::CString::new(mount).expect("no NUL in a mount path");
        detach(&target);
    }
}

/// A lazy unmount: a busy mount is detached now and freed when its last user goes.
fn detach(target: &std::ffi::CStr) {
    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
}

/// Network namespaces in /var/run/netns.
pub fn netns_names() -> Vec<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes network namespaces the node created (those not in `before`).
pub fn remove_netns_except(before: &[String]) {
    for name in netns_names() {
        if !before.contains(&name) && name.starts_with("cni-") {
            let path = Path::new("/var/run/netns").join(&name);
            let target = std::ffi::CString::new(path.display().to_string()).expect("no NUL");
            detach(&target);
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Processes whose command line contains `needle` (container shims of our containerd
/// carry its socket path), with their pids.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .contains(needle)
        {
            found.push(pid);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
    }

    #[test]
    fn our_own_mounts_are_found_by_prefix() {
        // / is always mounted; nothing is mounted at a fresh temporary path.
        assert!(!mounts_under(Path::new("/")).is_empty());
        let dir = tempfile::tempdir().unwrap();
        assert!(mounts_under(dir.path()).is_empty());
    }
}
