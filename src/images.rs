//! Container images the labs use: finding them in manifests (for `kubelab images` and
//! `kind load`), and replacing them as the command line asks (`--curl-image`,
//! `--kubectl-image`, `--use-image OLD=NEW`).

use std::collections::BTreeMap;

use serde_json::Value;

/// The image the built-in labs' probe pods use: curl and a shell.
pub const CURL_IMAGE: &str = "curlimages/curl:8.11.1";
/// The image of lab 04's Deployment: kubectl of the pinned Kubernetes version.
pub const KUBECTL_IMAGE: &str = concat!(
    "registry.k8s.io/kubectl:",
    env!("KUBELAB_KUBERNETES_VERSION")
);

/// Where containers are in a pod spec, and where a pod spec is in a workload.
const POD_SPEC_PATHS: [&str; 3] = [
    "/spec",
    "/spec/template/spec",
    "/spec/jobTemplate/spec/template/spec",
];
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Image replacements, old reference → new.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageMap(pub BTreeMap<String, String>);

impl ImageMap {
    /// From the command line: the two shortcuts, then `OLD=NEW` pairs.
    pub fn from_args(
        curl: Option<&str>,
        kubectl: Option<&str>,
        pairs: &[String],
    ) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        if let Some(image) = curl {
            map.insert(CURL_IMAGE.to_string(), image.to_string());
        }
        if let Some(image) = kubectl {
            map.insert(KUBECTL_IMAGE.to_string(), image.to_string());
        }
        for pair in pairs {
            match pair.split_once('=') {
                Some((old, new)) if !old.is_empty() && !new.is_empty() => {
                    map.insert(old.to_string(), new.to_string());
                }
                _ => {
                    return Err(format!(
                        "'{pair}' is not OLD=NEW (e.g. {CURL_IMAGE}=registry.example/curl:8)"
                    ));
                }
            }
        }
        Ok(ImageMap(map))
    }

    pub fn resolve<'a>(&'a self, image: &'a str) -> &'a str {
        self.0.get(image).map(String::as_str).unwrap_or(image)
    }
}

fn containers_mut(document: &mut Value) -> Vec<&mut Value> {
    let mut found = Vec::new();
    for spec_path in POD_SPEC_PATHS {
        // Only one of the paths holds the pod spec; take the first that has containers.
        let has_containers = document
            .pointer(spec_path)
            .is_some_and(|spec| spec.get("containers").is_some_and(Value::is_array));
        if !has_containers {
            continue;
        }
        let spec = document.pointer_mut(spec_path).expect("checked above");
        let fields = spec.as_object_mut().expect("a pod spec is an object");
        for (key, value) in fields.iter_mut() {
            if let (true, Value::Array(items)) = (CONTAINER_LISTS.contains(&key.as_str()), value) {
                found.extend(items.iter_mut());
            }
        }
        break;
    }
    found
}

/// The images a manifest document runs.
pub fn images_in(document: &Value) -> Vec<String> {
    let mut copy = document.clone();
    containers_mut(&mut copy)
        .into_iter()
        .filter_map(|c| c["image"].as_str().map(str::to_string))
        .collect()
}

/// Replaces images in place as `map` says.
pub fn rewrite(document: &mut Value, map: &ImageMap) {
    if map.0.is_empty() {
        return;
    }
    for container in containers_mut(document) {
        if let Some(image) = container["image"].as_str()
            && let Some(new) = map.0.get(image)
        {
            container["image"] = Value::String(new.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_are_found_in_pods_and_in_workload_templates() {
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"image": "a"}], "initContainers": [{"image": "b"}]}});
        assert_eq!(images_in(&pod), vec!["a", "b"]);
        let deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"image": "c"}]}}}});
        assert_eq!(images_in(&deployment), vec!["c"]);
        assert!(images_in(&json!({"kind": "Role", "rules": []})).is_empty());
    }

    #[test]
    fn overrides_replace_exactly_the_named_images() {
        let map = ImageMap::from_args(Some("mirror/curl:1"), None, &["x:1=y:2".into()]).unwrap();
        let mut deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"image": CURL_IMAGE}, {"image": "x:1"}, {"image": "untouched:3"}
        ]}}}});
        rewrite(&mut deployment, &map);
        assert_eq!(
            images_in(&deployment),
            vec!["mirror/curl:1", "y:2", "untouched:3"]
        );
    }

    #[test]
    fn a_pair_without_equals_is_rejected() {
        assert!(ImageMap::from_args(None, None, &["just-an-image".into()]).is_err());
        assert!(ImageMap::from_args(None, None, &["=y".into()]).is_err());
    }

    #[test]
    fn the_kubectl_image_matches_the_pinned_version() {
        assert!(KUBECTL_IMAGE.ends_with(crate::versions::KUBERNETES));
    }
}
