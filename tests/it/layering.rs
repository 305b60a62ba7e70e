//! The modules of `src/` must not import each other in a cycle.
//!
//! This is the check `cargo modules dependencies --lib --acyclic` makes, written out
//! here because installing cargo-modules compiles rust-analyzer, far too slow for CI.
//! It reads the sources as text: each file under `src/` is a module (`src/lib.rs` is
//! `crate`, `src/db/mod.rs` is `db`, `src/db/keys.rs` is `db::keys`), and a module
//! "uses" another when it names it through `crate::`, `super::` or `self::`, in a
//! `use` declaration or anywhere in its code. A path is charged to the longest prefix
//! that is a module (`crate::db::keys::ApiKey` is a use of `db::keys`, `crate::db::now`
//! of `db`). Names that a `use` binds to a module (`use crate::db::{self}` and later
//! `db::keys::find(..)`) and child modules named bare (`api::ping` in `routes`) are
//! followed as Rust resolves them. Declaring `pub mod x;` is ownership, not use;
//! comments, string literals and `#[cfg(test)]` items do not count.
//!
//! On failure the message lists every strongly connected component (modules that
//! all reach each other): the shortest cycle `a → b → c → a` through each of its
//! modules, then each edge between its modules with the `file:line`s that make it,
//! so that a developer sees what to cut.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::path::Path;

/// A module's path inside the crate without the leading `crate` (the root is empty).
type ModulePath = Vec<String>;

/// Where a use was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Loc {
    file: String,
    line: usize,
}

/// `from → to → where`, keyed by display names (`crate`, `db`, `db::keys`).
type Graph = BTreeMap<String, BTreeMap<String, Vec<Loc>>>;

/// One `.rs` file of the library and the module it defines.
struct SourceFile {
    /// Path shown in messages, e.g. `src/db/keys.rs`.
    path: String,
    module: ModulePath,
    text: String,
}

#[test]
fn src_has_no_import_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = read_library_sources(root);
    assert!(
        files.iter().any(|f| f.module.is_empty()),
        "src/lib.rs was not found under {}",
        root.display()
    );
    let report = cycles_report(&dependency_graph(&files));
    assert!(
        report.is_empty(),
        "the modules of src/ import each other in a cycle \
         (`cargo modules dependencies --lib --acyclic` would fail).\n\
         Each component below is a set of modules that all reach each other: the chains \
         show how, the edges say where. A component is gone once enough of its edges are \
         cut that no chain through its modules is left.\n\n{report}"
    );
}

// ---------------------------------------------------------------------------------
// Reading the sources

/// Every library file under `root/src`, sorted by path. `src/main.rs` and `src/bin/`
/// are binaries, not modules of the library.
fn read_library_sources(root: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut pending = vec![root.join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root.join("src")).unwrap();
            if path.is_dir() {
                if rel != Path::new("bin") {
                    pending.push(path);
                }
            } else if let Some(module) = module_of(rel) {
                files.push(SourceFile {
                    path: format!("src/{}", rel.display()),
                    module,
                    text: std::fs::read_to_string(&path).unwrap(),
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// `lib.rs` → root, `db/mod.rs` → `db`, `db/keys.rs` → `db::keys`; `None` for the
/// binary's `main.rs` and for anything that is not Rust.
fn module_of(rel: &Path) -> Option<ModulePath> {
    if rel.extension()? != "rs" || rel == Path::new("main.rs") {
        return None;
    }
    let mut module: ModulePath = rel
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if rel == Path::new("lib.rs") || module.last().is_some_and(|last| last == "mod") {
        module.pop();
    }
    Some(module)
}

fn display(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

// ---------------------------------------------------------------------------------
// Lexing: just enough of Rust to find paths

/// Replaces comments (doc comments included) by nothing and string and character
/// literals by empty ones, keeping every newline so that line numbers stay right.
/// Paths written in prose or in SQL text are then not mistaken for code.
fn strip_comments_and_strings(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1, None, &mut out);
        } else if c == '\'' {
            // A character literal ('x', '\n', '\'', '\u{41}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 3;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                out.push(' ');
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push(' ');
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after = chars.get(i).copied();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if raw_prefix
                && after == Some('#')
                && chars.get(i + 1).is_some_and(|&c| is_ident_start(c))
            {
                // A raw identifier, `r#type`: keep the name.
                i += 1;
            } else if raw_prefix && matches!(after, Some('#' | '"')) {
                let mut hashes = 0;
                while chars.get(i) == Some(&'#') {
                    hashes += 1;
                    i += 1;
                }
                if chars.get(i) == Some(&'"') {
                    i = skip_string(&chars, i + 1, Some(hashes), &mut out);
                }
            } else {
                // `b"..."` and `b'x'` fall through to the literal cases above.
                out.push_str(&word);
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Skips a string literal whose body starts at `i`. A raw string (`raw_hashes` is
/// the number of `#` after its `r`) has no escapes and ends at `"` followed by as
/// many `#`. Writes `""` and the newlines of the body; returns the index after it.
fn skip_string(chars: &[char], mut i: usize, raw_hashes: Option<usize>, out: &mut String) -> usize {
    let raw = raw_hashes.is_some();
    let hashes = raw_hashes.unwrap_or(0);
    out.push('"');
    while i < chars.len() {
        match chars[i] {
            '\\' if !raw => {
                if chars.get(i + 1) == Some(&'\n') {
                    out.push('\n');
                }
                i += 2;
            }
            '"' if chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes =>
            {
                out.push('"');
                return i + 1 + hashes;
            }
            c => {
                if c == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
        }
    }
    out.push('"');
    i
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn is_ident(&self, name: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s == name)
    }

    fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

/// Tokens of code that has been through [`strip_comments_and_strings`]. Numbers are
/// dropped; they never take part in a path.
fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            if is_ident_start(c) {
                let word = chars[start..i].iter().collect();
                tokens.push(Token {
                    tok: Tok::Ident(word),
                    line,
                });
            }
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    tokens
}

/// Removes every item marked `#[cfg(test)]`: test code may use anything (`use
/// super::*` in `mod tests` is no dependency of the module). Returns the remaining
/// tokens and the names of test-only file modules (`#[cfg(test)] mod tests;`).
fn drop_cfg_test_items(tokens: Vec<Token>) -> (Vec<Token>, Vec<String>) {
    // `#[cfg(test)]` is these seven tokens.
    const CFG_TEST_LEN: usize = 7;
    let is_cfg_test = |at: &[Token]| {
        matches!(at, [hash, open, cfg, paren, test, close, end, ..]
            if hash.is_punct('#') && open.is_punct('[') && cfg.is_ident("cfg")
                && paren.is_punct('(') && test.is_ident("test")
                && close.is_punct(')') && end.is_punct(']'))
    };

    let mut kept = Vec::with_capacity(tokens.len());
    let mut test_modules = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !is_cfg_test(&tokens[i..]) {
            kept.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += CFG_TEST_LEN;
        // Further attributes and the visibility belong to the same item.
        while i + 1 < tokens.len() && tokens[i].is_punct('#') && tokens[i + 1].is_punct('[') {
            i = skip_balanced(&tokens, i + 1);
        }
        if tokens.get(i).is_some_and(|t| t.is_ident("pub")) {
            i += 1;
            if tokens.get(i).is_some_and(|t| t.is_punct('(')) {
                i = skip_balanced(&tokens, i);
            }
        }
        if let [
            mod_kw,
            Token {
                tok: Tok::Ident(name),
                ..
            },
            semi,
            ..,
        ] = &tokens[i..]
        {
            if mod_kw.is_ident("mod") && semi.is_punct(';') {
                test_modules.push(name.clone());
            }
        }
        i = end_of_item(&tokens, i);
    }
    (kept, test_modules)
}

/// Index after the bracketed group that opens at `open`.
fn skip_balanced(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match &t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Index after what an attribute at `start` applies to: an item ends after its `;` or
/// its closing `}`; a field, argument or statement also ends at a `,` or before the
/// bracket that closes the group around it. (An item's `,` may sit between generic
/// parameters, `fn f<A, B>()`, where brackets do not count the `<`.)
fn end_of_item(tokens: &[Token], start: usize) -> usize {
    const ITEM_KEYWORDS: [&str; 15] = [
        "fn",
        "mod",
        "use",
        "impl",
        "struct",
        "enum",
        "union",
        "trait",
        "type",
        "const",
        "static",
        "extern",
        "unsafe",
        "async",
        "macro_rules",
    ];
    let is_item = tokens
        .get(start)
        .is_some_and(|t| ITEM_KEYWORDS.iter().any(|k| t.is_ident(k)));
    let mut depth = 0i32;
    for (k, t) in tokens.iter().enumerate().skip(start) {
        match &t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth < 0 {
                    return k;
                }
                if depth == 0 && t.is_punct('}') {
                    return k + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return k + 1,
            Tok::Punct(',') if depth == 0 && !is_item => return k + 1,
            _ => {}
        }
    }
    tokens.len()
}

// ---------------------------------------------------------------------------------
// Paths

/// One imported path of a `use` tree: `use crate::db::{self as database, keys::*}`
/// has the leaves `crate::db::self as database` and `crate::db::keys::*`.
#[derive(Debug, PartialEq, Eq)]
struct UseLeaf {
    segments: Vec<String>,
    alias: Option<String>,
    glob: bool,
    line: usize,
}

impl UseLeaf {
    /// The name this import brings into scope.
    fn binding(&self) -> Option<&str> {
        if self.glob {
            return None;
        }
        let name = match &self.alias {
            Some(alias) => alias.as_str(),
            None => match self.segments.as_slice() {
                [.., parent, last] if last == "self" => parent.as_str(),
                [.., last] => last.as_str(),
                [] => return None,
            },
        };
        (name != "_").then_some(name)
    }
}

/// The leaves of every `use` declaration and the token ranges the declarations span.
fn use_declarations(tokens: &[Token]) -> (Vec<UseLeaf>, Vec<Range<usize>>) {
    let mut leaves = Vec::new();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !tokens[i].is_ident("use") {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        parse_use_tree(tokens, &mut i, Vec::new(), &mut leaves);
        while i < tokens.len() && !tokens[i].is_punct(';') {
            i += 1;
        }
        i += 1;
        spans.push(start..i.min(tokens.len()));
    }
    (leaves, spans)
}

/// Parses one use tree at `*i` under `prefix`: `a::b`, `a::b as c`, `a::*`,
/// `a::{tree, tree}` (braces nest).
fn parse_use_tree(tokens: &[Token], i: &mut usize, prefix: Vec<String>, out: &mut Vec<UseLeaf>) {
    let Some(first) = tokens.get(*i) else { return };
    match &first.tok {
        // `use ::std::..`: an external crate, never one of ours.
        Tok::PathSep if prefix.is_empty() => {
            *i += 1;
            parse_use_tree(tokens, i, vec!["::".to_owned()], out);
        }
        Tok::Punct('{') => {
            *i += 1;
            while let Some(t) = tokens.get(*i) {
                if t.is_punct('}') {
                    *i += 1;
                    return;
                }
                let before = *i;
                if !t.is_punct(',') {
                    parse_use_tree(tokens, i, prefix.clone(), out);
                }
                if *i == before {
                    *i += 1;
                }
            }
        }
        Tok::Punct('*') => {
            out.push(UseLeaf {
                segments: prefix,
                alias: None,
                glob: true,
                line: first.line,
            });
            *i += 1;
        }
        Tok::Ident(name) => {
            let mut segments = prefix;
            segments.push(name.clone());
            let mut line = first.line;
            *i += 1;
            while tokens.get(*i).is_some_and(|t| t.tok == Tok::PathSep) {
                *i += 1;
                match tokens.get(*i) {
                    Some(Token {
                        tok: Tok::Ident(name),
                        line: l,
                    }) => {
                        segments.push(name.clone());
                        line = *l;
                        *i += 1;
                    }
                    _ => return parse_use_tree(tokens, i, segments, out),
                }
            }
            let mut alias = None;
            if tokens.get(*i).is_some_and(|t| t.is_ident("as")) {
                if let Some(Token {
                    tok: Tok::Ident(name),
                    ..
                }) = tokens.get(*i + 1)
                {
                    alias = Some(name.clone());
                }
                *i += 2;
            }
            out.push(UseLeaf {
                segments,
                alias,
                glob: false,
                line,
            });
        }
        _ => {}
    }
}

/// Paths of two or more segments outside `use` declarations (`crate::db::now()`,
/// `super::usage::order_of`, `db::keys::find`), each with the line it starts on.
/// Method calls (`.collect::<..>`) and `pub(in path)` restrictions are skipped.
fn code_paths(tokens: &[Token], use_spans: &[Range<usize>]) -> Vec<(Vec<String>, usize)> {
    let in_use = |k: usize| use_spans.iter().any(|span| span.contains(&k));
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let starts_path = matches!(tokens[i].tok, Tok::Ident(_))
            && !in_use(i)
            && tokens.get(i + 1).is_some_and(|t| t.tok == Tok::PathSep)
            && !(i > 0 && (tokens[i - 1].tok == Tok::PathSep || tokens[i - 1].is_punct('.')))
            && !(i >= 2 && tokens[i - 1].is_ident("in") && tokens[i - 2].is_punct('('));
        if !starts_path {
            i += 1;
            continue;
        }
        let line = tokens[i].line;
        let mut segments = Vec::new();
        while let Some(Token {
            tok: Tok::Ident(name),
            ..
        }) = tokens.get(i)
        {
            segments.push(name.clone());
            i += 1;
            if tokens.get(i).is_some_and(|t| t.tok == Tok::PathSep) {
                i += 1;
            } else {
                break;
            }
        }
        paths.push((segments, line));
    }
    paths
}

/// How one module resolves the first segment of a path.
struct Scope<'a> {
    module: &'a [String],
    modules: &'a BTreeSet<ModulePath>,
    /// Names that `use` declarations bind to modules of the crate.
    aliases: BTreeMap<String, ModulePath>,
}

impl<'a> Scope<'a> {
    fn new(module: &'a [String], modules: &'a BTreeSet<ModulePath>, uses: &[UseLeaf]) -> Self {
        let mut scope = Scope {
            module,
            modules,
            aliases: BTreeMap::new(),
        };
        // `use crate::db; use db::keys;` binds `keys` only once `db` is known: repeat
        // until nothing changes (bounded, for safety).
        for _ in 0..=modules.len() {
            let mut changed = false;
            for leaf in uses {
                let Some((target, true)) = scope.resolve(&leaf.segments) else {
                    continue;
                };
                if leaf.glob {
                    // `use some::module::*` brings its child modules into scope.
                    for child in modules
                        .iter()
                        .filter(|m| m.len() == target.len() + 1 && m.starts_with(&target))
                    {
                        let name = child[target.len()].clone();
                        if let Entry::Vacant(slot) = scope.aliases.entry(name) {
                            slot.insert(child.clone());
                            changed = true;
                        }
                    }
                } else if let Some(name) = leaf.binding() {
                    if scope.aliases.get(name) != Some(&target) {
                        scope.aliases.insert(name.to_owned(), target);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        scope
    }

    /// The longest module of the crate that `segments` lies in, and whether the whole
    /// path names that module; `None` for paths outside the crate (`std::..`, a
    /// dependency, a type of this module).
    fn resolve(&self, segments: &[String]) -> Option<(ModulePath, bool)> {
        let (first, rest) = segments.split_first()?;
        let mut rest = rest;
        let mut base: ModulePath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.module.to_vec(),
            "super" => {
                let mut base = self.module.to_vec();
                base.pop()?;
                while let Some(("super", tail)) = rest.split_first().map(|(s, t)| (s.as_str(), t)) {
                    base.pop()?;
                    rest = tail;
                }
                base
            }
            name => match self.aliases.get(name) {
                Some(target) => target.clone(),
                None => {
                    let mut child = self.module.to_vec();
                    child.push(name.to_owned());
                    if !self.modules.contains(&child) {
                        return None;
                    }
                    child
                }
            },
        };
        for segment in rest {
            if segment == "self" {
                continue;
            }
            base.push(segment.clone());
            if !self.modules.contains(&base) {
                base.pop();
                return Some((base, false));
            }
        }
        Some((base, true))
    }
}

// ---------------------------------------------------------------------------------
// The graph

fn dependency_graph(files: &[SourceFile]) -> Graph {
    let parsed: Vec<(&SourceFile, Vec<Token>, Vec<String>)> = files
        .iter()
        .map(|file| {
            let tokens = tokenize(&strip_comments_and_strings(&file.text));
            let (tokens, test_modules) = drop_cfg_test_items(tokens);
            (file, tokens, test_modules)
        })
        .collect();
    let test_only: Vec<ModulePath> = parsed
        .iter()
        .flat_map(|(file, _, names)| {
            names
                .iter()
                .map(|name| [file.module.clone(), vec![name.clone()]].concat())
        })
        .collect();
    let is_test_only = |m: &ModulePath| test_only.iter().any(|t| m.starts_with(t));
    let modules: BTreeSet<ModulePath> = files
        .iter()
        .map(|f| f.module.clone())
        .filter(|m| !is_test_only(m))
        .collect();

    let mut graph = Graph::new();
    for (file, tokens, _) in parsed.iter().filter(|(f, ..)| modules.contains(&f.module)) {
        let from = display(&file.module);
        graph.entry(from.clone()).or_default();
        let (uses, use_spans) = use_declarations(tokens);
        let scope = Scope::new(&file.module, &modules, &uses);
        // Outside `use`, a path ends with an item, never with a module: `routes::api`
        // passed to `.configure(..)` is the function `api` of `routes`, even though
        // `routes::api` is also a module. So only the segments before the last name a
        // module there.
        let in_code = code_paths(tokens, &use_spans);
        let paths = uses
            .iter()
            .map(|leaf| (&leaf.segments[..], leaf.line))
            .chain(
                in_code
                    .iter()
                    .map(|(segments, line)| (&segments[..segments.len() - 1], *line)),
            );
        for (segments, line) in paths {
            let Some((target, _)) = scope.resolve(segments) else {
                continue;
            };
            if target == file.module {
                continue;
            }
            let locs = graph
                .entry(from.clone())
                .or_default()
                .entry(display(&target))
                .or_default();
            let loc = Loc {
                file: file.path.clone(),
                line,
            };
            if !locs.contains(&loc) {
                locs.push(loc);
            }
        }
    }
    for targets in graph.values_mut() {
        for locs in targets.values_mut() {
            locs.sort();
        }
    }
    graph
}

/// Strongly connected components with two or more modules (Tarjan), each sorted, in
/// order of their first module.
fn strongly_connected_components(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        next_index: usize,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<Vec<String>>,
    }

    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, self.next_index);
            self.low.insert(v, self.next_index);
            self.next_index += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flat_map(|t| t.keys()) {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }

    let mut tarjan = Tarjan {
        graph,
        next_index: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    let nodes: BTreeSet<&str> = graph
        .iter()
        .flat_map(|(from, targets)| std::iter::once(from).chain(targets.keys()))
        .map(String::as_str)
        .collect();
    for node in nodes {
        if !tarjan.index.contains_key(node) {
            tarjan.visit(node);
        }
    }
    tarjan.components.sort();
    tarjan.components
}

/// For each module of a component, the shortest cycle through it (fewest edges; ties
/// go to the alphabetically first successor), without repeats. Each cycle starts and
/// ends at its alphabetically first module; shortest cycles first.
fn shortest_cycles(graph: &Graph, component: &[String]) -> Vec<Vec<String>> {
    let members: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let mut cycles = BTreeSet::new();
    for &u in &members {
        // `u`, then the shortest path from one of its successors back to `u`.
        let Some(mut cycle) = successors_within(graph, &members, u)
            .into_iter()
            .map(|v| [vec![u], shortest_path_within(graph, &members, v, u)].concat())
            .min_by_key(Vec::len)
        else {
            continue;
        };
        cycle.pop();
        let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
        cycle.rotate_left(first);
        cycle.push(cycle[0]);
        cycles.insert(cycle);
    }
    let mut cycles: Vec<Vec<String>> = cycles
        .into_iter()
        .map(|cycle| cycle.into_iter().map(str::to_owned).collect())
        .collect();
    cycles.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    cycles
}

/// The modules `from` uses that belong to `members`.
fn successors_within<'g>(graph: &'g Graph, members: &BTreeSet<&str>, from: &str) -> Vec<&'g str> {
    graph
        .get(from)
        .into_iter()
        .flat_map(|targets| targets.keys())
        .map(String::as_str)
        .filter(|to| members.contains(to))
        .collect()
}

/// Breadth-first: the modules from `from` to `to` (both included) along the fewest
/// edges inside `members`. `to` must be reachable, which holds inside a component.
fn shortest_path_within<'g>(
    graph: &'g Graph,
    members: &BTreeSet<&str>,
    from: &'g str,
    to: &'g str,
) -> Vec<&'g str> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            break;
        }
        for w in successors_within(graph, members, v) {
            if w != from && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut path = vec![to];
    while let Some(&before) = path.last().and_then(|at| came_from.get(at)) {
        path.push(before);
        if before == from {
            break;
        }
    }
    path.reverse();
    path
}

/// Empty when the graph is acyclic; otherwise one section per strongly connected
/// component: the shortest cycle through each of its modules, then every edge
/// between its modules with the lines that make it.
fn cycles_report(graph: &Graph) -> String {
    let components = strongly_connected_components(graph);
    let mut report = String::new();
    for (n, component) in components.iter().enumerate() {
        report += &format!(
            "import cycle {} of {}, among {} modules: {}\n",
            n + 1,
            components.len(),
            component.len(),
            component.join(", ")
        );
        for cycle in shortest_cycles(graph, component) {
            report += &format!("    {}\n", cycle.join(" → "));
        }
        report += "  where:\n";
        for from in component {
            for (to, locs) in &graph[from] {
                if component.contains(to) {
                    report += &format!("    {from} → {to}: {}\n", locations(locs));
                }
            }
        }
        report += "\n";
    }
    report
}

/// `src/a.rs:3, 9, src/b.rs:4`
fn locations(locs: &[Loc]) -> String {
    let mut out = String::new();
    let mut last_file = None;
    for loc in locs {
        if !out.is_empty() {
            out += ", ";
        }
        if last_file != Some(&loc.file) {
            out += &format!("{}:", loc.file);
            last_file = Some(&loc.file);
        }
        out += &loc.line.to_string();
    }
    out
}

// ---------------------------------------------------------------------------------
// The checker's own tests, on small fixed sources.

/// The graph of a made-up crate given as `(module, source)`, `""` being the root.
fn graph_of(crate_files: &[(&str, &str)]) -> Graph {
    let files: Vec<SourceFile> = crate_files
        .iter()
        .map(|(module, text)| SourceFile {
            path: if module.is_empty() {
                "lib.rs".to_owned()
            } else {
                format!("{module}.rs")
            },
            module: module
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            text: (*text).to_owned(),
        })
        .collect();
    dependency_graph(&files)
}

/// Every edge as `from → to @lines`, sorted.
fn edges(graph: &Graph) -> Vec<String> {
    graph
        .iter()
        .flat_map(|(from, targets)| {
            targets.iter().map(move |(to, locs)| {
                let lines: Vec<String> = locs.iter().map(|l| l.line.to_string()).collect();
                format!("{from} → {to} @{}", lines.join(","))
            })
        })
        .collect()
}

/// Modules of a small crate that the tests below draw edges between.
const MODULES: [(&str, &str); 7] = [
    ("", "pub mod db; pub mod views; pub mod session;"),
    ("db", "pub mod keys; pub mod outbox; pub fn now() {}"),
    ("db::keys", ""),
    ("db::outbox", ""),
    ("views", "pub mod errors;"),
    ("views::errors", ""),
    ("session", ""),
];

/// The crate above with `module`'s source replaced by `source`.
fn with_source(module: &str, source: &str) -> Graph {
    let files: Vec<(&str, &str)> = MODULES
        .iter()
        .map(|&(m, s)| if m == module { (m, source) } else { (m, s) })
        .collect();
    graph_of(&files)
}

#[test]
fn module_paths_follow_the_file_layout() {
    let of = |p: &str| module_of(Path::new(p)).map(|m| display(&m));
    assert_eq!(of("lib.rs").as_deref(), Some("crate"));
    assert_eq!(of("db/mod.rs").as_deref(), Some("db"));
    assert_eq!(of("db/keys.rs").as_deref(), Some("db::keys"));
    assert_eq!(of("main.rs"), None);
    assert_eq!(of("db/README.md"), None);
}

#[test]
fn stripping_removes_comments_and_strings_but_keeps_lines() {
    let src = "let a = \"// not a comment\"; // crate::x\n\
               /* crate::y /* nested */ still */ let b = '\"';\n\
               /// crate::doc\n\
               //! crate::inner\n\
               let c = r#\"crate::raw \"quoted\"\n\"#; let d = b\"crate::bytes\";\n\
               fn f<'a>(x: &'a str) -> char { '\\'' }\n\
               let r#type = crate::real;";
    let stripped = strip_comments_and_strings(src);
    assert_eq!(stripped.lines().count(), src.lines().count());
    assert!(!stripped.contains("not a comment") && !stripped.contains("crate::x"));
    for gone in [
        "crate::y",
        "crate::doc",
        "crate::inner",
        "crate::raw",
        "crate::bytes",
    ] {
        assert!(!stripped.contains(gone), "{gone} left in:\n{stripped}");
    }
    assert!(stripped.contains("fn f<'a>(x: &'a str)"), "{stripped}");
    assert!(stripped.contains("let type = crate::real;"), "{stripped}");
    let line_of_real = tokenize(&stripped)
        .iter()
        .find(|t| t.is_ident("real"))
        .unwrap()
        .line;
    assert_eq!(line_of_real, 8);
}

#[test]
fn grouped_nested_renamed_multiline_uses_count() {
    let graph = with_source(
        "session",
        "use crate::{\n\
             db::{keys::{self as k, ApiKey}, now},\n\
             views::errors::*,\n\
         };\n\
         use std::collections::HashMap;\n\
         use ::serde::Serialize;\n",
    );
    assert_eq!(
        edges(&graph),
        [
            "session → db @2",
            "session → db::keys @2",
            "session → views::errors @3"
        ]
    );
}

#[test]
fn super_and_self_resolve_to_the_longest_module() {
    let graph = with_source(
        "db::keys",
        "use super::{DbConnection, now};\n\
         use super::outbox::Row;\n\
         use self::inner::X;\n\
         use super::super::session;\n\
         pub(in crate::db) fn visible_in_db() {}\n",
    );
    // `pub(in crate::db)` on line 5 restricts visibility; it uses nothing.
    assert_eq!(
        edges(&graph),
        [
            "db::keys → db @1",
            "db::keys → db::outbox @2",
            "db::keys → session @4"
        ]
    );
    let uses_root = with_source("db", "pub fn f() { crate::helper() }");
    assert_eq!(edges(&uses_root), ["db → crate @1"]);
}

#[test]
fn paths_in_expressions_and_types_count() {
    let graph = with_source(
        "db::outbox",
        "pub fn f(k: &crate::db::keys::ApiKey) -> String {\n\
             let t = crate::db::now();\n\
             let o = super::keys::order_of(t);\n\
             Vec::<crate::session::Id>::new();\n\
             x.collect::<Vec<_>>();\n\
             std::mem::drop(o)\n\
         }\n",
    );
    assert_eq!(
        edges(&graph),
        [
            "db::outbox → db @2",
            "db::outbox → db::keys @1,3",
            "db::outbox → session @4"
        ]
    );
}

#[test]
fn module_aliases_and_bare_child_modules_are_followed() {
    let graph = with_source(
        "session",
        "use crate::db::{self};\n\
         use crate::views as v;\n\
         fn f() { db::keys::find(); v::errors::page(); keys::nothing(); }\n",
    );
    assert_eq!(
        edges(&graph),
        [
            "session → db @1",
            "session → db::keys @3",
            "session → views @2",
            "session → views::errors @3"
        ]
    );
    // `self::outbox` in code is the function `outbox`, not the module of that name.
    let parent = with_source(
        "db",
        "pub mod keys; pub mod outbox; pub fn outbox() {}\n\
         pub fn f() { keys::find(); time::now(); run(self::outbox); }",
    );
    assert_eq!(edges(&parent), ["db → db::keys @2"]);
}

#[test]
fn comments_strings_and_declarations_do_not_count() {
    let graph = with_source(
        "session",
        "//! See [`crate::db::keys`].\n\
         /// Calls crate::views.\n\
         pub mod helper;\n\
         /* use crate::db; */\n\
         const SQL: &str = \"SELECT 1 -- crate::db::outbox // x\";\n\
         const PATH: &str = \"//\"; fn f() { let c = '\"'; }\n\
         pub(crate) fn g() {}\n",
    );
    assert_eq!(edges(&graph), Vec::<String>::new());
}

#[test]
fn cfg_test_items_are_ignored() {
    let graph = with_source(
        "db::keys",
        "use super::now;\n\
         #[cfg(test)]\n\
         mod tests {\n\
             use super::*;\n\
             use crate::session::Fixture;\n\
             #[test] fn t() { crate::views::render(); }\n\
         }\n\
         #[cfg(test)]\n\
         use crate::views::errors::Page;\n\
         pub fn after() { crate::db::outbox::send(); }\n\
         #[cfg(test)]\n\
         fn helper<A, B>(a: A, b: B) { crate::session::fixture(a, b); }\n",
    );
    assert_eq!(
        edges(&graph),
        ["db::keys → db @1", "db::keys → db::outbox @10"]
    );

    // A test-only file module is no module of the library.
    let files = [
        ("", "pub mod db;"),
        ("db", "#[cfg(test)]\nmod tests;"),
        ("db::tests", "use crate::db::now;"),
    ];
    assert_eq!(edges(&graph_of(&files)), Vec::<String>::new());
}

#[test]
fn acyclic_graph_has_an_empty_report() {
    let graph = graph_of(&[
        ("", ""),
        ("a", "use crate::b::X;"),
        ("b", "use crate::c::Y;"),
        ("c", "pub fn y() {}"),
    ]);
    assert_eq!(cycles_report(&graph), "");
}

#[test]
fn each_strongly_connected_component_is_reported_with_its_edges() {
    let graph = graph_of(&[
        ("", ""),
        ("a", "use crate::b::X;"),
        ("b", "use crate::c::Y;\nfn f() { crate::a::g() }"),
        ("c", "use crate::a::Z;"),
        ("d", "use crate::e;"),
        ("e", "fn f() { crate::d::g(); }"),
        ("f", "use crate::a;"),
    ]);
    assert_eq!(
        strongly_connected_components(&graph),
        [vec!["a", "b", "c"], vec!["d", "e"]]
    );
    assert_eq!(
        cycles_report(&graph),
        "import cycle 1 of 2, among 3 modules: a, b, c\n\
         \x20   a → b → a\n\
         \x20   a → b → c → a\n\
         \x20 where:\n\
         \x20   a → b: a.rs:1\n\
         \x20   b → a: b.rs:2\n\
         \x20   b → c: b.rs:1\n\
         \x20   c → a: c.rs:1\n\
         \n\
         import cycle 2 of 2, among 2 modules: d, e\n\
         \x20   d → e → d\n\
         \x20 where:\n\
         \x20   d → e: d.rs:1\n\
         \x20   e → d: e.rs:1\n\
         \n"
    );
}
