//! What an expectation may say about a text or a JSON value: equal, contain, not
//! contain, match a regex, have a length, be absent. A plain value means "equals".

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::forms::{ShortForms, short_or_long, string_or};

/// A text: a plain string must equal it (a final newline is ignored); a mapping may
/// combine `equals`, `contains`, `not-contains` and `matches` (a regex).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TextMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_contains: Option<String>,
    /// A regular expression (Rust `regex` syntax) the text must match somewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
}

/// [`TextMatch`] as a field: a plain string or the mapping.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Text(pub TextMatch);

impl ShortForms for Text {
    type Long = TextMatch;
    const EXPECTING: &'static str =
        "a string (equals) or {equals, contains, not-contains, matches}";
    fn from_long(long: TextMatch) -> Self {
        Text(long)
    }
    fn from_str(text: String) -> Result<Self, String> {
        Ok(Text(TextMatch {
            equals: Some(text),
            ..Default::default()
        }))
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        short_or_long(d)
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        string_or::<TextMatch>(
            generator,
            "A string the text must equal, or {equals, contains, not-contains, matches}.",
        )
    }
}

impl std::ops::Deref for Text {
    type Target = TextMatch;
    fn deref(&self) -> &TextMatch {
        &self.0
    }
}

/// The keys that make a mapping a matcher rather than a literal object.
pub const MATCHER_KEYS: &[&str] = &[
    "equals",
    "contains",
    "not-contains",
    "matches",
    "length",
    "absent",
];

/// What a JSON value (or a field of an asserted object) must be.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    /// A string containing this text, or an array with this element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_contains: Option<Value>,
    /// A regex a string must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// The number of elements of an array or object, or characters of a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    /// true: the field must not exist; false: it must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<bool>,
}

/// A plain value (equals) or [`Matchers`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Match {
    Equals(Value),
    Matchers(Matchers),
}

impl Match {
    /// Reads a value as a matcher when it is a mapping of matcher keys only; a mapping
    /// that mixes them with other keys is an error (use `{equals: {...}}`).
    pub fn classify(value: &Value) -> Result<Match, String> {
        let Some(map) = value.as_object() else {
            return Ok(Match::Equals(value.clone()));
        };
        let matcher_keys: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| MATCHER_KEYS.contains(k))
            .collect();
        if matcher_keys.is_empty() {
            return Ok(Match::Equals(value.clone()));
        }
        if let Some(other) = map.keys().find(|k| !MATCHER_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "mixes matcher keys ({}) with the key '{other}'; to compare a whole object write {{equals: {{...}}}}",
                matcher_keys.join(", ")
            ));
        }
        let matchers: Matchers =
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        if let Some(pattern) = &matchers.matches {
            regex::Regex::new(pattern)
                .map_err(|e| format!("matches: not a regex: {}", super::lint::regex_reason(&e)))?;
        }
        Ok(Match::Matchers(matchers))
    }
}

impl<'de> Deserialize<'de> for Match {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Match::classify(&Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

impl JsonSchema for Match {
    fn schema_name() -> Cow<'static, str> {
        "Match".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A value the field must equal, or matchers: {equals, contains, not-contains, matches, length, absent}."
        })
    }
}

/// JSON expectations by path: `items.0.metadata.name`, keys with dots escaped
/// (`data.ca\.crt`).
pub type JsonExpect = BTreeMap<String, Match>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plain_value_means_equals_and_a_matcher_mapping_is_read_as_one() {
        assert_eq!(
            Match::classify(&json!("PodList")).unwrap(),
            Match::Equals(json!("PodList"))
        );
        assert_eq!(
            Match::classify(&json!({"name": "x"})).unwrap(),
            Match::Equals(json!({"name": "x"}))
        );
        let Match::Matchers(m) = Match::classify(&json!({"length": 2, "contains": "a"})).unwrap()
        else {
            panic!("not matchers")
        };
        assert_eq!(m.length, Some(2));
        assert!(
            Match::classify(&json!({"length": 1, "name": "x"}))
                .unwrap_err()
                .contains("mixes matcher keys")
        );
        assert!(
            Match::classify(&json!({"matches": "("}))
                .unwrap_err()
                .starts_with("matches:")
        );
    }

    #[test]
    fn a_text_is_a_string_or_a_mapping() {
        let text: Text = serde_saphyr::from_str("hello").unwrap();
        assert_eq!(text.equals.as_deref(), Some("hello"));
        let text: Text = serde_saphyr::from_str("{contains: x, not-contains: y}").unwrap();
        assert_eq!(text.contains.as_deref(), Some("x"));
        assert_eq!(text.not_contains.as_deref(), Some("y"));
        assert!(serde_saphyr::from_str::<Text>("{containz: x}").is_err());
    }
}
