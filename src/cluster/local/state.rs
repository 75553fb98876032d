//! The state directory of one local cluster: PKI, kubeconfigs, logs, etcd data and
//! cluster.json (what runs, on which ports, under which pids). `down` and `status` find
//! the cluster again through it after `up` has exited.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::process::ProcessRecord;
use crate::cluster::{Error, IoContext};

/// Root of all local clusters: KUBELAB_STATE_DIR, else $XDG_STATE_HOME/kubelab, else
/// ~/.local/state/kubelab.
pub fn state_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBELAB_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".local/state"));
    base.join("kubelab")
}

#[derive(Clone, Debug)]
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path, name: &str) -> Self {
        StateDir {
            dir: root.join(name),
        }
    }

    pub fn record_file(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    pub fn controller_manager_kubeconfig(&self) -> PathBuf {
        self.dir.join("controller-manager.kubeconfig")
    }
    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }
    pub fn etcd_data(&self) -> PathBuf {
        self.dir.join("etcd")
    }
    pub fn log(&self, component: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{component}.log"))
    }
    /// The components' TMPDIR: what one of them leaves there when it is killed mid-write
    /// (the kubelet's mount probe, for one) goes with the cluster.
    pub fn scratch(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub fn exists(&self) -> bool {
        self.dir.exists()
    }

    /// Creates the directory tree, private to the user (it holds keys).
    pub fn create(&self) -> Result<(), Error> {
        for dir in [
            self.dir.clone(),
            self.pki(),
            self.dir.join("logs"),
            self.scratch(),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .context(|| format!("creating {}", dir.display()))?;
        }
        Ok(())
    }

    pub fn remove(&self) -> Result<(), Error> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context(|| format!("removing {}", self.dir.display()))
            }
            _ => Ok(()),
        }
    }

    pub fn read_record(&self) -> Result<Option<ClusterRecord>, Error> {
        let path = self.record_file();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::BadState {
                path,
                message: e.to_string(),
            })
    }

    /// Replaces cluster.json atomically, so a reader never sees half a record.
    pub fn write_record(&self, record: &ClusterRecord) -> Result<(), Error> {
        let json = serde_json::to_string_pretty(record).expect("record serializes");
        write_private(&self.record_file(), json.as_bytes())
    }
}

/// Writes a file readable only by its owner, through a temporary name and a rename.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .context(|| format!("writing {}", tmp.display()))?;
    file.write_all(contents)
        .and_then(|_| file.sync_all())
        .context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).context(|| format!("writing {}", path.display()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `up` is still bringing the cluster up (or died while doing so).
    Starting,
    Ready,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ports {
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub apiserver: u16,
    pub controller_manager: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    pub phase: Phase,
    pub kubernetes_version: String,
    pub etcd_version: String,
    pub server: String,
    pub ports: Ports,
    pub processes: Vec<ProcessRecord>,
    pub kubectl: PathBuf,
    /// The local node, when the cluster has one (`cluster up --node`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<super::node::NodeRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_owner_only_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_private(&path, b"first").unwrap();
        write_private(&path, b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn a_corrupt_record_names_its_file() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::new(root.path(), "c1");
        state.create().unwrap();
        fs::write(state.record_file(), "{not json").unwrap();
        let err = state.read_record().unwrap_err().to_string();
        assert!(err.contains("cluster.json"), "{err}");
    }

    #[test]
    fn the_state_tree_is_private() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::new(root.path(), "c1");
        state.create().unwrap();
        let mode = fs::metadata(state.pki()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
