//! Clusters kubelab can run labs on. Each provider lives in its own module.

mod error;
pub mod kubeconfig;
pub mod local;

pub use error::{Error, IoContext};
