//! Runs labs against a cluster: steps and their operations in order, labs in parallel
//! up to `jobs` when their namespaces do not overlap, and cleanup of exactly what each
//! run created, also when a lab fails, panics, or the run is interrupted.

mod checks;
pub mod cluster_wide;
mod error;
mod lab;
pub mod liveness;
pub(crate) mod namespaces;
pub mod objects;
mod outage;
pub mod reset;
pub mod resources;
mod tokens;
pub mod wait;
pub mod workloads;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio::task::JoinSet;

pub use error::Error;
pub use lab::rejection_failures;
pub use objects::{Created, FIELD_MANAGER, LAB_LABEL, RUN_LABEL};
pub use outage::Outage;
pub use wait::describe_pod_state;

use self::lab::LabRun;
use self::objects::Objects;
use self::resources::Resources;
use crate::probe::Execution;
use crate::report::{self, LabReport, Outcome, RunReport};
use crate::scenario::LoadedLab;
use crate::ui::Ui;

/// How long cleanup waits for deletions (namespaces take a few seconds), unless a
/// command says otherwise.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a run whose API server stopped answering tries to remove what it made.
const OUTAGE_CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster a run talks to.
#[derive(Clone)]
pub struct Target {
    pub client: kube::Client,
    /// The configuration the client came from (impersonating clients start from it).
    pub config: kube::Config,
    pub execution: Execution,
    pub provider: String,
    pub server: String,
    pub kubernetes_version: String,
    /// How far the API server's clock is ahead of this machine's (seconds), if it said.
    pub clock_offset: Option<i64>,
    /// What the API server serves, discovered once per run.
    pub resources: Arc<Resources>,
    /// The cluster's RBAC, read once for every lab of a run that only checks (checks
    /// change nothing): diagnoses of a class's hundreds of labs share one read.
    pub rbac_snapshot: crate::probe::PolicyCell,
    /// The run's cluster-wide RBAC snapshot, read again after kubelab writes RBAC.
    pub rbac_snapshots: Arc<crate::rbac::snapshot::Snapshots>,
}

impl Target {
    /// Now by the API server's clock, in seconds since the epoch (this machine's when
    /// the server gave no Date): creation timestamps are compared with it.
    pub fn server_now(&self) -> u64 {
        let local = crate::progress::now();
        match self.clock_offset {
            Some(offset) => local.saturating_add_signed(offset),
            None => local,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub jobs: usize,
    pub keep: Keep,
    pub explain: bool,
    /// Image replacements applied to every manifest.
    pub images: crate::images::ImageMap,
    /// Which part of each lab runs.
    pub part: crate::scenario::Part,
    /// A hands-on lab's solution: what the student made since this time (seconds since
    /// the epoch) may be replaced.
    pub adopt_since: Option<u64>,
    /// Run ids of hands-on labs in progress on this cluster (and the labs): their
    /// objects are the students', never changed by another run.
    pub protected: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    pub pace: Pace,
    /// Wait at the end of the run until deleted namespaces are gone (the namespace
    /// controller holds each for 5 s at least); else only check that each is
    /// terminating, and that everything the labs made inside them is gone.
    pub wait_for_namespaces: bool,
    /// How long deleting what the run made may take.
    pub cleanup_timeout: Duration,
}

/// What a lab's objects become when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Deleted (a run).
    Nothing,
    /// Left for exploring (`run --keep`, checks, a solution applied).
    Everything,
    /// Left when the lab passed, deleted when it did not (a lab's start: a failed
    /// start leaves nothing behind).
    WhenPassed,
}

impl Keep {
    fn keeps(self, outcome: Outcome) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::Everything => true,
            Keep::WhenPassed => outcome == Outcome::Passed,
        }
    }
}

/// How long operations may wait for the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pace {
    /// A run waits as long as a lab says (or the defaults): it has just made the state.
    #[default]
    Run,
    /// A check looks at the cluster as it is: every wait is a few seconds at most.
    Check,
}

/// The longest a check waits for a change under way (a pod becoming Ready).
const CHECK_LIMIT: Duration = Duration::from_secs(3);

impl Pace {
    /// How long to wait for a state: an operation's own timeout, or `default`; when
    /// checking, at most a few seconds.
    pub fn limit(self, given: Option<crate::scenario::Timeout>, default: Duration) -> Duration {
        let wanted = given.map(|t| t.0).unwrap_or(default);
        match self {
            Pace::Run => wanted,
            Pace::Check => wanted.min(CHECK_LIMIT),
        }
    }

    /// How long to look for something to appear (an object to match, an event, a
    /// log line, a probe to pass): when checking, zero: one look at the cluster as it
    /// is.
    pub fn patience(self, given: Option<crate::scenario::Timeout>, default: Duration) -> Duration {
        match self {
            Pace::Run => given.map(|t| t.0).unwrap_or(default),
            Pace::Check => Duration::ZERO,
        }
    }
}

/// What each lab (by index) created and has not deleted yet, so an interrupt or the
/// end of the run can remove it.
type Registry = Arc<Mutex<Vec<(usize, Arc<Mutex<Vec<Created>>>)>>>;
/// Namespaces that labs still waiting to start will use.
type NeededLater = Arc<Mutex<BTreeSet<String>>>;
/// Namespaces whose deletion labs asked for (with the lab's index): the namespace
/// controller takes seconds each, so the run waits for them once, at its end.
type Going = Arc<Mutex<Vec<(usize, objects::Deleting)>>>;

/// What each running lab is doing (lab id → step), for a message when the cluster
/// stops serving in the middle of it.
type Activity = Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// What a run must clean up, shared by its labs' tasks.
#[derive(Clone, Default)]
struct Cleanup {
    registry: Registry,
    going: Going,
    activity: Activity,
}

/// What a lab's task shares with the scheduler.
struct Shared {
    /// This lab's objects not yet deleted.
    created: Arc<Mutex<Vec<Created>>>,
    needed_later: NeededLater,
    registry: Registry,
    going: Going,
    activity: Activity,
    index: usize,
}

/// Namespaces earlier labs left for this one (it shares them) that no waiting lab
/// needs: this lab's cleanup deletes them.
async fn take_released(
    registry: &Registry,
    mine: &Arc<Mutex<Vec<Created>>>,
    namespaces: &[String],
    later: &BTreeSet<String>,
) -> Vec<Created> {
    let mut released = Vec::new();
    let registry = registry.lock().await;
    for (_, created) in registry.iter() {
        if Arc::ptr_eq(created, mine) {
            continue;
        }
        let mut objects = created.lock().await;
        let (take, keep): (Vec<Created>, Vec<Created>) = objects.drain(..).partition(|o| {
            o.kind == "Namespace" && namespaces.contains(&o.name) && !later.contains(&o.name)
        });
        *objects = keep;
        released.extend(take);
    }
    // Now this lab's to delete: recorded as its own at once, so an interrupt before the
    // deletion still finds them.
    mine.lock().await.extend(released.iter().cloned());
    released
}

/// A short random id for this run's label (kubelab.dev/run).
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 4];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = urandom.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub enum Finished {
    Completed(RunReport),
    /// Interrupted: what had been created was removed, but `left` objects.
    Interrupted {
        left: usize,
    },
    /// The API server stopped serving: the run stopped at once.
    ServerDown(Outage),
}

pub async fn run_labs(
    target: &Target,
    labs: Vec<LoadedLab>,
    settings: &Settings,
    run_id: &str,
    ui: &Ui,
) -> Finished {
    let cleanup = Cleanup::default();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    // Probes explain themselves from the cluster's RBAC: read it while the first labs
    // apply their objects (a kind they write is read again when a probe needs it). A
    // hands-on lab's start or solution has no checks: it reads RBAC only if a step asks.
    let (snapshots, client) = (target.rbac_snapshots.clone(), target.client.clone());
    let checks_follow = matches!(
        settings.part,
        crate::scenario::Part::All | crate::scenario::Part::Checks
    );
    let warming = tokio::spawn(async move {
        if checks_follow {
            let _ = snapshots.cluster_wide(&client).await;
        }
    });
    let result = tokio::select! {
        // An interrupt already latched wins: no lab starts after it.
        biased;
        _ = crate::system::interrupted() => None,
        reports = schedule(target, labs, settings, run_id, ui, &cleanup, &mut tasks) => Some(reports),
        outage = outage::watch(&target.client, &cleanup.activity) => Some(Err(outage)),
    };
    warming.abort();
    match result {
        Some(Ok((labs, namespaces_wait))) => Finished::Completed(RunReport {
            schema_version: report::SCHEMA_VERSION,
            run_id: run_id.to_string(),
            provider: target.provider.clone(),
            server: target.server.clone(),
            kubernetes_version: target.kubernetes_version.clone(),
            labs,
            duration_ms: started.elapsed().as_millis() as u64,
            namespaces_wait_ms: namespaces_wait.as_millis() as u64,
        }),
        Some(Err(mut outage)) => {
            tasks.shutdown().await;
            let step = ui.step("the API server stopped serving: removing what this run created");
            outage.left =
                remove_everything(target, &cleanup, None, OUTAGE_CLEANUP_TIMEOUT, ui).await;
            step.quiet();
            Finished::ServerDown(outage)
        }
        None => {
            tasks.shutdown().await;
            let step = ui.step("interrupted: removing what this run created");
            let left = remove_everything(
                target,
                &cleanup,
                // Only a whole run's id is its own: a hands-on lab's parts run under
                // the id of the lab's objects, which are the student's to keep.
                (settings.part == crate::scenario::Part::All).then_some(run_id),
                settings.cleanup_timeout,
                ui,
            )
            .await;
            step.done(if left == 0 {
                "interrupted: removed what this run created".to_string()
            } else {
                format!("interrupted: {left} objects this run created could not be removed")
            });
            Finished::Interrupted { left }
        }
    }
}

/// Deletes everything the run's labs created and waits for it to go; how many objects
/// could not be removed (a failure is counted, not raised: this is the last resort).
async fn remove_everything(
    target: &Target,
    cleanup: &Cleanup,
    sweep: Option<&str>,
    timeout: Duration,
    ui: &Ui,
) -> usize {
    let left = remove_recorded(target, cleanup, timeout, ui).await;
    let Some(run_id) = sweep.filter(|_| left == 0) else {
        return left;
    };
    // What a create cut short made after its delete found nothing: found by the run's
    // label, and removed.
    let sweep = async {
        let found = liveness::labelled(&target.client, &target.resources, run_id).await?;
        objects::delete_all(&target.client, &found, timeout)
            .await
            .map(|()| found.len())
    };
    match tokio::time::timeout(timeout, sweep).await {
        Ok(Ok(_)) => 0,
        Ok(Err(e)) => {
            ui.info(format!("cleanup: {}", report::error_chain(&e)));
            1
        }
        Err(_) => 1,
    }
}

/// Deletes what the run recorded as made; how many objects could not be removed.
async fn remove_recorded(target: &Target, cleanup: &Cleanup, timeout: Duration, ui: &Ui) -> usize {
    let mut created: Vec<Vec<Created>> = Vec::new();
    for (_, objects) in cleanup.registry.lock().await.iter() {
        created.push(objects.lock().await.clone());
    }
    let going: Vec<objects::Deleting> = cleanup
        .going
        .lock()
        .await
        .iter()
        .map(|(_, d)| d.clone())
        .collect();
    // Each lab's objects and the namespaces going, all at once, within one limit: a
    // server that hangs must not hold the exit for a limit per lab.
    let removals = futures::future::join_all(
        created
            .iter()
            .map(|objects| objects::delete_all(&target.client, objects, timeout)),
    );
    let gone = finish_namespaces(target, &going, timeout, ui);
    match tokio::time::timeout(timeout, futures::future::join(removals, gone)).await {
        Ok((removed, gone)) => {
            let mut left: usize = created
                .iter()
                .zip(&removed)
                .filter(|(_, result)| result.is_err())
                .map(|(objects, _)| objects.len())
                .sum();
            left += gone.iter().filter(|result| result.is_err()).count();
            left
        }
        Err(_) => created.iter().map(Vec::len).sum::<usize>() + going.len(),
    }
}

fn namespaces_of(lab: &LoadedLab) -> BTreeSet<String> {
    lab.lab.namespaces.iter().cloned().collect()
}

/// Which waiting labs (positions, in order) may start now: first come first served,
/// up to `free` of them, none sharing a namespace with a running lab or with another
/// lab started now.
pub fn startable(
    waiting: &[BTreeSet<String>],
    running: &[BTreeSet<String>],
    free: usize,
) -> Vec<usize> {
    let mut taken: Vec<&BTreeSet<String>> = running.iter().collect();
    let mut chosen = Vec::new();
    for (position, namespaces) in waiting.iter().enumerate() {
        if chosen.len() == free {
            break;
        }
        if taken.iter().all(|used| used.is_disjoint(namespaces)) {
            taken.push(namespaces);
            chosen.push(position);
        }
    }
    chosen
}

/// A lab's report when it could not run at all (skipped, or its task died).
fn unfinished(loaded: &LoadedLab, outcome: Outcome, error: String) -> LabReport {
    LabReport {
        id: loaded.lab.id.clone(),
        folder: loaded.folder.clone(),
        suite: loaded.suite.map(str::to_string),
        title: loaded.lab.title.clone(),
        summary: loaded.lab.summary.clone(),
        source: loaded.lab.source.clone(),
        outcome,
        steps: Vec::new(),
        error: Some(error),
        explanation: None,
        duration_ms: 0,
        cleanup_ms: 0,
    }
}

/// Starts labs as slots and namespaces allow; returns reports in the labs' order.
async fn schedule(
    target: &Target,
    labs: Vec<LoadedLab>,
    settings: &Settings,
    run_id: &str,
    ui: &Ui,
    cleanup: &Cleanup,
    tasks: &mut JoinSet<(usize, LabReport)>,
) -> Result<(Vec<LabReport>, Duration), Outage> {
    let Cleanup {
        registry,
        going,
        activity,
    } = cleanup;
    let mut reports: Vec<Option<LabReport>> = vec![None; labs.len()];
    let all: Vec<LoadedLab> = labs.clone();
    let mut pending: VecDeque<(usize, LoadedLab)> = VecDeque::new();
    for (index, lab) in labs.into_iter().enumerate() {
        if lab.needs_node() && !target.execution.runs_pods() {
            let why = "needs a node that runs pods (kubelab cluster up --node, kind, or a cluster with nodes)".to_string();
            ui.info(format!(
                "[{}] {} — skipped: {why}",
                lab.lab.id, lab.lab.title
            ));
            reports[index] = Some(unfinished(&lab, Outcome::Skipped, why));
        } else {
            pending.push_back((index, lab));
        }
    }
    let mut busy: Vec<(usize, BTreeSet<String>)> = Vec::new();
    let mut task_labs: HashMap<tokio::task::Id, usize> = HashMap::new();
    let needed_later: NeededLater = Arc::new(Mutex::new(BTreeSet::new()));
    loop {
        let waiting: Vec<BTreeSet<String>> =
            pending.iter().map(|(_, l)| namespaces_of(l)).collect();
        let running: Vec<BTreeSet<String>> = busy.iter().map(|(_, used)| used.clone()).collect();
        let free = settings.jobs.max(1).saturating_sub(tasks.len());
        let positions = startable(&waiting, &running, free);
        // Take them out from the back, so earlier positions stay valid; start in order.
        let mut starting: Vec<(usize, LoadedLab)> = positions
            .into_iter()
            .rev()
            .map(|position| pending.remove(position).expect("position in range"))
            .collect();
        starting.reverse();
        for (index, lab) in starting {
            busy.push((index, namespaces_of(&lab)));
            let created = Arc::new(Mutex::new(Vec::new()));
            registry.lock().await.push((index, created.clone()));
            let (target, settings, run_id, ui) = (
                target.clone(),
                settings.clone(),
                run_id.to_string(),
                ui.clone(),
            );
            let shared = Shared {
                created,
                needed_later: needed_later.clone(),
                registry: registry.clone(),
                going: going.clone(),
                activity: activity.clone(),
                index,
            };
            let handle = tasks.spawn(async move {
                (
                    index,
                    run_lab(&target, &lab, &settings, &run_id, &ui, shared).await,
                )
            });
            task_labs.insert(handle.id(), index);
        }
        *needed_later.lock().await = pending
            .iter()
            .flat_map(|(_, l)| l.lab.namespaces.iter().cloned())
            .collect();
        let Some(joined) = tasks.join_next_with_id().await else {
            break;
        };
        let (index, report) = match joined {
            Ok((_, (index, report))) => (index, report),
            // A lab's task panicked: report it; what it created is removed below.
            Err(failure) => {
                let index = task_labs[&failure.id()];
                let why =
                    format!("kubelab failed inside this lab (a bug, please report it): {failure}");
                ui.info(format!("[{}] ✗ {why}", all[index].lab.id));
                (index, unfinished(&all[index], Outcome::Error, why))
            }
        };
        busy.retain(|(i, _)| *i != index);
        if let Some(outage) = outage::after(&target.client, &[&report]).await {
            return Err(outage);
        }
        reports[index] = Some(report);
    }
    let mut reports: Vec<LabReport> = reports
        .into_iter()
        .map(|r| r.expect("every lab ran"))
        .collect();
    if !reports.iter().all(|r| settings.keep.keeps(r.outcome)) {
        remove_leftovers(target, registry, &mut reports, settings.cleanup_timeout, ui).await;
    }
    let waiting = Instant::now();
    wait_for_namespaces(target, going, settings, &mut reports, ui).await;
    // Cleanup that failed may have met a server that went away after the last lab.
    if let Some(outage) = outage::after(&target.client, &reports.iter().collect::<Vec<_>>()).await {
        return Err(outage);
    }
    Ok((reports, waiting.elapsed()))
}

/// A lab whose cleanup failed: an error (exit 3), with the first cause kept.
fn cleanup_failed(lab: &mut LabReport, e: &Error) {
    lab.error
        .get_or_insert(format!("cleanup: {}", report::error_chain(e)));
    lab.outcome = lab.outcome.worst(Outcome::Error);
}

/// The namespaces labs deleted, waited for together: nothing is left when a run ends.
async fn wait_for_namespaces(
    target: &Target,
    going: &Going,
    settings: &Settings,
    reports: &mut [LabReport],
    ui: &Ui,
) {
    let (until_gone, timeout) = (settings.wait_for_namespaces, settings.cleanup_timeout);
    // Read, not taken: an interrupt from here on still finds them to finish.
    let shared = going;
    let going: Vec<(usize, objects::Deleting)> = shared.lock().await.clone();
    if going.is_empty() {
        return;
    }
    let names: Vec<String> = going.iter().map(|(_, d)| d.describe()).collect();
    if !until_gone {
        let results = futures::future::join_all(
            going
                .iter()
                .map(|(_, d)| objects::check_terminating(&target.client, d)),
        )
        .await;
        for ((index, _), result) in going.iter().zip(results) {
            if let Err(e) = result {
                cleanup_failed(&mut reports[*index], &e);
            }
        }
        ui.info(format!(
            "{} terminating: the namespace controller removes them in about 5 s (--no-wait)",
            names.join(", ")
        ));
        return;
    }
    let step = ui.step(format!("removing {}", names.join(", ")));
    let deleting: Vec<objects::Deleting> = going.iter().map(|(_, d)| d.clone()).collect();
    let results = finish_namespaces(target, &deleting, timeout, ui).await;
    let mut ok = true;
    for ((index, _), result) in going.iter().zip(results) {
        if let Err(e) = result {
            ok = false;
            cleanup_failed(&mut reports[*index], &e);
        }
    }
    shared.lock().await.clear();
    if ok {
        step.done(format!("{} gone", names.join(", ")));
    }
}

/// Namespaces being deleted, gone: emptied and finalized by kubelab where it can (the
/// namespace controller holds each for 5 s first), the rest left to the controller;
/// each one's result.
async fn finish_namespaces(
    target: &Target,
    going: &[objects::Deleting],
    timeout: Duration,
    ui: &Ui,
) -> Vec<Result<(), Error>> {
    let going: Vec<(&str, Option<&str>)> = going.iter().map(|d| (d.name(), d.uid())).collect();
    namespaces::finish(&target.client, &going, timeout, |declined| {
        ui.info(format!("  left to the namespace controller: {declined}"))
    })
    .await
}

/// Deletes what labs left: namespaces kept for later labs that share them, and
/// whatever a lab whose task died had created.
async fn remove_leftovers(
    target: &Target,
    registry: &Registry,
    reports: &mut [LabReport],
    timeout: Duration,
    ui: &Ui,
) {
    let leftovers: Vec<(usize, Vec<Created>)> = {
        let registry = registry.lock().await;
        let mut leftovers = Vec::new();
        for (index, created) in registry.iter() {
            let objects = created.lock().await.clone();
            if !objects.is_empty() {
                leftovers.push((*index, objects));
            }
        }
        leftovers
    };
    if leftovers.is_empty() {
        return;
    }
    let names: Vec<String> = leftovers
        .iter()
        .flat_map(|(_, o)| o.iter().map(Created::describe))
        .collect();
    let step = ui.step(format!("removing {}", names.join(", ")));
    let results = futures::future::join_all(
        leftovers
            .iter()
            .map(|(_, objects)| objects::delete_all(&target.client, objects, timeout)),
    )
    .await;
    let mut ok = true;
    for ((index, _), result) in leftovers.iter().zip(results) {
        if let Err(e) = result {
            ok = false;
            cleanup_failed(&mut reports[*index], &e);
        }
    }
    if ok {
        step.done(format!("removed {}", names.join(", ")));
        for (_, created) in registry.lock().await.iter() {
            created.lock().await.clear();
        }
    }
}

async fn run_lab(
    target: &Target,
    loaded: &LoadedLab,
    settings: &Settings,
    run_id: &str,
    ui: &Ui,
    shared: Shared,
) -> LabReport {
    let Shared {
        created,
        needed_later,
        registry,
        going,
        activity,
        index,
    } = shared;
    let doing = |what: String| {
        activity
            .lock()
            .expect("activity lock")
            .insert(loaded.lab.id.clone(), what);
    };
    let started = Instant::now();
    let lab = &loaded.lab;
    ui.info(format!("[{}] {} — {}", lab.id, lab.title, loaded.folder));
    let plan = lab.plan(settings.part);
    let objects = Objects::new(target, &lab.id, run_id, settings, created.clone());
    let mut run = LabRun::new(target, loaded, &plan, objects, settings.pace, ui);
    let mut steps = Vec::new();
    let mut outcome = Outcome::Passed;
    let mut error = None;
    for step in &plan {
        doing(format!("step '{}'", step.name));
        let (report, stopped) = run.run_step(step).await;
        for op in &report.operations {
            if op.outcome == Outcome::Failed {
                outcome = outcome.worst(Outcome::Failed);
            }
        }
        steps.push(report);
        // A test makes a lab's task panic once its first step made objects, to see that
        // they are removed all the same (debug builds only).
        #[cfg(debug_assertions)]
        if std::env::var("KUBELAB_TEST_PANIC_IN_LAB").is_ok_and(|id| id == lab.id) {
            panic!("injected by KUBELAB_TEST_PANIC_IN_LAB in lab {}", lab.id);
        }
        if let Some(stopped) = stopped {
            ui.info(format!("{} ✗ {}", run.prefix, stopped.message));
            outcome = outcome.worst(stopped.outcome);
            error.get_or_insert(stopped.message);
            // Checks are graded one by one: one that cannot run fails alone.
            if settings.part != crate::scenario::Part::Checks {
                break;
            }
        }
    }
    run.probes.clear().await; // removes the materialized token files
    doing("cleaning up".into());
    let cleanup_started = Instant::now();
    if !settings.keep.keeps(outcome) {
        // A namespace a waiting lab will use is deleted at the end of the run instead:
        // deleting a namespace takes the namespace controller at least 5 s.
        let later = needed_later.lock().await.clone();
        let (deferred, mut objects): (Vec<Created>, Vec<Created>) = created
            .lock()
            .await
            .iter()
            .cloned()
            .partition(|o| o.kind == "Namespace" && later.contains(&o.name));
        let released = take_released(&registry, &created, &lab.namespaces, &later).await;
        let own = objects.len();
        objects.extend(released.iter().cloned());
        let step = ui.step_with_prefix(
            &run.prefix,
            format!("cleaning up {} objects", objects.len()),
        );
        let deleted = objects::delete_leaving_namespaces(
            &target.client,
            &objects,
            settings.cleanup_timeout,
            settings.wait_for_namespaces,
        )
        .await;
        match deleted {
            Ok(objects::Removed { namespaces, gone }) => {
                gone.iter()
                    .for_each(|d| d.gone_from(&target.rbac_snapshots));
                let later_note = if namespaces.is_empty() {
                    String::new()
                } else {
                    let then = if settings.wait_for_namespaces {
                        "the run waits for it at its end"
                    } else {
                        "left to the namespace controller (--no-wait)"
                    };
                    format!(
                        " ({} going; {then})",
                        namespaces
                            .iter()
                            .map(objects::Deleting::describe)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                going
                    .lock()
                    .await
                    .extend(namespaces.into_iter().map(|d| (index, d)));
                let kept: Vec<String> = deferred.iter().map(Created::describe).collect();
                let mut line = format!("removed the {own} objects this lab created");
                if !released.is_empty() {
                    let names: Vec<String> = released.iter().map(Created::describe).collect();
                    line.push_str(&format!(
                        " and {}, left by an earlier lab that shares it",
                        names.join(", ")
                    ));
                }
                if !kept.is_empty() {
                    line.push_str(&format!(
                        "; {} stays for a later lab that shares it",
                        kept.join(", ")
                    ));
                }
                line.push_str(&later_note);
                step.done(line);
                *created.lock().await = deferred;
            }
            Err(e) => {
                drop(step);
                outcome = outcome.worst(Outcome::Error);
                error.get_or_insert(format!("cleanup: {}", report::error_chain(&e)));
            }
        }
    }
    let mut report = LabReport {
        id: lab.id.clone(),
        folder: loaded.folder.clone(),
        suite: loaded.suite.map(str::to_string),
        title: lab.title.clone(),
        summary: lab.summary.clone(),
        source: lab.source.clone(),
        outcome,
        steps,
        error,
        explanation: None,
        duration_ms: started.elapsed().as_millis() as u64,
        cleanup_ms: cleanup_started.elapsed().as_millis() as u64,
    };
    if settings.explain {
        report.explanation = Some(report::render_explanation(
            &loaded.template,
            &report,
            target,
        ));
    }
    activity.lock().expect("activity lock").remove(&lab.id);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn labs_sharing_a_namespace_never_start_together() {
        // 01 and 02 share default; 03 and 04 share project-swan; 05 is alone.
        let waiting = [
            set(&["default"]),
            set(&["default"]),
            set(&["project-swan"]),
            set(&["project-swan"]),
            set(&["quiet"]),
        ];
        assert_eq!(startable(&waiting, &[], 4), vec![0, 2, 4]);
        // 02 waits while 01 runs.
        assert!(startable(&waiting[1..2], &[set(&["default"])], 4).is_empty());
    }

    #[test]
    fn jobs_limit_how_many_start() {
        let waiting = [set(&["a"]), set(&["b"]), set(&["c"])];
        assert_eq!(startable(&waiting, &[], 1), vec![0]);
        assert_eq!(startable(&waiting, &[set(&["z"])], 2), vec![0, 1]);
    }

    #[test]
    fn run_ids_are_short_and_differ() {
        let (a, b) = (new_run_id(), new_run_id());
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
