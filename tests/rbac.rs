//! The RBAC evaluator against kube-apiserver: a fixed-seed set of random policies and
//! requests compared with SubjectAccessReviews, and `kubelab why` on the labs' RBAC.

mod support;

use support::{Lab, stdout, text};

#[test]
fn five_hundred_fixed_seed_cases_agree_with_kube_apiserver() {
    let lab = Lab::new();
    let _cluster = lab.up(&[]);
    let out = lab.run(&[
        "rbac",
        "verify",
        "--cases",
        "500",
        "--per-policy",
        "100",
        "--seed",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["cases"], 500);
    assert_eq!(outcome["disagreements"], 0, "{outcome:#}");
    assert_eq!(outcome["reason_mismatches"], 0, "{outcome:#}");
    // Both answers occur often enough for the agreement to mean something.
    let allowed = outcome["allowed"].as_u64().unwrap();
    assert!((100..=400).contains(&allowed), "allowed {allowed} of 500");
}

#[test]
fn why_explains_denials_and_allows_and_its_suggestion_really_works() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let rbac = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/seed/02-custom-serviceaccount/rbac.yaml"
    );
    cluster.kubectl_ok(&["apply", "-f", rbac]);
    let why = |args: &[&str]| {
        let mut all = vec!["why"];
        all.extend_from_slice(args);
        lab.run(&all)
    };

    let allowed = why(&[
        "--as",
        "system:serviceaccount:default:tokendemo",
        "GET",
        "/api/v1/namespaces/default/pods",
    ]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    assert!(
        stdout(&allowed).contains("allowed by RoleBinding default/read-pods → Role default/pod-reader rule #0: get, watch, list pods"),
        "{}",
        text(&allowed)
    );
    assert!(
        stdout(&allowed).contains(
            "kube-apiserver agrees: allowed (RBAC: allowed by RoleBinding \"read-pods/default\""
        ),
        "{}",
        text(&allowed)
    );

    let denied = why(&[
        "--as",
        "system:serviceaccount:default:tokendemo",
        "GET",
        "/api/v1/namespaces/default/secrets",
    ]);
    assert_eq!(denied.status.code(), Some(1), "{}", text(&denied));
    let said = stdout(&denied);
    assert!(said.contains("secrets is forbidden: User \"system:serviceaccount:default:tokendemo\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""), "{said}");
    assert!(said.contains("RoleBinding default/read-pods → Role default/pod-reader rule #0 (get, watch, list pods)"), "{said}");
    assert!(
        said.contains("resource: allows pods, not secrets"),
        "{said}"
    );
    assert!(said.contains("kube-apiserver agrees: denied"), "{said}");

    // The suggested Role and RoleBinding, applied to the real cluster, allow it.
    let json = why(&[
        "--as",
        "system:serviceaccount:default:tokendemo",
        "GET",
        "/api/v1/namespaces/default/secrets",
        "-o",
        "json",
    ]);
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let suggestion = answer["why"]["suggestion"].as_str().unwrap();
    let file = lab.state_root.path().join("suggestion.yaml");
    std::fs::write(&file, suggestion).unwrap();
    cluster.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let now = why(&[
        "--as",
        "system:serviceaccount:default:tokendemo",
        "GET",
        "/api/v1/namespaces/default/secrets",
    ]);
    assert_eq!(now.status.code(), Some(0), "{}", text(&now));
    assert!(
        stdout(&now).contains("allowed by RoleBinding default/allow-list-secrets"),
        "{}",
        text(&now)
    );
    // ... and nothing more: reading one secret is still denied.
    let still = why(&[
        "--as",
        "system:serviceaccount:default:tokendemo",
        "GET",
        "/api/v1/namespaces/default/secrets/x",
    ]);
    assert_eq!(still.status.code(), Some(1), "{}", text(&still));

    // Without a token: /version is public, /apis is for authenticated users.
    let version = why(&["--as", "system:anonymous", "GET", "/version"]);
    assert!(
        stdout(&version).contains("allowed by ClusterRoleBinding system:public-info-viewer"),
        "{}",
        text(&version)
    );
    let apis = why(&["--as", "system:anonymous", "GET", "/apis"]);
    assert!(
        stdout(&apis).contains("forbidden: User \"system:anonymous\" cannot get path \"/apis\""),
        "{}",
        text(&apis)
    );
    // watch and list are told apart by the query, as the API server does.
    let watch = why(&[
        "--as",
        "system:serviceaccount:default:tokendemo",
        "GET",
        "/api/v1/namespaces/default/secrets?watch=true",
    ]);
    assert!(
        stdout(&watch).contains("which is: watch secrets in namespace default"),
        "{}",
        text(&watch)
    );
}

/// The run's RBAC view is kept by watches, not lists: a probe right after a lab writes
/// a binding must still see it, and right after a lab deletes one must not. Each write
/// here is asked about at once, before its watch event can be counted on.
#[tokio::test(flavor = "multi_thread")]
async fn the_runs_rbac_view_shows_every_write_kubelab_finished_before_it_asks() {
    use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
    use kube::api::{Api, DeleteParams, PostParams};
    use kubelab::rbac::snapshot::{RBAC_GROUP, Snapshots};

    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let client = kubelab::cluster::kubeconfig::client(&cluster.kubeconfig)
        .await
        .unwrap();
    let snapshots = Snapshots::default();
    let bound = |policy: &kubelab::rbac::Policy, name: &str| {
        policy
            .role_bindings
            .get("default")
            .is_some_and(|set| set.bindings.iter().any(|b| b.name == name))
    };
    let first = snapshots.cluster_wide(&client).await.unwrap().unwrap();
    assert!(
        first.cluster_roles.contains_key("cluster-admin"),
        "the first view holds the cluster's default ClusterRoles"
    );
    let api: Api<RoleBinding> = Api::namespaced(client.clone(), "default");
    for round in 0..20 {
        let name = format!("watched-{round}");
        let binding = RoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "ClusterRole".into(),
                name: "view".into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: "default".into(),
                namespace: Some("default".into()),
                ..Default::default()
            }]),
        };
        let made = api.create(&PostParams::default(), &binding).await.unwrap();
        snapshots.wrote(RBAC_GROUP, "RoleBinding", &made.metadata);
        let policy = snapshots.cluster_wide(&client).await.unwrap().unwrap();
        assert!(
            bound(&policy, &name),
            "round {round}: {name} written, not shown"
        );

        api.delete(&name, &DeleteParams::default()).await.unwrap();
        snapshots.deleted(
            RBAC_GROUP,
            "RoleBinding",
            Some("default"),
            &name,
            made.metadata.uid.as_deref(),
        );
        let policy = snapshots.cluster_wide(&client).await.unwrap().unwrap();
        assert!(
            !bound(&policy, &name),
            "round {round}: {name} deleted, still shown"
        );
    }
}
