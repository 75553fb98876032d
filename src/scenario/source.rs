//! Where lab files come from: a folder on disk (`--dir`), the suites compiled into
//! the binary, so an installed kubelab runs its labs from any directory, or memory.
//! Whatever the source, a file must stay inside its folder and under the size limit.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use include_dir::{Dir, include_dir};

use super::limits::{MAX_FILE_BYTES, too_large};
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
    /// Files held in memory by relative path: labs the fuzzer and tests build, without
    /// writing a folder per input.
    Memory {
        name: String,
        files: BTreeMap<String, String>,
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
            LabFolder::Memory { name, .. } => name.clone(),
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
            LabFolder::Memory { name, .. } => Path::new("<memory>").join(name).join(relative),
        }
    }

    /// A file's text. A path must stay inside the folder, also through symlinks, and the
    /// file must be at most [`MAX_FILE_BYTES`]: its size is checked before it is read.
    pub fn read(&self, relative: &str) -> Result<String, String> {
        let path = Path::new(relative);
        if path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(format!(
                "'{relative}' must be a path inside the lab's folder"
            ));
        }
        match self {
            LabFolder::Disk(dir) => read_from_disk(dir, relative),
            LabFolder::BuiltIn { dir, .. } => {
                let file = dir.get_file(dir.path().join(path)).ok_or_else(|| {
                    format!("no file {relative} in the built-in lab {}", self.name())
                })?;
                bounded(relative, file.contents().len())?;
                file.contents_utf8().map(str::to_string).ok_or_else(|| {
                    format!(
                        "{relative} in the built-in lab {} is not UTF-8",
                        self.name()
                    )
                })
            }
            LabFolder::Memory { files, .. } => {
                let text = files
                    .get(&memory_key(path))
                    .ok_or_else(|| format!("no file {relative} in the lab {}", self.name()))?;
                bounded(relative, text.len())?;
                Ok(text.clone())
            }
        }
    }

    pub fn has_lab(&self) -> bool {
        match self {
            LabFolder::Disk(dir) => dir.join(super::load::LAB_FILE).is_file(),
            LabFolder::BuiltIn { dir, .. } => dir
                .get_file(dir.path().join(super::load::LAB_FILE))
                .is_some(),
            LabFolder::Memory { files, .. } => files.contains_key(super::load::LAB_FILE),
        }
    }

    /// A lab packed into one byte string, the fuzzer's input: lab.yaml's text, then for
    /// each further file a NUL byte, its path, a newline and its text. Bytes that are not
    /// UTF-8 become U+FFFD (a file on disk that is not UTF-8 fails to read anyway).
    pub fn unpack(bytes: &[u8]) -> LabFolder {
        let mut parts = bytes.split(|b| *b == 0);
        let mut files = BTreeMap::new();
        let lab = parts.next().unwrap_or_default();
        files.insert(
            super::load::LAB_FILE.to_string(),
            String::from_utf8_lossy(lab).into_owned(),
        );
        for part in parts {
            let (name, text) = match part.iter().position(|b| *b == b'\n') {
                Some(cut) => (&part[..cut], &part[cut + 1..]),
                None => (part, &[][..]),
            };
            let name = memory_key(Path::new(&*String::from_utf8_lossy(name)));
            files
                .entry(name)
                .or_insert_with(|| String::from_utf8_lossy(text).into_owned());
        }
        LabFolder::Memory {
            name: "unpacked".to_string(),
            files,
        }
    }

    pub fn suite(&self) -> Option<&'static str> {
        match self {
            LabFolder::Disk(_) | LabFolder::Memory { .. } => None,
            LabFolder::BuiltIn { suite, .. } => Some(suite),
        }
    }
}

/// A file of a folder on disk: inside the folder once symlinks are resolved, a regular
/// file (a FIFO would block the read forever, a device never end), within the limit.
fn read_from_disk(dir: &Path, relative: &str) -> Result<String, String> {
    let full = dir.join(relative);
    let (real_dir, real_file) = (dir.canonicalize(), full.canonicalize());
    if let (Ok(real_dir), Ok(real_file)) = (&real_dir, &real_file)
        && !real_file.starts_with(real_dir)
    {
        return Err(format!(
            "'{relative}' leads outside the lab's folder through a symlink"
        ));
    }
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", full.display());
    let metadata = std::fs::metadata(&full).map_err(cannot)?;
    if !metadata.is_file() {
        return Err(format!("'{relative}' is not a regular file"));
    }
    bounded(relative, metadata.len())?;
    // The file may grow between the check and the read: read one byte past the limit.
    let mut bytes = Vec::new();
    std::fs::File::open(&full)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    bounded(relative, bytes.len())?;
    String::from_utf8(bytes).map_err(|_| {
        cannot(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

fn bounded(relative: &str, bytes: impl TryInto<u64>) -> Result<(), String> {
    let bytes = bytes.try_into().unwrap_or(u64::MAX);
    if bytes > MAX_FILE_BYTES {
        return Err(too_large(relative, bytes));
    }
    Ok(())
}

/// A path as a key of [`LabFolder::Memory`]: its components joined by `/`, so
/// `./a//b.yaml` and `a/b.yaml` are the same file, as on disk (a key with `..` can be
/// stored but never read).
fn memory_key(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect::<Vec<_>>()
        .join("/")
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
    fn an_unpacked_lab_is_a_folder_in_memory() {
        let folder = LabFolder::unpack(b"id: x\0pod.yaml\nkind: Pod\0./sub//b.json\n{}");
        assert!(folder.has_lab());
        assert_eq!(folder.read("lab.yaml").unwrap(), "id: x");
        assert_eq!(folder.read("pod.yaml").unwrap(), "kind: Pod");
        assert_eq!(folder.read("sub/b.json").unwrap(), "{}");
        assert!(
            folder
                .read("../pod.yaml")
                .unwrap_err()
                .contains("inside the lab's folder")
        );
        assert!(
            folder
                .read("/pod.yaml")
                .unwrap_err()
                .contains("inside the lab's folder")
        );
        assert_eq!(
            folder.display("pod.yaml"),
            Path::new("<memory>/unpacked/pod.yaml")
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let big = "x".repeat(MAX_FILE_BYTES as usize + 1);
        let memory = LabFolder::Memory {
            name: "big".into(),
            files: BTreeMap::from([("lab.yaml".to_string(), big.clone())]),
        };
        assert_eq!(
            memory.read("lab.yaml").unwrap_err(),
            "'lab.yaml' is 1048577 bytes, over the limit of 1048576 bytes (1 MiB) for a lab file"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.yaml"), &big).unwrap();
        let disk = LabFolder::Disk(dir.path().to_path_buf());
        assert!(
            disk.read("big.yaml")
                .unwrap_err()
                .contains("over the limit")
        );
        // A FIFO would block the read forever.
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            disk.read("fifo").unwrap_err(),
            "'fifo' is not a regular file"
        );
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
