//! Labs: the file model, loading with exact error positions, validation, the schema.

mod lint;
mod load;
mod locate;
mod model;
mod problem;

pub use load::{LoadedLab, default_dir, load_dir, select};
pub use model::*;
pub use problem::Error;

/// The JSON Schema of lab.yaml, generated from the model.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Lab)).expect("schema serializes")
}
