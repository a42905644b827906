//! The stack's layering, checked from its sources: inside every crate under `stack/`, the
//! modules import each other without a cycle (each `crate::module` path, and each name a
//! module's parent re-exports, is an edge), and only `net/src/iface.rs` implements
//! `Interface` (the protocol parts own their methods).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module's code without comments and without its `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            // Skip the item that follows: up to the brace that closes it, or its `;`.
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The crate's modules: `src/*.rs` but the root and test-only files, by name.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut m = BTreeMap::new();
    for e in fs::read_dir(src).expect("src dir") {
        let p = e.expect("entry").path();
        let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
        if p.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "tests" {
            m.insert(name, p);
        }
    }
    m
}

/// The names the crate root re-exports (`pub use module::{A, B}`), with their module.
fn reexports(lib: &str, mods: &BTreeMap<String, PathBuf>) -> BTreeMap<String, String> {
    let mut r = BTreeMap::new();
    let code = code_of(lib);
    for stmt in code.split(';') {
        let s = stmt.trim();
        let Some(rest) = s.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        if !mods.contains_key(module) {
            continue;
        }
        for item in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !item.is_empty() {
                r.insert(item.to_string(), module.to_string());
            }
        }
        // `pub use module::{A as B}`: B also names module.
    }
    r
}

/// The modules `code` refers to through `crate::`.
fn edges(code: &str, mods: &BTreeMap<String, PathBuf>, names: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |ident: &str| {
        if mods.contains_key(ident) {
            out.insert(ident.to_string());
        } else if let Some(m) = names.get(ident) {
            out.insert(m.clone());
        }
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, B}`: the first segment of each path.
            let end = group.find('}').unwrap_or(group.len());
            for path in group[..end].split(',') {
                let first = path.trim().split("::").next().unwrap_or("");
                add(first.split_whitespace().next().unwrap_or(""));
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            add(&ident);
        }
    }
    out
}

/// A cycle in `graph`, if it has one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = path.iter().position(|p| p == m).unwrap_or(0);
                    let mut cycle = path[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn stack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The import graph of the crate at `dir`.
fn graph_of(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = dir.join("src");
    let mods = modules(&src);
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let names = reexports(&lib, &mods);
    mods.iter()
        .map(|(name, path)| {
            let code = code_of(&fs::read_to_string(path).expect("module source"));
            let mut e = edges(&code, &mods, &names);
            e.remove(name);
            (name.clone(), e)
        })
        .collect()
}

#[test]
fn no_crate_under_stack_has_an_import_cycle() {
    let mut checked = 0;
    for e in fs::read_dir(stack_dir()).expect("stack dir") {
        let dir = e.expect("entry").path();
        if !dir.join("src/lib.rs").exists() {
            continue;
        }
        let graph = graph_of(&dir);
        if let Some(cycle) = find_cycle(&graph) {
            panic!("import cycle in {}: {}", dir.display(), cycle.join(" -> "));
        }
        checked += 1;
    }
    // net, tcp, wire, buf, dev, dpdk, engine.
    assert!(checked >= 7, "only {checked} crates found under stack/");
}

#[test]
fn the_checker_sees_a_cycle() {
    // The checker itself: two modules that import each other, one through a re-export.
    let mods: BTreeMap<String, PathBuf> = [("a", "a.rs"), ("b", "b.rs")]
        .into_iter()
        .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
        .collect();
    let names = reexports("pub use b::{Thing, Other};\nmod a;", &mods);
    let a = edges(
        &code_of("use crate::{Thing, x};\n// use crate::nothing;"),
        &mods,
        &names,
    );
    let b = edges(
        &code_of("use crate::a::Foo;\n#[cfg(test)]\nmod tests {\n use crate::b;\n}\n"),
        &mods,
        &names,
    );
    assert_eq!(a.iter().collect::<Vec<_>>(), ["b"]);
    assert_eq!(b.iter().collect::<Vec<_>>(), ["a"]);
    let graph: BTreeMap<String, BTreeSet<String>> = [("a".to_string(), a), ("b".to_string(), b)].into();
    assert!(find_cycle(&graph).is_some());
}

#[test]
fn only_iface_rs_implements_interface() {
    let src = stack_dir().join("net/src");
    for (name, path) in modules(&src) {
        let code = code_of(&fs::read_to_string(&path).expect("module source"));
        let implements = code
            .match_indices("impl Interface")
            .any(|(i, m)| !code[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'));
        assert!(name == "iface" || !implements, "{name}.rs implements Interface");
        assert!(
            name != "iface" || implements,
            "the checker no longer finds iface.rs's impl"
        );
    }
}
