//! Finds the upstream binaries: KUBELAB_ASSETS (only that directory), else
//! KUBEBUILDER_ASSETS (setup-envtest's layout, which has no kube-controller-manager, so
//! the build cache fills the gap), else the cache `kubelab setup` writes.

use std::path::PathBuf;

use super::super::Error;
use crate::versions;

/// The binaries a local control plane needs.
pub const CONTROL_PLANE: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
];

#[derive(Clone, Debug)]
pub struct Assets {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kubectl: PathBuf,
}

/// Where to look, in order, and whether the first entry is an explicit choice that must
/// hold everything by itself.
#[derive(Debug, PartialEq)]
pub struct SearchPath {
    pub dirs: Vec<(PathBuf, &'static str)>,
}

impl SearchPath {
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::var_os("KUBELAB_ASSETS").map(PathBuf::from),
            std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from),
            cache_bin_dir(),
        )
    }

    fn from_vars(kubelab: Option<PathBuf>, kubebuilder: Option<PathBuf>, cache: PathBuf) -> Self {
        let nonempty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let dirs = match (nonempty(kubelab), nonempty(kubebuilder)) {
            (Some(dir), _) => vec![(dir, "KUBELAB_ASSETS")],
            (None, Some(dir)) => vec![(dir, "KUBEBUILDER_ASSETS"), (cache, "the build cache")],
            (None, None) => vec![(cache, "the build cache")],
        };
        SearchPath { dirs }
    }

    fn find(&self, name: &str) -> Option<PathBuf> {
        self.dirs
            .iter()
            .map(|(dir, _)| dir.join(name))
            .find(|path| crate::system::is_executable(path))
    }

    pub fn resolve(&self) -> Result<Assets, Error> {
        let missing: Vec<&str> = CONTROL_PLANE
            .iter()
            .copied()
            .filter(|name| self.find(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingBinaries {
                missing: missing.iter().map(|s| s.to_string()).collect(),
                searched: self
                    .dirs
                    .iter()
                    .map(|(dir, why)| format!("{} ({why})", dir.display()))
                    .collect(),
                hint: build_hint(
                    self.dirs[0].1 == "KUBELAB_ASSETS",
                    crate::system::on_path("go").is_some(),
                ),
            });
        }
        let get = |name: &str| self.find(name).expect("checked above");
        Ok(Assets {
            etcd: get("etcd"),
            kube_apiserver: get("kube-apiserver"),
            kube_controller_manager: get("kube-controller-manager"),
            kubectl: get("kubectl"),
        })
    }
}

fn cache_root() -> PathBuf {
    std::env::var_os("KUBELAB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("kubelab")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kubelab")))
        .unwrap_or_else(|| PathBuf::from(".cache/kubelab"))
}

/// ~/.cache/kubelab/images/<kubernetes version>, as `kubelab setup --node` writes it.
pub fn images_dir() -> PathBuf {
    cache_root().join("images").join(versions::KUBERNETES)
}

/// Where the node binaries are: KUBELAB_ASSETS when set, else the build cache.
pub fn node_bin_dir() -> PathBuf {
    std::env::var_os("KUBELAB_ASSETS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(cache_bin_dir)
}

/// ~/.cache/kubelab/bin/<kubernetes version>, as `kubelab setup` writes it.
pub fn cache_bin_dir() -> PathBuf {
    cache_root().join("bin").join(versions::KUBERNETES)
}

fn build_hint(explicit: bool, have_go: bool) -> String {
    let set = format!(
        "set KUBELAB_ASSETS to a directory holding {} built for Kubernetes {}",
        CONTROL_PLANE.join(", "),
        versions::KUBERNETES
    );
    match (explicit, have_go) {
        (true, _) => {
            format!("KUBELAB_ASSETS names the only directory searched: {set}, or unset it")
        }
        (false, true) => {
            format!("build them once (10-30 min, cached afterwards): run `kubelab setup`; or {set}")
        }
        (false, false) => format!(
            "Go is not installed, so they cannot be built here: install Go >= 1.25 (https://go.dev/dl/) and run `kubelab setup`; or {set}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelab_assets_is_the_only_place_searched() {
        let path = SearchPath::from_vars(Some("/a".into()), Some("/b".into()), "/c".into());
        assert_eq!(path.dirs, vec![(PathBuf::from("/a"), "KUBELAB_ASSETS")]);
    }

    #[test]
    fn kubebuilder_assets_falls_back_to_the_cache_for_the_controller_manager() {
        let path = SearchPath::from_vars(None, Some("/b".into()), "/c".into());
        let dirs: Vec<_> = path.dirs.iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(dirs, vec![PathBuf::from("/b"), PathBuf::from("/c")]);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let path = SearchPath::from_vars(Some("".into()), None, "/c".into());
        assert_eq!(path.dirs, vec![(PathBuf::from("/c"), "the build cache")]);
    }

    #[test]
    fn a_directory_without_binaries_names_each_missing_one() {
        let empty = tempfile::tempdir().unwrap();
        let path = SearchPath::from_vars(Some(empty.path().into()), None, "/c".into());
        let Err(Error::MissingBinaries { missing, .. }) = path.resolve() else {
            panic!("an empty directory must not resolve");
        };
        assert_eq!(missing, CONTROL_PLANE);
    }

    #[test]
    fn a_non_executable_file_is_not_a_binary() {
        let dir = tempfile::tempdir().unwrap();
        for name in CONTROL_PLANE {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert!(
            SearchPath::from_vars(Some(dir.path().into()), None, "/c".into())
                .resolve()
                .is_err()
        );
    }
}
