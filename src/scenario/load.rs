//! Reading labs: lab.yaml into the model (a syntax or type error becomes a [`Problem`]
//! at its line and column), then the checks of [`super::lint`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::limits::{breach_message, yaml_options};
use super::lint;
use super::locate::{Locations, Position};
use super::model::Lab;
use super::problem::{Error, Problem};
use super::source::LabFolder;

pub const LAB_FILE: &str = "lab.yaml";

/// A manifest file a lab applies: its YAML documents as JSON values, with positions.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// As messages name it.
    pub path: PathBuf,
    /// The file as written (what `kubelab solution` shows).
    pub text: String,
    pub documents: Vec<serde_json::Value>,
    pub locations: Vec<Locations>,
}

/// A lab that passed every check, with what it refers to already read.
#[derive(Clone, Debug)]
pub struct LoadedLab {
    /// The folder's name, e.g. 02-custom-serviceaccount.
    pub folder: String,
    /// Its built-in suite, or None for a folder on disk.
    pub suite: Option<&'static str>,
    pub lab: Lab,
    /// Manifests by the name the lab uses for them.
    pub manifests: BTreeMap<String, Manifest>,
    /// Request bodies (`body-file`) by name.
    pub files: BTreeMap<String, String>,
    pub template: String,
    /// lab.yaml as a tree, from which an isolated copy is made.
    pub raw: serde_json::Value,
    /// The names of this copy, when it is an isolated copy.
    pub copied: Option<super::copy::Copy>,
}

impl LoadedLab {
    /// Whether this lab needs a node that runs pods.
    pub fn needs_node(&self) -> bool {
        self.lab.requires.contains(&super::model::Requirement::Node)
    }
}

/// Every lab of `folders`; all problems of all labs are reported together.
pub fn load(folders: Vec<LabFolder>) -> Result<Vec<LoadedLab>, Error> {
    let mut labs = Vec::new();
    let mut problems = Vec::new();
    for folder in &folders {
        match load_lab(folder) {
            Ok(lab) => labs.push((folder, lab)),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if let Some(duplicate) = first_duplicate_id(&labs) {
        problems.push(duplicate);
    }
    if problems.is_empty() {
        Ok(labs.into_iter().map(|(_, lab)| lab).collect())
    } else {
        Err(Error::Invalid(problems))
    }
}

fn first_duplicate_id(labs: &[(&LabFolder, LoadedLab)]) -> Option<Problem> {
    let mut seen: BTreeMap<&str, &LoadedLab> = BTreeMap::new();
    for (folder, loaded) in labs {
        if let Some(first) = seen.insert(&loaded.lab.id, loaded) {
            return Some(Problem {
                file: folder.display(LAB_FILE),
                at: Position { line: 1, column: 1 },
                field: "id".into(),
                message: format!("id '{}' is also the id of {}", loaded.lab.id, first.folder),
            });
        }
    }
    None
}

/// One lab: lab.yaml, then what it refers to. Any input gives Ok or problems, never a
/// panic (the fuzzer checks this).
pub fn load_lab(folder: &LabFolder) -> Result<LoadedLab, Vec<Problem>> {
    let file = folder.display(LAB_FILE);
    let text = folder.read(LAB_FILE).map_err(|message| {
        vec![Problem {
            file: file.clone(),
            at: Position { line: 1, column: 1 },
            field: String::new(),
            message,
        }]
    })?;
    let locations = Locations::of_documents(&text)
        .into_iter()
        .next()
        .unwrap_or_default();
    let lab: Lab = serde_saphyr::from_str_with_options(&text, yaml_options())
        .map_err(|e| vec![deserialize_problem(&file, &text, &locations, &e)])?;
    let raw: serde_json::Value = serde_saphyr::from_str_with_options(&text, yaml_options())
        .map_err(|e| vec![deserialize_problem(&file, &text, &locations, &e)])?;
    let checked = lint::check(&lab, folder, &file, &locations);
    if !checked.problems.is_empty() {
        return Err(checked.problems);
    }
    Ok(LoadedLab {
        folder: folder.name(),
        suite: folder.suite(),
        lab,
        manifests: checked.manifests,
        files: checked.files,
        template: checked.template,
        raw,
        copied: None,
    })
}

/// A serde-saphyr error as a [`Problem`]: its position, the field there, its message.
pub fn deserialize_problem(
    file: &Path,
    text: &str,
    locations: &Locations,
    error: &serde_saphyr::Error,
) -> Problem {
    let at = error
        .location()
        .map(|l| Position {
            line: l.line() as usize,
            column: l.column() as usize,
        })
        .unwrap_or(Position { line: 1, column: 1 });
    let mut message = error.without_snippet().to_string();
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    if let Some(breach) = breach_message(error) {
        message = breach;
    }
    let (field, at) = match message.strip_prefix("missing field `") {
        // Reported inside the mapping that lacks it: name the field in that mapping,
        // and point at where the mapping starts.
        Some(rest) => {
            let missing = rest.split('`').next().unwrap_or_default();
            let mapping = locations
                .value_path_at(at)
                .map(str::to_string)
                .or_else(|| locations.path_at(at).map(|key| parent(key).to_string()))
                .unwrap_or_default();
            let at = if mapping.is_empty() {
                at
            } else {
                locations.find(&mapping)
            };
            (super::locate::join(&mapping, missing), at)
        }
        // A value's own error (a bad number, a whole operation that does two things) is
        // the value's; an unknown key is the key's.
        None => (
            locations
                .value_path_at(at)
                .or_else(|| locations.path_at(at))
                .unwrap_or_default()
                .to_string(),
            at,
        ),
    };
    // "invalid u16" says what was wanted; add what was found.
    if message.starts_with("invalid ")
        && !message.contains(['`', '"'])
        && let Some(found) = token_at(text, at)
    {
        message = format!("{message}: found `{found}`");
    }
    Problem {
        file: file.to_path_buf(),
        at,
        field,
        message,
    }
}

/// The path of the mapping a key path sits in: `steps[0].probes` → `steps[0]`.
fn parent(path: &str) -> &str {
    path.rfind(['.', '[']).map(|cut| &path[..cut]).unwrap_or("")
}

/// The word of the source at a position, for error messages.
fn token_at(text: &str, at: Position) -> Option<String> {
    let line = text.lines().nth(at.line.checked_sub(1)?)?;
    let rest: String = line.chars().skip(at.column.saturating_sub(1)).collect();
    let word: String = rest
        .chars()
        .take_while(|c| !matches!(c, ',' | '}' | ']' | '#'))
        .collect();
    let word = word.trim();
    (!word.is_empty() && !word.ends_with(':')).then(|| word.to_string())
}

/// The labs `wanted` names from `folders`, loading only what it takes: when every
/// name is a folder's (`04`, `04-deployment-forbidden`), only those folders are read,
/// so a student's `kubelab start 04` parses one lab, not the suite. A name that is
/// only a lab's id loads them all to find it.
pub fn load_selected(
    folders: Vec<LabFolder>,
    wanted: &[String],
    from: &str,
) -> Result<Vec<LoadedLab>, Error> {
    let named: Option<Vec<LabFolder>> = wanted
        .iter()
        .map(|want| {
            folders
                .iter()
                .find(|f| names_folder(want, &f.name()))
                .cloned()
        })
        .collect();
    let folders = match named {
        Some(named) if !wanted.is_empty() => named,
        _ => folders,
    };
    select(load(folders)?, wanted, from)
}

/// Whether a name means this folder: its whole name, or its number (`04` for
/// `04-deployment-forbidden`).
fn names_folder(want: &str, folder: &str) -> bool {
    folder == want || folder.starts_with(&format!("{want}-"))
}

/// The labs `wanted` names, by id ("02"), folder name, or folder prefix; all when none.
pub fn select(
    labs: Vec<LoadedLab>,
    wanted: &[String],
    from: &str,
) -> Result<Vec<LoadedLab>, Error> {
    if wanted.is_empty() {
        return Ok(labs);
    }
    let mut chosen = Vec::new();
    for want in wanted {
        let found = labs
            .iter()
            .find(|l| l.lab.id == *want || names_folder(want, &l.folder))
            .ok_or_else(|| Error::NoSuchLab {
                wanted: want.clone(),
                from: from.to_string(),
                available: labs.iter().map(|l| l.folder.clone()).collect(),
            })?;
        if !chosen.iter().any(|c: &LoadedLab| c.folder == found.folder) {
            chosen.push(found.clone());
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed suite's folders and a folder whose lab.yaml does not parse.
    fn seed_and_a_broken_lab() -> Vec<LabFolder> {
        let mut folders = super::super::source::built_in("seed").unwrap();
        folders.push(LabFolder::Memory {
            name: "99-broken".into(),
            files: [(LAB_FILE.to_string(), "id: [unclosed".to_string())].into(),
        });
        folders
    }

    #[test]
    fn a_lab_named_by_its_folder_is_loaded_without_the_others() {
        let labs = load_selected(seed_and_a_broken_lab(), &["04".into()], "here").unwrap();
        let ids: Vec<&str> = labs.iter().map(|l| l.lab.id.as_str()).collect();
        assert_eq!(ids, ["04"]);

        // The broken lab is read when it is named, and when all labs are.
        for wanted in [vec!["99".to_string()], vec![]] {
            let Err(Error::Invalid(problems)) =
                load_selected(seed_and_a_broken_lab(), &wanted, "here")
            else {
                panic!("{wanted:?}: the broken lab was not read");
            };
            assert!(
                problems[0].file.ends_with("99-broken/lab.yaml"),
                "{:?}",
                problems[0].file
            );
        }
    }
}
