//! Rebuilds mesh-server when the browser client's build output appears or changes.
//! rust-embed embeds `web/dist` in release builds, but a derive macro cannot ask cargo to
//! watch a folder, and a folder that did not exist at the last build is watched by nobody.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::path::Path::new("../web/dist").exists() {
        println!("cargo:rerun-if-changed=../web/dist");
    } else {
        // Creating web/dist changes web/: cargo scans a watched folder recursively.
        println!("cargo:rerun-if-changed=../web");
    }
}
