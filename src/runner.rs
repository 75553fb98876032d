//! Runs labs against a cluster: steps in order (apply, wait, probe), labs in parallel
//! up to `jobs` when their namespaces do not overlap, and cleanup of exactly what each
//! run created, also when a lab fails or the run is interrupted.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::apply::{self, Applied, Applier, Created};
use crate::probe::{self, Execution, ProbeContext};
use crate::report::{self, LabReport, Outcome, RunReport, StepReport};
use crate::scenario::{LoadedLab, Step};
use crate::ui::Ui;

/// How long cleanup waits for deletions (namespaces take a few seconds).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);

/// The cluster a run talks to.
#[derive(Clone)]
pub struct Target {
    pub client: kube::Client,
    pub execution: Execution,
    pub provider: String,
    pub server: String,
    pub kubernetes_version: String,
}

impl Target {
    fn runs_pods(&self) -> bool {
        self.execution.runs_pods()
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub jobs: usize,
    pub keep: bool,
    pub explain: bool,
    /// Image replacements applied to every manifest.
    pub images: crate::images::ImageMap,
}

/// What each lab (by index) created and has not deleted yet, so an interrupt or the
/// end of the run can remove it.
type Registry = Arc<Mutex<Vec<(usize, Arc<Mutex<Vec<Created>>>)>>>;
/// Namespaces that labs still waiting to start will use.
type NeededLater = Arc<Mutex<BTreeSet<String>>>;

/// What a lab's task shares with the scheduler.
struct Shared {
    /// This lab's objects not yet deleted.
    created: Arc<Mutex<Vec<Created>>>,
    needed_later: NeededLater,
    registry: Registry,
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
    for (_, created) in registry.lock().await.iter() {
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
    /// Interrupted: what had been created was removed.
    Interrupted,
}

pub async fn run_labs(
    target: &Target,
    labs: Vec<LoadedLab>,
    settings: &Settings,
    run_id: &str,
    ui: &Ui,
) -> Finished {
    let registry: Registry = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let result = tokio::select! {
        reports = schedule(target, labs, settings, run_id, ui, &registry, &mut tasks) => Some(reports),
        _ = crate::system::interrupted() => None,
    };
    match result {
        Some(labs) => Finished::Completed(RunReport {
            run_id: run_id.to_string(),
            provider: target.provider.clone(),
            server: target.server.clone(),
            kubernetes_version: target.kubernetes_version.clone(),
            labs,
            duration_ms: started.elapsed().as_millis() as u64,
        }),
        None => {
            tasks.shutdown().await;
            let step = ui.step("interrupted: removing what this run created");
            let mut removed = 0;
            for (_, created) in registry.lock().await.iter() {
                let created = created.lock().await;
                removed += created.len();
                if let Err(e) = apply::delete_all(&target.client, &created, CLEANUP_TIMEOUT).await {
                    ui.info(format!("cleanup: {e}"));
                }
            }
            step.done(format!(
                "interrupted: removed the {removed} objects this run created"
            ));
            Finished::Interrupted
        }
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

/// Starts labs as slots and namespaces allow; returns reports in the labs' order.
async fn schedule(
    target: &Target,
    labs: Vec<LoadedLab>,
    settings: &Settings,
    run_id: &str,
    ui: &Ui,
    registry: &Registry,
    tasks: &mut JoinSet<(usize, LabReport)>,
) -> Vec<LabReport> {
    let mut reports: Vec<Option<LabReport>> = vec![None; labs.len()];
    let mut pending: VecDeque<(usize, LoadedLab)> = labs.into_iter().enumerate().collect();
    let mut busy: Vec<(usize, BTreeSet<String>)> = Vec::new();
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
            };
            tasks.spawn(async move {
                (
                    index,
                    run_lab(&target, &lab, &settings, &run_id, &ui, shared).await,
                )
            });
        }
        *needed_later.lock().await = pending
            .iter()
            .flat_map(|(_, l)| l.lab.namespaces.iter().cloned())
            .collect();
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, report) = joined.expect("a lab task does not panic");
        busy.retain(|(i, _)| *i != index);
        reports[index] = Some(report);
    }
    let mut reports: Vec<LabReport> = reports
        .into_iter()
        .map(|r| r.expect("every lab ran"))
        .collect();
    if !settings.keep {
        remove_deferred(target, registry, &mut reports, ui).await;
    }
    reports
}

/// Deletes the namespaces labs left for later labs that share them.
async fn remove_deferred(target: &Target, registry: &Registry, reports: &mut [LabReport], ui: &Ui) {
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
            .map(|(_, objects)| apply::delete_all(&target.client, objects, CLEANUP_TIMEOUT)),
    )
    .await;
    let mut ok = true;
    for ((index, _), result) in leftovers.iter().zip(results) {
        if let Err(e) = result {
            ok = false;
            let lab = &mut reports[*index];
            lab.error
                .get_or_insert(format!("cleanup: {}", report::error_chain(&e)));
            lab.outcome = Outcome::Error;
        }
    }
    if ok {
        step.done(format!(
            "removed {}, kept until the labs sharing them had run",
            names.join(", ")
        ));
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
    } = shared;
    let started = Instant::now();
    let lab = &loaded.lab;
    let prefix = format!("[{}]", lab.id);
    ui.info(format!("{prefix} {} — {}", lab.title, loaded.folder));
    let applier = Applier::new(
        target.client.clone(),
        &lab.id,
        run_id,
        &lab.namespaces[0],
        settings.images.clone(),
    );
    let context = ProbeContext::new(
        target.client.clone(),
        target.execution.clone(),
        lab.namespaces.clone(),
    );
    let mut steps = Vec::new();
    let mut error = None;
    for step in &lab.steps {
        match run_step(
            target, loaded, step, &applier, &context, &created, ui, &prefix,
        )
        .await
        {
            Ok(report) => steps.push(report),
            Err((report, message)) => {
                steps.push(report);
                ui.info(format!("{prefix} ✗ {message}"));
                error = Some(message);
                break;
            }
        }
    }
    context.clear().await; // removes the materialized token files
    if !settings.keep {
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
        let step = ui.step_with_prefix(&prefix, format!("cleaning up {} objects", objects.len()));
        match apply::delete_all(&target.client, &objects, CLEANUP_TIMEOUT).await {
            Ok(()) => {
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
                step.done(line);
                *created.lock().await = deferred;
            }
            Err(e) => {
                drop(step);
                error.get_or_insert(format!("cleanup: {}", report::error_chain(&e)));
            }
        }
    }
    let failed = steps.iter().flat_map(|s| &s.probes).any(|p| !p.passed);
    let mut report = LabReport {
        id: lab.id.clone(),
        folder: loaded.folder.clone(),
        title: lab.title.clone(),
        summary: lab.summary.clone(),
        source: lab.source.clone(),
        outcome: match (&error, failed) {
            (Some(_), _) => Outcome::Error,
            (None, true) => Outcome::Failed,
            (None, false) => Outcome::Passed,
        },
        steps,
        error,
        explanation: None,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    if settings.explain {
        report.explanation = Some(report::render_explanation(
            &loaded.template,
            &report,
            target,
        ));
    }
    report
}

/// Applies, waits and probes one step. On a failure that stops the lab, returns the
/// partial report and the reason.
#[allow(clippy::too_many_arguments)]
async fn run_step(
    target: &Target,
    loaded: &LoadedLab,
    step: &Step,
    applier: &Applier,
    context: &ProbeContext,
    created: &Mutex<Vec<Created>>,
    ui: &Ui,
    prefix: &str,
) -> Result<StepReport, (StepReport, String)> {
    let started = Instant::now();
    let mut report = StepReport {
        id: step.id.clone(),
        name: step.name.clone(),
        actions: Vec::new(),
        probes: Vec::new(),
        duration_ms: 0,
    };
    let ui_step = ui.step_with_prefix(prefix, &step.name);
    for file in &step.apply {
        let manifest = &loaded.manifests[file];
        for document in &manifest.documents {
            match applier.apply(document).await {
                Ok(Applied::Created(object)) => {
                    report
                        .actions
                        .push(format!("applied {}", object.describe()));
                    created.lock().await.push(object);
                }
                Ok(Applied::UsedExisting(object)) => {
                    report.actions.push(format!("using existing {object}"))
                }
                Err(e) => {
                    return Err((
                        report,
                        format!("step '{}': {}", step.name, report::error_chain(&e)),
                    ));
                }
            }
        }
    }
    for target_ref in &step.restart {
        let name = target_ref.trim_start_matches("deployment/");
        let namespace = &loaded.lab.namespaces[0];
        if let Err(e) = crate::workload::restart(&target.client, namespace, name).await {
            return Err((
                report,
                format!(
                    "step '{}': restarting deployment {namespace}/{name}: {}",
                    step.name,
                    report::error_chain(&e)
                ),
            ));
        }
        report
            .actions
            .push(format!("restarted deployment {namespace}/{name}"));
    }
    for wait in &step.wait {
        let namespace = wait
            .namespace
            .as_deref()
            .unwrap_or(&loaded.lab.namespaces[0]);
        let progress = |message: String| ui_step.progress(message);
        match crate::wait::wait(
            &target.client,
            wait,
            namespace,
            target.runs_pods(),
            &progress,
        )
        .await
        {
            Ok(line) => report.actions.push(line),
            Err(e) => {
                return Err((
                    report,
                    format!("step '{}': {}", step.name, report::error_chain(&e)),
                ));
            }
        }
    }
    ui_step.done(report::step_line(&report));

    // Probes of a step only read: run them side by side, report in their order.
    context.start_step().await;
    let results =
        futures::future::join_all(step.probes.iter().map(|p| probe::run(context, p))).await;
    for (probe, result) in step.probes.iter().zip(results) {
        match result {
            Ok(probe_report) => {
                ui.info(report::probe_line(prefix, &probe_report));
                report.probes.push(probe_report);
            }
            Err(e) => {
                report.duration_ms = started.elapsed().as_millis() as u64;
                return Err((
                    report,
                    format!("probe '{}': {}", probe.name, report::error_chain(&e)),
                ));
            }
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
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
