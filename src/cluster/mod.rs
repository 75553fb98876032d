//! Clusters kubelab can run labs on. Each provider lives in its own module.

mod error;
pub mod existing;
pub mod kind;
pub mod kubeconfig;
pub mod local;

pub use error::{Error, IoContext};
