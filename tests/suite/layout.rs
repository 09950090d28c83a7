//! The layers of `src/` point one way: each top-level module uses only those before it in
//! `LAYERS` (the order the crate docs' `# Layout` gives), so no dependency cycle can creep in.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first.
const LAYERS: &[&str] = &[
    "group_commit",
    "lock_file",
    "effects",
    "language",
    "policy",
    "evaluation",
    "analysis",
    "api",
    "runner",
    "sim",
    "pg",
    "audit",
    "relay",
    "config",
    "cli",
];

/// The top-level modules a source text names as `crate::x`, comments and unit tests left out.
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn each_layer_uses_only_the_layers_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for path in all {
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative.iter().next().unwrap().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(rank) = LAYERS.iter().position(|l| *l == top) else {
            panic!("src/{top} is in no layer: add it to LAYERS and the crate docs' # Layout");
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for used in uses(&text) {
            // `crate::compile` and the other root re-exports belong to the layer defining them.
            let used = if used == "compile" {
                "analysis".to_owned()
            } else {
                used
            };
            match LAYERS.iter().position(|l| *l == used) {
                Some(r) if r > rank => wrong.push(format!("{} uses {used}", relative.display())),
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layers:\n{}",
        wrong.join("\n")
    );
}
