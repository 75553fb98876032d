//! `kubelab class up|grade|reset|down`: a class of students on one cluster, each with
//! an identity, isolated copies of the labs and an RBAC fence (see [`crate::class`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{DynamicObject, ListParams};

use super::{connect, image_map, labs::lab_images, labs_of};
use crate::AppError;
use crate::class::grade::{Cell, GradeBook, LabColumn, StudentRow};
use crate::class::{self, ClassFile, Seat, Student, fence, identity};
use crate::cli::{
    ClassCommand, ClassDownArgs, ClassGradeArgs, ClassResetArgs, ClassUpArgs, ClusterArgs,
    ExecMode, Format, IdentityChoice,
};
use crate::cluster::{self, Connection, UpOptions};
use crate::engine::{self, Keep, Pace, Settings, Target};
use crate::scenario::copy::Copy;
use crate::scenario::{self, LoadedLab, Part};
use crate::ui::Ui;

/// Namespaces take the namespace controller a few seconds each to empty.
const DOWN_TIMEOUT: Duration = Duration::from_secs(300);
/// Labs checked at once when grading (each student's copies are disjoint).
const GRADE_JOBS: usize = 16;

pub async fn run(command: ClassCommand, ui: &Ui) -> Result<ExitCode, AppError> {
    match command {
        ClassCommand::Up(args) => up(args, ui).await,
        ClassCommand::Grade(args) => grade(args, ui).await,
        ClassCommand::Reset(args) => reset(args, ui).await,
        ClassCommand::Down(args) => down(args, ui).await,
    }
}

/// The hands-on labs the arguments name (all of them by default).
fn hands_on_labs(dir: &crate::cli::DirArgs, wanted: &[String]) -> Result<Vec<LoadedLab>, AppError> {
    let (labs, from) = labs_of(dir, wanted)?;
    let labs: Vec<LoadedLab> = labs.into_iter().filter(|l| l.lab.is_hands_on()).collect();
    if labs.is_empty() {
        return Err(AppError::Usage(format!(
            "no hands-on lab among the labs chosen from {from}: a class does hands-on labs (`kubelab list` marks them)"
        )));
    }
    Ok(labs)
}

/// The labs a class file names, from its suite or folder.
fn class_labs(class: &ClassFile) -> Result<Vec<LoadedLab>, AppError> {
    let dir = crate::cli::DirArgs {
        dir: class.dir.clone(),
        suite: class.suite.clone().unwrap_or_else(|| "seed".into()),
    };
    hands_on_labs(&dir, &class.labs)
}

/// Each lab's copy for `student`, with the lab as written (for what it starts with).
fn copies<'a>(labs: &'a [LoadedLab], student: &str) -> Vec<(Copy, &'a LoadedLab)> {
    labs.iter().map(|l| (Copy::of(l, student), l)).collect()
}

async fn up(args: ClassUpArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let students = match (&args.roster, args.students) {
        (Some(file), None) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                AppError::Usage(format!("reading the roster {}: {e}", file.display()))
            })?;
            class::roster(file, &text)?
        }
        (None, Some(count)) => class::numbered(count),
        _ => {
            return Err(AppError::Usage(
                "say who is in the class: --students N (student-01 …) or --roster FILE (one name per line)".into(),
            ));
        }
    };
    if !scenario::is_dns_label(&args.class_name) || args.class_name.len() > 20 {
        return Err(AppError::Usage(format!(
            "class name '{}' must be a DNS label of at most 20 characters (lower-case letters, digits, '-')",
            args.class_name
        )));
    }
    if ClassFile::path(&args.out).exists() {
        return Err(AppError::Usage(format!(
            "{} already holds a class: `kubelab class down --class {}` removes it, or choose another --out",
            ClassFile::path(&args.out).display(),
            args.out.display()
        )));
    }
    let labs = hands_on_labs(&args.dir, &args.labs)?;
    let images = image_map(&args.images)?;
    let choice = connect::choice(&args.cluster, Some(args.consent))?;
    let provider = cluster::to_start(&choice, args.node).await;
    let options = UpOptions {
        node: args.node,
        images: lab_images(&labs, &images).into_keys().collect(),
        ..Default::default()
    };
    provider.ensure(&options, ui).await?;
    let connection = provider.connect().await?;
    let target = connect::target(&connection, ExecMode::Auto).await?;
    connect::consent_to_cluster_wide(&target, &labs, &args.consent).await?;
    let (admin_kubeconfig, context) = provider.kubeconfig()?;
    let cluster_entry = identity::cluster_entry(&admin_kubeconfig, context.as_deref())?;
    // The kubeconfigs hold keys and tokens: the folder is the instructor's alone.
    std::fs::create_dir_all(&args.out)
        .and_then(|_| {
            std::fs::set_permissions(
                &args.out,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
        })
        .map_err(|e| AppError::Environment(format!("making {}: {e}", args.out.display())))?;
    let made = tokio::select! {
        made = make_class(&args, &labs, &students, &target, &connection, &cluster_entry, ui) => made,
        _ = crate::system::interrupted() => Err(AppError::Cluster(cluster::Error::Interrupted)),
    };
    // Interrupted as it finished: undone, as at any other moment.
    let made = made.and_then(|class| match crate::system::keep_result() {
        false => Err(AppError::Cluster(cluster::Error::Interrupted)),
        true => Ok(class),
    });
    match made {
        Ok(class) => {
            println!(
                "Class {} is up on {}: {} students, {} labs each.",
                class.name,
                connection.server,
                class.students.len(),
                labs.len()
            );
            println!(
                "Kubeconfigs: {}/<student>.kubeconfig (one per student; keep them private).",
                args.out.display()
            );
            println!(
                "A student: `export KUBECONFIG={}/{}.kubeconfig; kubelab start {}`. Grades: `kubelab class grade --class {}`.",
                args.out.display(),
                class.students[0].name,
                labs[0].lab.id,
                args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // Nothing half made stays: objects, certificate requests, kubeconfigs.
            let step = ui.step("removing what this class up made");
            let _ = take_down(&target, &args.class_name, &args.out, &students, ui).await;
            step.done("removed what this class up made");
            Err(e)
        }
    }
}

async fn make_class(
    args: &ClassUpArgs,
    labs: &[LoadedLab],
    students: &[String],
    target: &Target,
    connection: &Connection,
    cluster_entry: &serde_json::Value,
    ui: &Ui,
) -> Result<ClassFile, AppError> {
    let class = &args.class_name;
    let client = &target.client;
    let valid = args.valid;
    // The ServiceAccounts' namespace first: a token identity needs it.
    fence::apply(
        client,
        &target.resources,
        &[fence::accounts_namespace(class)],
    )
    .await?;
    let step = ui.step(format!("issuing {} identities", students.len()));
    let first = match args.identity {
        IdentityChoice::Token => None,
        IdentityChoice::Auto | IdentityChoice::Certificate => {
            identity::certificate(client, class, &students[0], valid).await?
        }
    };
    if first.is_none() && args.identity == IdentityChoice::Certificate {
        return Err(class::Error::Identity(format!(
            "{} signed no client certificate within 15 s (its kube-controller-manager needs --cluster-signing-cert-file and --cluster-signing-key-file): use --identity token",
            connection.server
        ))
        .into());
    }
    let certificates = first.is_some();
    let rest = futures::stream::iter(students[1..].iter().map(|student| async move {
        if certificates {
            identity::certificate(client, class, student, valid)
                .await?
                .ok_or_else(|| {
                    class::Error::Identity(format!(
                        "the cluster stopped signing certificates (for {student})"
                    ))
                })
        } else {
            identity::service_account_token(client, class, student, valid).await
        }
    }))
    .buffered(8)
    .try_collect::<Vec<_>>()
    .await?;
    let first = match first {
        Some(issued) => issued,
        None => identity::service_account_token(client, class, &students[0], valid).await?,
    };
    let issued: Vec<identity::Issued> = std::iter::once(first).chain(rest).collect();
    step.done(format!(
        "{} identities: {}",
        issued.len(),
        if certificates {
            "client certificates signed by the cluster (CertificateSigningRequest)"
        } else {
            "ServiceAccount tokens (the cluster signed no client certificate)"
        }
    ));

    let step = ui.step(format!(
        "fencing {} students: namespaces for {} labs each, and their RBAC",
        students.len(),
        labs.len()
    ));
    let subjects: Vec<serde_json::Value> = issued.iter().map(|i| fence::subject(&i.user)).collect();
    let mut objects = fence::shared(class, &subjects);
    let mut records = Vec::new();
    for (student, issued) in students.iter().zip(&issued) {
        let student_copies = copies(labs, student);
        objects.extend(fence::student(
            class,
            student,
            &issued.user,
            &student_copies,
        )?);
        let namespaces: Vec<String> = student_copies
            .iter()
            .flat_map(|(copy, _)| copy.namespaces.values().cloned())
            .collect();
        let kubeconfig_path = args.out.join(format!("{student}.kubeconfig"));
        let seat = Seat {
            class: class.clone(),
            student: student.clone(),
        };
        let kubeconfig = identity::kubeconfig(cluster_entry, issued, &seat, &namespaces[0]);
        identity::write_kubeconfig(&kubeconfig_path, &kubeconfig)?;
        records.push(Student {
            name: student.clone(),
            user: issued.user.clone(),
            identity: issued.kind,
            kubeconfig: kubeconfig_path,
            namespaces,
        });
    }
    fence::apply(client, &target.resources, &objects).await?;
    step.done(format!(
        "{} students fenced: {} objects",
        students.len(),
        objects.len()
    ));
    let file = ClassFile {
        version: 1,
        name: class.clone(),
        server: connection.server.clone(),
        cluster_uid: connect::cluster_uid(connection).await?,
        suite: args.dir.dir.is_none().then(|| args.dir.suite.clone()),
        dir: args
            .dir
            .dir
            .as_ref()
            .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone())),
        labs: labs.iter().map(|l| l.folder.clone()).collect(),
        students: records,
    };
    file.write(&args.out)?;
    Ok(file)
}

/// The class's cluster, checked to be the one the class was made on.
async fn class_cluster(
    args: &ClusterArgs,
    class: &ClassFile,
) -> Result<(Connection, Target), AppError> {
    let choice = connect::choice(args, None)?;
    let connection = cluster::existing_provider(&choice).await.connect().await?;
    if connect::cluster_uid(&connection).await? != class.cluster_uid {
        return Err(AppError::Usage(format!(
            "class {} was made on {}, but this is {}: choose its cluster with --kubeconfig/--context (or the local cluster's --name)",
            class.name, class.server, connection.server
        )));
    }
    let target = connect::target(&connection, ExecMode::Auto).await?;
    Ok((connection, target))
}

/// The namespaces that hold something besides what a namespace comes with and the
/// class's fence: a lab started there (its start made objects; a student who stops
/// it leaves the namespace empty again).
async fn in_use(target: &Target) -> Result<BTreeSet<String>, AppError> {
    let mut found = BTreeSet::new();
    let params = ListParams::default();
    for kind in [
        "pods",
        "serviceaccounts",
        "configmaps",
        "roles",
        "rolebindings",
        "deployments",
    ] {
        let resolved = target.resources.for_type(kind).await?;
        let api: kube::Api<DynamicObject> =
            kube::Api::all_with(target.client.clone(), &resolved.resource);
        let list = api
            .list(&params)
            .await
            .map_err(|source| cluster::Error::Kube {
                context: format!("listing the labs' {kind}"),
                source,
            })?;
        for object in list.items {
            let name = object.name_any();
            let comes_with_namespace = (kind == "serviceaccounts" && name == "default")
                || (kind == "configmaps" && name == "kube-root-ca.crt");
            if comes_with_namespace
                || object
                    .labels()
                    .contains_key(engine::objects::PROVIDED_LABEL)
            {
                continue;
            }
            found.extend(object.namespace());
        }
    }
    Ok(found)
}

fn grade_settings() -> Settings {
    Settings {
        jobs: GRADE_JOBS,
        keep: Keep::Everything,
        explain: false,
        images: Default::default(),
        part: Part::Checks,
        adopt_since: None,
        protected: Default::default(),
        pace: Pace::Check,
        wait_for_namespaces: true,
        cleanup_timeout: engine::CLEANUP_TIMEOUT,
    }
}

async fn grade(args: ClassGradeArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let class = ClassFile::read(&args.class)?;
    let labs = class_labs(&class)?;
    let (_, target) = class_cluster(&args.cluster, &class).await?;
    let step = ui.step(format!(
        "checking {} students × {} labs",
        class.students.len(),
        labs.len()
    ));
    let in_use = in_use(&target).await?;
    // Every started copy of every student, checked in one run: copies never overlap.
    let mut to_check = Vec::new();
    let mut cells: Vec<Vec<(bool, Option<usize>)>> = Vec::new();
    for student in &class.students {
        let mut row = Vec::new();
        for lab in &labs {
            let copy = Copy::of(lab, &student.name);
            let is_started = copy.namespaces.values().any(|ns| in_use.contains(ns));
            if is_started {
                to_check.push(copy.lab(lab)?);
                row.push((true, Some(to_check.len() - 1)));
            } else {
                row.push((false, None));
            }
        }
        cells.push(row);
    }
    let run_id = engine::new_run_id();
    let finished = engine::run_labs(
        &target,
        to_check.clone(),
        &grade_settings(),
        &run_id,
        &Ui::new(true),
    )
    .await;
    let reports = super::completed(finished, &target, &run_id, false)?.labs;
    step.done(format!("checked {} started labs", reports.len()));
    let columns: Vec<LabColumn> = labs
        .iter()
        .map(|l| LabColumn {
            id: l.lab.id.clone(),
            title: l.lab.title.clone(),
            max_points: l.lab.max_points(),
        })
        .collect();
    let max_points: u32 = columns.iter().map(|c| c.max_points).sum();
    let students = class
        .students
        .iter()
        .zip(cells)
        .map(|(student, row)| {
            let cells: Vec<Cell> = row
                .into_iter()
                .zip(&labs)
                .map(|((is_started, index), lab)| Cell {
                    lab: lab.lab.id.clone(),
                    started: is_started,
                    grade: index.map(|i| crate::report::grade(&to_check[i].lab, &reports[i])),
                })
                .collect();
            StudentRow {
                student: student.name.clone(),
                points: cells.iter().map(Cell::points).sum(),
                max_points,
                labs: cells,
            }
        })
        .collect();
    let book = GradeBook {
        class: class.name.clone(),
        labs: columns,
        students,
    };
    if let Some(path) = &args.csv {
        class::grade::write(path, &book.csv())?;
    }
    if let Some(path) = &args.junit {
        class::grade::write(path, &book.junit())?;
    }
    if let Some(path) = &args.html {
        class::grade::write(path, &class::html::page(&book))?;
    }
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&book).expect("grades serialize")
        ),
        Format::Text => print!("{}", book.table()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn reset(args: ClassResetArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let class = ClassFile::read(&args.class)?;
    let student = class.student(&args.student)?.name.clone();
    let mut labs = class_labs(&class)?;
    if let Some(wanted) = &args.lab {
        labs = scenario::select(labs, std::slice::from_ref(wanted), "the class's labs")?;
    }
    let (_, target) = class_cluster(&args.cluster, &class).await?;
    let in_use = in_use(&target).await?;
    for lab in &labs {
        let copy = Copy::of(lab, &student);
        let namespaces: Vec<String> = copy.namespaces.values().cloned().collect();
        let is_started = namespaces.iter().any(|ns| in_use.contains(ns));
        let step = ui.step(format!("resetting lab {} of {student}", lab.lab.id));
        let scope = engine::reset::Scope {
            namespaces: &namespaces,
            run_id: "",
            since: 0,
            others: &[],
            keep_namespaces: true,
        };
        let doomed = engine::reset::plan(&target.client, &target.resources, &scope).await?;
        engine::reset::remove(&target.client, &doomed, DOWN_TIMEOUT).await?;
        if !is_started {
            step.done(format!(
                "lab {} of {student}: not started; removed {} objects",
                lab.lab.id,
                doomed.len()
            ));
            continue;
        }
        let settings = Settings {
            jobs: 1,
            keep: Keep::WhenPassed,
            part: Part::Start,
            pace: Pace::Run,
            ..grade_settings()
        };
        let copied = copy.lab(lab)?;
        let run_id = engine::new_run_id();
        let finished =
            engine::run_labs(&target, vec![copied], &settings, &run_id, &Ui::new(true)).await;
        let report = super::completed(finished, &target, &run_id, false)?
            .labs
            .into_iter()
            .next()
            .expect("one lab");
        if report.outcome != crate::report::Outcome::Passed {
            return Err(AppError::Environment(format!(
                "setting up lab {} of {student} again did not work: {}",
                lab.lab.id,
                report.error.unwrap_or_default()
            )));
        }
        step.done(format!(
            "lab {} of {student} is back at its start ({} objects removed)",
            lab.lab.id,
            doomed.len()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

async fn down(args: ClassDownArgs, ui: &Ui) -> Result<ExitCode, AppError> {
    let class = ClassFile::read(&args.class)?;
    let (_, target) = class_cluster(&args.cluster, &class).await?;
    let names: Vec<String> = class.students.iter().map(|s| s.name.clone()).collect();
    take_down(&target, &class.name, &args.class, &names, ui).await?;
    println!(
        "Class {} is down: its {} students' namespaces, RBAC, identities and kubeconfigs are gone.",
        class.name,
        class.students.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Removes a class: what carries its label, its certificate requests, the kubeconfigs
/// and the class file; waits (bounded) until its namespaces are gone.
async fn take_down(
    target: &Target,
    class: &str,
    out: &Path,
    students: &[String],
    ui: &Ui,
) -> Result<(), AppError> {
    let step = ui.step(format!("removing class {class}"));
    let namespaces = fence::remove(&target.client, &target.resources, class, None).await?;
    identity::remove(&target.client, class).await?;
    for student in students {
        let _ = std::fs::remove_file(out.join(format!("{student}.kubeconfig")));
    }
    let _ = std::fs::remove_file(ClassFile::path(out));
    let _ = std::fs::remove_dir(out); // only when nothing else is in it
    step.done(format!(
        "deleted class {class}: {} namespaces, its RBAC and identities",
        namespaces.len()
    ));
    let step = ui.step(format!("waiting for {} namespaces to go", namespaces.len()));
    // Emptied and finalized by kubelab, without the namespace controller's 5 s hold;
    // what it declines (another finalizer, say) is the controller's, and waited for.
    let going: Vec<(&str, Option<&str>)> = namespaces
        .iter()
        .map(|(name, uid)| (name.as_str(), uid.as_deref()))
        .collect();
    let gone = engine::namespaces::finish(&target.client, &going, DOWN_TIMEOUT, |declined| {
        ui.info(format!("  left to the namespace controller: {declined}"))
    })
    .await;
    gone.into_iter().collect::<Result<Vec<()>, _>>()?;
    step.done(format!("{} namespaces gone", namespaces.len()));
    Ok(())
}
