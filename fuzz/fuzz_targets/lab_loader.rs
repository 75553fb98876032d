//! The lab loader on any input: lab.yaml, manifests, body files and the template packed
//! into one byte string (see `LabFolder::unpack`). Loading must give a lab or problems,
//! never panic, hang or exhaust memory.
#![no_main]

use kubelab::scenario::{LabFolder, load_lab};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let folder = LabFolder::unpack(data);
    if let Err(problems) = load_lab(&folder) {
        // Rendering a problem is part of loading: it must not panic either.
        for problem in problems {
            let _ = problem.to_string();
        }
    }
});
