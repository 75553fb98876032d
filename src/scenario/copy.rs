//! A lab's isolated copy: its namespaces and its cluster-wide objects under names of
//! their own (`project-swan` becomes `project-swan-03-alice`), so that runs and
//! students share a cluster without seeing each other. The lab's files stay as they
//! are written; every place a name appears is rewritten here, in one pass:
//! - in objects (manifests, asserted trees, patches): `metadata.namespace`, Namespace
//!   objects, subjects' namespaces, cluster-wide names and the roleRefs to them;
//! - in text (in-pod commands, API paths, identities, the API server's messages):
//!   `/namespaces/NS`, `system:serviceaccount:NS:`, `namespace "NS"`, `-n NS`, ...
//!
//! Only the patterns above are rewritten: a bare word such as `default` may just as
//! well name a ServiceAccount, so it stays.

use std::collections::BTreeMap;

use serde_json::Value;

use super::load::{LoadedLab, Manifest};
use super::model::{Action, Apply, Lab, Operation};
use super::problem::Error;

/// Kinds that live outside namespaces and get a name per copy (Namespace has its own
/// rule: its name is a namespace).
const CLUSTER_WIDE_KINDS: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "IngressClass",
    "RuntimeClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

/// How kubectl and the API server spell a cluster-wide name in text.
const CLUSTER_NAME_PREFIXES: &[&str] = &[
    "clusterrole/",
    "clusterroles/",
    "ClusterRole/",
    "clusterrolebinding/",
    "clusterrolebindings/",
    "ClusterRoleBinding/",
    "clusterrole.rbac.authorization.k8s.io/",
    "clusterrolebinding.rbac.authorization.k8s.io/",
    "--clusterrole=",
    "clusterrole ",
    "clusterrolebinding ",
    "clusterroles.rbac.authorization.k8s.io \"",
    "clusterrolebindings.rbac.authorization.k8s.io \"",
    "ClusterRole.rbac.authorization.k8s.io \"",
    "ClusterRoleBinding.rbac.authorization.k8s.io \"",
];

/// How a namespace appears in paths, identities, messages and commands: the text
/// before it, and whether what follows must be a `:` or a `"` (else any character
/// that cannot continue a name).
const NAMESPACE_PATTERNS: &[(&str, After)] = &[
    ("/namespaces/", After::End),
    ("system:serviceaccount:", After::Char(':')),
    ("system:serviceaccounts:", After::End),
    ("namespace \"", After::Char('"')),
    ("namespaces \"", After::Char('"')),
    ("--serviceaccount=", After::Char(':')),
    ("-n ", After::End),
    ("-n=", After::End),
    ("--namespace ", After::End),
    ("--namespace=", After::End),
    ("namespace: ", After::End),
    // The RBAC authorizer's reasons: RoleBinding "NAME/NS", ServiceAccount "NAME/NS".
    ("/", After::Char('"')),
    // Controllers' events: "error looking up service account NS/NAME".
    ("service account ", After::Char('/')),
];

/// The synthetic manifest that makes a copy's namespaces the lab takes as given
/// (`default`): the original exists in every cluster, the copy does not.
pub const COPY_NAMESPACES: &str = "(namespaces of this copy)";

#[derive(Clone, Copy, Debug)]
enum After {
    /// Anything that cannot continue a DNS name.
    End,
    Char(char),
}

/// The names of one copy of one lab.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copy {
    /// Original namespace → the copy's.
    pub namespaces: BTreeMap<String, String>,
    /// Original cluster-wide name → the copy's.
    pub cluster_names: BTreeMap<String, String>,
}

/// The longest name a namespace may have.
const MAX_NAMESPACE: usize = 63;

/// `name-suffix`, shortened (and made unique with a hash) when a namespace would be too
/// long.
fn with_suffix(name: &str, suffix: &str, limit: usize) -> String {
    let full = format!("{name}-{suffix}");
    if full.len() <= limit {
        return full;
    }
    let hash = format!("{:08x}", fnv(&full));
    let keep = limit.saturating_sub(hash.len() + 1);
    let mut short: String = full.chars().take(keep).collect();
    while short.ends_with('-') {
        short.pop();
    }
    format!("{short}-{hash}")
}

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c9dc5u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x01000193)
    })
}

impl Copy {
    /// The copy of `loaded` owned by `owner` (a run id or a student's name): every
    /// namespace and cluster-wide name gets `-LAB-OWNER`.
    pub fn of(loaded: &LoadedLab, owner: &str) -> Copy {
        let suffix = format!("{}-{owner}", loaded.lab.id);
        let namespaces = loaded
            .lab
            .namespaces
            .iter()
            .map(|ns| (ns.clone(), with_suffix(ns, &suffix, MAX_NAMESPACE)))
            .collect();
        let cluster_names = loaded
            .manifests
            .values()
            .flat_map(|m| &m.documents)
            .filter(|d| is_cluster_wide(d))
            .filter_map(|d| d["metadata"]["name"].as_str())
            .map(|name| (name.to_string(), with_suffix(name, &suffix, 253)))
            .collect();
        Copy {
            namespaces,
            cluster_names,
        }
    }

    pub fn namespace<'a>(&'a self, name: &'a str) -> &'a str {
        self.namespaces.get(name).map_or(name, String::as_str)
    }

    /// Every name pattern of `text` rewritten.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in &self.namespaces {
            for (before, after) in NAMESPACE_PATTERNS {
                out = swap(&out, before, from, *after, to);
            }
        }
        for (from, to) in &self.cluster_names {
            for before in CLUSTER_NAME_PREFIXES {
                let after = if before.ends_with('"') {
                    After::Char('"')
                } else {
                    After::End
                };
                out = swap(&out, before, from, after, to);
            }
        }
        out
    }

    /// A lab file's tree (lab.yaml, a manifest, an asserted object, a patch), rewritten
    /// in place. `key` is the field the value sits under.
    pub fn value(&self, value: &mut Value, key: Option<&str>) {
        match value {
            Value::String(text) => {
                *text = match key {
                    Some("namespace") => self.namespace(text).to_string(),
                    Some("namespaces") => self.namespace(text).to_string(),
                    _ => self.text(text),
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.value(item, key)),
            Value::Object(map) => {
                let kind = map.get("kind").and_then(Value::as_str).map(str::to_string);
                for (field, item) in map.iter_mut() {
                    self.value(item, Some(field));
                }
                match kind.as_deref() {
                    Some("Namespace") => self.rename(map, &self.namespaces),
                    Some(kind) if CLUSTER_WIDE_KINDS.contains(&kind) => {
                        self.rename(map, &self.cluster_names)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// `name` and `metadata.name` of an object (or a roleRef) mapped by `names`.
    fn rename(&self, map: &mut serde_json::Map<String, Value>, names: &BTreeMap<String, String>) {
        if let Some(Value::String(name)) = map.get_mut("name")
            && let Some(new) = names.get(name.as_str())
        {
            *name = new.clone();
        }
        if let Some(Value::String(name)) = map.get_mut("metadata").and_then(|m| m.get_mut("name"))
            && let Some(new) = names.get(name.as_str())
        {
            *name = new.clone();
        }
    }

    /// The lab as its copy: lab.yaml's tree rewritten and read again (it passed lint
    /// as written; the copy differs only in names), manifests rewritten, and the copy's
    /// namespaces that the lab does not make itself made first.
    pub fn lab(&self, loaded: &LoadedLab) -> Result<LoadedLab, Error> {
        let mut raw = loaded.raw.clone();
        self.value(&mut raw, None);
        let mut lab: Lab = serde_json::from_value(raw.clone()).map_err(|e| Error::Copy {
            lab: loaded.lab.id.clone(),
            message: e.to_string(),
        })?;
        let mut manifests: BTreeMap<String, Manifest> = loaded
            .manifests
            .iter()
            .map(|(name, manifest)| (name.clone(), self.manifest(manifest)))
            .collect();
        let made_by_lab: Vec<&str> = loaded
            .manifests
            .values()
            .flat_map(|m| &m.documents)
            .filter(|d| d["kind"] == "Namespace")
            .filter_map(|d| d["metadata"]["name"].as_str())
            .collect();
        let missing: Vec<Value> = self
            .namespaces
            .iter()
            .filter(|(original, _)| !made_by_lab.contains(&original.as_str()))
            .map(|(_, copy)| {
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": copy}})
            })
            .collect();
        if !missing.is_empty() {
            manifests.insert(
                COPY_NAMESPACES.to_string(),
                Manifest {
                    path: COPY_NAMESPACES.into(),
                    text: String::new(),
                    locations: vec![Default::default(); missing.len()],
                    documents: missing,
                },
            );
            let make = Operation {
                id: None,
                name: Some("make the namespaces of this copy".into()),
                pod: None,
                container: None,
                namespace: None,
                eventually: None,
                action: Action::Apply(Apply {
                    file: None,
                    files: vec![COPY_NAMESPACES.to_string()],
                    identity: None,
                    expect_error: None,
                }),
            };
            if let Some(first) = lab.steps.first_mut() {
                first.operations.insert(0, make.clone());
            }
            if lab.task.is_some() {
                lab.start.insert(0, make);
            }
        }
        Ok(LoadedLab {
            lab,
            manifests,
            raw,
            copied: Some(self.clone()),
            ..loaded.clone()
        })
    }

    fn manifest(&self, manifest: &Manifest) -> Manifest {
        let mut documents = manifest.documents.clone();
        for document in &mut documents {
            self.value(document, None);
        }
        let text = documents
            .iter()
            .map(|d| serde_saphyr::to_string(d).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n");
        Manifest {
            documents,
            text,
            ..manifest.clone()
        }
    }

    /// "namespace `default` is `default-02-alice`, ClusterRole ..." for a student.
    pub fn describe(&self) -> Vec<String> {
        let namespaces = self
            .namespaces
            .iter()
            .map(|(from, to)| format!("namespace {from} is {to}"));
        let names = self
            .cluster_names
            .iter()
            .map(|(from, to)| format!("{from} is {to}"));
        namespaces.chain(names).collect()
    }
}

/// Each lab as its own copy for `owner` (a run id, a student).
pub fn isolated(labs: Vec<LoadedLab>, owner: &str) -> Result<Vec<LoadedLab>, Error> {
    labs.iter()
        .map(|loaded| Copy::of(loaded, owner).lab(loaded))
        .collect()
}

fn is_cluster_wide(document: &Value) -> bool {
    document["kind"]
        .as_str()
        .is_some_and(|kind| CLUSTER_WIDE_KINDS.contains(&kind))
        && document["metadata"]["namespace"].is_null()
}

fn continues_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'
}

/// `before + name` followed by what `after` allows, replaced by `before + new`.
fn swap(text: &str, before: &str, name: &str, after: After, new: &str) -> String {
    let needle = format!("{before}{name}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let end = at + needle.len();
        let next = rest[end..].chars().next();
        let fits = match after {
            After::End => !next.is_some_and(continues_name),
            After::Char(c) => next == Some(c),
        };
        // A flag must start a word: `-n` in `run-n x` is not a flag.
        let starts_word = !before.starts_with('-')
            || rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || c == '"' || c == '\'');
        out.push_str(&rest[..at]);
        if fits && starts_word {
            out.push_str(before);
            out.push_str(new);
        } else {
            out.push_str(&needle);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn copy() -> Copy {
        Copy {
            namespaces: [("default".to_string(), "default-02-ann".to_string())]
                .into_iter()
                .collect(),
            cluster_names: [(
                "secret-reader".to_string(),
                "secret-reader-02-ann".to_string(),
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn text_rewrites_paths_identities_messages_and_flags_only() {
        let c = copy();
        assert_eq!(
            c.text("/api/v1/namespaces/default/pods?limit=1"),
            "/api/v1/namespaces/default-02-ann/pods?limit=1"
        );
        assert_eq!(
            c.text(r#"pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default""#),
            r#"pods is forbidden: User "system:serviceaccount:default-02-ann:default" cannot list resource "pods" in API group "" in the namespace "default-02-ann""#
        );
        assert_eq!(
            c.text("kubectl -n default get sa default; kubectl get po --namespace=default"),
            "kubectl -n default-02-ann get sa default; kubectl get po --namespace=default-02-ann"
        );
        assert_eq!(
            c.text("kubectl create rolebinding x --clusterrole=secret-reader --serviceaccount=default:tokendemo"),
            "kubectl create rolebinding x --clusterrole=secret-reader-02-ann --serviceaccount=default-02-ann:tokendemo"
        );
        // Names that only begin like a namespace, and bare words, stay.
        assert_eq!(
            c.text("/namespaces/default-other/pods and the default ServiceAccount, kubernetes.default.svc"),
            "/namespaces/default-other/pods and the default ServiceAccount, kubernetes.default.svc"
        );
        assert_eq!(
            c.text(r#"allowed by RoleBinding "reader/default" of Role "reader" to ServiceAccount "app/default""#),
            r#"allowed by RoleBinding "reader/default-02-ann" of Role "reader" to ServiceAccount "app/default-02-ann""#
        );
        assert_eq!(
            c.text("error looking up service account default/ghost"),
            "error looking up service account default-02-ann/ghost"
        );
        assert_eq!(
            c.text(r#"ClusterRoleBinding.rbac.authorization.k8s.io "secret-reader" is invalid"#),
            r#"ClusterRoleBinding.rbac.authorization.k8s.io "secret-reader-02-ann" is invalid"#
        );
        assert_eq!(
            c.text("system:serviceaccounts:default"),
            "system:serviceaccounts:default-02-ann"
        );
        // Rewriting twice changes nothing more.
        let once = c.text("/namespaces/default/pods");
        assert_eq!(c.text(&once), once);
    }

    #[test]
    fn objects_rewrite_namespaces_subjects_and_cluster_wide_names() {
        let c = copy();
        let mut binding = json!({
            "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "default"},
            "roleRef": {"kind": "ClusterRole", "name": "secret-reader"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
                {"kind": "Group", "name": "system:serviceaccounts:default"}
            ]
        });
        c.value(&mut binding, None);
        assert_eq!(binding["metadata"]["namespace"], "default-02-ann");
        assert_eq!(binding["metadata"]["name"], "b");
        assert_eq!(binding["roleRef"]["name"], "secret-reader-02-ann");
        assert_eq!(binding["subjects"][0]["name"], "default");
        assert_eq!(binding["subjects"][0]["namespace"], "default-02-ann");
        assert_eq!(
            binding["subjects"][1]["name"],
            "system:serviceaccounts:default-02-ann"
        );
        let mut role = json!({"kind": "ClusterRole", "metadata": {"name": "secret-reader"}});
        c.value(&mut role, None);
        assert_eq!(role["metadata"]["name"], "secret-reader-02-ann");
        let mut namespace = json!({"kind": "Namespace", "metadata": {"name": "default"}});
        c.value(&mut namespace, None);
        assert_eq!(namespace["metadata"]["name"], "default-02-ann");
        // A Role of the same name is namespaced: it keeps its name.
        let mut role = json!({"kind": "Role", "metadata": {"name": "secret-reader"}});
        c.value(&mut role, None);
        assert_eq!(role["metadata"]["name"], "secret-reader");
    }

    #[test]
    fn long_names_stay_valid_and_distinct() {
        let a = with_suffix(&"n".repeat(60), "03-student-with-a-long-name", 63);
        let b = with_suffix(&"n".repeat(60), "03-student-with-a-long-nam", 63);
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert!(!a.contains("--"));
        assert_eq!(with_suffix("shop", "06-ann", 63), "shop-06-ann");
    }
}
