//! The labs end to end on the local control plane: real apiserver, real curl and
//! kubectl, reports, cleanup, tokens kept secret.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kubelab::report::{Outcome, RunReport};
use support::{Cluster, Lab, chromium_dom, stderr, stdout, text};

/// Every kind the labs create, for "is anything with this label left?".
const KINDS: &str =
    "pods,deployments,replicasets,serviceaccounts,roles,rolebindings,secrets,configmaps,namespaces";

fn labelled(cluster: &Cluster, selector: &str) -> Vec<String> {
    cluster
        .kubectl_ok(&["get", KINDS, "-A", "-l", selector, "-o", "name"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// An audit policy that records TokenRequest responses: the test learns every token
/// the apiserver issues, to check that none is printed.
fn audit_args(dir: &Path) -> (Vec<String>, PathBuf) {
    let policy = dir.join("audit-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n  resources: [{group: \"\", resources: [\"serviceaccounts/token\"]}]\n- level: None\n",
    )
    .unwrap();
    let log = dir.join("audit.log");
    (
        vec![
            format!("--apiserver-arg=--audit-policy-file={}", policy.display()),
            format!("--apiserver-arg=--audit-log-path={}", log.display()),
        ],
        log,
    )
}

fn issued_tokens(audit_log: &Path) -> Vec<String> {
    std::fs::read_to_string(audit_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|event| {
            event["responseObject"]["status"]["token"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn count(xml: &str, element: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut found = 0;
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.name().as_ref() == element.as_bytes() =>
            {
                found += 1
            }
            quick_xml::events::Event::Eof => return found,
            _ => {}
        }
    }
}

#[test]
fn all_labs_pass_on_the_local_control_plane_and_leave_nothing_behind() {
    let lab = Lab::new();
    let (audit, audit_log) = audit_args(lab.state_root.path());
    let audit: Vec<&str> = audit.iter().map(String::as_str).collect();
    let cluster = lab.up(&audit);
    let tmp = tempfile::tempdir().unwrap();
    let junit = lab.state_root.path().join("junit.xml");

    let out = lab
        .kubelab()
        .env("TMPDIR", tmp.path())
        .args([
            "run",
            "--output",
            "json",
            "--junit",
            junit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The JSON report: every lab passed, and it round-trips through the report type.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report: RunReport = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        json,
        "JSON round trip"
    );
    assert_eq!(report.labs.len(), 12);
    for lab_report in &report.labs {
        assert_eq!(lab_report.outcome, Outcome::Passed, "{lab_report:?}");
        let explanation = lab_report.explanation.as_deref().unwrap_or_default();
        assert!(
            explanation.starts_with(&format!("## Lab {}", lab_report.id)),
            "{explanation}"
        );
        assert!(
            !explanation.contains("could not be rendered"),
            "{explanation}"
        );
    }
    let probes: Vec<_> = report.checks().collect();
    // Every check operation of the twelve labs: probes, asserts, events, rejections.
    assert_eq!(probes.len(), 74);
    assert!(
        probes
            .iter()
            .all(|p| p.ran.starts_with("on host for pod ") || p.ran.starts_with("as kubelab"))
    );
    // Facts the cluster produced, not kubelab: lab 01's Forbidden message.
    let forbidden = report.labs[0]
        .steps
        .iter()
        .flat_map(|s| &s.operations)
        .find(|op| op.id == "list_pods")
        .unwrap();
    assert_eq!(forbidden.observed.status, Some(403));
    assert_eq!(
        forbidden.observed.message.as_deref(),
        Some(
            "pods is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        )
    );

    // The RBAC evaluator predicted every HTTP answer, and every 403 message to the letter.
    let mut compared = 0;
    for probe in probes.iter().filter(|p| p.kind == "http") {
        let Some(why) = &probe.observed.rbac else {
            continue;
        };
        let status = probe.observed.status.unwrap();
        if status == 401 {
            continue; // authentication failed: authorization never ran
        }
        assert_eq!(why.allowed, status != 403, "{}: {why:?}", probe.name);
        if status == 403 {
            assert_eq!(
                why.forbidden_message, probe.observed.message,
                "{}",
                probe.name
            );
            compared += 1;
        }
    }
    assert!(compared >= 8, "only {compared} 403 messages compared");

    // The JUnit file: one testsuite per lab, one testcase per probe, no failures.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(count(&xml, "testsuite"), 12);
    assert_eq!(count(&xml, "testcase"), probes.len());
    assert_eq!(count(&xml, "failure"), 0);

    // Every other built-in lab, and a hands-on lab's start, check and stop: all write
    // what they write, so the token check below sees every kind of output.
    let state = lab.state_root.path();
    let (html, markdown) = (state.join("report.html"), state.join("summary.md"));
    let conformance = lab
        .kubelab()
        .env("TMPDIR", tmp.path())
        .args(["run", "--suite", "conformance", "--explain", "--timings"])
        .args(["--html", html.to_str().unwrap()])
        .args(["--markdown", markdown.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(conformance.status.code(), Some(0), "{}", text(&conformance));
    // kubelab empties and finalizes every lab namespace itself (lab 16's Job too, whose
    // default orphan deletion would hold it): none is left to the controller's 5 s hold.
    assert!(
        !stderr(&conformance).contains("left to the namespace controller"),
        "{}",
        text(&conformance)
    );
    let mut written = vec![stdout(&out), stderr(&out), xml.clone()];
    written.extend([stdout(&conformance), stderr(&conformance)]);
    for args in [
        &["start", "02"][..],
        &["check", "02", "-o", "json"],
        &["hint", "02"],
        &["stop", "02"],
    ] {
        let step = lab
            .kubelab()
            .env("TMPDIR", tmp.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            matches!(step.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            text(&step)
        );
        written.extend([stdout(&step), stderr(&step)]);
    }

    // No token the apiserver issued appears anywhere kubelab wrote: its outputs, its
    // reports, and every file of the state directory (the cluster's logs, the progress
    // file) but the audit log this test asked the apiserver for.
    let tokens = issued_tokens(&audit_log);
    assert!(
        tokens.len() >= 20,
        "the audit log recorded {} tokens",
        tokens.len()
    );
    let mut files = vec![state.to_path_buf()];
    let mut searched = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if path != audit_log && path.is_file() {
            searched += 1;
            written.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned());
        }
    }
    assert!(
        searched >= 10,
        "only {searched} files in the state directory"
    );
    assert!(
        written.iter().any(|w| w.contains("<html")),
        "the HTML report was searched"
    );
    for token in &tokens {
        for output in &written {
            assert!(
                !output.contains(token.as_str()),
                "a whole token was written"
            );
        }
    }
    // The token prefixes the report shows are those of real tokens.
    let prefixes: BTreeSet<String> = probes
        .iter()
        .filter_map(|p| p.observed.token.as_ref())
        .map(|t| t.prefix.trim_end_matches('…').to_string())
        .collect();
    assert!(!prefixes.is_empty());
    assert!(
        prefixes
            .iter()
            .all(|p| tokens.iter().any(|t| t.starts_with(p.as_str())))
    );

    // Nothing labelled with the run's id remains, and the token files are gone.
    assert!(labelled(&cluster, &format!("kubelab.dev/run={}", report.run_id)).is_empty());
    // kubelab removed the labs' namespaces itself (emptied, then finalized): nothing the
    // controllers made in them is left behind either.
    for namespace in ["project-swan", "quiet-workloads"] {
        let left = cluster.kubectl_ok(&[
            "get",
            "serviceaccounts,configmaps,secrets,events,pods,replicasets,endpointslices,leases",
            "-n",
            namespace,
            "-o",
            "name",
        ]);
        assert_eq!(left.trim(), "", "left in {namespace}");
    }
    assert!(
        report.namespaces_wait_ms < 4000,
        "the namespaces waited {} ms: the namespace controller's 5 s hold",
        report.namespaces_wait_ms
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temporary files left behind"
    );
}

#[test]
fn a_wrong_expectation_fails_with_exit_1_and_says_what_was_expected() {
    let lab = Lab::new();
    let _cluster = lab.up(&[]);
    let junit = lab.state_root.path().join("junit.xml");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labs/wrong-expectation");
    let out = lab
        .kubelab()
        .args([
            "run",
            "--dir",
            dir.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("✗ listing pods (wrongly expected to work) → 403 Forbidden"),
        "{err}"
    );
    assert!(err.contains("status: expected 200, got 403"), "{err}");
    assert!(
        err.contains("json.kind: expected \"PodList\", got \"Status\""),
        "{err}"
    );
    // The API server's exact words, next to the diagnosis.
    assert!(
        err.contains("the API server said: pods is forbidden: User \"system:serviceaccount:wrong-expectation:default\" cannot list resource \"pods\""),
        "{err}"
    );
    assert!(
        err.contains("✓ discovery (rightly expected to work) → 200"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("FAILED  wrong-expectation"),
        "{}",
        text(&out)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(count(&xml, "testcase"), 2);
    assert_eq!(count(&xml, "failure"), 1);
    assert!(xml.contains("status: expected 200, got 403"), "{xml}");
}

/// Every key of `value` (recursively, through objects and arrays) is a property the
/// schema node describes.
fn keys_are_in_schema(
    value: &serde_json::Value,
    node: &serde_json::Value,
    root: &serde_json::Value,
    at: &str,
) {
    let resolve = |node: &serde_json::Value| -> serde_json::Value {
        let mut node = node.clone();
        // Option<T> is anyOf [T, null]; a reference points into $defs.
        if let Some(any) = node.get("anyOf").and_then(|a| a.as_array()) {
            node = any
                .iter()
                .find(|n| n.get("type") != Some(&"null".into()))
                .cloned()
                .unwrap();
        }
        if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
            let name = reference.trim_start_matches("#/$defs/");
            node = root["$defs"][name].clone();
        }
        node
    };
    let node = resolve(node);
    match value {
        serde_json::Value::Object(fields) => {
            let Some(properties) = node.get("properties") else {
                return; // a free-form object (captured values, the RBAC answer)
            };
            for (key, field) in fields {
                let schema = properties
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}.{key} is not in the report schema"));
                keys_are_in_schema(field, schema, root, &format!("{at}.{key}"));
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(item) = node.get("items") {
                for (i, value) in items.iter().enumerate() {
                    keys_are_in_schema(value, item, root, &format!("{at}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

#[test]
fn a_failed_run_reads_the_same_in_html_markdown_and_json() {
    let lab = Lab::new();
    let _cluster = lab.up(&[]);
    let html = lab.state_root.path().join("report.html");
    let markdown = lab.state_root.path().join("summary.md");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labs/wrong-expectation");
    let out = lab
        .kubelab()
        .args(["run", "--dir", dir.to_str().unwrap(), "-o", "json"])
        .args([
            "--html",
            html.to_str().unwrap(),
            "--markdown",
            markdown.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let forbidden = "pods is forbidden: User \"system:serviceaccount:wrong-expectation:default\" cannot list resource \"pods\"";

    // JSON: versioned, and every field it has is in `kubelab schema report`.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema_version"], 1);
    let schema: serde_json::Value =
        serde_json::from_slice(&lab.run(&["schema", "report"]).stdout).unwrap();
    assert_eq!(schema["$id"], "https://kubelab.dev/schema/report/v1.json");
    keys_are_in_schema(&json, &schema, &schema, "report");

    // HTML, as Chromium shows it: the summary, the failing check, the API server's words
    // and the rendered explanation.
    let dom = chromium_dom(&html, "");
    assert!(dom.contains("0/1 labs passed"), "{dom}");
    assert!(dom.contains("data-outcome=\"failed\""), "{dom}");
    assert!(
        dom.contains("listing pods (wrongly expected to work)"),
        "{dom}"
    );
    assert!(dom.contains("status: expected 200, got 403"), "{dom}");
    assert!(
        dom.contains(&forbidden.replace('"', "&quot;")) || dom.contains(forbidden),
        "{dom}"
    );
    assert!(dom.contains("What to change"), "{dom}");
    assert!(dom.contains("no RoleBinding in wrong-expectation"), "{dom}");
    assert!(dom.contains("class=\"explanation\""), "{dom}");
    assert!(!dom.contains("could not be rendered"), "{dom}");

    // Markdown for a CI job summary: the table, then the failure with its details.
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.starts_with("## kubelab: 0/1 labs passed"), "{md}");
    assert!(
        md.contains("| wrong-expectation | A deliberately wrong expectation | ❌ failed | 1/2 |"),
        "{md}"
    );
    assert!(
        md.contains("- **listing pods (wrongly expected to work)** → 403 Forbidden"),
        "{md}"
    );
    assert!(md.contains("status: expected 200, got 403"), "{md}");
}

#[test]
fn a_new_lab_runs_and_passes_as_made() {
    let lab = Lab::new();
    let _cluster = lab.up(&[]);
    let parent = lab.state_root.path().join("my-labs");
    let out = lab.run(&[
        "new",
        "20-list-configmaps",
        "--dir",
        parent.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = lab.run(&["run", "--dir", parent.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    let checks: Vec<_> = report.checks().collect();
    assert_eq!(checks.len(), 2, "{checks:?}");
    // The denial is the API server's, word for word, as the scaffold states it.
    let denied = checks.iter().find(|op| op.id == "list_secrets").unwrap();
    assert_eq!(denied.observed.status, Some(403));
    assert!(
        denied.observed.message.as_deref().unwrap_or_default().contains(
            "User \"system:serviceaccount:lab-20-list-configmaps:reader\" cannot list resource \"secrets\""
        ),
        "{denied:?}"
    );
}

#[test]
fn rerunning_a_kept_lab_works_and_each_run_removes_its_objects() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let out = lab.run(&["run", "02", "--keep", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    let kept = labelled(&cluster, &format!("kubelab.dev/run={}", first.run_id));
    for object in [
        "pod/mydemo",
        "serviceaccount/tokendemo",
        "role.rbac.authorization.k8s.io/pod-reader",
        "rolebinding.rbac.authorization.k8s.io/read-pods",
    ] {
        assert!(
            kept.contains(&object.to_string()),
            "{object} not kept: {kept:?}"
        );
    }

    let out = lab.run(&["run", "02", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let second: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(first.run_id, second.run_id);
    assert!(
        labelled(&cluster, "kubelab.dev/lab=02").is_empty(),
        "the second run removes what it took over"
    );
}

#[test]
fn cleanup_spares_what_existed_before_and_refuses_to_change_it() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    // A namespace the user made, and an unrelated object in it.
    cluster.kubectl_ok(&["create", "namespace", "project-swan"]);
    cluster.kubectl_ok(&[
        "-n",
        "project-swan",
        "create",
        "configmap",
        "keep-me",
        "--from-literal=a=b",
    ]);
    let out = lab.run(&["run", "03", "04"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("using existing Namespace project-swan"),
        "{}",
        text(&out)
    );
    cluster.kubectl_ok(&["get", "namespace", "project-swan"]);
    cluster.kubectl_ok(&["-n", "project-swan", "get", "configmap", "keep-me"]);
    assert!(labelled(&cluster, "kubelab.dev/lab").is_empty());

    // A Role of the same name as lab 02's, made by someone else: kubelab will not touch it.
    cluster.kubectl_ok(&[
        "-n",
        "default",
        "create",
        "role",
        "pod-reader",
        "--verb=get",
        "--resource=configmaps",
    ]);
    let out = lab.run(&["run", "02"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains("Role default/pod-reader already exists and was not made by this run"),
        "{}",
        text(&out)
    );
    let role = cluster.kubectl_json(&["-n", "default", "get", "role", "pod-reader"]);
    assert_eq!(
        role["rules"][0]["resources"][0], "configmaps",
        "the user's Role is unchanged"
    );
    assert!(role["metadata"]["labels"].is_null());
    // What the failed run had created before it stopped (the ServiceAccount) is gone.
    assert!(labelled(&cluster, "kubelab.dev/lab=02").is_empty());
}

#[test]
fn an_interrupted_run_removes_what_it_created() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    // Interrupt once a lab has applied its first step.
    let (code, seen, rest) = lab.interrupt_when(
        &["run"],
        |line| line.contains("✓") && line.contains("applied"),
        |seen| {
            assert!(
                !labelled(&cluster, "kubelab.dev/lab").is_empty(),
                "objects exist mid-run: {seen:?}"
            )
        },
    );
    assert_eq!(code, Some(130), "{seen:?}\n{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("interrupted: removed")),
        "{rest:?}"
    );
    let left = labelled(&cluster, "kubelab.dev/lab");
    assert!(left.is_empty(), "left: {left:?}\n{seen:#?}\n{rest:#?}");
}

#[test]
fn run_starts_a_cluster_when_none_runs_and_stops_it_afterwards() {
    let lab = Lab::new();
    let out = lab.run(&["run", "01"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("started the local cluster 'kubelab' for this run"),
        "{}",
        text(&out)
    );
    assert!(
        lab.processes().is_empty(),
        "the cluster this run started was left running"
    );
    assert!(!lab.state_root.path().join("kubelab").exists());
}

#[test]
fn no_wait_leaves_only_terminating_namespaces_and_nothing_inside_them() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let out = lab.run(&["run", "--no-wait", "--timings", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: RunReport = serde_json::from_slice(&out.stdout).unwrap();
    // --timings: a row per lab, and the run's wait for namespaces, which --no-wait
    // skips (the namespace controller alone holds each for 5 s).
    let err = stderr(&out);
    assert!(
        err.contains("lab           apply    pod start       probes"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("03 ")).count(),
        1,
        "{err}"
    );
    assert!(
        report.namespaces_wait_ms < 2000,
        "{}",
        report.namespaces_wait_ms
    );
    assert!(report.labs.iter().map(|l| l.cleanup_ms).sum::<u64>() > 0);
    assert!(
        stderr(&out).contains("terminating: the namespace controller removes them"),
        "{}",
        text(&out)
    );
    // At once: nothing the run made is left but namespaces on their way out.
    let left: Vec<String> = labelled(&cluster, &format!("kubelab.dev/run={}", report.run_id))
        .into_iter()
        .filter(|o| !o.starts_with("namespace/"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let namespaces = cluster.kubectl_json(&[
        "get",
        "namespaces",
        "-l",
        &format!("kubelab.dev/run={}", report.run_id),
        "-o",
        "json",
    ]);
    let items = namespaces["items"].as_array().unwrap();
    // The controller holds a namespace for 5 s at least: they are all still there.
    assert!(items.len() >= 9, "{namespaces:#}");
    for namespace in items {
        assert_eq!(namespace["status"]["phase"], "Terminating", "{namespace:#}");
    }
}
