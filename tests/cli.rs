//! The command line without a cluster: help, usage errors, and the errors a user meets
//! before anything can start.

mod support;

use support::{Lab, stderr, stdout, text};

#[test]
fn help_names_the_cluster_commands_and_the_exit_codes() {
    let out = Lab::new().run(&["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    assert!(help.contains("cluster"), "{help}");
    assert!(
        help.contains("Exit codes: 0 ok, 1 a check failed, 2 usage or lab error"),
        "{help}"
    );

    let out = Lab::new().run(&["cluster", "up", "--help"]);
    let help = stdout(&out);
    for flag in [
        "--provider",
        "--wait-timeout",
        "--port",
        "--apiserver-arg",
        "--name",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
}

#[test]
fn version_names_the_upstream_versions() {
    let out = Lab::new().run(&["--version"]);
    assert!(
        stdout(&out).contains(env!("KUBELAB_KUBERNETES_VERSION")),
        "{}",
        text(&out)
    );
}

#[test]
fn unknown_flags_and_bad_values_are_usage_errors() {
    let lab = Lab::new();
    let out = lab.run(&["cluster", "up", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("unexpected argument '--no-such-flag'"),
        "{}",
        text(&out)
    );

    let out = lab.run(&["cluster", "up", "--wait-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("not a duration"), "{}", text(&out));

    let out = lab.run(&["cluster", "down", "--name", "../etc"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = lab.run(&["cluster", "up", "--provider", "minikube"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn down_with_nothing_running_succeeds_and_says_so() {
    let out = Lab::new().run(&["cluster", "down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("nothing to stop"), "{}", text(&out));
}

#[test]
fn status_and_kubeconfig_without_a_cluster_say_how_to_start_one() {
    let lab = Lab::new();
    for args in [&["cluster", "status"][..], &["cluster", "kubeconfig"][..]] {
        let out = lab.run(args);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(
            stderr(&out).contains("kubelab cluster up"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn missing_binaries_name_each_one_and_what_to_set() {
    let lab = Lab::new();
    let empty = tempfile::tempdir().unwrap();
    let out = lab
        .kubelab()
        .env("KUBELAB_ASSETS", empty.path())
        .args(["cluster", "up"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    for binary in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kubectl",
    ] {
        assert!(err.contains(binary), "{binary} not named:\n{err}");
    }
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
    assert!(err.contains("KUBELAB_ASSETS"), "{err}");
    assert!(
        !lab.state_root.path().join("kubelab").exists(),
        "nothing may be created"
    );
}

#[test]
fn without_go_or_binaries_the_hint_says_to_install_go_or_set_assets() {
    let lab = Lab::new();
    let empty_cache = tempfile::tempdir().unwrap();
    let out = lab
        .kubelab()
        .env_remove("KUBELAB_ASSETS")
        .env_remove("KUBEBUILDER_ASSETS")
        .env("KUBELAB_CACHE", empty_cache.path())
        .env("PATH", "/nonexistent")
        .args(["cluster", "up"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("Go is not installed"), "{err}");
    assert!(err.contains("run `kubelab setup`"), "{err}");
    assert!(err.contains("set KUBELAB_ASSETS"), "{err}");
}

#[test]
fn completion_scripts_for_each_shell_call_kubelab_back() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Lab::new().run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = stdout(&out);
        assert!(script.contains("COMPLETE="), "{shell}:\n{script}");
        assert!(script.contains("kubelab"), "{shell}:\n{script}");
    }
    let out = Lab::new().run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// What bash completes for `line` (the cursor at its end), through the sourced script.
fn bash_completes(line: &str) -> Vec<String> {
    let binary = assert_cmd::cargo::cargo_bin("kubelab");
    let script = format!(
        r#"source <("$KUBELAB" completions bash)
COMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}
read -r -a COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
function=$(complete -p kubelab | sed -E 's/.*-F ([^ ]+).*/\1/')
"$function" kubelab "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &script])
        .env("KUBELAB", &binary)
        .env(
            "PATH",
            format!(
                "{}:{}",
                binary.parent().unwrap().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env_remove("KUBELAB_SCENARIOS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    stdout(&out)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_commands_and_lab_ids_from_the_labs() {
    let commands = bash_completes("kubelab sta");
    assert!(commands.contains(&"start".to_string()), "{commands:?}");
    let ids = bash_completes("kubelab start 0");
    assert!(ids.contains(&"02".to_string()), "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with('0')), "{ids:?}");
    // Folder names too, for `kubelab run 02-custom-serviceaccount`.
    let folders = bash_completes("kubelab run 02-");
    assert!(
        folders.contains(&"02-custom-serviceaccount".to_string()),
        "{folders:?}"
    );
    assert!(folders.iter().all(|f| f.starts_with("02-")), "{folders:?}");
    let flags = bash_completes("kubelab run --ht");
    assert_eq!(flags, ["--html"], "{flags:?}");
}

#[test]
fn the_man_page_is_generated_from_the_command_line() {
    let out = Lab::new().run(&["man"]);
    assert!(out.status.success(), "{}", text(&out));
    let page = stdout(&out);
    assert!(page.starts_with(".ie"), "{page}");
    assert!(page.contains(".TH kubelab 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let out = Lab::new().run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    for page in ["kubelab.1", "kubelab-run.1", "kubelab-setup.1"] {
        assert!(dir.path().join(page).exists(), "{page} missing");
    }
}

#[test]
fn kubectl_runs_kubelab_as_its_lab_plugin() {
    let kubectl = support::assets_dir().join("kubectl");
    let plugins = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        assert_cmd::cargo::cargo_bin("kubelab"),
        plugins.path().join("kubectl-lab"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        plugins.path().display(),
        std::env::var("PATH").unwrap()
    );
    let kubectl_lab = |args: &[&str]| {
        std::process::Command::new(&kubectl)
            .arg("lab")
            .args(args)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env_remove("KUBELAB_SCENARIOS")
            .output()
            .unwrap()
    };
    let out = kubectl_lab(&["list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("02-custom-serviceaccount"),
        "{}",
        text(&out)
    );
    let out = kubectl_lab(&["run", "--help"]);
    assert!(
        stdout(&out).contains("Usage: kubectl lab run"),
        "{}",
        text(&out)
    );
    // kubectl's conventions, as the plugin's own flags.
    for flag in ["--kubeconfig", "--context"] {
        assert!(stdout(&out).contains(flag), "{flag}: {}", text(&out));
    }
    // kubectl finds it the way it finds every plugin.
    let listed = std::process::Command::new(&kubectl)
        .args(["plugin", "list", "--name-only"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(stdout(&listed).contains("kubectl-lab"), "{}", text(&listed));
}

#[test]
fn a_new_lab_passes_lint_and_says_what_to_run_next() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().to_str().unwrap();
    let out = Lab::new().run(&["new", "20-list-configmaps", "--dir", parent]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("kubelab lint --dir"),
        "{}",
        text(&out)
    );
    let lab = dir.path().join("20-list-configmaps");
    let yaml = std::fs::read_to_string(lab.join("lab.yaml")).unwrap();
    assert!(
        yaml.starts_with("# yaml-language-server: $schema=lab.schema.json"),
        "{yaml}"
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.join("lab.schema.json")).unwrap())
            .unwrap();
    assert_eq!(schema["title"], "Lab", "{schema}");
    let out = Lab::new().run(&["lint", "--dir", lab.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    // Never over an existing folder.
    let out = Lab::new().run(&["new", "20-list-configmaps", "--dir", parent]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("exists: choose another name"),
        "{}",
        text(&out)
    );
    let out = Lab::new().run(&["new", "My Lab"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("lowercase letters, digits and dashes"),
        "{}",
        text(&out)
    );
}

#[test]
fn setup_names_the_components_it_knows() {
    let out = Lab::new().run(&["setup", "kube-schedular"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("unknown component 'kube-schedular'"),
        "{}",
        text(&out)
    );
    assert!(stderr(&out).contains("kube-scheduler"), "{}", text(&out));
}

#[test]
fn every_command_shows_an_example_in_its_help() {
    use clap::CommandFactory;
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !after.contains("Example") {
                missing.push(path.clone());
            }
            walk(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&kubelab::cli::Cli::command(), "kubelab", &mut missing);
    assert!(missing.is_empty(), "no example in the help of: {missing:?}");
    // And the help a person reads shows it.
    let out = Lab::new().run(&["cluster", "up", "--help"]);
    assert!(
        stdout(&out).contains("Examples:\n  kubelab cluster up"),
        "{}",
        text(&out)
    );
}

/// A reader that is gone (`| head`) ends kubelab quietly with SIGPIPE's status, as it
/// would any Unix tool, though kubelab ignores SIGPIPE itself (a connection the API
/// server drops must be an error kubelab reports, not a signal that kills it mid-run).
#[test]
fn a_closed_stdout_ends_kubelab_quietly() {
    let lab = Lab::new();
    let out = std::process::Command::new("bash")
        .env("KUBELAB", assert_cmd::cargo::cargo_bin("kubelab"))
        .env("KUBELAB_STATE_DIR", lab.state_root.path())
        .args([
            "-c",
            // The reader exits at once; kubelab starts writing after it is gone.
            r#"for command in "schema lab" "man" "completions bash"; do
                 { sleep 0.3; "$KUBELAB" $command; } | true; echo "status ${PIPESTATUS[0]}"
               done"#,
        ])
        .output()
        .unwrap();
    let said = stderr(&out);
    assert!(!said.contains("panicked"), "{}", text(&out));
    assert!(!said.contains("Broken pipe"), "{}", text(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["status 141"; 3],
        "{}",
        text(&out)
    );
}
