//! Rebuilds the crate when a file under `static/` changes: `rust-embed-for-web` embeds the
//! folder from its derive macro, which cargo cannot see. (askama tracks `templates/` itself.)

fn main() {
    println!("cargo:rerun-if-changed=static");
}
