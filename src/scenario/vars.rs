//! Variables in lab files. `${NAMESPACE}` and `${NAME}` (a value an earlier operation
//! captured) work everywhere; `$(hostname)` and `$(cat /path)` only in what runs in a
//! pod (they mean what the pod's shell makes of them). Lint reports anything else.

/// One reference found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `${NAME}`.
    Variable(&'a str),
    /// `$(hostname)`: the pod's name.
    Hostname,
    /// `$(cat /path)`: a file's content in the pod.
    Cat(&'a str),
    /// `${token:NAME}`: a token a `token` operation requested (only in an http
    /// request's body and headers; it reaches the pod on stdin, never in a command).
    Token(&'a str),
}

pub const NAMESPACE: &str = "NAMESPACE";

/// A `$` that starts nothing kubelab knows, with the text from there (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown(pub String);

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` may be captured into: upper case, digits and `_`.
pub fn is_capture_name(name: &str) -> bool {
    is_name(name)
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every reference in `text`, with its byte range; `Err` at the first `${…}` or `$(…)`
/// that is no known form. `shell` texts (exec scripts) leave those to the shell.
pub fn references(
    text: &str,
    shell: bool,
) -> Result<Vec<(std::ops::Range<usize>, Reference<'_>)>, Unknown> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find('$') {
        let start = at + offset;
        let rest = &text[start..];
        // Each form's end is looked for only as far as its name or path reaches: a
        // `find('}')` from every `${` would make a text full of them quadratic.
        let parsed = if let Some(inner) = rest.strip_prefix("${token:") {
            closed_name(inner)
                .filter(|name| super::lint::is_identifier(name))
                .map(|name| (Reference::Token(name), name.len() + 9))
        } else if let Some(inner) = rest.strip_prefix("${") {
            closed_name(inner)
                .filter(|name| is_name(name))
                .map(|name| (Reference::Variable(name), name.len() + 3))
        } else if rest.starts_with("$(hostname)") {
            Some((Reference::Hostname, "$(hostname)".len()))
        } else if let Some(inner) = rest.strip_prefix("$(cat ") {
            closed_path(inner)
                .filter(|(path, _)| path.starts_with('/'))
                .map(|(path, end)| (Reference::Cat(path), end + 7))
        } else {
            None
        };
        // Only `${…}` and `$(…)` are variable syntax; any other `$` (a regex's end
        // anchor, a price) is text.
        let variable_syntax = rest.starts_with("${") || rest.starts_with("$(");
        match parsed {
            Some((reference, len)) => {
                found.push((start..start + len, reference));
                at = start + len;
            }
            None if shell || !variable_syntax => at = start + 1,
            None => return Err(Unknown(rest.chars().take(20).collect())),
        }
    }
    Ok(found)
}

/// The name at the start of `inner` when a `}` follows it.
fn closed_name(inner: &str) -> Option<&str> {
    let end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    inner[end..].starts_with('}').then_some(&inner[..end])
}

/// The path of `$(cat PATH)` (spaces around it allowed, none inside) and where its `)` is.
fn closed_path(inner: &str) -> Option<(&str, usize)> {
    let start = inner.len() - inner.trim_start().len();
    let path_len = inner[start..]
        .find(|c: char| c.is_whitespace() || c == ')')
        .unwrap_or(inner.len() - start);
    let after = &inner[start + path_len..];
    let close = start + path_len + (after.len() - after.trim_start().len());
    inner[close..]
        .starts_with(')')
        .then_some((&inner[start..start + path_len], close))
}

/// Replaces the references `value` knows (it returns None for the others, which stay).
pub fn expand(text: &str, shell: bool, value: impl Fn(&Reference) -> Option<String>) -> String {
    let Ok(found) = references(text, shell) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, reference) in found {
        out.push_str(&text[last..range.start]);
        match value(&reference) {
            Some(replacement) => out.push_str(&replacement),
            None => out.push_str(&text[range.clone()]),
        }
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text of 200,000 unclosed `${` (a 400 KB script) is read in one pass; looking
    /// for the `}` from each took seconds.
    #[test]
    fn many_unclosed_forms_are_read_in_linear_time() {
        let text = "${".repeat(200_000) + "$(cat /x" + &" ".repeat(1000);
        let started = std::time::Instant::now();
        assert_eq!(references(&text, true), Ok(Vec::new()));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(
            references("$(cat  /a/b )${token:t}", false).unwrap(),
            vec![
                (0..13, Reference::Cat("/a/b")),
                (13..23, Reference::Token("t"))
            ]
        );
    }

    #[test]
    fn the_three_forms_are_found_with_their_places() {
        let text = "/api/v1/namespaces/${NAMESPACE}/pods/$(hostname)?x=${POD_UID}";
        let found: Vec<Reference> = references(text, false)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(
            found,
            vec![
                Reference::Variable("NAMESPACE"),
                Reference::Hostname,
                Reference::Variable("POD_UID")
            ]
        );
        let found = references("{\"token\": \"$(cat /var/run/x/token)\"}", false).unwrap();
        assert_eq!(found[0].1, Reference::Cat("/var/run/x/token"));
    }

    #[test]
    fn a_token_reference_names_a_requested_token() {
        let found = references("{\"token\": \"${token:vault}\"}", false).unwrap();
        assert_eq!(found[0].1, Reference::Token("vault"));
        assert!(references("${token:Vault}", false).is_err());
    }

    #[test]
    fn an_unknown_dollar_is_an_error_except_in_a_shell_script() {
        assert_eq!(
            references("/pods/$(whoami)", false).unwrap_err(),
            Unknown("$(whoami)".into())
        );
        assert!(references("price: 5$", false).unwrap().is_empty());
        assert!(references("^x$", false).unwrap().is_empty());
        assert!(references("${}", false).is_err());
        assert!(references("$(cat relative)", false).is_err());
        let found = references("echo $HOME ${NAMESPACE} $?", true).unwrap();
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn expansion_replaces_what_is_known_and_keeps_the_rest() {
        let out = expand(
            "/ns/${NAMESPACE}/pods/$(hostname)/${X}",
            false,
            |r| match r {
                Reference::Variable("NAMESPACE") => Some("default".into()),
                Reference::Hostname => Some("mydemo".into()),
                _ => None,
            },
        );
        assert_eq!(out, "/ns/default/pods/mydemo/${X}");
    }

    #[test]
    fn capture_names_are_upper_case() {
        assert!(is_capture_name("POD_UID"));
        assert!(is_capture_name("X1"));
        assert!(!is_capture_name("pod_uid"));
        assert!(!is_capture_name("1X"));
    }
}
