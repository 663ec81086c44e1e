//! The layering of the library, checked by the build: every `crate::…`, `super::…` and
//! `self::…` path in `src/` (test modules aside) is read and held against the layer table in
//! ARCHITECTURE.md ("## Layers"). A module may use its own layer and the layers below it, never
//! one above; no two modules use each other; no two files use each other (a file and the module
//! file that declares it are one unit). `src/lib.rs` lists the modules grouped by layer, in the
//! table's order, each group under one comment line. The binary (`src/main.rs`,
//! `src/commands/`) sits above everything and is not checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The layer table: (layer name, its top-level modules), lowest first.
fn table(architecture: &str) -> Vec<(String, Vec<String>)> {
    let at = architecture
        .find("\n## Layers")
        .expect("ARCHITECTURE.md has a `## Layers` section");
    let mut layers = Vec::new();
    for line in architecture[at + 1..].lines().skip(1) {
        if line.starts_with("## ") {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || cells[1] == "layer" || cells[1].starts_with("---") {
            continue;
        }
        let modules = cells[2]
            .split(',')
            .map(|m| m.trim().trim_matches('`').to_string())
            .filter(|m| !m.is_empty())
            .collect();
        layers.push((cells[1].trim_matches('*').to_string(), modules));
    }
    assert!(!layers.is_empty(), "the layer table is empty");
    layers
}

/// One library file: its module path and its text with comments and test modules left out.
struct File {
    path: PathBuf,
    module: Vec<String>,
    lines: Vec<String>,
}

/// Every library file but the crate root and test modules (`tests.rs`, `tests/`).
fn files() -> Vec<File> {
    // The test module (`#[cfg(test)] mod tests`), last in a file, may use anything.
    let test_module = regex::Regex::new(r"#\[cfg\(test\)\]\s*(pub(\(crate\))? )?mod ").unwrap();
    let mut out = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let rel = p.strip_prefix(root().join("src")).unwrap().to_path_buf();
            let name = rel.to_string_lossy().to_string();
            if p.is_dir() {
                if !name.starts_with("commands") && !name.ends_with("/tests") {
                    stack.push(p);
                }
                continue;
            }
            let skip = ["lib.rs", "main.rs"].contains(&name.as_str())
                || p.file_name().is_some_and(|n| n == "tests.rs")
                || p.extension().is_none_or(|e| e != "rs");
            if skip {
                continue;
            }
            let mut module: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let text = match test_module.find(&text) {
                Some(m) => &text[..m.start()],
                None => &text[..],
            };
            let lines = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or("").to_string())
                .collect();
            out.push(File {
                path: rel,
                module,
                lines,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Every path a line names: `crate::a::b`, `super::x`, `self::y`, braces expanded one level.
fn paths(line: &str) -> Vec<Vec<String>> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(?:^|[^\w])(crate|super|self)((?:::\w+)*)(?:::\{([^}]*)\})?").unwrap()
    });
    let ids = |p: &str| -> Vec<String> {
        p.split("::")
            .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut out = Vec::new();
    for c in re.captures_iter(line) {
        let mut base = vec![c[1].to_string()];
        base.extend(ids(&c[2]));
        match c.get(3) {
            Some(group) => {
                for item in group.as_str().split(',') {
                    let mut p = base.clone();
                    p.extend(ids(item));
                    out.push(p);
                }
            }
            None => out.push(base),
        }
    }
    out
}

/// The file module a path from `from` names: the longest known module prefix.
fn resolve(from: &[String], path: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut full: Vec<String> = match path[0].as_str() {
        "crate" => Vec::new(),
        "super" => from[..from.len().saturating_sub(1)].to_vec(),
        _ => from.to_vec(),
    };
    let mut rest = &path[1..];
    while rest.first().is_some_and(|s| s == "super") {
        full.pop();
        rest = &rest[1..];
    }
    full.extend(rest.iter().cloned());
    (1..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|p| known.contains(p))
}

fn is_ancestor(a: &[String], b: &[String]) -> bool {
    a.len() < b.len() && b[..a.len()] == *a
}

/// Strongly connected groups of more than one node (Tarjan).
fn cycles<T: Ord + Clone>(edges: &BTreeMap<T, BTreeSet<T>>) -> Vec<Vec<T>> {
    struct S<'a, T> {
        e: &'a BTreeMap<T, BTreeSet<T>>,
        index: BTreeMap<T, usize>,
        low: BTreeMap<T, usize>,
        stack: Vec<T>,
        on: BTreeSet<T>,
        out: Vec<Vec<T>>,
    }
    fn visit<T: Ord + Clone>(s: &mut S<'_, T>, v: &T) {
        let i = s.index.len();
        s.index.insert(v.clone(), i);
        s.low.insert(v.clone(), i);
        s.stack.push(v.clone());
        s.on.insert(v.clone());
        for w in s.e.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let l = s.low[v].min(s.low[w]);
                s.low.insert(v.clone(), l);
            } else if s.on.contains(w) {
                let l = s.low[v].min(s.index[w]);
                s.low.insert(v.clone(), l);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(&w);
                group.push(w.clone());
                if &w == v {
                    break;
                }
            }
            if group.len() > 1 {
                s.out.push(group);
            }
        }
    }
    let mut s = S {
        e: edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// What the check finds wrong in `files` against `layers`, one line each.
fn violations(layers: &[(String, Vec<String>)], files: &[File]) -> Vec<String> {
    let layer_of: HashMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, (_, ms))| ms.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let known: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut wrong = Vec::new();
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut file_edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in files {
        let top = &f.module[0];
        let Some(&mine) = layer_of.get(top.as_str()) else {
            wrong.push(format!(
                "src/{}: module `{top}` is in no layer of ARCHITECTURE.md",
                f.path.display()
            ));
            continue;
        };
        for (n, line) in f.lines.iter().enumerate() {
            for p in paths(line) {
                let Some(to) = resolve(&f.module, &p, &known) else {
                    continue;
                };
                if to[0] != *top {
                    modules
                        .entry(top.clone())
                        .or_default()
                        .insert(to[0].clone());
                    let theirs = layer_of.get(to[0].as_str()).copied().unwrap_or(usize::MAX);
                    if theirs > mine {
                        let up = layers.get(theirs).map_or("no layer", |l| l.0.as_str());
                        wrong.push(format!(
                            "src/{}:{}: `{}` ({}) uses `{}` ({up}), a layer above it",
                            f.path.display(),
                            n + 1,
                            top,
                            layers[mine].0,
                            p.join("::"),
                        ));
                    }
                }
                if to != f.module && !is_ancestor(&to, &f.module) && !is_ancestor(&f.module, &to) {
                    file_edges.entry(f.module.clone()).or_default().insert(to);
                }
            }
        }
    }
    for group in cycles(&modules) {
        wrong.push(format!("modules use each other: {}", group.join(" ↔ ")));
    }
    for group in cycles(&file_edges) {
        let names: Vec<String> = group.iter().map(|m| m.join("::")).collect();
        wrong.push(format!("files use each other: {}", names.join(" ↔ ")));
    }
    wrong
}

#[test]
fn no_module_uses_a_layer_above_it_and_no_two_modules_or_files_use_each_other() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let layers = table(&architecture);
    let wrong = violations(&layers, &files());
    assert!(
        wrong.is_empty(),
        "{} problem(s):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn lib_rs_lists_every_module_grouped_by_layer_in_the_tables_order() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let layers = table(&architecture);
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut open = false;
    for line in lib.lines() {
        if line.starts_with("// ") {
            groups.push(Vec::new());
            open = true;
        } else if let Some(m) = line.strip_prefix("pub mod ") {
            assert!(open, "`{line}` is under no group comment in src/lib.rs");
            groups
                .last_mut()
                .unwrap()
                .push(m.trim_end_matches(';').to_string());
        } else if line.trim().is_empty() {
            open = false;
        }
    }
    let want: Vec<Vec<String>> = layers.iter().map(|(_, ms)| ms.clone()).collect();
    let sorted = |g: &[Vec<String>]| -> Vec<BTreeSet<String>> {
        g.iter().map(|ms| ms.iter().cloned().collect()).collect()
    };
    assert_eq!(
        sorted(&groups),
        sorted(&want),
        "src/lib.rs's groups against ARCHITECTURE.md's layers"
    );
}

/// The check itself: an upward use, a module cycle and a file cycle are each found.
#[test]
fn the_check_finds_an_upward_use_and_cycles() {
    let layers = vec![
        ("core".to_string(), vec!["event".to_string()]),
        (
            "edges".to_string(),
            vec!["inbox".to_string(), "notify".to_string()],
        ),
    ];
    let file = |module: &[&str], lines: &[&str]| File {
        path: PathBuf::from(format!("{}.rs", module.join("/"))),
        module: module.iter().map(|s| s.to_string()).collect(),
        lines: lines.iter().map(|s| s.to_string()).collect(),
    };
    let files = vec![
        file(&["event"], &["use crate::inbox::publish::AuditEntry;"]),
        file(&["inbox"], &["use crate::notify::x;"]),
        file(&["inbox", "publish"], &[]),
        file(&["inbox", "web"], &["use super::{slack::Button, board};"]),
        file(&["inbox", "slack"], &["use super::web::App;"]),
        file(&["inbox", "board"], &[]),
        file(&["notify"], &["let x = crate::inbox::y();"]),
    ];
    let wrong = violations(&layers, &files);
    let all = wrong.join("\n");
    assert!(
        all.contains(
            "src/event.rs:1: `event` (core) uses `crate::inbox::publish::AuditEntry` (edges)"
        ),
        "{all}"
    );
    assert!(all.contains("modules use each other: "), "{all}");
    assert!(
        all.contains("files use each other: ")
            && all.contains("inbox::slack")
            && all.contains("inbox::web"),
        "{all}"
    );
    assert!(
        all.contains("modules use each other: ") && all.contains("notify"),
        "{all}"
    );
    assert!(
        all.contains("files use each other: notify ↔ inbox")
            || all.contains("files use each other: inbox ↔ notify"),
        "{all}"
    );
    assert_eq!(wrong.len(), 4, "{all}");
}
