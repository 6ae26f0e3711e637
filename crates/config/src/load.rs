//! From YAML text to a typed [`Config`], collecting every problem on the way.
//!
//! The text is read once into a tree that remembers where each key and value stood. The tree
//! is expanded (`${VAR}`), then deserialised into the typed schema; when that fails at some
//! path, the problem is recorded with its line and the offending key is dropped (every field has
//! a default), and the next attempt finds the next problem. So `openclaw config validate` prints
//! all of them at once instead of one per run.

use crate::expand::{ExpandError, expand};
use crate::schema::Config;
use crate::{Env, validate};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<u64>,
    pub column: Option<u64>,
    /// Dotted key path, e.g. `gateway.port`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub(crate) fn env(var: &str, message: String) -> Self {
        Self {
            line: None,
            column: None,
            path: var.to_owned(),
            message,
        }
    }
}

/// Everything wrong with one configuration source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// File name (or `environment`) the problems refer to.
    pub origin: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.origin)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
                if let Some(col) = p.column {
                    write!(f, ":{col}")?;
                }
            }
            if p.path.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

/// Most problems reported for one file; past this the file is likely not a config at all.
const MAX_PROBLEMS: usize = 100;

/// Parses and validates `text` (read from `origin`), expanding `${VAR}` from `env`.
pub fn parse(text: &str, origin: &str, env: &dyn Env) -> Result<Config, ConfigError> {
    let fail = |problems| ConfigError {
        origin: origin.to_owned(),
        problems,
    };
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let tree: Spanned<Node> = match serde_saphyr::from_str(text) {
        Ok(tree) => tree,
        Err(e) => return Err(fail(vec![syntax_problem(&e)])),
    };
    let mut spots = Spots::default();
    let mut problems = Vec::new();
    let mut value = to_value(tree, String::new(), &mut spots, env, &mut problems);
    if value.is_null() {
        // Only comments in the file.
        value = Value::Object(Map::new());
    }
    if !value.is_object() {
        return Err(fail(vec![Problem {
            line: Some(1),
            column: Some(1),
            path: String::new(),
            message: "the file must be a mapping of sections (providers, agent, gateway, …)".into(),
        }]));
    }

    let mut dropped: Vec<String> = Vec::new();
    let config = loop {
        match serde_path_to_error::deserialize::<_, Config>(&value) {
            Ok(config) => break Some(config),
            Err(err) => {
                let segments: Vec<Seg> = err.path().iter().filter_map(Seg::from_path).collect();
                let path = join(&segments);
                let message = err.inner().to_string();
                // Dropping a bad required field makes its parent "miss" it: already reported.
                let echo = message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.split('`').next())
                    .is_some_and(|field| dropped.contains(&format!("{path}.{field}")));
                if !echo {
                    let (line, column) = spots.at(&path);
                    problems.push(Problem {
                        line,
                        column,
                        path: path.clone(),
                        message: friendly(&message),
                    });
                }
                dropped.push(path);
                // Without a concrete key to drop there is no way forward.
                if segments.is_empty()
                    || problems.len() >= MAX_PROBLEMS
                    || !remove(&mut value, &segments)
                {
                    break None;
                }
            }
        }
    };

    if let Some(config) = &config {
        for (path, message) in validate::check(config) {
            let (line, column) = spots.at(&path);
            problems.push(Problem {
                line,
                column,
                path,
                message,
            });
        }
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            problems.sort_by_key(|p| (p.line.unwrap_or(u64::MAX), p.column.unwrap_or(0)));
            Err(fail(problems))
        }
    }
}

fn syntax_problem(e: &serde_saphyr::Error) -> Problem {
    let location = e.location();
    let text = e.without_snippet().to_string();
    // The plain rendering repeats the position ("error: line 2 column 9: …"); keep the message.
    let message = text
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("error"))
        .map(|(_, rest)| rest)
        .unwrap_or(&text);
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => message,
    };
    Problem {
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        path: String::new(),
        message: format!("invalid YAML: {message}"),
    }
}

/// Rewrites serde's messages into the words a person editing YAML expects.
fn friendly(message: &str) -> String {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let suggest = |got: &str, expected: &[&str]| -> String {
        let best = expected
            .iter()
            .map(|e| (strsim::jaro_winkler(got, e), *e))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((score, name)) if score >= 0.75 => format!("did you mean `{name}`?"),
            _ if expected.is_empty() => "this section takes no keys".to_owned(),
            _ => format!("expected one of: {}", expected.join(", ")),
        }
    };
    if message.starts_with("unknown field") && !quoted.is_empty() {
        let hint = suggest(quoted[0], &quoted[1..]);
        return format!("unknown key `{}` ({hint})", quoted[0]);
    }
    if message.starts_with("unknown variant") && !quoted.is_empty() {
        let hint = suggest(quoted[0], &quoted[1..]);
        return format!("`{}` is not a valid value ({hint})", quoted[0]);
    }
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!("wrong type: expected {}, found {found}", plain(expected));
    }
    if let Some(rest) = message.strip_prefix("invalid value: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!("invalid value {found}: expected {}", plain(expected));
    }
    message.to_owned()
}

/// Names Rust types the way a YAML author thinks of them.
fn plain(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "i32" | "i64" | "usize" => {
            format!("a whole number ({expected})")
        }
        "a boolean" => "true or false".into(),
        e if e.starts_with("struct ") => "a mapping of keys".into(),
        e => e.to_owned(),
    }
}

/// A YAML node as read, before typing.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::UInt(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

/// Where each path stood in the file.
#[derive(Default)]
struct Spots(HashMap<String, (u64, u64)>);

impl Spots {
    fn put(&mut self, path: &str, loc: &serde_saphyr::Location) {
        self.0
            .entry(path.to_owned())
            .or_insert((loc.line(), loc.column()));
    }

    /// The position of `path`, or of its nearest ancestor that was in the file.
    fn at(&self, path: &str) -> (Option<u64>, Option<u64>) {
        let mut p = path;
        loop {
            if let Some((l, c)) = self.0.get(p) {
                return (Some(*l), Some(*c));
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (None, None),
            }
        }
    }
}

fn to_value(
    node: Spanned<Node>,
    path: String,
    spots: &mut Spots,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> Value {
    spots.put(&path, &node.referenced);
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => Value::from(i),
        Node::UInt(u) => Value::from(u),
        Node::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Node::Str(s) => match expand(&s, env) {
            Ok(s) => Value::String(s),
            Err(e) => {
                let (line, column) = spots.at(&path);
                problems.push(Problem {
                    line,
                    column,
                    path: path.clone(),
                    message: match e {
                        ExpandError::Missing(var) => format!(
                            "environment variable {var} is not set (set it, or write ${{{var}:-}} to allow it to be empty)"
                        ),
                        ExpandError::Malformed(m) => m,
                        ExpandError::MissingSecret(name) => format!(
                            "the OS keyring has no secret `{name}` (save it in the app's Settings, or `secret-tool store --label={name} service openclaw username {name}`)"
                        ),
                        ExpandError::Secret { name, reason } => {
                            format!("cannot read `{name}` from the OS keyring: {reason}")
                        }
                    },
                });
                // Dropped below, so that the typed pass falls back to the default.
                Value::Null
            }
        },
        Node::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_value(item, format!("{path}[{i}]"), spots, env, problems))
                .collect(),
        ),
        Node::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let child = if path.is_empty() {
                    key.value.clone()
                } else {
                    format!("{path}.{}", key.value)
                };
                spots.put(&child, &key.referenced);
                let v = to_value(value, child, spots, env, problems);
                // An empty value (`memory:` with nothing under it) means "the defaults".
                if !v.is_null() {
                    map.insert(key.value, v);
                }
            }
            Value::Object(map)
        }
    }
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn from_path(seg: &serde_path_to_error::Segment) -> Option<Self> {
        match seg {
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            _ => None,
        }
    }
}

fn join(segments: &[Seg]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Drops the value at `segments`; false when there was nothing to drop.
fn remove(value: &mut Value, segments: &[Seg]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        let next = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k),
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) => m.shift_remove(k).is_some(),
        (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}
