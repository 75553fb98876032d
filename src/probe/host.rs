//! Probes on a cluster without a node: kubelab does what the kubelet would. From the
//! pod's real spec it materializes the projected ServiceAccount volume (a TokenRequest
//! bound to the pod, ca.crt from the kube-root-ca.crt ConfigMap, the namespace from the
//! downward API) into a private temporary directory, then runs the real curl and
//! kubectl against the API server as that pod would reach it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use tempfile::TempDir;

use super::Error;
use super::command::{APISERVER_URL, SERVICE_ACCOUNT_DIR, expand};
use crate::scenario::{HttpProbe, TokenChoice};

/// What the host needs to reach the API server the way a pod would.
#[derive(Clone, Debug)]
pub struct HostTools {
    /// host:port where the API server listens, as seen from this machine.
    pub apiserver: String,
    pub kubectl: PathBuf,
    pub curl: PathBuf,
}

/// A pod's volumes as files on the host: `<dir>/<path in the container>`. The
/// directory is 0700, the files 0600; everything is removed when this is dropped.
pub struct PodFiles {
    dir: TempDir,
    pub pod_name: String,
    /// The container's mount paths that were materialized.
    pub mounts: Vec<String>,
    /// The ServiceAccount token, when the pod has one mounted.
    pub token: Option<String>,
}

impl PodFiles {
    /// Where a path of the container lives on the host.
    pub fn host_path(&self, container_path: &str) -> PathBuf {
        self.dir
            .path()
            .join("root")
            .join(container_path.trim_start_matches('/'))
    }

    /// Whether kubelab materialized the volume that would hold `container_path`.
    pub fn covers(&self, container_path: &str) -> bool {
        self.mounts.iter().any(|m| {
            container_path == m
                || container_path.starts_with(&format!("{}/", m.trim_end_matches('/')))
        })
    }

    fn private_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The namespace file's content, as `$(cat .../namespace)` would give it.
    pub fn namespace_file(&self) -> String {
        std::fs::read_to_string(self.host_path(&format!("{SERVICE_ACCOUNT_DIR}/namespace")))
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

fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
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
    let chosen = super::container_of(pod, container).ok_or_else(|| {
        Error::Host(format!(
            "pod {namespace}/{name} has no container {}",
            container.unwrap_or("")
        ))
    })?;

    let dir = private_tempdir()
        .map_err(|e| Error::Host(format!("creating a private temporary directory: {e}")))?;
    let mut files = PodFiles {
        dir,
        pod_name: name.clone(),
        mounts: Vec::new(),
        token: None,
    };
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
                write_secret_file(
                    &files.host_path(&format!("{}/{}", mount.mount_path, sa_token.path)),
                    token.as_bytes(),
                )?;
                files.token = Some(token);
            }
            if let Some(config_map) = &source.config_map {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
                let data = api
                    .get(&config_map.name)
                    .await
                    .map_err(|e| {
                        Error::Kube(
                            format!("reading ConfigMap {namespace}/{}", config_map.name),
                            e,
                        )
                    })?
                    .data
                    .unwrap_or_default();
                for item in config_map.items.iter().flatten() {
                    let value = data.get(&item.key).cloned().unwrap_or_default();
                    write_secret_file(
                        &files.host_path(&format!("{}/{}", mount.mount_path, item.path)),
                        value.as_bytes(),
                    )?;
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
                    write_secret_file(
                        &files.host_path(&format!("{}/{}", mount.mount_path, item.path)),
                        value.as_bytes(),
                    )?;
                }
            }
        }
        files.mounts.push(mount.mount_path.clone());
    }
    Ok(files)
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

/// Output of a command run on the host.
pub struct Ran {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

async fn run(program: &Path, args: &[String], env: &[(&str, String)]) -> Result<Ran, Error> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::Host(format!("running {}: {e}", program.display())))?;
    Ok(Ran {
        exit_code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The real curl, as the pod would run it: the name kubernetes.default.svc is kept
/// (and verified against the CA) while the connection goes to the local apiserver.
pub async fn curl(tools: &HostTools, files: &PodFiles, http: &HttpProbe) -> Result<Ran, Error> {
    let target = expand(
        &super::command::http_target(http),
        &files.pod_name,
        files.namespace_file().trim(),
    );
    let mut args = vec!["-sS".to_string()];
    if http.insecure {
        args.push("-k".into());
    } else {
        args.extend([
            "--cacert".into(),
            files
                .host_path(&format!("{SERVICE_ACCOUNT_DIR}/ca.crt"))
                .display()
                .to_string(),
        ]);
    }
    // The header comes from a private file: a token never appears on a command line.
    let header = match http.token {
        TokenChoice::Pod => {
            let token =
                std::fs::read_to_string(files.host_path(&format!("{SERVICE_ACCOUNT_DIR}/token")))
                    .unwrap_or_default();
            Some(format!("Authorization: Bearer {token}"))
        }
        TokenChoice::Invalid => Some(format!(
            "Authorization: Bearer {}",
            super::token::invalid_token()
        )),
        TokenChoice::None => None,
    };
    if let Some(header) = header {
        let path = files.private_file("authorization-header");
        let _ = std::fs::remove_file(&path);
        write_secret_file(&path, header.as_bytes())?;
        args.extend(["-H".into(), format!("@{}", path.display())]);
    }
    args.extend([
        "--connect-to".into(),
        format!("kubernetes.default.svc:443:{}", tools.apiserver),
        "-X".into(),
        http.method.clone(),
        "-w".into(),
        format!("{}%{{http_code}}", super::command::STATUS_MARKER),
        format!("{APISERVER_URL}{target}"),
    ]);
    run(&tools.curl, &args, &[]).await
}

/// The real kubectl with the pod's in-cluster identity: its token file, its CA, its
/// namespace, and the server name the pod would use.
pub async fn kubectl(tools: &HostTools, files: &PodFiles, args: &[String]) -> Result<Ran, Error> {
    let token = files.host_path(&format!("{SERVICE_ACCOUNT_DIR}/token"));
    let ca = files.host_path(&format!("{SERVICE_ACCOUNT_DIR}/ca.crt"));
    let namespace = files.namespace_file();
    let user = if token.exists() {
        format!("    tokenFile: {}\n", token.display())
    } else {
        "    {}\n".to_string()
    };
    let kubeconfig = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: in-cluster
  cluster:
    server: https://{server}
    tls-server-name: kubernetes.default.svc
    certificate-authority: {ca}
users:
- name: pod
  user:
{user}contexts:
- name: in-cluster
  context: {{cluster: in-cluster, user: pod, namespace: '{namespace}'}}
current-context: in-cluster
",
        server = tools.apiserver,
        ca = ca.display(),
        namespace = if namespace.is_empty() {
            "default"
        } else {
            namespace.trim()
        },
    );
    let path = files.private_file("kubeconfig");
    let _ = std::fs::remove_file(&path);
    write_secret_file(&path, kubeconfig.as_bytes())?;
    let mut all: Vec<String> = args
        .iter()
        .map(|a| expand(a, &files.pod_name, namespace.trim()))
        .collect();
    all.insert(0, format!("--kubeconfig={}", path.display()));
    run(
        &tools.kubectl,
        &all,
        &[("HOME", files.dir.path().display().to_string())],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
