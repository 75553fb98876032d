//! Passes the pinned upstream versions from controlplane/versions.env to the crate, so
//! the build script and the binary can never disagree about them, and rebuilds when a
//! built-in lab changes.

fn main() {
    // The built-in labs are compiled in (include_dir): a changed lab file must rebuild.
    println!("cargo:rerun-if-changed=scenarios");
    // So is the build recipe `kubelab setup` carries (go.mod/go.sum, images.sh).
    println!("cargo:rerun-if-changed=controlplane");
    let path = "controlplane/versions.env";
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(path).expect("controlplane/versions.env is readable");
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{path}: expected KEY=VALUE, got {line:?}"));
        println!("cargo:rustc-env=KUBELAB_{key}={value}");
    }
}
