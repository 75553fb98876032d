//! Lab files: the built-in labs pass lint; every malformed fixture gives its exact
//! error, naming file:line:col and the field; the schema editors use is current.

mod support;

use std::path::Path;

use support::{Lab, stderr, stdout, text};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_built_in_labs_pass_lint() {
    let out = Lab::new()
        .kubelab()
        .current_dir(manifest_dir())
        .args(["lint"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).starts_with("12 labs,"), "{}", text(&out));
}

/// Each folder under tests/fixtures/malformed is a broken lab; its expected.txt holds
/// the one error line it must produce (paths relative to the crate).
#[test]
fn every_malformed_lab_gives_its_exact_error() {
    let root = manifest_dir().join("tests/fixtures/malformed");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "only {} malformed fixtures", cases.len());
    let lab = Lab::new();
    let mut mismatches = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        let relative = format!("tests/fixtures/malformed/{name}");
        let out = lab
            .kubelab()
            .current_dir(manifest_dir())
            .args(["lint", "--dir", &relative])
            .output()
            .unwrap();
        let first = stderr(&out).lines().next().unwrap_or_default().to_string();
        if out.status.code() != Some(2) || first != format!("error: {}", expected.trim_end()) {
            mismatches.push(format!(
                "{name}: exit {:?}\n  want: error: {}\n  got:  {first}",
                out.status.code(),
                expected.trim_end()
            ));
        }
        // Every error names the file, a position and (but for pure syntax errors) a field.
        let location = format!("{relative}/");
        assert!(
            first.starts_with(&format!("error: {location}")),
            "{name}: {first}"
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn all_problems_of_all_labs_are_reported_together() {
    let out = Lab::new()
        .kubelab()
        .current_dir(manifest_dir())
        .args(["lint", "--dir", "tests/fixtures/malformed"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = stderr(&out);
    for case in std::fs::read_dir(manifest_dir().join("tests/fixtures/malformed"))
        .unwrap()
        .flatten()
    {
        let expected = std::fs::read_to_string(case.path().join("expected.txt")).unwrap();
        assert!(
            all.contains(expected.trim_end()),
            "missing from the combined report: {expected}"
        );
    }
}

/// A lab file over 1 MiB is refused before it is read, naming the file and the limit.
/// Generated here rather than committed: a fixture would be megabytes.
#[test]
fn a_lab_file_over_the_size_limit_is_refused() {
    let fixture = manifest_dir().join("tests/fixtures/malformed/template-syntax");
    let lab = Lab::new();
    for (file, at) in [
        ("pod.yaml", "lab.yaml:10:9: steps[0].do[0].apply: "),
        (
            "explain.md.tera",
            "lab.yaml:1:1: explain: cannot read the explanation template: ",
        ),
        ("lab.yaml", "lab.yaml:1:1: "),
    ] {
        let dir = tempfile::tempdir().unwrap();
        for name in ["lab.yaml", "pod.yaml"] {
            std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("explain.md.tera"), "# {{ lab.title }}\n").unwrap();
        // Valid text, a comment line of padding: only the size is wrong.
        let path = dir.path().join(file);
        let mut content = std::fs::read_to_string(&path).unwrap();
        content.push('#');
        content.push_str(&"x".repeat((1 << 20) + 1 - content.len()));
        assert_eq!(content.len(), (1 << 20) + 1);
        std::fs::write(&path, content).unwrap();
        let out = lab
            .kubelab()
            .args(["lint", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let first = stderr(&out).lines().next().unwrap_or_default().to_string();
        let want = format!(
            "error: {}/{at}'{file}' is 1048577 bytes, over the limit of 1048576 bytes (1 MiB) for a lab file",
            dir.path().display()
        );
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out));
        assert_eq!(first, want, "{file}");
    }
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let out = Lab::new().run(&["schema"]);
    assert!(out.status.success());
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_dir().join("scenarios/lab.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        generated, committed,
        "run `kubelab schema > scenarios/lab.schema.json`"
    );
    // The schema rejects unknown fields, as the loader does.
    assert_eq!(generated["additionalProperties"], false);
}

#[test]
fn every_built_in_lab_points_editors_at_the_schema() {
    let mut checked = 0;
    for suite in ["seed", "conformance"] {
        for entry in std::fs::read_dir(manifest_dir().join("scenarios").join(suite))
            .unwrap()
            .flatten()
        {
            let lab = entry.path().join("lab.yaml");
            let first = std::fs::read_to_string(&lab)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string();
            assert_eq!(
                first,
                "# yaml-language-server: $schema=../../lab.schema.json",
                "{}",
                lab.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 28, "12 seed and 16 conformance labs");
}

#[test]
fn both_built_in_suites_pass_lint_from_any_directory() {
    let anywhere = tempfile::tempdir().unwrap();
    for (suite, labs) in [("seed", 12), ("conformance", 16)] {
        let out = Lab::new()
            .kubelab()
            .current_dir(anywhere.path())
            .args(["lint", "--suite", suite])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            stdout(&out).starts_with(&format!("{labs} labs,")),
            "{}",
            text(&out)
        );
    }
    let out = Lab::new().run(&["list", "--suite", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn show_prints_the_in_pod_commands_without_a_cluster() {
    let out = Lab::new()
        .kubelab()
        .current_dir(manifest_dir())
        .args(["show", "02"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let shown = stdout(&out);
    assert!(shown.contains("step 1 [start]: set up the task"), "{shown}");
    assert!(
        shown.contains("step 2 [solution]: apply the solution"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "check [reads_pods]: mydemo may list pods in default and read its own pod (2 points)"
        ),
        "{shown}"
    );
    assert!(shown.contains("  wait for pod/mydemo (ready)"), "{shown}");
    assert!(
        shown.contains("$ curl -sS --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt -H \"Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\" \"https://kubernetes.default.svc/api/v1/namespaces/default/pods/$(hostname)\""),
        "{shown}"
    );
    assert!(
        shown.contains(
            "$ kubectl auth can-i list pods --as=system:serviceaccount:default:tokendemo -n default"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("apply rbac.yaml: Role default/pod-reader"),
        "{shown}"
    );
}

#[test]
fn list_names_every_lab_and_an_unknown_lab_is_a_usage_error() {
    let lab = Lab::new();
    let out = lab
        .kubelab()
        .current_dir(manifest_dir())
        .args(["list"])
        .output()
        .unwrap();
    let listed = stdout(&out);
    for folder in [
        "01-default-serviceaccount",
        "02-custom-serviceaccount",
        "03-project-swan-secret-reader",
        "04-deployment-forbidden",
        "05-token-automount-disabled",
    ] {
        assert!(listed.contains(folder), "{folder} missing:\n{listed}");
    }
    let out = lab
        .kubelab()
        .current_dir(manifest_dir())
        .args(["show", "99"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("no lab matches '99'"),
        "{}",
        text(&out)
    );
}
