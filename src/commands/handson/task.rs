//! What the student reads: a lab's task and hints as Markdown rendered for the
//! terminal (plain Markdown when stdout is not a terminal or NO_COLOR is set), and how
//! to reach the lab's cluster.

use std::path::Path;

use crate::progress::LabProgress;
use crate::scenario::LoadedLab;

/// Markdown for the terminal: rendered on a colour terminal, as written otherwise
/// (Markdown reads well as it is, and pipes and tests get the exact text).
pub fn print_markdown(markdown: &str) {
    if console::colors_enabled() {
        let skin = termimad::MadSkin::default();
        print!("{}", skin.term_text(markdown));
    } else {
        println!("{}", markdown.trim_end());
    }
}

/// The lab's title line, its task, and how many checks and points it has.
pub fn print_task(loaded: &LoadedLab) {
    let lab = &loaded.lab;
    println!(
        "Lab {} · {}  ({} checks, {} points)\n",
        lab.id,
        lab.title,
        lab.checks.len(),
        lab.max_points()
    );
    print_markdown(lab.task.as_deref().unwrap_or_default());
    println!();
}

/// How to reach the cluster with kubectl, and what comes next.
pub fn print_reach(
    loaded: &LoadedLab,
    entry: &LabProgress,
    kubeconfig: &Path,
    context: Option<&str>,
    runs_pods: bool,
) {
    let lab = &loaded.lab;
    println!("Your cluster: {}", entry.cluster.describe());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    if let Some(context) = context {
        println!("  kubectl config use-context {context}");
    }
    println!(
        "  namespace{}: {}",
        if lab.namespaces.len() > 1 { "s" } else { "" },
        lab.namespaces.join(", ")
    );
    if let (Some(student), Some(copy)) = (&entry.copy_of, &loaded.copied) {
        println!(
            "  This is {student}'s own copy of the lab: where the task names a namespace or a cluster-wide object, use the copy's:"
        );
        for line in copy.describe() {
            println!("    {line}");
        }
    }
    if !runs_pods {
        println!(
            "No node runs pods on this cluster: your pods are created but stay Pending. `kubelab check` and `kubelab shell` stand in for them on this host (`kubelab start {} --node` gives real pods).",
            lab.id
        );
    }
    println!(
        "\nThen: `kubelab check` (what is still wrong) · `kubelab hint` ({} hints) · `kubelab shell` · `kubelab solution` · `kubelab reset`",
        lab.hints.len()
    );
}
