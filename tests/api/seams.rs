//! Dependencies point down: the payment engine and the store never reach up into the business
//! modules, the admin area or the HTTP layer (STYLE.md, "Who may import whom"). A source scan,
//! so a new `use crate::admin::…` below them fails here rather than in review.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_engine_and_the_store_import_nothing_above_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let above = ["admin", "donate", "account", "payments", "app", "http", "ops"];
    let mut files = Vec::new();
    rust_files(&root.join("pay"), &mut files);
    rust_files(&root.join("store"), &mut files);
    assert!(files.len() > 20, "found the sources");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for module in above {
            if text.contains(&format!("crate::{module}::")) || text.contains(&format!("crate::{module};")) {
                found.push(format!("{} uses crate::{module}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
