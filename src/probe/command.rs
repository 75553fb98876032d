//! The commands a probe runs, as they run inside the pod. The same text is shown to the
//! user and executed through `sh -c` in a real pod; on the host the same request is
//! made from the pod's materialized files.

use super::access::{CurlRequest, RequestToken};
use crate::scenario::vars::{self, Reference};

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

/// A text inside double quotes for sh: `$(hostname)`, `$(cat /path)` and
/// `${NAMESPACE}` stay for the shell; every other special character is escaped.
pub fn double_quoted(text: &str) -> String {
    let keep = vars::references(text, false).unwrap_or_default();
    let mut out = String::from("\"");
    let mut last = 0;
    let escape = |part: &str, out: &mut String| {
        for c in part.chars() {
            if matches!(c, '"' | '\\' | '`' | '$') {
                out.push('\\');
            }
            out.push(c);
        }
    };
    for (range, _) in &keep {
        escape(&text[last..range.start], &mut out);
        out.push_str(&text[range.clone()]);
        last = range.end;
    }
    escape(&text[last..], &mut out);
    out.push('"');
    out
}

/// The shell variable a named token is read into.
pub fn token_variable(name: &str) -> String {
    format!("TOKEN_{}", name.to_uppercase())
}

/// `${token:NAME}` as the shell variable that holds the token in the pod.
pub fn token_references_as_variables(text: &str) -> String {
    vars::expand(text, false, |reference| match reference {
        Reference::Token(name) => Some(format!("${{{}}}", token_variable(name))),
        _ => None,
    })
}

fn uses_namespace(texts: &[&str]) -> bool {
    texts.iter().any(|t| {
        vars::references(t, false)
            .unwrap_or_default()
            .iter()
            .any(|(_, r)| *r == Reference::Variable(vars::NAMESPACE))
    })
}

/// Defines NAMESPACE the way the official "access the API from a pod" example does,
/// when the command uses it.
fn namespace_prelude(needed: bool) -> &'static str {
    if needed {
        "NAMESPACE=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace); "
    } else {
        ""
    }
}

/// `curl ...` as the seeds write it: the CA and token read from the mounted files.
pub fn curl_in_pod(request: &CurlRequest) -> String {
    let mut words = vec!["curl".to_string(), "-sS".to_string()];
    if request.insecure {
        words.push("-k".into());
    } else {
        words.push(format!("--cacert {SERVICE_ACCOUNT_DIR}/ca.crt"));
    }
    match &request.token {
        RequestToken::Pod => words.push(format!(
            "-H \"Authorization: Bearer $(cat {SERVICE_ACCOUNT_DIR}/token)\""
        )),
        RequestToken::File(path) => {
            words.push(format!("-H \"Authorization: Bearer $(cat {path})\""))
        }
        RequestToken::Invalid => words.push("-H \"Authorization: Bearer $INVALID_TOKEN\"".into()),
        RequestToken::Named { name, .. } => words.push(format!(
            "-H \"Authorization: Bearer ${}\"",
            token_variable(name)
        )),
        RequestToken::None => {}
    }
    for (name, value) in &request.headers {
        words.push(format!("-H {}", double_quoted(&format!("{name}: {value}"))));
    }
    if request.method != "GET" {
        words.push(format!("-X {}", request.method));
    }
    if let Some(body) = &request.body {
        words.push(format!("--data-binary {}", double_quoted(body)));
    }
    words.push(double_quoted(&format!("{APISERVER_URL}{}", request.target)));
    let mut texts = vec![request.target.as_str()];
    texts.extend(request.body.as_deref());
    texts.extend(request.headers.iter().map(|(_, v)| v.as_str()));
    format!(
        "{}{}",
        namespace_prelude(uses_namespace(&texts)),
        words.join(" ")
    )
}

/// `kubectl <args>` as typed in the pod.
pub fn kubectl_in_pod(args: &[String]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains('$') {
                double_quoted(a)
            } else {
                shell_quote(a)
            }
        })
        .collect();
    let texts: Vec<&str> = args.iter().map(String::as_str).collect();
    format!(
        "{}kubectl {}",
        namespace_prelude(uses_namespace(&texts)),
        words.join(" ")
    )
}

/// A script as the pod's shell runs it, with NAMESPACE defined when it is used.
pub fn script_in_pod(script: &str) -> String {
    format!("{}{script}", namespace_prelude(uses_namespace(&[script])))
}

/// An argv as a person would type it.
pub fn argv_shown(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, token: RequestToken) -> CurlRequest {
        CurlRequest {
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
            body: None,
            token,
            insecure: false,
            secrets: Vec::new(),
        }
    }

    #[test]
    fn the_pod_command_is_the_seeds_curl() {
        let shown = curl_in_pod(&request(
            "/api/v1/namespaces/default/pods",
            RequestToken::Pod,
        ));
        assert_eq!(
            shown,
            "curl -sS --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt \
             -H \"Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\" \
             \"https://kubernetes.default.svc/api/v1/namespaces/default/pods\""
        );
    }

    #[test]
    fn no_token_means_no_authorization_header() {
        let mut probe = request("/version", RequestToken::None);
        probe.insecure = true;
        let shown = curl_in_pod(&probe);
        assert!(!shown.contains("Authorization"), "{shown}");
        assert!(shown.contains(" -k "), "{shown}");
    }

    #[test]
    fn a_named_token_is_a_shell_variable_not_its_value() {
        let shown = curl_in_pod(&request(
            "/api",
            RequestToken::Named {
                name: "vault".into(),
                value: "eyJsecret".into(),
            },
        ));
        assert!(shown.contains("Bearer $TOKEN_VAULT"), "{shown}");
        assert!(!shown.contains("eyJsecret"), "{shown}");
    }

    #[test]
    fn namespace_variable_brings_its_definition() {
        let shown = curl_in_pod(&request(
            "/api/v1/namespaces/${NAMESPACE}/pods/$(hostname)",
            RequestToken::Pod,
        ));
        assert!(
            shown.starts_with(
                "NAMESPACE=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace); curl"
            ),
            "{shown}"
        );
        assert!(
            shown.ends_with("/namespaces/${NAMESPACE}/pods/$(hostname)\""),
            "{shown}"
        );
    }

    #[test]
    fn a_body_keeps_pod_expressions_and_escapes_the_rest() {
        let mut post = request(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            RequestToken::Pod,
        );
        post.method = "POST".into();
        post.body = Some(
            r#"{"spec":{"token":"$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"},"x":"$5 `y`"}"#
                .into(),
        );
        let shown = curl_in_pod(&post);
        assert!(
            shown.contains(r#"--data-binary "{\"spec\":{\"token\":\"$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\"},\"x\":\"\$5 \`y\`\"}""#),
            "{shown}"
        );
        assert!(shown.contains("-X POST"), "{shown}");
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
