//! The closest honest stand-in for a container on a cluster without a node: a private
//! mount and UTS namespace (util-linux `unshare`, root only) where the pod's volumes
//! sit at their in-pod paths, `hostname` is the pod's name, `curl` reaches
//! `https://kubernetes.default.svc` (a wrapper adds `--connect-to`), and in-cluster
//! kubectl finds the API server through KUBERNETES_SERVICE_HOST/PORT. What differs from
//! a real pod: the filesystem, users and network are the host's.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::Error;
use super::access::Output;
use super::command::shell_quote;
use super::host::PodFiles;

pub struct Sandbox<'a> {
    pub files: &'a PodFiles,
    pub hostname: &'a str,
    /// host:port of the API server.
    pub apiserver: &'a str,
    pub curl: &'a Path,
}

/// What differs from a real pod, said wherever the sandbox is used.
pub const DIFFERENCES: &str = "a private mount namespace on the host, not a container: the pod's volumes are at their in-pod paths and `hostname` is the pod's name, but the filesystem, users and network are the host's; `curl` is a wrapper that sends kubernetes.default.svc to the API server";

/// `unshare`, when the sandbox can be made here.
pub fn unshare() -> Result<PathBuf, Error> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Unsupported(
            "commands for a pod no node runs need a private mount namespace, which needs root; run with a node (kubelab cluster up --node) or as root".into(),
        ));
    }
    crate::system::on_path("unshare").ok_or_else(|| {
        Error::Unsupported(
            "`unshare` (util-linux) is not installed: apt-get install util-linux".into(),
        )
    })
}

/// Where a container path is inside the sandbox: /var/run is /run on this host.
fn in_sandbox(path: &str) -> String {
    match path.strip_prefix("/var/run") {
        Some(rest) => format!("/run{rest}"),
        None => path.to_string(),
    }
}

impl Sandbox<'_> {
    /// The setup script: mounts, wrappers, hostname; then `exec "$@"`.
    fn setup(&self) -> Result<String, Error> {
        let (host, port) = self.apiserver.rsplit_once(':').ok_or_else(|| {
            Error::Host(format!("API server address {} has no port", self.apiserver))
        })?;
        let mut lines = vec![
            "set -e".to_string(),
            "mount -t tmpfs -o mode=0755,size=16m kubelab-pod /run".to_string(),
            "mkdir -p /run/kubelab/bin".to_string(),
        ];
        for mount in &self.files.mounts {
            let source = self.files.host_path(mount)?;
            if source.starts_with("/run") || source.starts_with("/var/run") {
                return Err(Error::Host(format!(
                    "the pod's files are in {}, under /run, which the sandbox hides: set TMPDIR elsewhere",
                    source.display()
                )));
            }
            let target = in_sandbox(mount);
            if !target.starts_with("/run/") && !Path::new(&target).is_dir() {
                return Err(Error::Unsupported(format!(
                    "the pod mounts a volume at {mount}, which does not exist on this host; the stand-in can place volumes under /var/run or on existing directories"
                )));
            }
            lines.push(format!("mkdir -p {}", shell_quote(&target)));
            lines.push(format!(
                "mount --bind {} {}",
                shell_quote(&source.display().to_string()),
                shell_quote(&target)
            ));
        }
        lines.push(format!(
            "printf '#!/bin/sh\\nexec %s --connect-to kubernetes.default.svc:443:%s \"$@\"\\n' {} {} > /run/kubelab/bin/curl",
            shell_quote(&self.curl.display().to_string()),
            shell_quote(self.apiserver)
        ));
        lines.push("chmod 755 /run/kubelab/bin/curl".into());
        lines.push(format!("hostname {}", shell_quote(self.hostname)));
        lines.push(format!(
            "export PATH=/run/kubelab/bin:$PATH HOSTNAME={} KUBERNETES_SERVICE_HOST={} KUBERNETES_SERVICE_PORT={}",
            shell_quote(self.hostname),
            shell_quote(host.trim_start_matches('[').trim_end_matches(']')),
            shell_quote(port)
        ));
        lines.push("cd /".into());
        lines.push("exec \"$@\"".into());
        Ok(lines.join("\n"))
    }

    /// The command that runs `argv` in the sandbox (the caller sets its stdio).
    pub fn command(&self, argv: &[String]) -> Result<tokio::process::Command, Error> {
        let unshare = unshare()?;
        let mut command = tokio::process::Command::new(unshare);
        command
            .args(["--mount", "--uts", "--propagation", "private", "sh", "-c"])
            .arg(self.setup()?)
            .arg("kubelab-pod")
            .args(argv)
            .env("HOME", "/root")
            .kill_on_drop(true);
        Ok(command)
    }
}

/// Runs `argv` in the sandbox and collects its output.
pub async fn run(sandbox: &Sandbox<'_>, argv: &[String]) -> Result<Output, Error> {
    let output = sandbox
        .command(argv)?
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::Host(format!("running {argv:?} in the pod's stand-in: {e}")))?;
    Ok(Output {
        exit_code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_run_is_run_in_the_sandbox() {
        assert_eq!(
            in_sandbox("/var/run/secrets/kubernetes.io/serviceaccount"),
            "/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(in_sandbox("/etc/podinfo"), "/etc/podinfo");
    }
}
