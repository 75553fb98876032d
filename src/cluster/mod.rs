//! Clusters kubelab can run labs on: one `Provider` trait, each provider in its own
//! module, chosen in provider.rs.

pub mod client;
mod error;
pub mod existing;
pub mod kind;
pub mod kubeconfig;
pub mod local;
mod provider;

pub use error::{Error, IoContext};
pub use provider::{
    Choice, Connection, Ensured, Provider, Status, UpOptions, existing as existing_provider,
    to_read, to_start,
};
