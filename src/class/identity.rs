//! A student's identity and kubeconfig. Where the cluster signs client certificates
//! (a CertificateSigningRequest for kubernetes.io/kube-apiserver-client, approved by
//! kubelab, signed by kube-controller-manager: the local cluster and kind do), the
//! student gets a certificate; elsewhere a ServiceAccount token.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, ResourceExt};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use super::{CLASS_LABEL, Error, IdentityKind, STUDENT_LABEL, Seat};

const SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// How long the cluster's signer gets before kubelab falls back to a token.
const SIGNING_WAIT: Duration = Duration::from_secs(15);

/// What a student authenticates with.
pub struct Issued {
    pub kind: IdentityKind,
    pub user: String,
    /// The kubeconfig `user` entry.
    user_entry: serde_json::Value,
}

/// The group every student of `class` is in (with a certificate).
pub fn group(class: &str) -> String {
    format!("kubelab:class:{class}")
}

/// The namespace of the students' ServiceAccounts, where tokens are the identity.
pub fn accounts_namespace(class: &str) -> String {
    format!("kubelab-class-{class}")
}

fn labels(class: &str, student: &str) -> std::collections::BTreeMap<String, String> {
    [
        (CLASS_LABEL.to_string(), class.to_string()),
        (STUDENT_LABEL.to_string(), student.to_string()),
    ]
    .into_iter()
    .collect()
}

fn csr_name(class: &str, student: &str) -> String {
    format!("kubelab-{class}-{student}")
}

/// A client certificate for `kubelab:CLASS:STUDENT`, or None when the cluster did not
/// sign one in time (what was asked is withdrawn).
pub async fn certificate(
    client: &kube::Client,
    class: &str,
    student: &str,
    valid: Duration,
) -> Result<Option<Issued>, Error> {
    let user = format!("kubelab:{class}:{student}");
    let key = KeyPair::generate().map_err(|e| Error::Identity(format!("a key for {user}: {e}")))?;
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| Error::Identity(e.to_string()))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, user.as_str());
    name.push(DnType::OrganizationName, group(class));
    params.distinguished_name = name;
    let request = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| Error::Identity(format!("a certificate request for {user}: {e}")))?;
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr_name = csr_name(class, student);
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(csr_name.clone()),
            labels: Some(labels(class, student)),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: SIGNER.into(),
            usages: Some(vec!["client auth".into()]),
            expiration_seconds: Some(valid.as_secs() as i32),
            ..Default::default()
        },
        status: None,
    };
    let _ = api.delete(&csr_name, &DeleteParams::default()).await; // an earlier class's
    api.create(&PostParams::default(), &csr)
        .await
        .map_err(Error::kube(format!("requesting a certificate for {user}")))?;
    let approval = serde_json::json!({"status": {"conditions": [{
        "type": "Approved", "status": "True", "reason": "KubelabClass",
        "message": "approved by kubelab class up",
    }]}});
    api.patch_approval(&csr_name, &PatchParams::default(), &Patch::Merge(&approval))
        .await
        .map_err(Error::kube(format!("approving the certificate of {user}")))?;
    let signed = |csr: Option<&CertificateSigningRequest>| {
        csr.and_then(|c| c.status.as_ref())
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|c| !c.0.is_empty())
    };
    let waited = tokio::time::timeout(
        SIGNING_WAIT,
        await_condition(api.clone(), &csr_name, signed),
    )
    .await;
    let certificate = match waited {
        Ok(Ok(Some(csr))) if signed.matches_object(Some(&csr)) => {
            csr.status.and_then(|s| s.certificate).map(|c| c.0)
        }
        _ => None,
    };
    // The request has served its purpose; the certificate lives in the kubeconfig.
    let _ = api.delete(&csr_name, &DeleteParams::default()).await;
    let Some(certificate) = certificate else {
        return Ok(None);
    };
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(Some(Issued {
        kind: IdentityKind::Certificate,
        user,
        user_entry: serde_json::json!({
            "client-certificate-data": b64(&certificate),
            "client-key-data": b64(key.serialize_pem().as_bytes()),
        }),
    }))
}

/// A ServiceAccount `STUDENT` in the class's namespace (made by the fence) and a token
/// for it.
pub async fn service_account_token(
    client: &kube::Client,
    class: &str,
    student: &str,
    valid: Duration,
) -> Result<Issued, Error> {
    let namespace = accounts_namespace(class);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(student.to_string()),
            labels: Some(labels(class, student)),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .patch(
            student,
            &PatchParams::apply(super::fence::FIELD_MANAGER).force(),
            &Patch::Apply(&account),
        )
        .await
        .map_err(Error::kube(format!(
            "making ServiceAccount {namespace}/{student}"
        )))?;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(valid.as_secs() as i64),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(student, &PostParams::default(), &request)
        .await
        .map_err(Error::kube(format!(
            "requesting a token for ServiceAccount {namespace}/{student}"
        )))?
        .status
        .map(|s| s.token)
        .unwrap_or_default();
    Ok(Issued {
        kind: IdentityKind::ServiceAccountToken,
        user: format!("system:serviceaccount:{namespace}:{student}"),
        user_entry: serde_json::json!({"token": token}),
    })
}

/// The student's kubeconfig: the admin kubeconfig's cluster entry, the student's
/// credentials, and a context marked with the seat (the lab commands read it).
pub fn kubeconfig(
    cluster_entry: &serde_json::Value,
    issued: &Issued,
    seat: &Seat,
    namespace: &str,
) -> serde_json::Value {
    let context = format!("{}-{}", seat.class, seat.student);
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster_entry}],
        "users": [{"name": context, "user": issued.user_entry}],
        "contexts": [{"name": context, "context": {
            "cluster": context,
            "user": context,
            "namespace": namespace,
            "extensions": [{"name": super::SEAT_EXTENSION, "extension": seat.extension()}],
        }}],
        "current-context": context,
    })
}

/// Makes `namespace` kubectl's namespace in a student's kubeconfig (the context
/// kubelab wrote), so that the task's kubectl commands land in the lab's copy.
pub fn set_namespace(path: &Path, namespace: &str) -> Result<(), Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    let mut config: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|e| Error::Identity(format!("reading {}: {e}", path.display())))?;
    let current = config["current-context"].clone();
    for context in config["contexts"].as_array_mut().into_iter().flatten() {
        if context["name"] == current {
            context["context"]["namespace"] = namespace.into();
        }
    }
    write_kubeconfig(path, &config)
}

/// Writes a kubeconfig readable by its owner only (it holds a key or a token).
pub fn write_kubeconfig(path: &Path, kubeconfig: &serde_json::Value) -> Result<(), Error> {
    let text = serde_saphyr::to_string(kubeconfig)
        .map_err(|e| Error::Identity(format!("writing {}: {e}", path.display())))?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path); // an earlier one may have other permissions
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| Error::Io {
            what: format!("writing {}", path.display()),
            source,
        })
}

/// The cluster entry (server and CA) of `context` in the admin's kubeconfig, with a CA
/// file read into the entry: the student's kubeconfig must stand alone.
pub fn cluster_entry(path: &Path, context: Option<&str>) -> Result<serde_json::Value, Error> {
    let config = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| Error::Identity(format!("reading the kubeconfig {}: {e}", path.display())))?;
    let cluster_name = super::chosen_context(&config, context)
        .map(|(_, c)| c.cluster.clone())
        .ok_or_else(|| {
            Error::Identity(format!(
                "{} has no context {}",
                path.display(),
                context.unwrap_or("(current-context)")
            ))
        })?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| {
            Error::Identity(format!("{} has no cluster {cluster_name}", path.display()))
        })?;
    let mut entry = serde_json::json!({"server": cluster.server});
    if let Some(data) = cluster.certificate_authority_data {
        entry["certificate-authority-data"] = data.into();
    } else if let Some(file) = cluster.certificate_authority {
        let pem = std::fs::read(&file).map_err(|source| Error::Io {
            what: format!("reading the cluster CA {file}"),
            source,
        })?;
        entry["certificate-authority-data"] =
            base64::engine::general_purpose::STANDARD.encode(pem).into();
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        entry["insecure-skip-tls-verify"] = true.into();
    }
    Ok(entry)
}

/// Withdraws what identities `class` has on the cluster: certificate requests left by
/// an interrupted `up` (the ServiceAccounts go with their namespace).
pub async fn remove(client: &kube::Client, class: &str) -> Result<(), Error> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let selector = format!("{CLASS_LABEL}={class}");
    let list = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube("listing the class's certificate requests"))?;
    for csr in list.items {
        let _ = api.delete(&csr.name_any(), &DeleteParams::default()).await;
    }
    Ok(())
}
