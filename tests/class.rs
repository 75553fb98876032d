//! A class of three on the real local control plane, driven as people would: the
//! instructor makes the class, each student works with their own kubeconfig (kubelab
//! and kubectl), the grades tell the three apart, one student is fenced off from
//! another's secrets, the grades page is read in a real headless Chromium, and `class
//! down` leaves nothing behind.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::{Lab, chromium_dom, kubectl_with, stderr, stdout, text};

/// A student at their own machine: their own kubelab state, their own kubeconfig.
struct Student<'a> {
    lab: &'a Lab,
    state: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl<'a> Student<'a> {
    fn new(lab: &'a Lab, kubeconfig: PathBuf) -> Self {
        Student {
            lab,
            state: tempfile::tempdir().unwrap(),
            kubeconfig,
        }
    }

    /// kubelab as the student runs it: the cluster is the one KUBECONFIG names.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.lab.kubelab();
        command
            .env("KUBELAB_STATE_DIR", self.state.path())
            .env("KUBELAB_PROVIDER", "auto")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args);
        command
    }

    fn kubelab(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&self.kubeconfig, args)
    }

    fn kubectl_ok(&self, args: &[&str]) {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    }
}

#[test]
fn a_class_of_three_is_fenced_graded_and_taken_down() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let dir = lab.state_root.path().join("class");
    let roster = lab.state_root.path().join("roster.txt");
    std::fs::write(&roster, "# morning group\nann\nbo\ncy\n").unwrap();
    let out = lab.run(&[
        "class",
        "up",
        "--roster",
        roster.to_str().unwrap(),
        "--class-name",
        "k8s101",
        "--out",
        dir.to_str().unwrap(),
        "02",
        "07",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("3 identities: client certificates signed by the cluster"),
        "{}",
        text(&out)
    );
    let student = |name: &str| {
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&kubeconfig).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{name}'s kubeconfig holds a key");
        Student::new(&lab, kubeconfig)
    };
    let (ann, bo, cy) = (student("ann"), student("bo"), student("cy"));

    // The API server knows each student by their certificate.
    let whoami = ann.kubectl(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(stdout(&whoami), "kubelab:k8s101:ann", "{}", text(&whoami));

    // Each starts lab 02 in their own copy; kubectl then works there.
    for s in [&ann, &bo, &cy] {
        let out = s.kubelab(&["start", "02"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let out = ann.kubelab(&["start", "07"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("secret-reader is secret-reader-07-ann"),
        "{}",
        text(&out)
    );
    // The task's own commands, with the copy's names.
    ann.kubectl_ok(&[
        "-n",
        "vault-sync-07-ann",
        "delete",
        "rolebinding",
        "syncer-reads-secrets",
    ]);
    ann.kubectl_ok(&[
        "-n",
        "vault-sync-07-ann",
        "create",
        "rolebinding",
        "syncer-reads-secrets",
        "--clusterrole=secret-reader-07-ann",
        "--serviceaccount=vault-sync-07-ann:syncer",
    ]);
    let out = ann.kubelab(&["check", "07"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // ann solves lab 02 by hand, as the task says (kubectl's namespace is her copy).
    ann.kubelab(&["start", "02"]);
    ann.kubectl_ok(&["create", "serviceaccount", "tokendemo"]);
    ann.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
    ]);
    ann.kubectl_ok(&[
        "create",
        "rolebinding",
        "read-pods",
        "--role=pod-reader",
        "--serviceaccount=default-02-ann:tokendemo",
    ]);
    ann.kubectl_ok(&["delete", "pod", "mydemo", "--wait"]);
    ann.kubectl_ok(&[
        "run",
        "mydemo",
        "--image=curlimages/curl:8.11.1",
        r#"--overrides={"spec":{"serviceAccountName":"tokendemo","terminationGracePeriodSeconds":1}}"#,
        "--command",
        "--",
        "sleep",
        "86400",
    ]);
    let out = ann.kubelab(&["check", "02"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // bo forgets the list verb: a known mistake.
    bo.kubectl_ok(&["create", "serviceaccount", "tokendemo"]);
    bo.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get",
        "--resource=pods",
    ]);
    bo.kubectl_ok(&[
        "create",
        "rolebinding",
        "read-pods",
        "--role=pod-reader",
        "--serviceaccount=default-02-bo:tokendemo",
    ]);
    let out = bo.kubelab(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // The fence: bo may not read ann's secrets, tokens or namespace, and the API
    // server says so in its own words.
    let out = bo.kubectl(&["get", "secrets", "-n", "default-02-ann"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"secrets is forbidden: User "kubelab:k8s101:bo" cannot list resource "secrets" in API group "" in the namespace "default-02-ann""#),
        "{}",
        text(&out)
    );
    let out = bo.kubectl(&["create", "token", "tokendemo", "-n", "default-02-ann"]);
    assert!(
        stderr(&out)
            .contains(r#"User "kubelab:k8s101:bo" cannot create resource "serviceaccounts/token""#),
        "{}",
        text(&out)
    );
    let out = bo.kubectl(&["get", "namespace", "default-02-ann"]);
    assert!(stderr(&out).contains("forbidden"), "{}", text(&out));
    let out = bo.kubectl(&["get", "pods", "-n", "kube-system"]);
    assert!(stderr(&out).contains("forbidden"), "{}", text(&out));

    // The grades: three different rows, with the diagnosis of bo's mistake.
    let html = lab.state_root.path().join("grades.html");
    let csv = lab.state_root.path().join("grades.csv");
    let junit = lab.state_root.path().join("grades.xml");
    let out = lab.run(&[
        "class",
        "grade",
        "--class",
        dir.to_str().unwrap(),
        "-o",
        "json",
        "--html",
        html.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let book: kubelab::class::grade::GradeBook = serde_json::from_slice(&out.stdout).unwrap();
    let points: Vec<(String, u32)> = book
        .students
        .iter()
        .map(|s| (s.student.clone(), s.points))
        .collect();
    let (ann_row, bo_row, cy_row) = (&book.students[0], &book.students[1], &book.students[2]);
    assert_eq!(ann_row.labs[0].short(), "6/6", "{points:?}");
    assert_eq!(ann_row.labs[1].short(), "5/5", "{points:?}");
    assert!(bo_row.points > 0 && bo_row.points < 6, "{points:?}");
    assert_eq!(bo_row.labs[1].short(), "–", "bo did not start lab 07");
    assert_eq!(cy_row.labs[0].short(), "0/6", "{points:?}");
    let bo_wrong: Vec<String> = bo_row.labs[0]
        .failing()
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .collect();
    assert!(
        bo_wrong
            .iter()
            .any(|l| l.starts_with("wrong: Role default-02-bo/pod-reader") && l.contains("list")),
        "{bo_wrong:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(&csv)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
        "ann,6,5,11"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 3);

    // The page as a browser shows it, sorted by total (highest first) by its script.
    let dom = chromium_dom(&html, "#sort=total-desc");
    assert!(
        dom.contains(r#"<th data-key="total" class="sorted-desc">"#),
        "{dom}"
    );
    let order: Vec<usize> = ["#ann", "#bo", "#cy"]
        .iter()
        .map(|anchor| dom.find(&format!("href=\"{anchor}\"")).unwrap())
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "{dom}");
    let dom = chromium_dom(&html, "#sort=student-desc");
    let (cy_at, ann_at) = (
        dom.find("href=\"#cy\"").unwrap(),
        dom.find("href=\"#ann\"").unwrap(),
    );
    assert!(cy_at < ann_at, "sorted by name, descending");
    assert!(
        dom.contains("wrong: Role default-02-bo/pod-reader"),
        "{dom}"
    );

    // One student back to the start: ann's lab 02 fails again, bo's is untouched.
    let out = lab.run(&[
        "class",
        "reset",
        "ann",
        "02",
        "--class",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(ann.kubelab(&["check", "02"]).status.code(), Some(1));
    bo.kubectl_ok(&["get", "role", "pod-reader"]);

    // Down: nothing of the class is left, on the cluster or on disk.
    let out = lab.run(&["class", "down", "--class", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for kind in [
        "namespaces",
        "clusterroles",
        "clusterrolebindings",
        "certificatesigningrequests",
    ] {
        let left =
            cluster.kubectl_ok(&["get", kind, "-l", "kubelab.dev/class=k8s101", "-o", "name"]);
        assert!(left.trim().is_empty(), "{kind} left: {left}");
    }
    let namespaces = cluster.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(!namespaces.contains("-ann"), "{namespaces}");
    assert!(!dir.exists(), "the kubeconfigs and the class file are gone");
}

#[test]
fn a_roster_error_names_the_file_and_line() {
    let lab = Lab::new();
    let roster = lab.state_root.path().join("roster.txt");
    std::fs::write(&roster, "ann\nBo Smith\n").unwrap();
    let out = lab.run(&["class", "up", "--roster", roster.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}:2: student name 'Bo Smith' is not a DNS label",
            roster.display()
        )),
        "{}",
        text(&out)
    );
    let out = lab.run(&["class", "up"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--students N"), "{}", text(&out));
}

#[test]
fn with_token_identities_students_work_the_same_and_down_revokes_them() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let dir = lab.state_root.path().join("tokens");
    let out = lab.run(&[
        "class",
        "up",
        "--students",
        "2",
        "--identity",
        "token",
        "--class-name",
        "tok",
        "--out",
        dir.to_str().unwrap(),
        "02",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let one = Student::new(&lab, dir.join("student-01.kubeconfig"));
    let whoami = one.kubectl(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        stdout(&whoami),
        "system:serviceaccount:kubelab-class-tok:student-01"
    );
    let out = one.kubelab(&["start", "02"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = one.kubelab(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("0/6 points; 4 checks still failing"),
        "{}",
        text(&out)
    );
    // The pod's shell (its stand-in on this node-less cluster) as the student.
    let mut shell = one
        .command(&["shell"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(b"cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; exit 4\n")
        .unwrap();
    let out = shell.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        stdout(&out).contains("default-02-student-01"),
        "{}",
        text(&out)
    );
    // Another student's namespace and the accounts' namespace are out of reach.
    for namespace in ["default-02-student-02", "kubelab-class-tok"] {
        let out = one.kubectl(&["get", "secrets", "-n", namespace]);
        assert!(stderr(&out).contains("forbidden"), "{}", text(&out));
    }
    // A copy of the kubeconfig outlives down (a student may keep one).
    let kept = lab.state_root.path().join("kept.kubeconfig");
    std::fs::copy(&one.kubeconfig, &kept).unwrap();
    let out = lab.run(&["class", "down", "--class", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The token dies with its ServiceAccount, once the API server's cache of
    // authenticated tokens (10 s) lets go of it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let out = kubectl_with(&kept, &["auth", "whoami"]);
        if stderr(&out).contains("Unauthorized") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the token still works 40 s after down: {}",
            text(&out)
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let left = cluster.kubectl_ok(&[
        "get",
        "namespaces",
        "-l",
        "kubelab.dev/class=tok",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "{left}");
}

/// `class down` of a class big enough (2 students × every lab) that kubelab finds what
/// its namespaces hold with one cluster-wide list per type: every namespace is emptied
/// and finalized by kubelab but the one holding an object it cannot delete, which it
/// leaves to the namespace controller; and no object outlives its namespace (a
/// finalized namespace with something left in it would orphan that in etcd).
#[test]
fn class_down_empties_many_namespaces_at_once_and_orphans_nothing() {
    use std::io::BufRead;
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let dir = lab.state_root.path().join("big");
    let out = lab.run(&[
        "class",
        "up",
        "--students",
        "2",
        "--class-name",
        "big",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let one = Student::new(&lab, dir.join("student-01.kubeconfig"));
    for lab_id in ["02", "07"] {
        let out = one.kubelab(&["start", lab_id]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let namespaces = cluster.kubectl_ok(&[
        "get",
        "namespaces",
        "-l",
        "kubelab.dev/class=big",
        "-o",
        "name",
    ]);
    let namespaces: Vec<&str> = namespaces
        .lines()
        .map(|l| l.trim_start_matches("namespace/"))
        .collect();
    assert!(namespaces.len() >= 20, "{namespaces:?}");
    // An object only its own controller may let go of.
    let held = "default-02-student-02";
    cluster.kubectl_ok(&["create", "configmap", "held", "-n", held]);
    cluster.kubectl_ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        held,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["kubelab.test/hold"]}}"#,
    ]);

    let mut down = lab
        .kubelab()
        .args(["class", "down", "--class", dir.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(down.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let declined = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("class down ended without leaving {held}: {seen:?}"))
            .unwrap();
        seen.push(line.clone());
        if line.contains("left to the namespace controller") {
            break line;
        }
    };
    assert!(
        declined.contains(&format!("configmaps are left in {held}")),
        "{declined}"
    );
    cluster.kubectl_ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        held,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    seen.extend(lines.map(Result::unwrap));
    let status = down.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen:?}");
    let left_to_controller = seen
        .iter()
        .filter(|l| l.contains("left to the namespace controller"))
        .count();
    assert_eq!(left_to_controller, 1, "{seen:?}");

    let left = cluster.kubectl_ok(&[
        "get",
        "namespaces",
        "-l",
        "kubelab.dev/class=big",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "{left}");
    let orphans = cluster.kubectl_ok(&[
        "get",
        "configmaps,serviceaccounts,secrets,roles,rolebindings,pods,deployments,replicasets,events",
        "--all-namespaces",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.namespace}/{.kind}/{.metadata.name}{"\n"}{end}"#,
    ]);
    let orphans: Vec<&str> = orphans
        .lines()
        .filter(|l| namespaces.iter().any(|n| l.starts_with(&format!("{n}/"))))
        .collect();
    assert!(
        orphans.is_empty(),
        "objects outlived their namespace: {orphans:?}"
    );
}
