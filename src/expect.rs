//! Checking what was observed against what a lab expects: texts, JSON fields by path,
//! and partial trees (an asserted object). Every miss is one line saying what was
//! expected and what came; a tree that does not match also gets a diff.

use serde_json::Value;

use crate::scenario::{JsonExpect, Match, Matchers, TextMatch};

/// `a.b.0.c` into its keys; `\.` is a dot inside a key (`data.ca\.crt`).
pub fn split_path(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                keys.last_mut().expect("one key").push('.');
                chars.next();
            }
            '.' => keys.push(String::new()),
            c => keys.last_mut().expect("one key").push(c),
        }
    }
    keys
}

/// A value by dotted path: keys for objects, numbers for arrays ("items.0.kind").
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    split_path(path).iter().try_fold(value, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

fn shown(value: Option<&Value>) -> String {
    match value {
        Some(v) => v.to_string(),
        None => "nothing".into(),
    }
}

fn quoted(text: &str) -> String {
    const MAX: usize = 400;
    if text.len() <= MAX {
        return format!("{text:?}");
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{:?}… ({} bytes)", &text[..cut], text.len())
}

impl TextMatch {
    /// Every unmet part, as "<what>: expected …, got …". `text` is what was seen.
    pub fn failures(&self, what: &str, text: Option<&str>) -> Vec<String> {
        let Some(text) = text else {
            return vec![format!("{what}: expected {}, got nothing", self.describe())];
        };
        let mut out = Vec::new();
        if let Some(want) = &self.equals
            && text.strip_suffix('\n').unwrap_or(text) != want.strip_suffix('\n').unwrap_or(want)
        {
            out.push(format!(
                "{what}: expected {}, got {}",
                quoted(want),
                quoted(text)
            ));
        }
        if let Some(part) = &self.contains
            && !text.contains(part.as_str())
        {
            out.push(format!(
                "{what}: expected text containing {}, got {}",
                quoted(part),
                quoted(text)
            ));
        }
        if let Some(part) = &self.not_contains
            && text.contains(part.as_str())
        {
            out.push(format!(
                "{what}: expected text without {}, got {}",
                quoted(part),
                quoted(text)
            ));
        }
        if let Some(pattern) = &self.matches {
            // lint checked the pattern; an invalid one here is a miss, not a panic.
            let hit = regex::Regex::new(pattern).is_ok_and(|r| r.is_match(text));
            if !hit {
                out.push(format!(
                    "{what}: expected text matching /{pattern}/, got {}",
                    quoted(text)
                ));
            }
        }
        out
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.equals {
            parts.push(quoted(v));
        }
        if let Some(v) = &self.contains {
            parts.push(format!("containing {}", quoted(v)));
        }
        if let Some(v) = &self.not_contains {
            parts.push(format!("without {}", quoted(v)));
        }
        if let Some(v) = &self.matches {
            parts.push(format!("matching /{v}/"));
        }
        parts.join(" and ")
    }
}

impl Match {
    /// Checks the value found at a path (None: the path does not exist).
    pub fn check(&self, got: Option<&Value>) -> Result<(), String> {
        match self {
            Match::Equals(want) if got == Some(want) => Ok(()),
            Match::Equals(want) => Err(format!("expected {want}, got {}", shown(got))),
            Match::Matchers(m) => m.check(got),
        }
    }
}

impl Matchers {
    fn check(&self, got: Option<&Value>) -> Result<(), String> {
        if let Some(absent) = self.absent {
            match (absent, got) {
                (true, Some(v)) => return Err(format!("expected no such field, got {v}")),
                (false, None) => return Err("expected the field to exist, got nothing".into()),
                _ => {}
            }
        }
        if got.is_none() && self.absent == Some(true) {
            return Ok(());
        }
        let Some(value) = got else {
            return Err("expected a value, got nothing".into());
        };
        if let Some(want) = &self.equals
            && want != value
        {
            return Err(format!("expected {want}, got {value}"));
        }
        if let Some(want) = &self.contains
            && !contains(value, want)
        {
            return Err(format!("expected it to contain {want}, got {value}"));
        }
        if let Some(want) = &self.not_contains
            && contains(value, want)
        {
            return Err(format!("expected it not to contain {want}, got {value}"));
        }
        if let Some(pattern) = &self.matches {
            let hit = value
                .as_str()
                .is_some_and(|s| regex::Regex::new(pattern).is_ok_and(|r| r.is_match(s)));
            if !hit {
                return Err(format!(
                    "expected a string matching /{pattern}/, got {value}"
                ));
            }
        }
        if let Some(want) = self.length {
            let length = match value {
                Value::Array(items) => Some(items.len()),
                Value::Object(map) => Some(map.len()),
                Value::String(s) => Some(s.chars().count()),
                _ => None,
            };
            if length != Some(want) {
                return Err(format!(
                    "expected length {want}, got {} ({value})",
                    length
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "no length".into())
                ));
            }
        }
        Ok(())
    }
}

/// A string containing a substring, an array with an element, an object with a key.
fn contains(value: &Value, want: &Value) -> bool {
    match (value, want) {
        (Value::String(s), Value::String(part)) => s.contains(part.as_str()),
        (Value::Array(items), want) => items.contains(want),
        (Value::Object(map), Value::String(key)) => map.contains_key(key),
        _ => false,
    }
}

/// Every JSON expectation the body misses, as "json.<path>: …".
pub fn json_failures(expect: &JsonExpect, body: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, want) in expect {
        let got = body.and_then(|b| lookup(b, path));
        if let Err(why) = want.check(got) {
            out.push(format!("json.{path}: {why}"));
        }
    }
    out
}

/// Where `actual` does not contain the partial tree `expected`: maps by key, arrays
/// element by element (same length), leaves equal or matched.
pub fn tree_mismatches(expected: &Value, actual: Option<&Value>, path: &str) -> Vec<String> {
    if let Value::Object(map) = expected
        && map
            .keys()
            .any(|k| crate::scenario::MATCHER_KEYS.contains(&k.as_str()))
    {
        return match Match::classify(expected).map(|m| m.check(actual)) {
            Ok(Ok(())) => Vec::new(),
            Ok(Err(why)) | Err(why) => vec![format!("{}: {why}", shown_path(path))],
        };
    }
    match (expected, actual) {
        (Value::Object(want), Some(Value::Object(got))) => want
            .iter()
            .flat_map(|(key, value)| {
                tree_mismatches(value, got.get(key), &join(path, &escape(key)))
            })
            .collect(),
        (Value::Array(want), Some(Value::Array(got))) if want.len() == got.len() => want
            .iter()
            .zip(got)
            .enumerate()
            .flat_map(|(i, (w, g))| tree_mismatches(w, Some(g), &join(path, &i.to_string())))
            .collect(),
        (Value::Array(want), Some(Value::Array(got))) => vec![format!(
            "{}: expected {} elements, got {}",
            shown_path(path),
            want.len(),
            got.len()
        )],
        (want, got) if got == Some(want) => Vec::new(),
        (want, got) => vec![format!(
            "{}: expected {want}, got {}",
            shown_path(path),
            shown(got)
        )],
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn escape(key: &str) -> String {
    key.replace('.', "\\.")
}

fn shown_path(path: &str) -> &str {
    if path.is_empty() {
        "(the object)"
    } else {
        path
    }
}

/// The part of `actual` that `expected` talks about: its keys, at every level.
pub fn prune(expected: &Value, actual: &Value) -> Value {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got))
            if !want
                .keys()
                .any(|k| crate::scenario::MATCHER_KEYS.contains(&k.as_str())) =>
        {
            let mut out = serde_json::Map::new();
            for (key, value) in want {
                if let Some(found) = got.get(key) {
                    out.insert(key.clone(), prune(value, found));
                }
            }
            Value::Object(out)
        }
        (Value::Array(want), Value::Array(got)) => Value::Array(
            got.iter()
                .enumerate()
                .map(|(i, g)| {
                    want.get(i)
                        .map(|w| prune(w, g))
                        .unwrap_or_else(|| g.clone())
                })
                .collect(),
        ),
        (_, got) => got.clone(),
    }
}

/// `--- expected` / `+++ actual` as YAML lines, the actual side pruned to what the
/// expectation names (Chainsaw and kuttl show the same kind of diff).
pub fn diff(expected: &Value, actual: Option<&Value>) -> String {
    let want = to_yaml(expected);
    let got = match actual {
        Some(actual) => to_yaml(&prune(expected, actual)),
        None => "(no such object)\n".to_string(),
    };
    let diff = similar::TextDiff::from_lines(&want, &got);
    diff.unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| format!("{value:#}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(yaml: &str) -> TextMatch {
        serde_saphyr::from_str::<crate::scenario::Text>(yaml)
            .unwrap()
            .0
    }

    #[test]
    fn paths_escape_dots_inside_keys() {
        assert_eq!(split_path("data.ca\\.crt"), vec!["data", "ca.crt"]);
        let cm = json!({"data": {"ca.crt": "PEM"}, "items": [{"kind": "Pod"}]});
        assert_eq!(lookup(&cm, "data.ca\\.crt"), Some(&json!("PEM")));
        assert_eq!(lookup(&cm, "items.0.kind"), Some(&json!("Pod")));
        assert_eq!(lookup(&cm, "items.1.kind"), None);
    }

    #[test]
    fn text_matchers_say_what_they_wanted_and_what_came() {
        assert!(text("hello").failures("stdout", Some("hello\n")).is_empty());
        assert_eq!(
            text("hello").failures("stdout", Some("bye")),
            vec!["stdout: expected \"hello\", got \"bye\""]
        );
        let m = text("{contains: forbidden, not-contains: secret, matches: '^pods'}");
        assert!(m.failures("message", Some("pods is forbidden")).is_empty());
        let misses = m.failures("message", Some("a secret"));
        assert_eq!(misses.len(), 3, "{misses:?}");
        assert_eq!(
            text("x").failures("stderr", None),
            vec!["stderr: expected \"x\", got nothing"]
        );
    }

    #[test]
    fn json_matchers_cover_equality_length_absence_and_containment() {
        let body = json!({"kind": "PodList", "items": [1, 2], "groups": ["system:authenticated"]});
        let expect: JsonExpect = serde_saphyr::from_str(
            "{kind: PodList, items: {length: 2}, groups: {contains: 'system:authenticated'}, metadata.annotations: {absent: true}}",
        )
        .unwrap();
        assert!(json_failures(&expect, Some(&body)).is_empty());
        let expect: JsonExpect =
            serde_saphyr::from_str("{items: {length: 3}, kind: {absent: true}, groups: {not-contains: 'system:authenticated'}}").unwrap();
        let misses = json_failures(&expect, Some(&body));
        assert_eq!(misses.len(), 3, "{misses:?}");
        assert!(
            misses[1].starts_with("json.items: expected length 3, got 2"),
            "{misses:?}"
        );
        assert!(
            misses[2].starts_with("json.kind: expected no such field"),
            "{misses:?}"
        );
    }

    #[test]
    fn a_partial_tree_matches_a_bigger_object() {
        let object = json!({"metadata": {"name": "sa", "labels": {"a": "1"}}, "secrets": [], "automountServiceAccountToken": false});
        let tree = json!({"metadata": {"name": "sa"}, "automountServiceAccountToken": false});
        assert!(tree_mismatches(&tree, Some(&object), "").is_empty());
        let tree = json!({"metadata": {"labels": {"a": {"matches": "^[0-9]$"}}}, "secrets": {"length": 0}, "imagePullSecrets": {"absent": true}});
        assert!(
            tree_mismatches(&tree, Some(&object), "").is_empty(),
            "{:?}",
            tree_mismatches(&tree, Some(&object), "")
        );
        let tree = json!({"metadata": {"name": "other"}, "secrets": [1]});
        assert_eq!(
            tree_mismatches(&tree, Some(&object), ""),
            vec![
                "metadata.name: expected \"other\", got \"sa\"",
                "secrets: expected 1 elements, got 0"
            ]
        );
    }

    #[test]
    fn a_diff_shows_expected_then_the_actual_fields_it_names() {
        let object =
            json!({"metadata": {"name": "sa", "uid": "123"}, "automountServiceAccountToken": true});
        let tree = json!({"automountServiceAccountToken": false});
        let diff = diff(&tree, Some(&object));
        assert!(diff.contains("--- expected\n+++ actual"), "{diff}");
        assert!(
            diff.contains("-automountServiceAccountToken: false"),
            "{diff}"
        );
        assert!(
            diff.contains("+automountServiceAccountToken: true"),
            "{diff}"
        );
        assert!(!diff.contains("uid"), "only the named fields: {diff}");
    }
}
