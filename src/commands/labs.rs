//! Commands about lab files: list, show, lint, schema, new, images. None needs a cluster.

use std::collections::BTreeMap;
use std::process::ExitCode;

use super::{image_map, labs_of};
use crate::AppError;
use crate::cli::{DirArgs, ImagesArgs, NewArgs, SchemaKind, ShowArgs};
use crate::cluster::kind;
use crate::images::{self, ImageMap};
use crate::scenario::{self, Action, LoadedLab};

pub fn list(args: &DirArgs) -> Result<ExitCode, AppError> {
    for loaded in &labs_of(args, &[])?.0 {
        let lab = &loaded.lab;
        println!("{:<4} {:<36} {}", lab.id, loaded.folder, lab.title);
        println!("     {}", lab.summary.trim());
        let needs = if loaded.needs_node() {
            "; needs a node"
        } else {
            ""
        };
        if lab.is_hands_on() {
            println!(
                "     hands-on: {} checks, {} points, {} hints (`kubelab start {}`)",
                lab.checks.len(),
                lab.max_points(),
                lab.hints.len(),
                lab.id
            );
        }
        println!(
            "     namespaces: {}; from: {}{needs}",
            lab.namespaces.join(", "),
            lab.source
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lint(args: &DirArgs) -> Result<ExitCode, AppError> {
    let (labs, from) = labs_of(args, &[])?;
    let operations: usize = labs
        .iter()
        .flat_map(|l| l.lab.plan(scenario::Part::All))
        .map(|s| s.operations.len())
        .sum();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    println!(
        "{}, {} in {from}: no problems",
        plural(labs.len(), "lab"),
        plural(operations, "operation")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn schema(kind: SchemaKind) -> Result<ExitCode, AppError> {
    let schema = match kind {
        SchemaKind::Lab => scenario::schema(),
        SchemaKind::Report => crate::report::schema(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("schema serializes")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn new_lab(args: &NewArgs) -> Result<ExitCode, AppError> {
    let dir = scenario::scaffold::create(&args.dir, &args.name)?;
    println!(
        "made {}: lab.yaml, manifests.yaml, explain.md.tera, lab.schema.json",
        dir.display()
    );
    println!(
        "next: kubelab lint --dir {0} && kubelab run --dir {0}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn show(args: &ShowArgs) -> Result<ExitCode, AppError> {
    for loaded in &labs_of(&args.dir, std::slice::from_ref(&args.lab))?.0 {
        print_lab(loaded);
    }
    Ok(ExitCode::SUCCESS)
}

/// The images the labs' manifests run (after replacements), with the labs using each.
pub fn lab_images(labs: &[LoadedLab], map: &ImageMap) -> BTreeMap<String, Vec<String>> {
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for loaded in labs {
        for manifest in loaded.manifests.values() {
            for document in &manifest.documents {
                for image in images::images_in(document) {
                    let users = used.entry(map.resolve(&image).to_string()).or_default();
                    if !users.contains(&loaded.lab.id) {
                        users.push(loaded.lab.id.clone());
                    }
                }
            }
        }
    }
    used
}

pub async fn images(args: &ImagesArgs) -> Result<ExitCode, AppError> {
    let (labs, _) = labs_of(&args.dir, &[])?;
    let used = lab_images(&labs, &image_map(&args.images)?);
    // Say which are already in the local engine, when there is one.
    let engine = kind::detect().await.ok().map(|tools| tools.engine.binary());
    for (image, lab_ids) in &used {
        let presence = match engine {
            Some(engine) => {
                let present = tokio::process::Command::new(engine)
                    .args(["image", "inspect", image])
                    .output()
                    .await
                    .is_ok_and(|o| o.status.success());
                if present {
                    format!("  (in {engine})")
                } else {
                    format!("  (not in {engine})")
                }
            }
            None => String::new(),
        };
        println!("{image}  labs {}{presence}", lab_ids.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_lab(loaded: &LoadedLab) {
    let lab = &loaded.lab;
    println!("{} {} ({})", lab.id, lab.title, loaded.folder);
    println!(
        "{}\nfrom: {}\nnamespaces: {}\n",
        lab.summary.trim(),
        lab.source,
        lab.namespaces.join(", ")
    );
    let default_ns = &lab.namespaces[0];
    if let Some(task) = &lab.task {
        println!("task:\n{}\n", task.trim_end());
    }
    for (n, step) in lab.plan(scenario::Part::All).iter().enumerate() {
        match lab.checks.iter().find(|c| c.id == step.id) {
            Some(check) => println!(
                "check [{}]: {} ({} point{})",
                check.id,
                check.title,
                check.points,
                if check.points == 1 { "" } else { "s" }
            ),
            None => println!("step {} [{}]: {}", n + 1, step.id, step.name),
        }
        for op in &step.operations {
            let namespace = op.namespace.as_deref().unwrap_or(default_ns);
            match &op.action {
                Action::Apply(apply) | Action::Create(apply) => {
                    for file in apply.all_files() {
                        for doc in &loaded.manifests[file].documents {
                            let kind = doc["kind"].as_str().unwrap_or_default();
                            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
                            let place = match (doc["metadata"]["namespace"].as_str(), kind) {
                                (Some(ns), _) => format!("{ns}/{name}"),
                                (None, "Namespace" | "ClusterRole" | "ClusterRoleBinding") => {
                                    name.to_string()
                                }
                                (None, _) => format!("{namespace}/{name}"),
                            };
                            println!("  {} {file}: {kind} {place}", op.action.key());
                        }
                    }
                    if let Some(expect) = &apply.expect_error {
                        println!(
                            "    expect the API server to reject it: {}",
                            serde_json::to_value(expect).unwrap_or_default()
                        );
                    }
                }
                Action::Probe(probe) => {
                    let from = match &op.pod {
                        Some(pod) => format!("in pod {namespace}/{pod}"),
                        None => "as kubelab".to_string(),
                    };
                    println!(
                        "  {} [{}] {} ({from})",
                        probe.key(),
                        op.id.as_deref().unwrap_or_default(),
                        op.name.as_deref().unwrap_or_default()
                    );
                    println!(
                        "    $ {}",
                        crate::probe::shown_command(op, probe, namespace)
                    );
                    println!("    expect {}", probe.expected());
                }
                other => println!("  {}", op.name.clone().unwrap_or_else(|| other.describe())),
            }
        }
        println!();
    }
}
