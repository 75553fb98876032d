//! A student's progress through hands-on labs: which lab is current, where it runs,
//! hints shown, checks made, points, time spent. One JSON file in the state directory
//! (0600), written whole and renamed into place, so it survives restarts and a crash
//! never leaves half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cluster::Choice;

pub const FILE: &str = "progress.json";

/// Which cluster a lab was started on, so later commands reach the same one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRef {
    /// local, kind or kubeconfig.
    pub provider: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The API server's URL when the lab was started.
    pub server: String,
    /// The uid of its kube-system namespace: a cluster made again under the same
    /// name and address is another cluster.
    pub uid: String,
}

impl ClusterRef {
    /// The cluster `connection` reached; `kubeconfig` is the file its provider uses.
    pub fn of(
        connection: &crate::cluster::Connection,
        kubeconfig: Option<PathBuf>,
        uid: String,
    ) -> Self {
        let from_kubeconfig = connection.provider == "kubeconfig";
        ClusterRef {
            provider: connection.provider.to_string(),
            name: connection.name.clone(),
            kubeconfig: kubeconfig.filter(|_| from_kubeconfig),
            context: from_kubeconfig.then(|| connection.name.clone()),
            server: connection.server.clone(),
            uid,
        }
    }

    /// "the local cluster 'kubelab'", "context staging of ~/.kube/config".
    pub fn describe(&self) -> String {
        match self.provider.as_str() {
            "kubeconfig" => format!(
                "context {} ({})",
                self.context.as_deref().unwrap_or(&self.name),
                self.server
            ),
            provider => format!("the {provider} cluster '{}' ({})", self.name, self.server),
        }
    }

    pub fn choice(&self) -> Choice {
        let kind = match self.provider.as_str() {
            "kind" => crate::cli::Provider::Kind,
            "kubeconfig" => crate::cli::Provider::Kubeconfig,
            _ => crate::cli::Provider::Local,
        };
        Choice {
            kind,
            name: self.name.clone(),
            named: false,
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            // Consent was given when the lab was started.
            yes: true,
            kubeconfig_env: false,
        }
    }
}

/// One lab's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabProgress {
    pub id: String,
    /// The lab's folder name, e.g. 02-custom-serviceaccount.
    pub folder: String,
    pub title: String,
    /// The built-in suite it comes from, or the folder of labs on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    pub cluster: ClusterRef,
    /// The run id the lab's own objects are labelled with (kubelab.dev/run).
    pub run_id: String,
    /// When `start` (or `reset`) last set the lab up, in seconds since the epoch.
    pub started_at: u64,
    pub hints_shown: usize,
    pub checks_made: usize,
    /// Points of the last check, of the best one, and the most there are.
    pub points: u32,
    pub best_points: u32,
    pub max_points: u32,
    /// Solved: a check passed every check.
    pub solved: bool,
    /// Solved after `solution --apply`: the student did not do it alone.
    pub solved_with_solution: bool,
    /// Seconds from the first start to the first full pass (or to the last check).
    pub seconds_spent: u64,
    #[serde(default)]
    pub first_started_at: u64,
    /// The lab's namespaces (what `reset` of another lab must leave alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Image replacements given to `start` (old → new), used again by `reset` and
    /// `solution --apply`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    /// A class's student does their own copy of the lab (namespaces ending in
    /// -LAB-STUDENT): the student's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The key of the lab `check`, `hint`, ... mean when no lab is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    pub labs: BTreeMap<String, LabProgress>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("progress file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("progress file {}: {message}; move it away to start afresh", path.display())]
    Corrupt { path: PathBuf, message: String },
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Progress {
    pub fn path() -> PathBuf {
        crate::cluster::local::state_root().join(FILE)
    }

    pub fn load() -> Result<Progress, Error> {
        Self::load_from(Self::path())
    }

    /// Changes the file under an exclusive lock: reads it as it is now (another
    /// command may have changed it since this one started), applies `change`, writes
    /// it whole. Returns the progress written and what `change` returned.
    pub fn update<T>(change: impl FnOnce(&mut Progress) -> T) -> Result<(Progress, T), Error> {
        Self::update_at(Self::path(), change)
    }

    fn update_at<T>(
        path: PathBuf,
        change: impl FnOnce(&mut Progress) -> T,
    ) -> Result<(Progress, T), Error> {
        let _lock = lock(&path)?;
        let mut progress = Self::load_from(path.clone())?;
        let result = change(&mut progress);
        progress.save_to(path)?;
        Ok((progress, result))
    }

    fn load_from(path: PathBuf) -> Result<Progress, Error> {
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::Corrupt {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    fn save_to(&self, path: PathBuf) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let dir = path.parent().expect("a file in the state directory");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let partial = dir.join(format!(".{FILE}.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io)?;
        let text = serde_json::to_string_pretty(self).expect("progress serializes");
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&partial, &path).map_err(io)
    }

    /// The labs set up on the cluster whose kube-system namespace has `uid` (but
    /// `except`): their objects are the students' work.
    pub fn set_up_on(&self, uid: &str, except: Option<&str>) -> Vec<InProgress> {
        self.labs
            .iter()
            .filter(|(key, lab)| {
                lab.cluster.uid == uid && lab.is_set_up() && Some(key.as_str()) != except
            })
            .map(|(key, lab)| InProgress {
                key: key.clone(),
                run_id: lab.run_id.clone(),
                started_at: lab.started_at,
                namespaces: lab.namespaces.clone(),
            })
            .collect()
    }

    /// The key a lab is known by: `seed/02`, or `<folder>#<id>` for labs on disk.
    pub fn key(suite: Option<&str>, dir: Option<&std::path::Path>, id: &str) -> String {
        match (suite, dir) {
            (Some(suite), _) => format!("{suite}/{id}"),
            (None, Some(dir)) => format!("{}#{id}", dir.display()),
            (None, None) => id.to_string(),
        }
    }
}

/// A lab set up on a cluster, as other commands must respect it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InProgress {
    pub key: String,
    pub run_id: String,
    pub started_at: u64,
    pub namespaces: Vec<String>,
}

/// An exclusive lock on the progress file for as long as it lives.
fn lock(path: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, Error> {
    let lock_path = path.with_extension("json.lock");
    let io = |source| Error::Io {
        path: lock_path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io(std::io::Error::from(errno)))
}

impl LabProgress {
    /// Whether its starting state is on its cluster (a reset that did not finish, or
    /// `stop`, leaves it not set up).
    pub fn is_set_up(&self) -> bool {
        !self.run_id.is_empty()
    }

    /// Records a check's result: points, and the first full pass.
    pub fn record_check(&mut self, points: u32, max: u32, at: u64) {
        self.checks_made += 1;
        self.points = points;
        self.max_points = max;
        self.best_points = self.best_points.max(points);
        if !self.solved {
            self.seconds_spent = at.saturating_sub(self.first_started_at);
            if points == max {
                self.solved = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_survives_a_save_and_a_load_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(FILE);
        let mut progress = Progress::load_from(path.clone()).unwrap();
        assert!(progress.labs.is_empty());
        let mut lab = LabProgress {
            id: "02".into(),
            first_started_at: 100,
            ..Default::default()
        };
        lab.record_check(2, 5, 160);
        assert!(!lab.solved);
        lab.record_check(5, 5, 220);
        assert!(lab.solved);
        assert_eq!(lab.seconds_spent, 120);
        lab.record_check(3, 5, 400);
        assert_eq!(
            (lab.best_points, lab.seconds_spent),
            (5, 120),
            "solved once is solved"
        );
        progress.current = Some(Progress::key(Some("seed"), None, "02"));
        progress.labs.insert("seed/02".into(), lab.clone());
        progress.save_to(path.clone()).unwrap();
        assert_eq!(Progress::load_from(path.clone()).unwrap(), progress);
        // An update reads the file as it is now: what another command wrote stays.
        let (written, ()) = Progress::update_at(path.clone(), |p| {
            p.labs.insert("seed/03".into(), lab.clone());
        })
        .unwrap();
        let (_, hints) = Progress::update_at(path.clone(), |p| {
            let entry = p.labs.get_mut("seed/02").unwrap();
            entry.hints_shown += 1;
            entry.hints_shown
        })
        .unwrap();
        assert_eq!(hints, 1);
        let now = Progress::load_from(path.clone()).unwrap();
        assert!(now.labs.contains_key("seed/03"), "{written:?}");
        assert_eq!(now.labs["seed/02"].hints_shown, 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            Progress::load_from(path),
            Err(Error::Corrupt { .. })
        ));
    }
}
