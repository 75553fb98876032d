//! Labs: the file model, where lab files come from (the binary or a folder), loading
//! with exact error positions, validation, variables, the schema.

pub mod copy;
mod forms;
pub mod kubectl;
mod limits;
mod lint;
mod load;
mod locate;
mod matchers;
mod model;
mod probes;
mod problem;
#[cfg(test)]
mod robustness;
pub mod scaffold;
mod source;
mod template;
pub mod vars;

pub use forms::{ObjectRef, Timeout};
pub use lint::is_dns_label;
pub use load::{LAB_FILE, LoadedLab, Manifest, load_lab, select};
pub use matchers::{JsonExpect, MATCHER_KEYS, Match, Matchers, Text, TextMatch};
pub use model::*;
pub use probes::*;
pub use problem::{Error, Problem};
pub use source::{LabFolder, SUITES};

use std::path::Path;

/// The JSON Schema of lab.yaml, generated from the model.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Lab)).expect("schema serializes")
}

/// The labs of a folder on disk (one lab, or a folder of labs).
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedLab>, Error> {
    load::load(source::on_disk(dir)?)
}

/// The labs of a built-in suite ("seed", "conformance").
pub fn load_suite(suite: &str) -> Result<Vec<LoadedLab>, Error> {
    load::load(source::built_in(suite)?)
}

/// The labs `wanted` names (by folder name, number or id; all when none), from a
/// folder on disk or else a built-in suite; `from` names the source in messages.
pub fn load_selected(
    dir: Option<&Path>,
    suite: &str,
    wanted: &[String],
    from: &str,
) -> Result<Vec<LoadedLab>, Error> {
    let folders = match dir {
        Some(dir) => source::on_disk(dir)?,
        None => source::built_in(suite)?,
    };
    load::load_selected(folders, wanted, from)
}
