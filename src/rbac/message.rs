//! The text kube-apiserver writes in a 403 body (responsewriters.ForbiddenStatusError
//! and apierrors.NewForbidden), reproduced character for character.

use super::request::{Request, User};

/// Go's %q for the strings that occur here: quotes, backslashes and control
/// characters escaped, printable characters as they are.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// forbiddenMessage, then sanitized (&, <, > as HTML entities) as the API server does.
fn forbidden_message(user: &User, request: &Request) -> String {
    let text = match request {
        Request::NonResource { verb, path } => {
            format!(
                "User {} cannot {verb} path {}",
                go_quote(&user.name),
                go_quote(path)
            )
        }
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            ..
        } => {
            let resource = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            if namespace.is_empty() {
                format!(
                    "User {} cannot {verb} resource {} in API group {} at the cluster scope",
                    go_quote(&user.name),
                    go_quote(&resource),
                    go_quote(group)
                )
            } else {
                format!(
                    "User {} cannot {verb} resource {} in API group {} in the namespace {}",
                    go_quote(&user.name),
                    go_quote(&resource),
                    go_quote(group),
                    go_quote(namespace)
                )
            }
        }
    };
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `message` of the 403 Status for a denied request; `reason` is the authorizer's
/// (for RBAC: empty, or "RBAC: <errors>" when a binding names a missing role).
pub fn forbidden(user: &User, request: &Request, reason: &str) -> String {
    let mut detail = forbidden_message(user, request);
    if !reason.is_empty() {
        detail = format!("{detail}: {reason}");
    }
    match request {
        Request::NonResource { .. } => format!("forbidden: {detail}"),
        Request::Resource {
            group,
            resource,
            name,
            ..
        } => {
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            if qualified.is_empty() {
                format!("forbidden: {detail}")
            } else if name.is_empty() {
                format!("{qualified} is forbidden: {detail}")
            } else {
                format!("{qualified} {} is forbidden: {detail}", go_quote(name))
            }
        }
    }
}

/// Reads a Go-quoted string at the start of `text`: its value and the rest.
fn go_unquote(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut value = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[at + 2..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// The user and request a 403 message speaks of: the inverse of [`forbidden`], for
/// denials kubelab only sees as text (kubectl's output, a pod's log).
pub fn parse_forbidden(message: &str) -> Option<(String, Request)> {
    let message = message
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let (before, after) = message.split_once("forbidden: User ")?;
    let (user, rest) = go_unquote(after)?;
    let rest = rest.strip_prefix(" cannot ")?;
    let (verb, rest) = rest.split_once(' ')?;
    if let Some(path) = rest.strip_prefix("path ") {
        let (path, _) = go_unquote(path)?;
        return Some((
            user,
            Request::NonResource {
                verb: verb.into(),
                path,
            },
        ));
    }
    let (resource, rest) = go_unquote(rest.strip_prefix("resource ")?)?;
    let (group, rest) = go_unquote(rest.strip_prefix(" in API group ")?)?;
    let namespace = match rest.strip_prefix(" in the namespace ") {
        Some(quoted) => go_unquote(quoted)?.0,
        None if rest.starts_with(" at the cluster scope") => String::new(),
        None => return None,
    };
    // `pods "mydemo" is forbidden: ...`: the object's name is quoted before the verdict.
    let name = before
        .trim_end()
        .trim_end_matches(" is")
        .rsplit_once(' ')
        .and_then(|(_, quoted)| go_unquote(quoted))
        .map(|(name, _)| name)
        .unwrap_or_default();
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), s.to_string()),
        None => (resource, String::new()),
    };
    Some((
        user,
        Request::Resource {
            verb: verb.into(),
            group,
            resource,
            subresource,
            name,
            namespace,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_message_reads_back_into_its_user_and_request() {
        for (user, method, path) in [
            (
                "system:serviceaccount:default:default",
                "GET",
                "/api/v1/namespaces/default/pods",
            ),
            (
                "system:serviceaccount:a:b",
                "GET",
                "/api/v1/namespaces/default/pods/testpod",
            ),
            (
                "alice",
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            ),
            ("bob", "POST", "/api/v1/namespaces/a/pods/p/exec"),
            ("system:anonymous", "GET", "/apis"),
            ("carol", "GET", "/apis/apps/v1/namespaces/x/deployments/web"),
        ] {
            let request = Request::from_http(method, path, "");
            let said = forbidden(
                &sa(user),
                &request,
                "RBAC: role.rbac.authorization.k8s.io \"x\" not found",
            );
            let wrapped = format!("Error from server (Forbidden): {said}\n");
            assert_eq!(
                parse_forbidden(&wrapped),
                Some((user.to_string(), request)),
                "{said}"
            );
        }
        assert_eq!(parse_forbidden("connection refused"), None);
    }

    fn sa(name: &str) -> User {
        User::authenticated_as(name, &[])
    }

    #[test]
    fn the_labs_messages_come_out_exactly() {
        let request = Request::from_http("GET", "/api/v1/namespaces/default/pods", "");
        assert_eq!(
            forbidden(&sa("system:serviceaccount:default:default"), &request, ""),
            "pods is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let named = Request::from_http("GET", "/api/v1/namespaces/default/pods/testpod", "");
        assert_eq!(
            forbidden(&sa("system:serviceaccount:default:default"), &named, ""),
            "pods \"testpod\" is forbidden: User \"system:serviceaccount:default:default\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let path = Request::from_http("GET", "/apis", "");
        assert_eq!(
            forbidden(&User::authenticated_as("system:anonymous", &[]), &path, ""),
            "forbidden: User \"system:anonymous\" cannot get path \"/apis\""
        );
    }

    #[test]
    fn cluster_scope_groups_subresources_and_reasons() {
        let request =
            Request::from_http("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "");
        assert_eq!(
            forbidden(
                &sa("alice"),
                &request,
                "RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found"
            ),
            "clusterroles.rbac.authorization.k8s.io is forbidden: User \"alice\" cannot list resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found"
        );
        let exec = Request::from_http("POST", "/api/v1/namespaces/a/pods/p/exec", "");
        assert!(forbidden(&sa("bob"), &exec, "").starts_with(
            "pods \"p\" is forbidden: User \"bob\" cannot create resource \"pods/exec\""
        ));
    }

    #[test]
    fn quoting_and_sanitizing_follow_go() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        let path = Request::NonResource {
            verb: "get".into(),
            path: "/x<y>&z".into(),
        };
        assert_eq!(
            forbidden(&sa("u"), &path, ""),
            "forbidden: User \"u\" cannot get path \"/x&lt;y&gt;&amp;z\""
        );
    }
}
