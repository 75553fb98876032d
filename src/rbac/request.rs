//! Request attributes, as kube-apiserver's authorizer sees them, and the mapping from an
//! HTTP request to them (k8s.io/apiserver's RequestInfoFactory.NewRequestInfo).

use serde::{Deserialize, Serialize};

/// Who asks: the user name and the groups authentication gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    /// A user with the groups the API server's authenticators give it: a ServiceAccount
    /// token adds system:serviceaccounts and system:serviceaccounts:<ns>; every
    /// authenticated user is in system:authenticated, the anonymous one in
    /// system:unauthenticated.
    pub fn authenticated_as(name: &str, extra_groups: &[String]) -> User {
        let mut groups: Vec<String> = extra_groups.to_vec();
        if name == "system:anonymous" {
            groups.push("system:unauthenticated".into());
        } else {
            if let Some((namespace, _)) = service_account(name) {
                groups.push("system:serviceaccounts".into());
                groups.push(format!("system:serviceaccounts:{namespace}"));
            }
            groups.push("system:authenticated".into());
        }
        groups.dedup();
        User {
            name: name.to_string(),
            groups,
        }
    }
}

/// (namespace, name) of a ServiceAccount user name "system:serviceaccount:<ns>:<name>".
pub fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// What is asked: a resource request or a non-resource URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Request {
    Resource {
        verb: String,
        group: String,
        resource: String,
        #[serde(default)]
        subresource: String,
        #[serde(default)]
        name: String,
        /// Empty: cluster scope.
        #[serde(default)]
        namespace: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Request {
    pub fn verb(&self) -> &str {
        match self {
            Request::Resource { verb, .. } | Request::NonResource { verb, .. } => verb,
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            Request::Resource { namespace, .. } => namespace,
            Request::NonResource { .. } => "",
        }
    }

    /// Read from an HTTP method, path and query, as kube-apiserver does.
    pub fn from_http(method: &str, path: &str, query: &str) -> Request {
        let trimmed = path.trim_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let non_resource = || Request::NonResource {
            verb: method.to_lowercase(),
            path: path.to_string(),
        };
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return non_resource();
        }
        let mut rest = &parts[1..];
        let mut group = "";
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return non_resource();
            }
            group = rest[0];
            rest = &rest[1..];
        }
        rest = &rest[1..]; // the version
        let mut verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
        if matches!(rest[0], "proxy" | "watch") {
            if rest.len() < 2 {
                // kube-apiserver rejects these; treat as the non-resource request it is not.
                return non_resource();
            }
            verb = rest[0].to_string();
            rest = &rest[1..];
        }
        let mut namespace = "";
        if rest[0] == "namespaces" && rest.len() > 1 {
            namespace = rest[1];
            // A namespace's own subresources (status, finalize) stay on the namespace.
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        let resource = rest.first().copied().unwrap_or_default();
        let mut name = rest.get(1).copied().unwrap_or_default().to_string();
        let subresource = if rest.len() >= 3 && verb != "proxy" {
            rest[2]
        } else {
            ""
        };
        if name.is_empty() && verb == "get" {
            let (watch, selected_name) = list_options(query);
            verb = if watch { "watch".into() } else { "list".into() };
            if let Some(selected) = selected_name {
                name = selected;
            }
        }
        if name.is_empty() && verb == "delete" {
            verb = "deletecollection".into();
        }
        Request::Resource {
            verb,
            group: group.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            name,
            namespace: namespace.to_string(),
        }
    }
}

/// `watch` and the name a `fieldSelector=metadata.name=<name>` pins, as ListOptions
/// decoding gives them: any watch value but "0" or "false" means watch.
fn list_options(query: &str) -> (bool, Option<String>) {
    let mut watch = false;
    let mut name = None;
    let mut seen_watch = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "watch" if !seen_watch => {
                seen_watch = true;
                watch = !(value == "0" || value.eq_ignore_ascii_case("false"));
            }
            "fieldSelector" if name.is_none() => {
                name = value.split(',').find_map(|term| {
                    let term = term.trim();
                    let value = term
                        .strip_prefix("metadata.name==")
                        .or_else(|| term.strip_prefix("metadata.name="))?;
                    let valid = !value.is_empty()
                        && value != "."
                        && value != ".."
                        && !value.contains(['/', '%']);
                    valid.then(|| value.to_string())
                });
            }
            _ => {}
        }
    }
    (watch, name)
}

fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex(bytes[i + 1])
                .zip(hex(bytes[i + 2]))
                .map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (decoded, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        name: &str,
        ns: &str,
    ) -> Request {
        Request::Resource {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: ns.into(),
        }
    }

    #[test]
    fn get_without_a_name_is_list_or_watch() {
        assert_eq!(
            Request::from_http("GET", "/api/v1/namespaces/default/pods", ""),
            resource("list", "", "pods", "", "", "default")
        );
        assert_eq!(
            Request::from_http("GET", "/api/v1/namespaces/default/pods", "watch=true"),
            resource("watch", "", "pods", "", "", "default")
        );
        assert_eq!(
            Request::from_http("GET", "/api/v1/namespaces/default/pods", "watch=0"),
            resource("list", "", "pods", "", "", "default")
        );
        assert_eq!(
            Request::from_http("GET", "/api/v1/watch/namespaces/default/pods", ""),
            resource("watch", "", "pods", "", "", "default")
        );
        assert_eq!(
            Request::from_http(
                "GET",
                "/api/v1/namespaces/default/pods",
                "fieldSelector=metadata.name%3Dmydemo"
            ),
            resource("list", "", "pods", "", "mydemo", "default")
        );
    }

    #[test]
    fn methods_map_to_verbs_and_delete_without_a_name_is_deletecollection() {
        assert_eq!(
            Request::from_http("POST", "/api/v1/namespaces/a/pods", ""),
            resource("create", "", "pods", "", "", "a")
        );
        assert_eq!(
            Request::from_http("PUT", "/apis/apps/v1/namespaces/a/deployments/d", ""),
            resource("update", "apps", "deployments", "", "d", "a")
        );
        assert_eq!(
            Request::from_http(
                "PATCH",
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                ""
            ),
            resource("patch", "apps", "deployments", "scale", "d", "a")
        );
        assert_eq!(
            Request::from_http("DELETE", "/api/v1/namespaces/a/pods", ""),
            resource("deletecollection", "", "pods", "", "", "a")
        );
        assert_eq!(
            Request::from_http("DELETE", "/api/v1/namespaces/a/pods/p", ""),
            resource("delete", "", "pods", "", "p", "a")
        );
        assert_eq!(
            Request::from_http("HEAD", "/api/v1/namespaces/a/pods/p", ""),
            resource("get", "", "pods", "", "p", "a")
        );
    }

    #[test]
    fn subresources_and_scopes() {
        assert_eq!(
            Request::from_http("GET", "/api/v1/namespaces/a/pods/p/log", ""),
            resource("get", "", "pods", "log", "p", "a")
        );
        assert_eq!(
            Request::from_http("POST", "/api/v1/namespaces/a/pods/p/exec", ""),
            resource("create", "", "pods", "exec", "p", "a")
        );
        assert_eq!(
            Request::from_http(
                "POST",
                "/api/v1/namespaces/a/serviceaccounts/default/token",
                ""
            ),
            resource("create", "", "serviceaccounts", "token", "default", "a")
        );
        assert_eq!(
            Request::from_http("GET", "/api/v1/nodes", ""),
            resource("list", "", "nodes", "", "", "")
        );
        assert_eq!(
            Request::from_http("GET", "/api/v1/namespaces", ""),
            resource("list", "", "namespaces", "", "", "")
        );
        assert_eq!(
            Request::from_http("GET", "/api/v1/namespaces/a", ""),
            resource("get", "", "namespaces", "", "a", "a")
        );
        assert_eq!(
            Request::from_http("PUT", "/api/v1/namespaces/a/status", ""),
            resource("update", "", "namespaces", "status", "a", "a")
        );
        assert_eq!(
            Request::from_http("GET", "/api/v1/proxy/namespaces/a/pods/p/x/y", ""),
            resource("proxy", "", "pods", "", "p", "a")
        );
    }

    #[test]
    fn short_and_foreign_paths_are_non_resource_urls() {
        for path in [
            "/api",
            "/apis",
            "/apis/apps/v1",
            "/version",
            "/healthz",
            "/openapi/v3",
            "/",
        ] {
            assert_eq!(
                Request::from_http("GET", path, ""),
                Request::NonResource {
                    verb: "get".into(),
                    path: path.into()
                },
                "{path}"
            );
        }
        assert_eq!(
            Request::from_http("POST", "/logs", ""),
            Request::NonResource {
                verb: "post".into(),
                path: "/logs".into()
            }
        );
    }

    #[test]
    fn service_account_users_get_their_groups() {
        let user = User::authenticated_as("system:serviceaccount:swan:reader", &[]);
        assert_eq!(
            user.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:swan",
                "system:authenticated"
            ]
        );
        assert_eq!(
            service_account("system:serviceaccount:swan:reader"),
            Some(("swan", "reader"))
        );
        assert_eq!(service_account("alice"), None);
        assert_eq!(
            User::authenticated_as("system:anonymous", &[]).groups,
            vec!["system:unauthenticated"]
        );
    }
}
