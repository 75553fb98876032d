//! The GitHub Action (action.yml): its inputs, and the kubelab command its run step
//! builds from them, parsed by kubelab's own command line. The README's workflow uses it.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;
use kubelab::cli::{Cli, Command, Provider};
use serde_json::Value;

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn step<'a>(action: &'a Value, name: &str) -> &'a Value {
    action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step '{name}'"))
}

/// The arguments the "Run the labs" step passes to kubelab, for these inputs.
fn kubelab_args(inputs: &[(&str, &str)]) -> (Vec<String>, BTreeMap<String, String>) {
    let action = yaml("action.yml");
    let run = step(&action, "Run the labs");
    let script = run["run"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let args_file = dir.path().join("args");
    // kubelab replaced by a function that records its arguments, one per line.
    let fake = format!(
        "kubelab() {{ printf '%s\\n' \"$@\" > {:?}; }}\n{script}",
        args_file
    );
    let mut command = std::process::Command::new("bash");
    command
        .args(["--norc", "-euo", "pipefail", "-c", &fake])
        .env("RUNNER_TEMP", dir.path())
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"));
    // Each env entry of the step, with the input it names replaced by the value given
    // (or the input's default).
    for (variable, expression) in run["env"].as_object().unwrap() {
        let input = expression
            .as_str()
            .unwrap()
            .trim_start_matches("${{ inputs.")
            .trim_end_matches(" }}");
        let value = inputs
            .iter()
            .find(|(name, _)| *name == input)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| {
                action["inputs"][input]["default"]
                    .as_str()
                    .unwrap_or_else(|| {
                        panic!("{variable} names input {input}, which has no default")
                    })
                    .to_string()
            });
        command.env(variable, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(&args_file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let outputs = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (args, outputs)
}

#[test]
fn the_action_runs_the_labs_it_is_given_on_kind_with_every_report() {
    let (args, outputs) = kubelab_args(&[("labs", "01 02")]);
    let cli = Cli::try_parse_from(std::iter::once("kubelab".to_string()).chain(args.clone()))
        .unwrap_or_else(|e| panic!("kubelab {args:?}: {e}"));
    let Command::Run(run) = cli.command else {
        panic!("not a run: {args:?}")
    };
    assert_eq!(run.labs, ["01", "02"]);
    assert_eq!(run.cluster.provider, Provider::Kind);
    assert_eq!(run.dir.suite, "seed");
    assert_eq!(run.jobs, 4);
    let junit = run.junit.unwrap();
    assert_eq!(junit.to_str().unwrap(), outputs["junit"]);
    assert_eq!(run.html.unwrap().to_str().unwrap(), outputs["html"]);
    assert!(run.markdown.unwrap().ends_with("summary.md"));

    // A folder of one's own labs, and no labs named: all of them.
    let (args, _) = kubelab_args(&[("dir", "labs/ci"), ("jobs", "2")]);
    let cli =
        Cli::try_parse_from(std::iter::once("kubelab".to_string()).chain(args.clone())).unwrap();
    let Command::Run(run) = cli.command else {
        panic!("not a run: {args:?}")
    };
    assert!(run.labs.is_empty());
    assert_eq!(run.dir.dir.unwrap().to_str().unwrap(), "labs/ci");
    assert_eq!(run.jobs, 2);
}

#[test]
fn inputs_reach_scripts_only_through_env_and_reports_are_uploaded_always() {
    let action = yaml("action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    for step in action["runs"]["steps"].as_array().unwrap() {
        if let Some(script) = step["run"].as_str() {
            assert!(
                !script.contains("${{"),
                "an expression inside a script can inject shell: {script}"
            );
            assert_eq!(step["shell"], "bash", "{step}");
        }
    }
    let upload = step(&action, "Upload the reports");
    assert!(
        upload["uses"]
            .as_str()
            .unwrap()
            .starts_with("actions/upload-artifact@")
    );
    assert_eq!(upload["if"], "always()");
    // kind comes from kubelab's own pinned recipe: one version, kubelab's.
    let install = step(&action, "Install kind");
    assert!(
        install["run"]
            .as_str()
            .unwrap()
            .contains("kubelab setup kind"),
        "{install}"
    );
    for input in ["labs", "dir", "suite", "jobs", "report-name"] {
        assert!(
            action["inputs"][input]["description"].is_string(),
            "input {input}"
        );
    }
}

#[test]
fn the_example_workflow_uses_the_action_with_inputs_it_has() {
    let action = yaml("action.yml");
    let workflow = yaml("examples/ci/github-actions.yml");
    let steps = workflow["jobs"]["labs"]["steps"].as_array().unwrap();
    let uses = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.ends_with("/kubelab@main"))
        })
        .expect("a step uses the kubelab action");
    for (input, _) in uses["with"].as_object().unwrap() {
        assert!(
            action["inputs"][input].is_object(),
            "the action has no input {input}"
        );
    }
}
