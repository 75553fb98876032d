//! Ctrl-C and SIGTERM at seeded random moments of every command that changes a
//! cluster, against the real local control plane (and node). After each interrupt:
//! exit 130, no object with kubelab's labels that the command made, no process it
//! started, no temporary file (token files live there), and for the node no interface,
//! iptables chain, mount or network namespace.
//!
//! KUBELAB_INTERRUPT_SEED and KUBELAB_INTERRUPT_POINTS change the seed (default fixed,
//! so every CI run tries the same moments) and the number of interrupts per command
//! (default 20). Each campaign prints what it tried (`cargo test -- --nocapture`).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Cluster, Lab, node_leftovers, root_or_fail, text};

/// Everything kubelab makes carries one of these labels.
const LABELS: [&str; 4] = [
    "kubelab.dev/run",
    "kubelab.dev/lab",
    "kubelab.dev/class",
    "kubelab.dev/student",
];

fn labelled(kubeconfig: &std::path::Path) -> Vec<String> {
    let mut found: Vec<String> = LABELS
        .iter()
        .flat_map(|label| support::labelled_with(kubeconfig, label))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A seeded xorshift64*: the same seed gives the same moments on every machine.
struct Moments(u64);

impl Moments {
    fn new() -> Self {
        let seed = std::env::var("KUBELAB_INTERRUPT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x6b75_6265_6c61_6221);
        Moments(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A moment between 20 ms (the process is up) and `span`.
    fn within(&mut self, span: Duration) -> Duration {
        let span = span.as_millis().max(40) as u64;
        Duration::from_millis(20 + self.next() % (span - 20))
    }
}

fn points() -> usize {
    std::env::var("KUBELAB_INTERRUPT_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// What one attempt did.
struct Attempt {
    /// Whether the signal reached a running kubelab (else it had ended already).
    landed: bool,
    code: Option<i32>,
    said: String,
    /// How long the command ran.
    ran_for: Duration,
}

/// Runs `command`, signals it after `at` unless it ended; waits for its end.
fn attempt(mut command: Command, at: Duration, signal: Signal) -> Attempt {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    // The child's output is read on a thread while this one keeps time.
    let waiter = std::thread::spawn(move || (child.wait_with_output().unwrap(), started.elapsed()));
    std::thread::sleep(at.saturating_sub(started.elapsed()));
    // A process that is exiting (a zombie) no longer takes signals: not landed.
    let exiting = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(") ")
                .is_none_or(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true);
    let landed =
        !waiter.is_finished() && !exiting && kill(Pid::from_raw(pid as i32), signal).is_ok();
    let (out, ran_for) = waiter.join().unwrap();
    Attempt {
        landed,
        code: out.status.code(),
        said: text(&out),
        ran_for,
    }
}

/// Processes that inherited this temporary directory: what kubelab started and left.
fn processes_with_env(tmp: &std::path::Path) -> Vec<String> {
    let needle = format!("TMPDIR={}", tmp.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true);
        if !zombie
            && environ
                .split(|b| *b == 0)
                .any(|var| var == needle.as_bytes())
        {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
        }
    }
    found
}

/// One command, interrupted at `points()` moments that land.
struct Campaign<'a> {
    name: &'a str,
    lab: &'a Lab,
    args: Vec<String>,
    /// How long the command takes uninterrupted: moments are drawn within it.
    span: Duration,
}

impl Campaign<'_> {
    /// Measures the span with one uninterrupted run (which `after` then cleans up).
    fn measured<'a>(
        name: &'a str,
        lab: &'a Lab,
        args: &[&str],
        after: &mut dyn FnMut(&Attempt),
    ) -> Campaign<'a> {
        let started = Instant::now();
        let out = lab.kubelab().args(args).output().unwrap();
        let span = started.elapsed();
        let first = Attempt {
            landed: false,
            code: out.status.code(),
            said: text(&out),
            ran_for: span,
        };
        assert!(matches!(first.code, Some(0 | 1)), "{name}: {}", first.said);
        eprintln!(
            "interrupts: {name}: uninterrupted, {span:?}, exit {:?}",
            first.code
        );
        after(&first);
        Campaign {
            name,
            lab,
            args: args.iter().map(|a| a.to_string()).collect(),
            span,
        }
    }

    /// Interrupts until `points()` signals landed; `after` checks (and restores) the
    /// state after each attempt, landed or not.
    fn run(&self, moments: &mut Moments, after: &mut dyn FnMut(&Attempt)) {
        let tmp = tempfile::Builder::new()
            .prefix("kubelab-interrupt-")
            .tempdir()
            .unwrap();
        let (mut landed, mut ended, mut late, mut signals) = (0, 0, 0, [0, 0]);
        let mut tries = 0;
        // The measured run may have been slower than the rest (it shared the machine
        // with other tests): a command that ends before its moment narrows the span
        // (to a quarter of the measured one at most).
        let mut span = self.span;
        while landed < points() {
            tries += 1;
            assert!(
                tries <= points() * 4,
                "{}: too few interrupts landed",
                self.name
            );
            let at = moments.within(span);
            let signal = if tries % 2 == 0 {
                Signal::SIGINT
            } else {
                Signal::SIGTERM
            };
            let mut command = self.lab.kubelab();
            command.env("TMPDIR", tmp.path()).args(&self.args);
            let mut result = attempt(command, at, signal);
            // A signal that reaches kubelab as it exits, after it has decided on its
            // result (and printed it), is too late for it: the command ended on its
            // own. That window is microseconds; a signal ignored mid-work would show
            // here too, so such late ones are counted and must stay rare.
            if result.landed && result.code != Some(130) && !result.said.contains("interrupted") {
                result.landed = false;
                late += 1;
            }
            if result.landed {
                landed += 1;
                signals[usize::from(signal == Signal::SIGTERM)] += 1;
                assert_eq!(
                    result.code,
                    Some(130),
                    "{} interrupted by {signal} at {at:?}: {}",
                    self.name,
                    result.said
                );
            } else {
                ended += 1;
                span = span.min(result.ran_for.max(self.span / 4));
            }
            // `after` first: it takes down what a command that ended on its own made.
            after(&result);
            let left = processes_with_env(tmp.path());
            assert!(
                left.is_empty(),
                "{} ({signal} at {at:?}) left processes: {left:?}\n{}",
                self.name,
                result.said
            );
            let files: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(
                files.is_empty(),
                "{} ({signal} at {at:?}) left temporary files: {files:?}\n{}",
                self.name,
                result.said
            );
        }
        eprintln!(
            "interrupts: {}: {landed} landed ({} SIGINT, {} SIGTERM) within {:?}; {ended} more ended before their moment ({late} of them as kubelab exited)",
            self.name, signals[0], signals[1], span
        );
        assert!(
            late <= points() / 10,
            "{}: {late} signals came too late to count: kubelab ignores signals somewhere",
            self.name
        );
    }
}

fn nothing_labelled(kubeconfig: &std::path::Path, name: &str, attempt: &Attempt) {
    let left = labelled(kubeconfig);
    assert!(left.is_empty(), "{name}: left {left:?}\n{}", attempt.said);
}

#[test]
fn an_interrupted_run_on_the_host_leaves_nothing() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let kubeconfig = cluster.kubeconfig.clone();
    let mut after = |a: &Attempt| nothing_labelled(&kubeconfig, "run", a);
    let campaign = Campaign::measured("run (host)", &lab, &["run"], &mut after);
    campaign.run(&mut Moments::new(), &mut after);
}

#[test]
fn an_interrupted_cluster_up_leaves_nothing() {
    let lab = Lab::new();
    let state = lab.state_root.path().join("kubelab");
    let mut after = |a: &Attempt| {
        if !a.landed {
            let down = lab.run(&["cluster", "down"]);
            assert!(down.status.success(), "{}", text(&down));
        }
        assert!(!state.exists(), "state left: {}", a.said);
        assert!(lab.processes().is_empty(), "{:?}", lab.processes());
    };
    let campaign = Campaign::measured(
        "cluster up",
        &lab,
        &["cluster", "up", "--wait-timeout", "180s"],
        &mut after,
    );
    campaign.run(&mut Moments::new(), &mut after);
}

/// Lab 02's objects, by name (the run id in their labels changes with each start).
fn hands_on_objects(cluster: &Cluster) -> Vec<String> {
    labelled(&cluster.kubeconfig)
}

fn set_up(lab: &Lab) -> bool {
    let out = lab.run(&["progress", "-o", "json"]);
    let progress: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    // A lab is set up while its progress entry holds the run id of its objects.
    progress["labs"]
        .as_object()
        .into_iter()
        .flat_map(|labs| labs.values())
        .any(|l| l["run_id"].as_str().is_some_and(|id| !id.is_empty()))
}

#[test]
fn interrupted_start_check_and_reset_leave_the_lab_whole_or_gone() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let mut moments = Moments::new();

    // start: afterwards the lab is either set up (the signal came as it finished) or
    // not, and then nothing of it is left.
    let mut after_start = |a: &Attempt| {
        if set_up(&lab) {
            let stop = lab.run(&["stop", "02"]);
            assert!(stop.status.success(), "{}", text(&stop));
        }
        let left = hands_on_objects(&cluster);
        assert!(left.is_empty(), "start: left {left:?}\n{}", a.said);
    };
    let campaign = Campaign::measured("start", &lab, &["start", "02"], &mut after_start);
    campaign.run(&mut moments, &mut after_start);

    // check: changes nothing, interrupted or not.
    let out = lab.run(&["start", "02"]);
    assert!(out.status.success(), "{}", text(&out));
    let before = hands_on_objects(&cluster);
    assert!(!before.is_empty());
    let mut after_check = |a: &Attempt| {
        assert_eq!(hands_on_objects(&cluster), before, "check: {}", a.said);
        assert!(set_up(&lab), "check: {}", a.said);
    };
    let campaign = Campaign::measured("check", &lab, &["check", "02"], &mut after_check);
    campaign.run(&mut moments, &mut after_check);

    // reset: either done (the lab's objects again) or stopped with the lab not set up
    // and none of its objects left; a start then sets it up again.
    let mut after_reset = |a: &Attempt| {
        let now = hands_on_objects(&cluster);
        if set_up(&lab) {
            assert_eq!(now, before, "reset: {}", a.said);
        } else {
            let left: Vec<&String> = now
                .iter()
                .filter(|o| !o.starts_with("namespace/"))
                .collect();
            assert!(left.is_empty(), "reset: left {left:?}\n{}", a.said);
            let out = lab.run(&["start", "02"]);
            assert!(out.status.success(), "{}", text(&out));
        }
    };
    let campaign = Campaign::measured("reset", &lab, &["reset", "02"], &mut after_reset);
    campaign.run(&mut moments, &mut after_reset);
}

#[test]
fn interrupted_class_up_and_grade_leave_nothing_they_made() {
    let lab = Lab::new();
    let cluster = lab.up(&[]);
    let roster = lab.state_root.path().join("roster.txt");
    std::fs::write(&roster, "ann\nbo\ncy\n").unwrap();
    let dir = lab.state_root.path().join("class");
    let (roster_arg, dir_arg) = (
        roster.to_str().unwrap().to_string(),
        dir.to_str().unwrap().to_string(),
    );
    let up = [
        "class",
        "up",
        "--roster",
        &roster_arg,
        "--out",
        &dir_arg,
        "02",
        "07",
    ];
    let mut moments = Moments::new();
    let mut after_up = |a: &Attempt| {
        if !a.landed || dir.join("class.json").exists() {
            let down = lab.run(&["class", "down", "--class", &dir_arg]);
            assert!(down.status.success(), "{}", text(&down));
        }
        nothing_labelled(&cluster.kubeconfig, "class up", a);
        assert!(
            !dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none(),
            "class up left {}: {}",
            dir.display(),
            a.said
        );
    };
    let campaign = Campaign::measured("class up", &lab, &up, &mut after_up);
    campaign.run(&mut moments, &mut after_up);

    // grade: reads and checks; it leaves the class as it was.
    let out = lab.run(&up);
    assert!(out.status.success(), "{}", text(&out));
    let before = labelled(&cluster.kubeconfig);
    let mut after_grade = |a: &Attempt| {
        assert_eq!(
            labelled(&cluster.kubeconfig),
            before,
            "class grade: {}",
            a.said
        );
    };
    let grade = ["class", "grade", "--class", &dir_arg];
    let campaign = Campaign::measured("class grade", &lab, &grade, &mut after_grade);
    campaign.run(&mut moments, &mut after_grade);
    let down = lab.run(&["class", "down", "--class", &dir_arg]);
    assert!(down.status.success(), "{}", text(&down));
}

/// The node's campaigns run one after the other: one node per machine at a time.
#[test]
fn interrupted_node_commands_leave_nothing_on_the_machine() {
    root_or_fail();
    let lab = Lab::new();
    let mut moments = Moments::new();
    let state = lab.state_root.path().join("kubelab");
    let mut after_up = |a: &Attempt| {
        if !a.landed {
            let down = lab.run(&["cluster", "down"]);
            assert!(down.status.success(), "{}", text(&down));
        }
        assert!(!state.exists(), "state left: {}", a.said);
        let left = node_leftovers(&lab);
        assert!(
            left.is_empty(),
            "cluster up --node left {left:?}\n{}",
            a.said
        );
    };
    let campaign = Campaign::measured(
        "cluster up --node",
        &lab,
        &["cluster", "up", "--node", "--wait-timeout", "180s"],
        &mut after_up,
    );
    campaign.run(&mut moments, &mut after_up);

    let cluster = lab.up(&["--node"]);
    let kubeconfig = cluster.kubeconfig.clone();
    let mut after_run = |a: &Attempt| nothing_labelled(&kubeconfig, "run (node)", a);
    let campaign = Campaign::measured("run (node)", &lab, &["run"], &mut after_run);
    campaign.run(&mut moments, &mut after_run);
}
