//! Where lab files come from: a folder on disk (`--dir`), or the suites compiled into
//! the binary, so an installed kubelab runs its labs from any directory.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

use super::problem::Error;

static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");

/// The built-in suites; the first is the default.
pub const SUITES: &[&str] = &["seed", "conformance"];

/// The files of one lab folder.
#[derive(Clone, Debug)]
pub enum LabFolder {
    Disk(PathBuf),
    BuiltIn {
        suite: &'static str,
        dir: &'static Dir<'static>,
    },
}

impl LabFolder {
    /// The folder's name, e.g. 02-custom-serviceaccount.
    pub fn name(&self) -> String {
        match self {
            LabFolder::Disk(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            LabFolder::BuiltIn { dir, .. } => dir
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// How a file of this folder is named in messages: its path on disk, or
    /// `<built-in>/seed/02-.../lab.yaml`.
    pub fn display(&self, relative: &str) -> PathBuf {
        match self {
            LabFolder::Disk(dir) => dir.join(relative),
            LabFolder::BuiltIn { dir, .. } => {
                Path::new("<built-in>").join(dir.path()).join(relative)
            }
        }
    }

    /// A file's text. A path must stay inside the folder, also through symlinks.
    pub fn read(&self, relative: &str) -> Result<String, String> {
        let path = Path::new(relative);
        if path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "'{relative}' must be a path inside the lab's folder"
            ));
        }
        match self {
            LabFolder::Disk(dir) => {
                let full = dir.join(path);
                let (real_dir, real_file) = (dir.canonicalize(), full.canonicalize());
                if let (Ok(real_dir), Ok(real_file)) = (&real_dir, &real_file)
                    && !real_file.starts_with(real_dir)
                {
                    return Err(format!(
                        "'{relative}' leads outside the lab's folder through a symlink"
                    ));
                }
                std::fs::read_to_string(&full)
                    .map_err(|e| format!("cannot read {}: {e}", full.display()))
            }
            LabFolder::BuiltIn { dir, .. } => dir
                .get_file(dir.path().join(path))
                .and_then(|f| f.contents_utf8())
                .map(str::to_string)
                .ok_or_else(|| format!("no file {relative} in the built-in lab {}", self.name())),
        }
    }

    pub fn has_lab(&self) -> bool {
        match self {
            LabFolder::Disk(dir) => dir.join(super::load::LAB_FILE).is_file(),
            LabFolder::BuiltIn { dir, .. } => dir
                .get_file(dir.path().join(super::load::LAB_FILE))
                .is_some(),
        }
    }

    pub fn suite(&self) -> Option<&'static str> {
        match self {
            LabFolder::Disk(_) => None,
            LabFolder::BuiltIn { suite, .. } => Some(suite),
        }
    }
}

/// The lab folders of a built-in suite, in name order.
pub fn built_in(suite: &str) -> Result<Vec<LabFolder>, Error> {
    let Some(&name) = SUITES.iter().find(|s| **s == suite) else {
        return Err(Error::NoSuchSuite {
            wanted: suite.to_string(),
            available: SUITES.iter().map(|s| s.to_string()).collect(),
        });
    };
    let dir = BUILT_IN
        .get_dir(name)
        .expect("every suite in SUITES is a folder of scenarios/");
    let mut folders: Vec<LabFolder> = dir
        .dirs()
        .map(|d| LabFolder::BuiltIn {
            suite: name,
            dir: d,
        })
        .filter(LabFolder::has_lab)
        .collect();
    folders.sort_by_key(LabFolder::name);
    Ok(folders)
}

/// Lab folders on disk: `dir` itself when it holds a lab.yaml, else its sub-folders that
/// do, in name order.
pub fn on_disk(dir: &Path) -> Result<Vec<LabFolder>, Error> {
    if dir.join(super::load::LAB_FILE).is_file() {
        return Ok(vec![LabFolder::Disk(dir.to_path_buf())]);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut folders: Vec<LabFolder> = entries
        .flatten()
        .map(|e| LabFolder::Disk(e.path()))
        .filter(LabFolder::has_lab)
        .collect();
    folders.sort_by_key(LabFolder::name);
    if folders.is_empty() {
        return Err(Error::NoLabs(dir.to_path_buf()));
    }
    Ok(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_suites_are_compiled_in() {
        let seed = built_in("seed").unwrap();
        assert_eq!(seed.len(), 12);
        assert_eq!(seed[0].name(), "01-default-serviceaccount");
        assert!(seed[0].read("lab.yaml").unwrap().contains("id: \"01\""));
        assert!(
            seed[0]
                .read("../02-custom-serviceaccount/lab.yaml")
                .is_err()
        );
        assert!(!built_in("conformance").unwrap().is_empty());
        assert!(matches!(built_in("nope"), Err(Error::NoSuchSuite { .. })));
    }

    #[test]
    fn a_symlink_out_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().join("lab");
        std::fs::create_dir(&lab).unwrap();
        std::fs::write(dir.path().join("secret.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("../secret.yaml", lab.join("m.yaml")).unwrap();
        let err = LabFolder::Disk(lab).read("m.yaml").unwrap_err();
        assert!(err.contains("through a symlink"), "{err}");
    }
}
