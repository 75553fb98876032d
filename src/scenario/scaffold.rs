//! `kubelab new NAME`: a lab folder that passes lint and runs as it is — a
//! ServiceAccount, a Role, a pod that runs as it, and two probes of its token (one
//! allowed, one denied with the API server's words) — to change into one's own lab.

use std::path::{Path, PathBuf};

use super::Error;

/// What a new lab's folder holds: file name and text.
pub fn files(name: &str) -> Result<Vec<(&'static str, String)>, String> {
    let valid = !name.is_empty()
        && name.len() <= 50
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        return Err(format!(
            "'{name}' is not a lab folder name: use lowercase letters, digits and dashes (at most 50), e.g. 20-list-configmaps"
        ));
    }
    // A leading number is the id, as in the built-in labs ("02-custom-serviceaccount").
    let id = match name.split_once('-') {
        Some((number, _)) if number.chars().all(|c| c.is_ascii_digit()) => number.to_string(),
        _ => name.to_string(),
    };
    // At most 54 characters: a valid namespace name.
    let namespace = &format!("lab-{name}");
    let lab = LAB_YAML
        .replace("{id}", &id)
        .replace("{name}", name)
        .replace("{ns}", namespace);
    let manifests = MANIFESTS
        .replace("{ns}", namespace)
        .replace("{image}", crate::images::CURL_IMAGE);
    let schema = serde_json::to_string_pretty(&super::schema()).expect("schema serializes");
    Ok(vec![
        ("lab.yaml", lab),
        ("manifests.yaml", manifests),
        ("explain.md.tera", EXPLAIN.to_string()),
        ("lab.schema.json", schema + "\n"),
    ])
}

/// Writes the folder `parent/name`; an existing folder is never touched.
pub fn create(parent: &Path, name: &str) -> Result<PathBuf, Error> {
    let files = files(name).map_err(Error::Usage)?;
    let dir = parent.join(name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    std::fs::create_dir(&dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Usage(format!(
                "{} exists: choose another name, or remove it first",
                dir.display()
            ))
        } else {
            Error::Io {
                path: dir.clone(),
                source,
            }
        }
    })?;
    for (file, text) in files {
        let path = dir.join(file);
        if let Err(source) = std::fs::write(&path, text) {
            // Half a lab would block the next try ("exists"): none is left.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(Error::Io { path, source });
        }
    }
    Ok(dir)
}

const LAB_YAML: &str = r#"# yaml-language-server: $schema=lab.schema.json
# A new lab: change the manifests and the expectations, then
#   kubelab lint --dir {name} && kubelab run --dir {name}
id: "{id}"
title: "{name}: what a pod's ServiceAccount may read"
summary: >
  Pod `client` runs as ServiceAccount `reader`, which a Role lets list ConfigMaps in
  namespace `{ns}`, and nothing else.
source: "kubelab new"
namespaces: [{ns}]
steps:
  - id: setup
    name: a ServiceAccount, a Role that lets it list ConfigMaps, and a pod that runs as it
    do:
      - apply: manifests.yaml
      - wait: pod/client
  - id: probes
    name: what the pod's token may do
    do:
      - id: list_configmaps
        name: listing ConfigMaps is allowed
        pod: client
        http:
          path: /api/v1/namespaces/{ns}/configmaps
          expect: {status: 200, json: {kind: ConfigMapList}}
      - id: list_secrets
        name: listing Secrets is forbidden
        pod: client
        http:
          path: /api/v1/namespaces/{ns}/secrets
          expect:
            status: 403
            reason: Forbidden
            message: 'secrets is forbidden: User "system:serviceaccount:{ns}:reader" cannot list resource "secrets" in API group "" in the namespace "{ns}"'
"#;

const MANIFESTS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
  namespace: {ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: configmap-reader
  namespace: {ns}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader-reads-configmaps
  namespace: {ns}
subjects:
  - kind: ServiceAccount
    name: reader
    namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: configmap-reader
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: {ns}
spec:
  serviceAccountName: reader
  terminationGracePeriodSeconds: 0
  containers:
    - name: main
      image: {image}
      command: [sleep, "86400"]
"#;

const EXPLAIN: &str = r#"## {{ lab.title }}

{% for step in lab.steps %}{% for op in step.operations %}{% if op.check %}- {{ op.name }}: {{ op.observed.status | default(value="") }} {% if op.passed %}as expected{% else %}**not as expected**{% endif %}
{% endif %}{% endfor %}{% endfor %}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_number_is_the_id() {
        let files = files("20-list-configmaps").unwrap();
        let lab = &files.iter().find(|(f, _)| *f == "lab.yaml").unwrap().1;
        assert!(lab.contains("id: \"20\""), "{lab}");
        assert!(
            lab.contains("namespaces: [lab-20-list-configmaps]"),
            "{lab}"
        );
        let lab = &files_of("mine")[0].1;
        assert!(lab.contains("id: \"mine\""), "{lab}");
    }

    fn files_of(name: &str) -> Vec<(&'static str, String)> {
        files(name).unwrap()
    }

    #[test]
    fn a_bad_name_says_what_a_good_one_is() {
        for bad in ["", "My Lab", "-x", "x-", "a/b", &"x".repeat(51)] {
            let message = files(bad).unwrap_err();
            assert!(
                message.contains("lowercase letters, digits and dashes"),
                "{message}"
            );
        }
    }
}
