//! How much a lab's files may ask of kubelab: their size, and what their YAML may
//! expand to. A lab folder can come from anyone (`--dir`), so reading it must neither
//! exhaust memory nor hang; past a limit the loader says which file and which limit.

use serde_saphyr::budget::BudgetBreach;

/// The largest lab file (lab.yaml, a manifest, a body file, the template) kubelab reads.
/// The API server stores no object over about 1.5 MiB (etcd's request limit), and a
/// ConfigMap or Secret holds at most 1 MiB of data, so a larger file is a mistake or
/// an attack; the built-in labs' largest file is 5 KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The text a file's YAML may expand to through aliases: four times what the largest
/// file holds, so an anchor reused a few times is fine and an alias bomb ("billion
/// laughs") stops after a few MiB instead of taking the machine's memory.
const MAX_SCALAR_BYTES: usize = 4 << 20;
/// Nodes (mappings, sequences, scalars) of one file, aliases expanded: more than a 1 MiB
/// file written out holds in block style.
const MAX_NODES: usize = 250_000;
/// Events that aliases may replay in one file: far more than anchors shared between a
/// few objects need.
const MAX_REPLAYED_EVENTS: usize = 100_000;
/// Nesting of mappings and sequences: a Pod nests about a dozen levels, a large CRD's
/// schema a few dozen.
const MAX_DEPTH: usize = 64;

/// The parser options every lab file is read with.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_total_scalar_bytes: MAX_SCALAR_BYTES,
            max_nodes: MAX_NODES,
            max_depth: MAX_DEPTH,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
        },
    }
}

/// A file over [`MAX_FILE_BYTES`], refused before it is read.
pub fn too_large(relative: &str, bytes: u64) -> String {
    format!(
        "'{relative}' is {bytes} bytes, over the limit of {MAX_FILE_BYTES} bytes (1 MiB) for a lab file"
    )
}

/// A budget or alias limit the YAML broke, said plainly; None for any other error.
pub fn breach_message(error: &serde_saphyr::Error) -> Option<String> {
    let mut error = error;
    while let serde_saphyr::Error::WithSnippet { error: inner, .. }
    | serde_saphyr::Error::AliasError { error: inner, .. } = error
    {
        error = inner;
    }
    let bomb = "aliases (an alias bomb?) or a file too big for a lab";
    Some(match error {
        serde_saphyr::Error::Budget { breach, .. } => match breach {
            BudgetBreach::Nodes { .. } => {
                format!("the YAML expands to more than {MAX_NODES} nodes: {bomb}")
            }
            BudgetBreach::ScalarBytes { .. } => {
                format!("the YAML expands to more than {MAX_SCALAR_BYTES} bytes of text: {bomb}")
            }
            BudgetBreach::Depth { .. } => {
                format!("the YAML nests deeper than {MAX_DEPTH} levels")
            }
            other => format!("the YAML is over a limit kubelab sets for lab files: {other:?}"),
        },
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => format!(
            "aliases expand to more than {MAX_REPLAYED_EVENTS} YAML events (an alias bomb?)"
        ),
        _ => return None,
    })
}
