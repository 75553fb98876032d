//! Commands about lab files: list, show, lint, schema, images. None needs a cluster.

use std::collections::BTreeMap;
use std::process::ExitCode;

use super::{image_map, labs_dir};
use crate::AppError;
use crate::cli::{DirArgs, ImagesArgs, ShowArgs};
use crate::cluster::kind;
use crate::images::{self, ImageMap};
use crate::scenario::{self, LoadedLab};

pub fn list(args: &DirArgs) -> Result<ExitCode, AppError> {
    for loaded in &scenario::load_dir(&labs_dir(args))? {
        let lab = &loaded.lab;
        println!("{:<4} {:<32} {}", lab.id, loaded.folder, lab.title);
        println!("     {}", lab.summary.trim());
        println!(
            "     namespaces: {}; from: {}",
            lab.namespaces.join(", "),
            lab.source
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lint(args: &DirArgs) -> Result<ExitCode, AppError> {
    let dir = labs_dir(args);
    let labs = scenario::load_dir(&dir)?;
    let probes: usize = labs
        .iter()
        .flat_map(|l| &l.lab.steps)
        .map(|s| s.probes.len())
        .sum();
    println!(
        "{} labs, {probes} probes in {}: no problems",
        labs.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn schema() -> Result<ExitCode, AppError> {
    println!(
        "{}",
        serde_json::to_string_pretty(&scenario::schema()).expect("schema serializes")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn show(args: &ShowArgs) -> Result<ExitCode, AppError> {
    let dir = labs_dir(&args.dir);
    let labs = scenario::select(
        scenario::load_dir(&dir)?,
        std::slice::from_ref(&args.lab),
        &dir,
    )?;
    for loaded in &labs {
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
    let labs = scenario::load_dir(&labs_dir(&args.dir))?;
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
    for (n, step) in lab.steps.iter().enumerate() {
        println!("step {} [{}]: {}", n + 1, step.id, step.name);
        for file in &step.apply {
            for doc in &loaded.manifests[file].documents {
                let kind = doc["kind"].as_str().unwrap_or_default();
                let name = doc["metadata"]["name"].as_str().unwrap_or_default();
                let place = match (doc["metadata"]["namespace"].as_str(), kind) {
                    (Some(ns), _) => format!("{ns}/{name}"),
                    (None, "Namespace" | "ClusterRole" | "ClusterRoleBinding") => name.to_string(),
                    (None, _) => format!("{default_ns}/{name}"),
                };
                println!("  apply {file}: {kind} {place}");
            }
        }
        for target in &step.restart {
            println!("  restart {target}");
        }
        for wait in &step.wait {
            let what = match (&wait.pod, &wait.deployment) {
                (Some(pod), _) => format!("pod {pod}"),
                (None, Some(deployment)) => format!("deployment {deployment}"),
                (None, None) => String::new(),
            };
            println!("  wait for {what} ({:?})", wait.until);
        }
        for probe in &step.probes {
            let namespace = probe.namespace.as_deref().unwrap_or(default_ns);
            let from = match &probe.pod {
                Some(pod) => format!("in pod {namespace}/{pod}"),
                None => "as kubelab".to_string(),
            };
            println!("  probe [{}] {} ({from})", probe.id, probe.name);
            println!("    $ {}", crate::probe::shown_command(probe, namespace));
            let expect = serde_json::to_value(&probe.expect).expect("expect serializes");
            println!("    expect {expect}");
        }
        println!();
    }
}
