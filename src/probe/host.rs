//! Probes on a cluster without a node: kubelab does what the kubelet would. From the
//! pod's real spec it materializes the projected ServiceAccount volume (a TokenRequest
//! bound to the pod, ca.crt from the kube-root-ca.crt ConfigMap, the namespace from the
//! downward API) into a private temporary directory (docs/design.md, "Probes without a
//! node").

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use tempfile::TempDir;

use super::Error;
use super::command::SERVICE_ACCOUNT_DIR;

/// What the host needs to reach the API server the way a pod would.
#[derive(Clone, Debug)]
pub struct HostTools {
    /// host:port where the API server listens, as seen from this machine.
    pub apiserver: String,
    pub kubectl: PathBuf,
    pub curl: PathBuf,
    /// The HTTPS clients kubelab's requests for the pods share.
    pub http: std::sync::Arc<super::host_http::PodHttp>,
    /// kubectl's discovery cache (`--cache-dir`), shared by the pods' kubectl runs: the
    /// API server's types are the same for every pod, and kubectl fetches them again
    /// when a type it is asked for is missing. A private directory, made by the first
    /// kubectl run (a command that runs none leaves nothing, even when killed) and
    /// removed with the last clone.
    kubectl_cache: std::sync::Arc<PrivateDir>,
}

impl HostTools {
    pub fn new(apiserver: &str, kubectl: PathBuf, curl: PathBuf) -> Self {
        HostTools {
            apiserver: apiserver.to_string(),
            kubectl,
            curl,
            http: std::sync::Arc::new(super::host_http::PodHttp::new(apiserver)),
            kubectl_cache: Default::default(),
        }
    }

    /// The kubectl cache directory, made on first use.
    pub fn kubectl_cache(&self) -> Result<PathBuf, Error> {
        self.kubectl_cache.path(|_| Ok(()))
    }
}

/// A pod's volumes, as the kubelet would mount them: kept in memory, and written to
/// the host (`<dir>/volume-<n>/<path in the volume>`, the directories 0700, the files
/// 0600)
/// only when a program needs them as files (kubectl, a command in the sandbox). Most
/// probes never do: kubelab's own requests read the token and the CA from memory, so a
/// class's hundreds of pods write nothing to disk. Everything written is removed when
/// this is dropped.
pub struct PodFiles {
    pub pod_name: String,
    /// The container's mount paths that were materialized.
    pub mounts: Vec<String>,
    /// The ServiceAccount token, when the pod has one mounted.
    pub token: Option<String>,
    /// Each file's content, by its normalized path in the container.
    contents: BTreeMap<String, Vec<u8>>,
    on_disk: PrivateDir,
}

/// A private temporary directory (0700), made the first time its path is asked for
/// and removed when this is dropped.
#[derive(Debug, Default)]
pub struct PrivateDir(Mutex<Option<TempDir>>);

impl PrivateDir {
    /// The directory's path; `fill` writes its first contents when it is made.
    fn path(&self, fill: impl FnOnce(&Path) -> Result<(), Error>) -> Result<PathBuf, Error> {
        let mut made = self.0.lock().expect("the lock is never poisoned");
        if let Some(dir) = made.as_ref() {
            return Ok(dir.path().to_path_buf());
        }
        let dir = private_tempdir()
            .map_err(|e| Error::Host(format!("creating a private temporary directory: {e}")))?;
        fill(dir.path())?;
        let path = dir.path().to_path_buf();
        *made = Some(dir);
        Ok(path)
    }
}

/// A container path as one spelling: `/a/./b//c/` and `/a/b/c` are the same file.
fn normalized(container_path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in container_path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

impl PodFiles {
    fn new(pod_name: String) -> Self {
        PodFiles {
            pod_name,
            mounts: Vec::new(),
            token: None,
            contents: BTreeMap::new(),
            on_disk: PrivateDir::default(),
        }
    }

    fn add(&mut self, container_path: &str, contents: &[u8]) {
        self.contents
            .insert(normalized(container_path), contents.to_vec());
    }

    /// The private directory (0700), with every file written into it the first time
    /// it is asked for.
    pub fn dir(&self) -> Result<PathBuf, Error> {
        self.on_disk.path(|dir| {
            for index in 0..self.mounts.len() {
                let volume = dir.join(format!("volume-{index}"));
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&volume)
                    .map_err(|e| Error::Host(format!("creating {}: {e}", volume.display())))?;
            }
            for (path, contents) in &self.contents {
                write_secret_file(&self.location(dir, path), contents)?;
            }
            Ok(())
        })
    }

    /// Where a path of the container lives on the host (written there first).
    pub fn host_path(&self, container_path: &str) -> Result<PathBuf, Error> {
        Ok(self.location(&self.dir()?, container_path))
    }

    /// `<dir>/volume-<n>/<rest>` for a path in the n-th mount; other paths (which no
    /// volume holds, so nothing is written there) under `<dir>/elsewhere`.
    fn location(&self, dir: &Path, container_path: &str) -> PathBuf {
        let path = normalized(container_path);
        for (index, mount) in self.mounts.iter().enumerate() {
            let mount = normalized(mount);
            let volume = dir.join(format!("volume-{index}"));
            if path == mount {
                return volume;
            }
            if let Some(rest) = path.strip_prefix(&format!("{}/", mount.trim_end_matches('/'))) {
                return volume.join(rest);
            }
        }
        dir.join("elsewhere").join(path.trim_start_matches('/'))
    }

    /// Whether kubelab materialized the volume that would hold `container_path`.
    pub fn covers(&self, container_path: &str) -> bool {
        let path = normalized(container_path);
        self.mounts.iter().any(|m| {
            let mount = normalized(m);
            path == mount || path.starts_with(&format!("{}/", mount.trim_end_matches('/')))
        })
    }

    /// A file's content, when a materialized volume holds it.
    pub fn read(&self, container_path: &str) -> Option<String> {
        self.read_bytes(container_path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn read_bytes(&self, container_path: &str) -> Option<&[u8]> {
        if !self.covers(container_path) {
            return None;
        }
        self.contents
            .get(&normalized(container_path))
            .map(Vec::as_slice)
    }

    /// The namespace file's content, as `$(cat .../namespace)` would give it.
    pub fn namespace_file(&self) -> String {
        self.read(&format!("{SERVICE_ACCOUNT_DIR}/namespace"))
            .unwrap_or_default()
    }
}

/// A temporary directory only its owner can enter.
fn private_tempdir() -> std::io::Result<TempDir> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("kubelab-pod-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::Host(format!("creating {}: {e}", parent.display())))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Host(format!("writing {}: {e}", path.display())))?;
    file.write_all(contents)
        .map_err(|e| Error::Host(format!("writing {}: {e}", path.display())))
}

/// Materializes the projected volumes mounted into `container` (default: the first).
pub async fn materialize(
    client: &kube::Client,
    pod: &Pod,
    container: Option<&str>,
) -> Result<PodFiles, Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| Error::Host(format!("pod {namespace}/{name} has no spec")))?;
    let chosen = super::access::container_of(pod, container).ok_or_else(|| {
        Error::Host(format!(
            "pod {namespace}/{name} has no container {}",
            container.unwrap_or("")
        ))
    })?;

    let mut files = PodFiles::new(name.clone());
    let volumes: BTreeMap<&str, _> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    for mount in chosen.volume_mounts.iter().flatten() {
        let Some(projected) = volumes
            .get(mount.name.as_str())
            .and_then(|v| v.projected.as_ref())
        else {
            continue; // only projected volumes carry what the labs are about
        };
        for source in projected.sources.iter().flatten() {
            if let Some(sa_token) = &source.service_account_token {
                let token = request_token(
                    client,
                    pod,
                    sa_token.expiration_seconds,
                    sa_token.audience.clone(),
                )
                .await?;
                files.add(
                    &format!("{}/{}", mount.mount_path, sa_token.path),
                    token.as_bytes(),
                );
                files.token = Some(token);
            }
            if let Some(config_map) = &source.config_map {
                let data = published_config_map(client, &namespace, &config_map.name)
                    .await?
                    .data
                    .unwrap_or_default();
                for item in config_map.items.iter().flatten() {
                    let value = data.get(&item.key).cloned().unwrap_or_default();
                    files.add(
                        &format!("{}/{}", mount.mount_path, item.path),
                        value.as_bytes(),
                    );
                }
            }
            if let Some(downward) = &source.downward_api {
                for item in downward.items.iter().flatten() {
                    let value = match item.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                        Some("metadata.namespace") => namespace.clone(),
                        Some("metadata.name") => name.clone(),
                        other => {
                            return Err(Error::Host(format!(
                                "downward API field {other:?} is not materialized on the host"
                            )));
                        }
                    };
                    files.add(
                        &format!("{}/{}", mount.mount_path, item.path),
                        value.as_bytes(),
                    );
                }
            }
        }
        files.mounts.push(mount.mount_path.clone());
    }
    Ok(files)
}

/// How long a projected ConfigMap may take to appear. kube-controller-manager
/// publishes `kube-root-ca.crt` into a new namespace a moment after it is made; the
/// kubelet waits for it too, retrying the mount.
const CONFIG_MAP_WAIT: Duration = Duration::from_secs(30);

/// A ConfigMap a projected volume takes keys from, waited for (bounded) when it is
/// not there yet.
async fn published_config_map(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<ConfigMap, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let reading = || format!("reading ConfigMap {namespace}/{name}");
    if let Some(found) = api
        .get_opt(name)
        .await
        .map_err(|e| Error::Kube(reading(), e))?
    {
        return Ok(found);
    }
    let appeared =
        kube::runtime::wait::await_condition(api, name, |c: Option<&ConfigMap>| c.is_some());
    match tokio::time::timeout(CONFIG_MAP_WAIT, appeared).await {
        Ok(Ok(Some(found))) => Ok(found),
        Ok(Ok(None)) | Err(_) => Err(Error::Host(format!(
            "ConfigMap {namespace}/{name} did not appear within {}s; the pod's projected \
             volume needs it (kube-controller-manager publishes kube-root-ca.crt into \
             every namespace: is it running?)",
            CONFIG_MAP_WAIT.as_secs()
        ))),
        Ok(Err(e)) => Err(Error::Host(format!("{}: {e}", reading()))),
    }
}

/// A TokenRequest bound to the pod, as the kubelet makes for the projected volume.
async fn request_token(
    client: &kube::Client,
    pod: &Pod,
    expiration: Option<i64>,
    audience: Option<String>,
) -> Result<String, Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.into_iter().collect(),
            expiration_seconds: expiration,
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let response: TokenRequest = api
        .create_subresource("token", &account, &PostParams::default(), &request)
        .await
        .map_err(|e| {
            Error::Kube(
                format!("requesting a token for ServiceAccount {namespace}/{account}"),
                e,
            )
        })?;
    response
        .status
        .map(|s| s.token)
        .ok_or_else(|| Error::Host("the TokenRequest returned no token".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_pods_files_stay_in_memory_until_a_program_needs_them() {
        let mount = "/var/run/secrets/kubernetes.io/serviceaccount/";
        let mut files = PodFiles::new("p".into());
        files.add(&format!("{mount}./token"), b"tok");
        files.mounts.push(mount.into());
        let token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
        assert_eq!(files.read(token).as_deref(), Some("tok"));
        assert_eq!(files.read("/etc/hostname"), None, "not in a volume");
        assert!(
            files.on_disk.0.lock().unwrap().is_none(),
            "nothing written yet"
        );

        let path = files
            .host_path("/var/run/secrets//kubernetes.io/serviceaccount/token")
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"tok");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir = files.dir().unwrap();
        assert!(path.starts_with(&dir));
        assert_eq!(files.dir().unwrap(), dir, "written once");
        drop(files);
        assert!(!dir.exists(), "removed when dropped");
    }

    #[test]
    fn materialized_files_are_private_and_never_overwritten() {
        let dir = private_tempdir().unwrap();
        let path = dir
            .path()
            .join("root/var/run/secrets/kubernetes.io/serviceaccount/token");
        write_secret_file(&path, b"secret").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            mode(dir.path()),
            0o700,
            "the temporary directory itself is private"
        );
        // create_new: a file planted there beforehand is an error, not followed.
        assert!(write_secret_file(&path, b"again").is_err());
    }
}
