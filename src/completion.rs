//! Shell completion and the man page, both from the clap definition. Completion is
//! dynamic: the script the shell sources calls kubelab back (COMPLETE=<shell>), so lab
//! ids come from the labs themselves (the built-in suites, or KUBELAB_SCENARIOS).

use std::ffi::OsStr;

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, CompleteEnv, EnvCompleter, Fish, Zsh};

use crate::cli::{Cli, CompletionShell};

/// The variable the completion scripts set when they call kubelab back.
const VAR: &str = "COMPLETE";

/// Answers a completion request and exits, when the shell made one.
pub fn answer_if_asked() {
    CompleteEnv::with_factory(Cli::command).var(VAR).complete();
}

/// Lab ids and folder names starting with `current`, each with its title as help.
pub fn lab_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_str().unwrap_or_default();
    let labs: Vec<crate::scenario::LoadedLab> = match std::env::var_os("KUBELAB_SCENARIOS") {
        Some(dir) => crate::scenario::load_dir(std::path::Path::new(&dir)).unwrap_or_default(),
        None => crate::scenario::SUITES
            .iter()
            .filter_map(|suite| crate::scenario::load_suite(suite).ok())
            .flatten()
            .collect(),
    };
    let mut candidates = Vec::new();
    for loaded in &labs {
        for name in [&loaded.lab.id, &loaded.folder] {
            if name.starts_with(current) {
                candidates.push(
                    CompletionCandidate::new(name.as_str())
                        .help(Some(loaded.lab.title.clone().into())),
                );
            }
        }
    }
    candidates
}

/// The script that registers kubelab's completion with `shell`.
pub fn write_script(shell: CompletionShell, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    // The script calls back the binary as it was invoked: on PATH by name, else its path.
    let invoked = std::env::args_os()
        .next()
        .unwrap_or_else(|| "kubelab".into());
    let mut completer = std::path::PathBuf::from(&invoked);
    if completer.components().count() > 1 && completer.is_relative() {
        completer = std::env::current_dir()?.join(completer);
    }
    let completer = completer.to_string_lossy();
    let shell: &dyn EnvCompleter = match shell {
        CompletionShell::Bash => &Bash,
        CompletionShell::Zsh => &Zsh,
        CompletionShell::Fish => &Fish,
    };
    shell.write_registration(VAR, "kubelab", "kubelab", &completer, out)
}

/// kubelab(1), or one page per command into `dir`.
pub fn write_man(dir: Option<&std::path::Path>) -> std::io::Result<()> {
    let command = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)
        }
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_ids_complete_from_the_built_in_labs() {
        let ids: Vec<String> = lab_ids(OsStr::new("0"))
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect();
        assert!(ids.contains(&"02".to_string()), "{ids:?}");
        assert!(ids.iter().all(|id| id.starts_with('0')), "{ids:?}");
        assert!(lab_ids(OsStr::new("no-such-lab")).is_empty());
    }

    #[test]
    fn the_man_page_names_every_command() {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        for command in ["run", "start", "check", "setup", "completions"] {
            assert!(page.contains(command), "man page lacks {command}");
        }
    }
}
