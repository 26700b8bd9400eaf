//! The layers hold: every module's row in ARCHITECTURE.md's code map says
//! which modules it "never imports"; this test reads those rows and every
//! `crate::` (and, inside an engine folder, `super::`) path in the module's
//! source files, and fails on the first import a row forbids — as
//! rust-analyzer's tidy tests check their architecture document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The engine folders under `src/engine/`.
fn engine_folders(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("src/engine"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What one code-map row forbids.
#[derive(Debug, Default)]
struct Rule {
    modules: Vec<String>,
    /// "nor one engine folder another": engine folders stay apart.
    engines_apart: bool,
    /// "nor an engine folder": no path into any engine's folder.
    no_engine_folder: bool,
}

/// The rules of ARCHITECTURE.md's code map, by top-level module name.
fn rules(architecture: &str) -> BTreeMap<String, Rule> {
    let mut rules = BTreeMap::new();
    for line in architecture.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `module/` | what | never |" splits into ["", module, what, never, ""].
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1]
            .trim_matches('`')
            .trim_end_matches('/')
            .trim_end_matches(".rs")
            .to_string();
        let never = cells[cells.len() - 2];
        let Some((_, forbidden)) = never.split_once("never imports") else {
            continue;
        };
        // A parenthesis explains; it does not forbid.
        let forbidden = forbidden.split('(').next().unwrap_or("");
        let modules = forbidden
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        rules.insert(
            module,
            Rule {
                modules,
                engines_apart: never.contains("nor one engine folder another"),
                no_engine_folder: never.contains("nor an engine folder"),
            },
        );
    }
    rules
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The paths a line of code names: `crate::a::b…` as ["a", "b", …], and
/// `super::x` as ["super", "x"]. Comments are skipped.
fn paths(line: &str) -> Vec<Vec<String>> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let after = &rest[at + start.len()..];
            let segments: Vec<String> = after
                .split("::")
                .map(|s| {
                    s.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|s| !s.is_empty())
                .collect();
            let mut path = if start == "super::" {
                vec!["super".to_string()]
            } else {
                Vec::new()
            };
            path.extend(segments);
            found.push(path);
            rest = after;
        }
    }
    found
}

#[test]
fn no_module_imports_what_its_row_forbids() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let rules = rules(&architecture);
    assert!(
        rules.len() >= 9,
        "ARCHITECTURE.md's code map lost its `never imports` lists: {rules:?}"
    );
    let engines = engine_folders(root);
    let mut violations = Vec::new();
    for (module, rule) in &rules {
        let mut files = Vec::new();
        let dir = root.join("src").join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(root.join("src").join(format!("{module}.rs")));
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let relative = file.strip_prefix(root).unwrap().display().to_string();
            // The engine folder this file is in, if any.
            let own_engine = engines
                .iter()
                .find(|e| relative.starts_with(&format!("src/engine/{e}/")));
            for (n, line) in text.lines().enumerate() {
                for path in paths(line) {
                    let first = path.first().map(String::as_str).unwrap_or("");
                    let mut bad = rule.modules.iter().any(|m| m == first);
                    let engine_folder = match (first, path.get(1)) {
                        ("engine", Some(e)) if engines.contains(e) => Some(e),
                        ("super", Some(e)) if own_engine.is_some() && engines.contains(e) => {
                            Some(e)
                        }
                        _ => None,
                    };
                    if rule.no_engine_folder && engine_folder.is_some() {
                        bad = true;
                    }
                    if rule.engines_apart
                        && engine_folder.is_some_and(|e| Some(e) != own_engine)
                        && own_engine.is_some()
                    {
                        bad = true;
                    }
                    if bad {
                        violations.push(format!(
                            "{relative}:{}: `{module}` must never import `{}`: {}",
                            n + 1,
                            path.join("::"),
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports ARCHITECTURE.md forbids:\n{}",
        violations.join("\n")
    );
}

/// The checker itself: a forbidden import in a row is found.
#[test]
fn the_rules_are_read_and_paths_found() {
    let rules = rules(
        "| `model/` | types | SQL dialects; never imports `sql`, `engine` (not `x`) |\n\
         | `engine/` | drivers | reports; never imports `plan`, nor one engine folder another |",
    );
    assert_eq!(rules["model"].modules, vec!["sql", "engine"]);
    assert!(rules["engine"].engines_apart);
    assert_eq!(
        paths("use crate::engine::{Engine}; // crate::plan"),
        vec![vec!["engine".to_string()]]
    );
    assert_eq!(
        paths("    use super::mysql::quote_ident;"),
        vec![vec![
            "super".to_string(),
            "mysql".to_string(),
            "quote_ident".to_string()
        ]]
    );
}
