//! The `token` operation: a TokenRequest for a ServiceAccount, optionally bound to a pod
//! or a secret, kept in memory under a name for later probes. The token itself is never
//! printed or written; reports show its prefix and decoded claims.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

use super::Error;
use crate::scenario::TokenOp;

/// Requests the token; returns it and a line for the report.
pub async fn request(
    client: &kube::Client,
    op: &TokenOp,
    namespace: &str,
) -> Result<(String, String), Error> {
    let bound = match &op.bound_to {
        Some(reference) => {
            let name = reference.name.clone().unwrap_or_default();
            let is_pod = reference.resource.starts_with("pod");
            let uid = if is_pod {
                let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
                pods.get(&name).await.map(|p| p.metadata.uid)
            } else {
                let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
                secrets.get(&name).await.map(|s| s.metadata.uid)
            }
            .map_err(|source| {
                Error::from_kube(format!("reading {reference} to bind the token to"), source)
            })?;
            Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some(if is_pod { "Pod" } else { "Secret" }.into()),
                name: Some(name),
                uid,
            })
        }
        None => None,
    };
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: op.audiences.clone(),
            expiration_seconds: op.expiration_seconds,
            bound_object_ref: bound,
        },
        ..Default::default()
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let what = format!(
        "a token for ServiceAccount {namespace}/{}",
        op.serviceaccount
    );
    let response: TokenRequest = accounts
        .create_subresource(
            "token",
            &op.serviceaccount,
            &PostParams::default(),
            &request,
        )
        .await
        .map_err(|source| Error::from_kube(format!("requesting {what}"), source))?;
    let token = response
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Lab(format!("the TokenRequest for {what} returned no token")))?;
    let mut line = format!("requested {what} as '{}'", op.name);
    if !op.audiences.is_empty() {
        line.push_str(&format!(", audience {}", op.audiences.join(", ")));
    }
    if let Some(bound) = &op.bound_to {
        line.push_str(&format!(", bound to {bound}"));
    }
    Ok((token, line))
}
