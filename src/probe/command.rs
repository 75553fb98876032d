//! The commands a probe runs, as they run inside the pod. The same text is shown to the
//! user and (with a status marker appended) executed through `sh -c` in a real pod; on
//! the host the same request is made with paths mapped into the materialized volume.

use crate::scenario::{HttpProbe, TokenChoice};

pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const APISERVER_URL: &str = "https://kubernetes.default.svc";
/// Appended to curl's output (`-w`) so the status code can be told from the body.
pub const STATUS_MARKER: &str = "\n--kubelab-status:";

/// Quotes for sh when needed: 'it''s' style single quotes.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The path and query of the request, variables left for the pod's shell.
pub fn http_target(http: &HttpProbe) -> String {
    match &http.query {
        Some(query) => format!("{}?{query}", http.path),
        None => http.path.clone(),
    }
}

/// Defines NAMESPACE the way the official "access the API from a pod" example does,
/// when the command uses it.
fn namespace_prelude(uses_namespace: bool) -> &'static str {
    if uses_namespace {
        "NAMESPACE=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace); "
    } else {
        ""
    }
}

/// `curl ...` as the seeds write it: the CA and token read from the mounted files.
pub fn curl_in_pod(http: &HttpProbe) -> String {
    let target = http_target(http);
    let mut words = vec!["curl".to_string(), "-sS".to_string()];
    if http.insecure {
        words.push("-k".into());
    } else {
        words.push(format!("--cacert {SERVICE_ACCOUNT_DIR}/ca.crt"));
    }
    match http.token {
        TokenChoice::Pod => words.push(format!(
            "-H \"Authorization: Bearer $(cat {SERVICE_ACCOUNT_DIR}/token)\""
        )),
        TokenChoice::Invalid => words.push("-H \"Authorization: Bearer $INVALID_TOKEN\"".into()),
        TokenChoice::None => {}
    }
    if http.method != "GET" {
        words.push(format!("-X {}", http.method));
    }
    // Double quotes keep $(hostname) and ${NAMESPACE} for the shell, and & for curl.
    words.push(format!("\"{APISERVER_URL}{target}\""));
    format!(
        "{}{}",
        namespace_prelude(target.contains("${NAMESPACE}")),
        words.join(" ")
    )
}

/// `kubectl <args>` as typed in the pod.
pub fn kubectl_in_pod(args: &[String]) -> String {
    let uses_namespace = args.iter().any(|a| a.contains("${NAMESPACE}"));
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains('$') {
                format!("\"{a}\"")
            } else {
                shell_quote(a)
            }
        })
        .collect();
    format!(
        "{}kubectl {}",
        namespace_prelude(uses_namespace),
        words.join(" ")
    )
}

/// Replaces the path variables the way the pod's shell would.
pub fn expand(text: &str, pod_name: &str, namespace: &str) -> String {
    text.replace("$(hostname)", pod_name)
        .replace("${NAMESPACE}", namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(path: &str, token: TokenChoice) -> HttpProbe {
        HttpProbe {
            method: "GET".into(),
            path: path.into(),
            query: None,
            token,
            insecure: false,
        }
    }

    #[test]
    fn the_pod_command_is_the_seeds_curl() {
        let shown = curl_in_pod(&http("/api/v1/namespaces/default/pods", TokenChoice::Pod));
        assert_eq!(
            shown,
            "curl -sS --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt \
             -H \"Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\" \
             \"https://kubernetes.default.svc/api/v1/namespaces/default/pods\""
        );
    }

    #[test]
    fn no_token_means_no_authorization_header() {
        let mut probe = http("/version", TokenChoice::None);
        probe.insecure = true;
        let shown = curl_in_pod(&probe);
        assert!(!shown.contains("Authorization"), "{shown}");
        assert!(shown.contains(" -k "), "{shown}");
    }

    #[test]
    fn namespace_variable_brings_its_definition() {
        let shown = curl_in_pod(&http(
            "/api/v1/namespaces/${NAMESPACE}/pods/$(hostname)",
            TokenChoice::Pod,
        ));
        assert!(
            shown.starts_with(
                "NAMESPACE=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace); curl"
            ),
            "{shown}"
        );
        assert_eq!(
            expand(
                "/api/v1/namespaces/${NAMESPACE}/pods/$(hostname)",
                "mydemo",
                "default"
            ),
            "/api/v1/namespaces/default/pods/mydemo"
        );
    }

    #[test]
    fn kubectl_arguments_are_quoted_for_the_shell() {
        assert_eq!(
            kubectl_in_pod(&["get".into(), "pods".into()]),
            "kubectl get pods"
        );
        assert_eq!(
            kubectl_in_pod(&[
                "get".into(),
                "pods".into(),
                "-o".into(),
                "jsonpath={.items[*].metadata.name}".into()
            ]),
            "kubectl get pods -o 'jsonpath={.items[*].metadata.name}'"
        );
    }
}
