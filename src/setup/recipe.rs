//! What `kubelab setup` builds: each upstream component, the Go module it is built
//! from and how. The modules (go.mod and go.sum, pinned) and the image recipe are
//! compiled into kubelab, so an installed binary can build them anywhere.

use include_dir::{Dir, include_dir};

use crate::versions;

/// controlplane/ of the source tree: the pinned Go modules, images.sh and pause.c.
pub static RECIPE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/controlplane");

/// The set a local control plane and the kind provider need (the default).
pub const CONTROL_PLANE: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "kind",
];
/// What the local node adds (`--node`).
pub const NODE: &[&str] = &["kube-scheduler", "kube-proxy", "kubelet", "coredns"];
/// The harnesses bench/compare.sh races (`harnesses`); never needed by the tests.
pub const HARNESSES: &[&str] = &["chainsaw", "kubectl-kuttl"];

pub const TAGS: &str = "selinux,notest,grpcnotrace";

#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub name: &'static str,
    pub version: &'static str,
    /// The folder of controlplane/ holding its go.mod.
    pub module_dir: &'static str,
    /// The Go package of its main.
    pub package: String,
    pub ldflags: String,
    /// A Go release to build with (GOTOOLCHAIN), when the installed one cannot.
    pub toolchain: Option<&'static str>,
}

/// The ldflags Kubernetes' hack/lib/version.sh sets; without them /version says v0.0.0.
fn kubernetes_ldflags() -> String {
    let version = versions::KUBERNETES;
    let minor = version
        .trim_start_matches("v1.")
        .split('.')
        .next()
        .unwrap_or_default();
    let mut flags = String::from("-s -w");
    for package in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        flags.push_str(&format!(
            " -X {package}.gitVersion={version} -X {package}.gitMajor=1 -X {package}.gitMinor={minor} -X {package}.gitTreeState=clean -X {package}.buildDate=1970-01-01T00:00:00Z"
        ));
    }
    flags
}

pub fn component(name: &str) -> Option<Component> {
    // The name as kubelab keeps it ('static), or not a component at all.
    let name = all_names().into_iter().find(|n| *n == name)?;
    let own = |name, version, module_dir, package: &str, ldflags: &str, toolchain| Component {
        name,
        version,
        module_dir,
        package: package.to_string(),
        ldflags: format!("-s -w {ldflags}").trim_end().to_string(),
        toolchain,
    };
    Some(match name {
        "etcd" => own(
            "etcd",
            versions::ETCD,
            "etcd",
            "go.etcd.io/etcd/server/v3",
            &format!(
                "-X go.etcd.io/etcd/api/v3/version.GitSHA={}",
                versions::ETCD
            ),
            None,
        ),
        "kind" => own("kind", versions::KIND, "kind", "sigs.k8s.io/kind", "", None),
        "coredns" => own(
            "coredns",
            versions::COREDNS,
            "coredns",
            "github.com/coredns/coredns",
            "",
            None,
        ),
        // Go 1.26 cannot build Chainsaw v0.2.12 (its TestDeps lacks ModulePath()): both
        // harnesses are built with the Go release they were made with.
        "chainsaw" => own(
            "chainsaw",
            versions::CHAINSAW,
            "chainsaw",
            "github.com/kyverno/chainsaw",
            "",
            Some(versions::HARNESS_GO),
        ),
        "kubectl-kuttl" => own(
            "kubectl-kuttl",
            versions::KUTTL,
            "kuttl",
            "github.com/kudobuilder/kuttl/cmd/kubectl-kuttl",
            "",
            Some(versions::HARNESS_GO),
        ),
        "kube-apiserver"
        | "kube-controller-manager"
        | "kubectl"
        | "kube-scheduler"
        | "kube-proxy"
        | "kubelet" => Component {
            name,
            version: versions::KUBERNETES,
            module_dir: "kubernetes",
            package: format!("k8s.io/kubernetes/cmd/{name}"),
            ldflags: kubernetes_ldflags(),
            toolchain: None,
        },
        _ => return None,
    })
}

/// Every name `setup` accepts, for errors and completion.
pub fn all_names() -> Vec<&'static str> {
    CONTROL_PLANE
        .iter()
        .chain(NODE)
        .chain(HARNESSES)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_has_its_module_compiled_in() {
        for name in all_names() {
            let component = component(name).unwrap();
            for file in ["go.mod", "go.sum"] {
                let path = format!("{}/{file}", component.module_dir);
                assert!(RECIPE.get_file(&path).is_some(), "{path} is not embedded");
            }
        }
        assert!(RECIPE.get_file("images.sh").is_some());
        assert!(RECIPE.get_file("images/pause.c").is_some());
    }

    #[test]
    fn each_module_requires_the_version_kubelab_pins() {
        // go.mod and versions.env must agree, or setup would stamp a wrong version.
        for name in all_names() {
            let component = component(name).unwrap();
            let go_mod = RECIPE
                .get_file(format!("{}/go.mod", component.module_dir))
                .and_then(|f| f.contents_utf8())
                .unwrap();
            let module = match component.module_dir {
                "kubernetes" => "k8s.io/kubernetes",
                "etcd" => "go.etcd.io/etcd/server/v3",
                "kind" => "sigs.k8s.io/kind",
                "coredns" => "github.com/coredns/coredns",
                "chainsaw" => "github.com/kyverno/chainsaw",
                "kuttl" => "github.com/kudobuilder/kuttl",
                other => panic!("unknown module dir {other}"),
            };
            let pinned = format!("{module} {}", component.version);
            assert!(
                go_mod.contains(&pinned),
                "{}/go.mod lacks {pinned}",
                component.module_dir
            );
        }
    }

    #[test]
    fn kubernetes_binaries_carry_their_version() {
        let apiserver = component("kube-apiserver").unwrap();
        assert!(apiserver.ldflags.contains(&format!(
            "k8s.io/component-base/version.gitVersion={}",
            versions::KUBERNETES
        )));
        assert!(component("kube-nonsense").is_none());
    }
}
