//! Fields that accept a short form as well as a mapping (`apply: rbac.yaml` or
//! `apply: {file: rbac.yaml, as: ...}`), and the small value types lab files write as
//! strings (durations, object references). Errors keep the parser's position.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// What a field accepts besides its mapping form.
pub trait ShortForms: Sized {
    /// The mapping form, as serde derives it.
    type Long: for<'de> Deserialize<'de>;
    const EXPECTING: &'static str;
    fn from_long(long: Self::Long) -> Self;
    fn from_str(_text: String) -> Result<Self, String> {
        Err(format!("expected {}", Self::EXPECTING))
    }
    fn from_list(_items: Vec<String>) -> Result<Self, String> {
        Err(format!("expected {}", Self::EXPECTING))
    }
}

/// Deserializes `T` from a string, a list of strings or a mapping, as `T` allows.
pub fn short_or_long<'de, D: Deserializer<'de>, T: ShortForms>(d: D) -> Result<T, D::Error> {
    struct Forms<T>(PhantomData<T>);
    impl<'de, T: ShortForms> Visitor<'de> for Forms<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            T::from_str(text.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<T, E> {
            self.visit_str(&b.to_string())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            T::from_list(items).map_err(de::Error::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let long = T::Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(T::from_long(long))
        }
    }
    d.deserialize_any(Forms(PhantomData))
}

/// The schema of a field with a string short form: the string, or the mapping.
pub fn string_or<T: JsonSchema>(generator: &mut SchemaGenerator, description: &str) -> Schema {
    let long = generator.subschema_for::<T>();
    json_schema!({
        "description": description,
        "anyOf": [{"type": "string"}, long]
    })
}

/// A field that takes `T`'s mapping form or its short forms.
#[derive(Clone, Debug, PartialEq)]
pub struct ShortOr<T>(pub T);

impl<'de, T: ShortForms> Deserialize<'de> for ShortOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        short_or_long(d).map(ShortOr)
    }
}

impl<T: ShortForms> JsonSchema for ShortOr<T>
where
    T::Long: JsonSchema,
{
    fn schema_name() -> Cow<'static, str> {
        format!("ShortOr{}", T::Long::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<T::Long>();
        json_schema!({
            "description": T::EXPECTING,
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, long]
        })
    }
}

/// A duration as people type it: "90s", "2m", "500ms".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::cli::parse_duration(&text)
            .map(Timeout)
            .map_err(de::Error::custom)
    }
}

impl Serialize for Timeout {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::ui::format_duration(self.0))
    }
}

impl JsonSchema for Timeout {
    fn schema_name() -> Cow<'static, str> {
        "Timeout".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: 500ms, 90s, 2m, 1h.",
            "pattern": "^[0-9.]+(ms|s|m|h)?$"
        })
    }
}

/// An object as kubectl names it: `TYPE/NAME` (`pod/mydemo`,
/// `clusterrolebinding.rbac.authorization.k8s.io/x`), or `TYPE` alone for every object
/// of that type (with a selector, or for "none may exist"). TYPE is a resource's plural,
/// singular or kind, optionally `.group`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub resource: String,
    pub name: Option<String>,
}

impl ObjectRef {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (resource, name) = match text.split_once('/') {
            Some((resource, name)) => (resource, Some(name)),
            None => (text, None),
        };
        let valid_type = !resource.is_empty()
            && resource
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid_type {
            return Err(format!(
                "'{text}' is not TYPE/NAME or TYPE, like pod/mydemo or configmaps"
            ));
        }
        if let Some(name) = name
            && (name.is_empty() || name.contains('/'))
        {
            return Err(format!("'{text}' has no valid name after TYPE/"));
        }
        Ok(ObjectRef {
            resource: resource.to_string(),
            name: name.map(str::to_string),
        })
    }

    /// The pod reference of a probe: `mydemo` (a Pod) or `deployment/x`.
    pub fn pod(text: &str) -> Result<Self, String> {
        if text.contains('/') {
            Self::parse(text)
        } else {
            Self::parse(&format!("pod/{text}"))
        }
    }

    pub fn is_pod(&self) -> bool {
        matches!(self.resource.as_str(), "pod" | "pods" | "Pod")
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{name}", self.resource),
            None => f.write_str(&self.resource),
        }
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ObjectRef::parse(&text).map_err(de::Error::custom)
    }
}

impl Serialize for ObjectRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ObjectRef {
    fn schema_name() -> Cow<'static, str> {
        "ObjectRef".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "TYPE/NAME as kubectl writes it (pod/mydemo, deployment.apps/web), or TYPE alone.",
            "pattern": "^[A-Za-z0-9.-]+(/[^/]+)?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_references_are_type_slash_name() {
        assert_eq!(
            ObjectRef::parse("pod/mydemo").unwrap(),
            ObjectRef {
                resource: "pod".into(),
                name: Some("mydemo".into())
            }
        );
        assert_eq!(ObjectRef::parse("configmaps").unwrap().name, None);
        assert_eq!(
            ObjectRef::parse("clusterrolebinding.rbac.authorization.k8s.io/x")
                .unwrap()
                .resource,
            "clusterrolebinding.rbac.authorization.k8s.io"
        );
        for bad in ["", "/x", "pod/", "pod/a/b", "po d/x"] {
            assert!(ObjectRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(ObjectRef::pod("mydemo").unwrap().to_string(), "pod/mydemo");
        assert_eq!(
            ObjectRef::pod("deployment/web").unwrap().to_string(),
            "deployment/web"
        );
    }
}
