//! The documentation a reader clicks through: README.md, ARCHITECTURE.md and every page under
//! docs/. Every relative markdown link must name a file or directory that exists (relative to
//! the linking file), every `#fragment` must match a heading of the target file by GitHub's slug
//! rules, and every page under docs/ must be reachable from README.md by following links.
//! A failure lists every broken link with its file and line.
//!
//! Standard library only: a small markdown reader that knows fenced code blocks, code spans,
//! inline links `[text](target)`, images, reference definitions `[id]: target` and ATX
//! headings; enough for these files, not a general parser.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// GitHub's anchor for a heading's text (github-slugger): lower-case; every character that is
/// not a letter, a number, `-`, `_` or a space removed (punctuation and symbols: backticks,
/// dots, slashes, parentheses, colons, quotes, `&`, `+`, `·`, `—`, …); each space becomes `-`.
/// Letters outside ASCII are kept. Markdown syntax is removed first (see `heading_text`).
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text GitHub renders for a heading's markdown: code spans keep their content, links and
/// images keep their text, emphasis markers and inline HTML tags go.
fn heading_text(markdown: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = markdown.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '`' => {}
            '*' => {}
            '!' if chars.get(i + 1) == Some(&'[') => {}
            '[' => {}
            ']' if chars.get(i + 1) == Some(&'(') => {
                // skip the link's target
                let mut depth = 0;
                i += 1;
                while i < chars.len() {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            '<' => {
                if let Some(end) = chars[i..].iter().position(|&c| c == '>') {
                    let tag: String = chars[i + 1..i + end].iter().collect();
                    if tag.starts_with('/') || tag.chars().next().is_some_and(char::is_alphabetic) {
                        i += end;
                    } else {
                        out.push('<');
                    }
                } else {
                    out.push('<');
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// A fence opening or closing a code block: its character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let trimmed = line.trim_start();
    let c = trimmed.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = trimmed.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// The lines of one block (a paragraph, a list item, a table row, a heading) with their code
/// spans blanked out, so that brackets inside `code` are never read as links. A code span may
/// run over a line break inside its block, never across blocks.
fn without_code_spans(block: &[&str]) -> Vec<Vec<char>> {
    let mut chars: Vec<char> = block.join("\n").chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // the closing run: exactly as many backticks
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let n = chars[j..].iter().take_while(|&&c| c == '`').count();
                if n == run {
                    close = Some(j);
                    break;
                }
                j += n;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in chars[i..j + run].iter_mut().filter(|c| **c != '\n') {
                    *c = ' ';
                }
                i = j + run;
            }
            None => i += run,
        }
    }
    chars.split(|&c| c == '\n').map(<[char]>::to_vec).collect()
}

/// Whether a line starts a block of its own: a heading, a table row, a list item.
fn starts_block(line: &str) -> bool {
    let t = line.trim_start();
    let numbered = t.chars().take_while(char::is_ascii_digit).count();
    t.starts_with('#')
        || t.starts_with('|')
        || t.starts_with("- ")
        || t.starts_with("* ")
        || t.starts_with("+ ")
        || (numbered > 0 && t[numbered..].starts_with(". "))
}

struct Link {
    line: usize,
    text: String,
    target: String,
}

struct Page {
    /// every heading's anchor, duplicates numbered as GitHub does (`x`, `x-1`, `x-2`)
    anchors: BTreeSet<String>,
    links: Vec<Link>,
}

fn read_page(path: &Path) -> Page {
    let source = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut anchors = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // the lines outside fenced code blocks, in blocks: (line number, text)
    let mut blocks: Vec<Vec<(usize, &str)>> = Vec::new();
    let mut open_fence: Option<(char, usize)> = None;
    let mut new_block = true;
    for (n, line) in source.lines().enumerate() {
        if let Some((c, len)) = fence(line) {
            match open_fence {
                None => {
                    open_fence = Some((c, len));
                    new_block = true;
                    continue;
                }
                Some((oc, olen))
                    if oc == c && len >= olen && line.trim().chars().all(|x| x == c) =>
                {
                    open_fence = None;
                    continue;
                }
                Some(_) => {}
            }
        }
        if open_fence.is_some() {
            continue;
        }
        if line.trim().is_empty() {
            new_block = true;
            continue;
        }
        if new_block || starts_block(line) {
            blocks.push(Vec::new());
        }
        // a heading or a table row is a block by itself
        let t = line.trim_start();
        new_block = t.starts_with('#') || t.starts_with('|');
        blocks.last_mut().unwrap().push((n + 1, line));
    }
    let mut links = Vec::new();
    for block in &blocks {
        let texts: Vec<&str> = block.iter().map(|&(_, l)| l).collect();
        let masked = without_code_spans(&texts);
        for (&(number, line), masked) in block.iter().zip(&masked) {
            // ATX headings: up to three spaces, 1–6 `#`, a space (or nothing), the text
            let trimmed = line.trim_start_matches(' ');
            let hashes = trimmed.chars().take_while(|&c| c == '#').count();
            if line.len() - trimmed.len() <= 3
                && (1..=6).contains(&hashes)
                && trimmed[hashes..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == ' ' || c == '\t')
            {
                let text = trimmed[hashes..].trim().trim_end_matches('#').trim_end();
                let base = slug(&heading_text(text));
                let count = seen.entry(base.clone()).or_insert(0);
                let mut anchor = if *count == 0 {
                    base.clone()
                } else {
                    format!("{base}-{count}")
                };
                while anchors.contains(&anchor) {
                    *count += 1;
                    anchor = format!("{base}-{count}");
                }
                *count += 1;
                anchors.insert(anchor);
            }
            links.extend(links_in(line, masked, number));
        }
    }
    Page { anchors, links }
}

/// Inline links and images `[text](target "title")`, and reference definitions `[id]: target`.
fn links_in(line: &str, chars: &[char], number: usize) -> Vec<Link> {
    let mut links = Vec::new();
    // a reference definition
    let text: String = chars.iter().collect();
    let lead = text.len() - text.trim_start_matches(' ').len();
    if lead <= 3 && text[lead..].starts_with('[') {
        let close = text[lead..].find(']');
        if let Some(close) = close.filter(|&c| text[lead + c + 1..].starts_with(':')) {
            let target = text[lead + close + 2..].split_whitespace().next();
            if let Some(target) = target {
                links.push(Link {
                    line: number,
                    text: text[lead + 1..lead + close].to_string(),
                    target: target.trim_matches(|c| c == '<' || c == '>').to_string(),
                });
            }
            return links;
        }
    }
    let mut i = 0;
    while i + 1 < chars.len() {
        if !(chars[i] == ']' && chars[i + 1] == '(') {
            i += 1;
            continue;
        }
        // the link text: back to the matching `[`
        let mut depth = 0;
        let mut start = None;
        for j in (0..i).rev() {
            match chars[j] {
                ']' => depth += 1,
                '[' if depth == 0 => {
                    start = Some(j);
                    break;
                }
                '[' => depth -= 1,
                _ => {}
            }
        }
        let Some(start) = start else {
            i += 2;
            continue;
        };
        // the target: to the matching `)`, up to a space (a title may follow)
        let mut j = i + 2;
        let mut depth = 0;
        let mut target = String::new();
        while j < chars.len() {
            match chars[j] {
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                _ => {}
            }
            target.push(chars[j]);
            j += 1;
        }
        let target = target.split_whitespace().next().unwrap_or("");
        let target = target.trim_matches(|c| c == '<' || c == '>');
        // the original text (code spans included) for the message
        let text: String = line.chars().skip(start + 1).take(i - start - 1).collect();
        links.push(Link {
            line: number,
            text,
            target: target.to_string(),
        });
        i = j;
    }
    links
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:") || target.starts_with("tel:")
}

/// `%20` and the like, for paths and fragments written percent-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a/b/../c` → `a/c`, without touching the file system; a path above the start keeps its
/// leading `..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if matches!(
                    out.components().next_back(),
                    None | Some(Component::ParentDir)
                ) {
                    out.push("..");
                } else {
                    out.pop();
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The files the test reads: README.md, ARCHITECTURE.md, docs/**/*.md (relative to the root).
fn documents() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    let mut dirs = vec![PathBuf::from("docs")];
    let mut docs = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root().join(&dir)).unwrap() {
            let entry = entry.unwrap();
            let rel = dir.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                dirs.push(rel);
            } else if rel.extension().is_some_and(|e| e == "md") {
                docs.push(rel);
            }
        }
    }
    docs.sort();
    files.extend(docs);
    files
}

struct Report {
    problems: Vec<String>,
    links_checked: usize,
    files: usize,
}

fn check_links() -> Report {
    let root = root();
    let documents = documents();
    let mut pages: BTreeMap<PathBuf, Page> = BTreeMap::new();
    for doc in &documents {
        pages.insert(doc.clone(), read_page(&root.join(doc)));
    }
    // anchors of targets outside the walked set (deploy/kubernetes/README.md, …), read on demand
    let mut other: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut links_checked = 0;
    for doc in &documents {
        let dir = doc.parent().unwrap_or(Path::new("")).to_path_buf();
        for link in &pages[doc].links {
            if is_external(&link.target) {
                continue;
            }
            links_checked += 1;
            let where_ = format!(
                "{}:{}: [{}]({})",
                doc.display(),
                link.line,
                link.text,
                link.target
            );
            let (path, fragment) = match link.target.split_once('#') {
                Some((p, f)) => (percent_decode(p), Some(percent_decode(f))),
                None => (percent_decode(&link.target), None),
            };
            if path.is_empty() && fragment.is_none() {
                problems.push(format!("{where_}: empty target"));
                continue;
            }
            if path.starts_with('/') {
                problems.push(format!(
                    "{where_}: an absolute path; write it relative to {}",
                    doc.display()
                ));
                continue;
            }
            let target = if path.is_empty() {
                doc.clone()
            } else {
                normalize(&dir.join(&path))
            };
            let on_disk = root.join(&target);
            if target.starts_with("..") || !on_disk.exists() {
                problems.push(format!(
                    "{where_}: {} does not exist",
                    if target.as_os_str().is_empty() {
                        "the repository root".to_string()
                    } else {
                        target.display().to_string()
                    }
                ));
                continue;
            }
            // a directory shows its README.md
            let shown = if on_disk.is_dir() {
                target.join("README.md")
            } else {
                target.clone()
            };
            if pages.contains_key(&shown) {
                edges.entry(doc.clone()).or_default().insert(shown.clone());
            }
            let Some(fragment) = fragment else { continue };
            if shown.extension().is_none_or(|e| e != "md") {
                continue; // `#L10` in source files and the like: GitHub's, not a heading
            }
            let anchors = match pages.get(&shown) {
                Some(page) => &page.anchors,
                None if root.join(&shown).is_file() => &*other
                    .entry(shown.clone())
                    .or_insert_with(|| read_page(&root.join(&shown)).anchors),
                None => {
                    problems.push(format!(
                        "{where_}: #{fragment} in a directory without README.md"
                    ));
                    continue;
                }
            };
            if !anchors.contains(&fragment) {
                let near: Vec<&String> = anchors
                    .iter()
                    .filter(|a| {
                        let f = fragment.split('-').next().unwrap_or("");
                        !f.is_empty() && a.contains(f)
                    })
                    .take(5)
                    .collect();
                problems.push(format!(
                    "{where_}: no heading #{fragment} in {}{}",
                    shown.display(),
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (near: {near:?})")
                    }
                ));
            }
        }
    }
    // every page under docs/ is reachable from README.md
    let start = PathBuf::from("README.md");
    let mut reached = BTreeSet::from([start.clone()]);
    let mut queue = VecDeque::from([start]);
    while let Some(doc) = queue.pop_front() {
        for next in edges.get(&doc).into_iter().flatten() {
            if reached.insert(next.clone()) {
                queue.push_back(next.clone());
            }
        }
    }
    for doc in &documents {
        if doc.starts_with("docs") && !reached.contains(doc) {
            let linked_from: Vec<String> = edges
                .iter()
                .filter(|(_, to)| to.contains(doc))
                .map(|(from, _)| from.display().to_string())
                .collect();
            problems.push(format!(
                "{}: not reachable from README.md by links{}",
                doc.display(),
                if linked_from.is_empty() {
                    " (linked from nowhere)".to_string()
                } else {
                    format!(" (linked only from {})", linked_from.join(", "))
                }
            ));
        }
    }
    Report {
        problems,
        links_checked,
        files: documents.len(),
    }
}

#[test]
fn every_link_resolves_and_every_page_is_reachable() {
    let report = check_links();
    println!(
        "checked {} relative links in {} files",
        report.links_checked, report.files
    );
    assert!(
        report.problems.is_empty(),
        "{} broken link(s) or unreachable page(s):\n{}",
        report.problems.len(),
        report.problems.join("\n")
    );
    assert!(
        report.links_checked > 100,
        "too few links found: the reader is broken"
    );
}

#[test]
fn slugs_follow_githubs_rules() {
    let cases = [
        // headings of the README and the book, with the anchors GitHub gives them
        (
            "People: the inbox and notifications",
            "people-the-inbox-and-notifications",
        ),
        ("`eval` output", "eval-output"),
        ("`test-rules` files", "test-rules-files"),
        ("The inbox's audit topic", "the-inboxs-audit-topic"),
        (
            "End to end, against a passthrough (the earlier harness)",
            "end-to-end-against-a-passthrough-the-earlier-harness",
        ),
        (
            "Checking rules: `check`, `eval` and `test-rules`",
            "checking-rules-check-eval-and-test-rules",
        ),
        ("handoff — architecture", "handoff--architecture"),
        ("Decode + validate · evaluate", "decode--validate--evaluate"),
        ("What's next? Now!", "whats-next-now"),
        ("A & B / C.d", "a--b--cd"),
        ("snake_case stays", "snake_case-stays"),
        ("Größe und Übersicht", "größe-und-übersicht"),
        ("[a link](x.md) in a heading", "a-link-in-a-heading"),
        ("**bold** text", "bold-text"),
    ];
    for (heading, anchor) in cases {
        assert_eq!(slug(&heading_text(heading)), anchor, "heading {heading:?}");
    }
}

#[test]
fn duplicate_headings_are_numbered() {
    let dir = std::env::temp_dir().join(format!("handoff-docs-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("page.md");
    std::fs::write(
        &file,
        "# Page\n## Tests\n```\n## Tests\n```\n### Tests\n## Tests\n[x](#tests-2) `[y](#no)`\n",
    )
    .unwrap();
    let page = read_page(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    let anchors: Vec<&str> = page.anchors.iter().map(String::as_str).collect();
    assert_eq!(anchors, ["page", "tests", "tests-1", "tests-2"]);
    let targets: Vec<&str> = page.links.iter().map(|l| l.target.as_str()).collect();
    assert_eq!(targets, ["#tests-2"], "a link in a code span is no link");
    assert_eq!(page.links[0].line, 8);
}

#[test]
fn the_readme_is_a_first_screen_and_no_page_a_dumping_ground() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 400,
        "README.md has {lines} lines: move sections to docs/"
    );
    // the two set-up commands first (.ci/run takes the test command from the second line)
    let first_block: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "```sh")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    assert_eq!(first_block, ["cargo run --release -- demo", "cargo test"]);
    let before: Vec<&str> = readme
        .lines()
        .take_while(|l| *l != "```sh")
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(before, ["# handoff"], "the commands come first");
    for doc in documents().iter().filter(|d| d.starts_with("docs")) {
        let lines = std::fs::read_to_string(root().join(doc))
            .unwrap()
            .lines()
            .count();
        assert!(
            lines <= 500,
            "{} has {lines} lines: split it along its headings",
            doc.display()
        );
    }
}
