//! A pod's HTTPS request to the API server, made by kubelab itself on a cluster without
//! a node: what `curl` in the pod would send (the same method, path, headers and body,
//! the pod's token, TLS verified with the pod's ca.crt for the name
//! kubernetes.default.svc), without starting a process for every probe. Its output has
//! curl's shape (the body, then the status marker and code), so a probe reads it the
//! same way wherever it ran.

use http::{HeaderName, HeaderValue, Method, Request};
use kube::client::Body;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::collections::HashMap;
use std::sync::Mutex;

use super::Error;
use super::access::Output;
use super::command::STATUS_MARKER;

/// The name a pod's requests verify the API server's certificate against.
const SERVER_NAME: &str = "kubernetes.default.svc";

/// The content type curl's `--data-binary` sends when none is given.
const CURL_BODY_TYPE: &str = "application/x-www-form-urlencoded";

/// One client per way of verifying the server (a CA, or none for `curl -k`), shared
/// by every pod of a run: each request carries its own pod's token, and connections
/// stay open across probes and pods (a class's hundreds of pods: a handful of TLS
/// handshakes, not one per pod).
pub struct PodHttp {
    apiserver: String,
    clients: Mutex<HashMap<Option<Vec<u8>>, kube::Client>>,
}

impl std::fmt::Debug for PodHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodHttp")
            .field("apiserver", &self.apiserver)
            .finish_non_exhaustive()
    }
}

/// One request, its texts already given their values in the pod.
pub struct Sent<'a> {
    pub method: &'a str,
    /// Path and query.
    pub target: &'a str,
    pub bearer: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a str>,
    /// `curl -k`: the server's certificate is not verified.
    pub insecure: bool,
}

impl PodHttp {
    /// Requests to `apiserver` (host:port, as this machine reaches it).
    pub fn new(apiserver: &str) -> Self {
        PodHttp {
            apiserver: apiserver.to_string(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request`; `ca` is the content of the pod's ca.crt (at `ca_path` in the
    /// pod), None when no volume holds it. A request that reaches no answer (TLS,
    /// connection) exits 1 with the reason on stderr, as curl exits non-zero.
    pub async fn send(
        &self,
        ca_path: &str,
        ca: Option<&[u8]>,
        request: &Sent<'_>,
    ) -> Result<Output, Error> {
        let client = self.client(ca_path, ca, request.insecure).await?;
        let built = build(request)?;
        let response = match client.send(built).await {
            Ok(response) => response,
            Err(e) => return Ok(failed(format!("{e}"))),
        };
        let status = response.status().as_u16();
        let body = match response.into_body().collect_bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Ok(failed(format!("reading the response: {e}"))),
        };
        Ok(Output {
            exit_code: 0,
            stdout: format!("{}{STATUS_MARKER}{status}", String::from_utf8_lossy(&body)),
            stderr: String::new(),
        })
    }

    async fn client(
        &self,
        ca_path: &str,
        ca: Option<&[u8]>,
        insecure: bool,
    ) -> Result<kube::Client, Error> {
        let key = match (insecure, ca) {
            (true, _) => None,
            (false, Some(pem)) => Some(pem.to_vec()),
            (false, None) => {
                return Err(Error::Host(format!(
                    "reading the pod's CA {ca_path}: no volume holds it"
                )));
            }
        };
        let mut clients = self.clients.lock().expect("the lock is never poisoned");
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let url = format!("https://{}", self.apiserver);
        let mut config =
            kube::Config::new(url.parse().map_err(|e| {
                Error::Host(format!("the API server address {url} is not a URL: {e}"))
            })?);
        config.tls_server_name = Some(SERVER_NAME.into());
        match &key {
            None => config.accept_invalid_certs = true,
            Some(pem) => config.root_cert = Some(certificates(ca_path, pem)?),
        }
        let client = crate::cluster::client::from_config(config)
            .map_err(|e| Error::Kube("making the pod's HTTPS client".into(), e))?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// The certificates of a PEM file (`path` in the pod), as DER.
fn certificates(path: &str, pem: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Host(format!("the pod's CA {path}: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Host(format!(
            "the pod's CA {path} holds no certificate"
        )));
    }
    Ok(certs)
}

fn build(request: &Sent<'_>) -> Result<Request<Body>, Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Host(format!("{what}: {e}"));
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|e| bad(&format!("method {:?}", request.method), &e))?;
    let mut built = Request::builder().method(method).uri(request.target);
    let headers = built.headers_mut().expect("a fresh builder has headers");
    if let Some(token) = request.bearer {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| Error::Host("the token is not a valid header value".into()))?;
        headers.insert(http::header::AUTHORIZATION, value);
    }
    for (name, value) in request.headers {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| bad(&format!("header name {name:?}"), &e))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|e| bad(&format!("value of header {name}"), &e))?;
        headers.append(name, value);
    }
    // curl's own defaults, where the probe gives no header of that name.
    if !headers.contains_key(http::header::ACCEPT) {
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    if request.body.is_some() && !headers.contains_key(http::header::CONTENT_TYPE) {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(CURL_BODY_TYPE),
        );
    }
    let body = match request.body {
        Some(text) => Body::from(text.as_bytes().to_vec()),
        None => Body::empty(),
    };
    built
        .body(body)
        .map_err(|e| bad(&format!("request {}", request.target), &e))
}

fn failed(why: String) -> Output {
    Output {
        exit_code: 1,
        stdout: String::new(),
        stderr: format!("the request failed: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent<'a>(headers: &'a [(String, String)], body: Option<&'a str>) -> Sent<'a> {
        Sent {
            method: "POST",
            target: "/apis/authentication.k8s.io/v1/selfsubjectreviews?dryRun=All",
            bearer: Some("abc\n"),
            headers,
            body,
            insecure: false,
        }
    }

    #[test]
    fn a_request_carries_what_curl_would_send() {
        let request = build(&sent(&[], Some("{}"))).unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(
            request.uri(),
            "/apis/authentication.k8s.io/v1/selfsubjectreviews?dryRun=All"
        );
        let h = request.headers();
        assert_eq!(h["authorization"], "Bearer abc");
        assert_eq!(h["accept"], "*/*");
        assert_eq!(h["content-type"], CURL_BODY_TYPE);
    }

    #[test]
    fn the_probe_s_headers_replace_curl_s_defaults() {
        let headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Accept".to_string(), "application/yaml".to_string()),
        ];
        let request = build(&sent(&headers, Some("{}"))).unwrap();
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(request.headers()["accept"], "application/yaml");
        let bad = vec![("Bad Name".to_string(), "x".to_string())];
        assert!(build(&sent(&bad, None)).is_err());
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_an_error_naming_it() {
        let path = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
        let err = certificates(path, b"not a certificate")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ca.crt") && err.contains("no certificate"),
            "{err}"
        );
    }
}
