//! `kubelab setup`: builds the pinned upstream binaries into the cache (and the local
//! node's images when asked) from the recipe compiled into kubelab, so an installed
//! kubelab sets itself up anywhere Go is. What is cached, or given through
//! KUBELAB_ASSETS or an envtest directory (KUBEBUILDER_ASSETS), is not built again.

pub mod go_build;
pub mod recipe;

use std::path::{Path, PathBuf};

use crate::cluster::local::{cache_bin_dir, images_dir};
use crate::ui::Ui;
use recipe::{Component, RECIPE};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Go is not installed, so {missing} cannot be built here: install Go >= 1.25 (https://go.dev/dl/) and run `kubelab setup` again, or set KUBELAB_ASSETS to a directory holding them, built for Kubernetes {version}"
    )]
    NoGo {
        missing: String,
        version: &'static str,
    },
    #[error("unknown component '{given}': choose from {known}, or all, node, harnesses")]
    UnknownComponent { given: String, known: String },
    #[error("building {component} failed; `{command}` said:\n{tail}")]
    Go {
        component: String,
        command: String,
        tail: String,
    },
    #[error("could not run {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(
        "building the node's images failed (the embedded controlplane/images.sh, {status}):\n{tail}"
    )]
    Images { status: String, tail: String },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// What to set up.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Components by name, or the groups all, node, harnesses; none: the control plane.
    pub components: Vec<String>,
    /// The local node too: its binaries and its images.
    pub node: bool,
    /// The node's images (implied by `node`).
    pub images: bool,
}

/// The component names a request stands for, in build order, without repeats.
pub fn select(request: &Request) -> Result<Vec<&'static str>, Error> {
    let mut names: Vec<&'static str> = Vec::new();
    let mut add = |group: &[&'static str]| {
        for name in group {
            if !names.contains(name) {
                names.push(name);
            }
        }
    };
    if request.components.is_empty() {
        add(recipe::CONTROL_PLANE);
    }
    if request.node {
        add(recipe::CONTROL_PLANE);
        add(recipe::NODE);
    }
    // The kubectl image is made from the kubectl kubelab runs.
    if request.images {
        add(&["kubectl"]);
    }
    for given in &request.components {
        match given.as_str() {
            "all" => {
                add(recipe::CONTROL_PLANE);
                add(recipe::NODE);
            }
            "node" => add(recipe::NODE),
            "harnesses" => add(recipe::HARNESSES),
            other => match recipe::all_names().into_iter().find(|n| *n == other) {
                Some(name) => add(&[name]),
                None => {
                    return Err(Error::UnknownComponent {
                        given: other.to_string(),
                        known: recipe::all_names().join(", "),
                    });
                }
            },
        }
    }
    Ok(names)
}

/// Where a component already is, if kubelab need not build it.
#[derive(Debug, PartialEq)]
pub enum Found {
    /// In a directory the user gave (KUBELAB_ASSETS, KUBEBUILDER_ASSETS).
    Given(PathBuf, &'static str),
    /// In the cache, stamped with the pinned version.
    Cached(PathBuf),
    Missing,
}

fn stamp(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.version"))
}

pub fn find(component: &Component, cache: &Path) -> Found {
    for variable in ["KUBELAB_ASSETS", "KUBEBUILDER_ASSETS"] {
        if let Some(dir) = std::env::var_os(variable).filter(|d| !d.is_empty()) {
            let path = PathBuf::from(dir).join(component.name);
            if crate::system::is_executable(&path) {
                return Found::Given(path, variable);
            }
        }
    }
    let path = cache.join(component.name);
    let stamped = std::fs::read_to_string(stamp(cache, component.name))
        .is_ok_and(|v| v.trim() == component.version);
    if stamped && crate::system::is_executable(&path) {
        Found::Cached(path)
    } else {
        Found::Missing
    }
}

/// The recipe, written out for the go command and images.sh (removed when dropped).
fn extract_recipe() -> Result<tempfile::TempDir, Error> {
    let dir = tempfile::Builder::new()
        .prefix("kubelab-recipe.")
        .tempdir()
        .map_err(io("creating a directory for the build recipe"))?;
    RECIPE
        .extract(dir.path())
        .map_err(io("writing the build recipe"))?;
    for script in ["build.sh", "images.sh"] {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join(script);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(io(format!("chmod {}", path.display())))?;
    }
    Ok(dir)
}

async fn build_one(
    component: &Component,
    recipe_dir: &Path,
    cache: &Path,
    ui: &Ui,
) -> Result<(), Error> {
    let step = ui.step(format!("{} {}", component.name, component.version));
    step.progress("fetching modules and listing packages");
    let module = recipe_dir.join(component.module_dir);
    let total = go_build::package_count(&module, component).await?;
    step.count(total, "packages");
    // Built beside its final place, then renamed: an interrupted build leaves nothing.
    let scratch = tempfile::Builder::new()
        .prefix(".build.")
        .tempdir_in(cache)
        .map_err(io(format!(
            "creating a build directory in {}",
            cache.display()
        )))?;
    let output = scratch.path().join(component.name);
    let mut compiled = 0u64;
    go_build::build(&module, component, &output, |_| {
        compiled += 1;
        step.advance();
    })
    .await?;
    let target = cache.join(component.name);
    std::fs::rename(&output, &target).map_err(io(format!("moving {}", target.display())))?;
    std::fs::write(
        stamp(cache, component.name),
        format!("{}\n", component.version),
    )
    .map_err(io("writing the version stamp"))?;
    step.done(format!(
        "{} {} built ({compiled} of {total} packages compiled, the rest from Go's cache)",
        component.name, component.version
    ));
    Ok(())
}

async fn build_images(recipe_dir: &Path, kubectl: &Path, ui: &Ui) -> Result<(), Error> {
    let step = ui.step("the node's images: pause, curl, kubectl");
    let output = tokio::process::Command::new("bash")
        .arg(recipe_dir.join("images.sh"))
        .env("KUBECTL", kubectl)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| Error::Spawn {
            what: "bash images.sh".into(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Images {
            status: output.status.to_string(),
            tail: go_build::tail(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    step.done(format!(
        "the node's images are in {}",
        images_dir().display()
    ));
    Ok(())
}

/// Where missing binaries are built: KUBELAB_ASSETS when it is set (kubelab then looks
/// only there), else the cache.
fn build_dir() -> PathBuf {
    std::env::var_os("KUBELAB_ASSETS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(cache_bin_dir)
}

pub async fn run(request: &Request, ui: &Ui) -> Result<(), Error> {
    let cache = build_dir();
    std::fs::create_dir_all(&cache).map_err(io(format!("creating {}", cache.display())))?;
    let mut to_build = Vec::new();
    for name in select(request)? {
        let component = recipe::component(name).expect("select returns known names");
        match find(&component, &cache) {
            Found::Given(path, variable) => {
                ui.info(format!("✓ {name}: {} ({variable})", path.display()))
            }
            Found::Cached(path) => ui.info(format!(
                "✓ {name} {}: cached in {}",
                component.version,
                path.display()
            )),
            Found::Missing => to_build.push(component),
        }
    }
    let want_images = request.images || request.node;
    if to_build.is_empty() && !want_images {
        ui.info(format!(
            "everything asked for is ready ({})",
            cache.display()
        ));
        return Ok(());
    }
    if !to_build.is_empty() && crate::system::on_path("go").is_none() {
        return Err(Error::NoGo {
            missing: to_build
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", "),
            version: crate::versions::KUBERNETES,
        });
    }
    let recipe_dir = extract_recipe()?;
    if !to_build.is_empty() {
        ui.info(format!(
            "building {} into {} (cold on 2 cores: about 10 min; Go's build cache makes later builds quick)",
            to_build.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
            cache.display()
        ));
    }
    for component in &to_build {
        build_one(component, recipe_dir.path(), &cache, ui).await?;
    }
    if want_images {
        let kubectl = recipe::component("kubectl").expect("a known component");
        let kubectl = match find(&kubectl, &cache) {
            Found::Given(path, _) | Found::Cached(path) => path,
            Found::Missing => cache.join("kubectl"),
        };
        build_images(recipe_dir.path(), &kubectl, ui).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(components: &[&str], node: bool) -> Result<Vec<&'static str>, Error> {
        select(&Request {
            components: components.iter().map(|s| s.to_string()).collect(),
            node,
            images: false,
        })
    }

    #[test]
    fn the_default_is_the_control_plane_and_node_adds_its_binaries() {
        assert_eq!(names(&[], false).unwrap(), recipe::CONTROL_PLANE);
        let with_node = names(&[], true).unwrap();
        assert!(with_node.contains(&"kubelet") && with_node.contains(&"etcd"));
        assert_eq!(names(&["kubectl", "kubectl"], false).unwrap(), ["kubectl"]);
        assert_eq!(names(&["harnesses"], false).unwrap(), recipe::HARNESSES);
    }

    #[test]
    fn an_unknown_component_names_the_known_ones() {
        let message = names(&["kube-schedular"], false).unwrap_err().to_string();
        assert!(message.contains("'kube-schedular'"), "{message}");
        assert!(message.contains("kube-scheduler"), "{message}");
    }

    #[test]
    fn a_stamp_of_another_version_means_build_again() {
        let cache = tempfile::tempdir().unwrap();
        let component = recipe::component("kind").unwrap();
        let binary = cache.path().join("kind");
        std::fs::write(&binary, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find(&component, cache.path()), Found::Missing);
        std::fs::write(stamp(cache.path(), "kind"), "v0.0.1\n").unwrap();
        assert_eq!(find(&component, cache.path()), Found::Missing);
        std::fs::write(
            stamp(cache.path(), "kind"),
            format!("{}\n", component.version),
        )
        .unwrap();
        assert_eq!(find(&component, cache.path()), Found::Cached(binary));
    }
}
