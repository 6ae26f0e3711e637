//! Changes to config.yaml's text that keep everything not changed: comments, blank lines, key
//! order, quoting and `${VAR}` references stay as the owner wrote them. The Settings page's
//! edits come through here; the file is a person's, so a rewrite from the typed schema (which
//! would drop every comment and fill in every default) is not an option.
//!
//! Like the rest of this crate it does no I/O: text in, text out. Whether the result is a valid
//! configuration is [`crate::parse`]'s to say; callers check it before they write.

use std::str::FromStr;
use yaml_edit::YamlFile;
use yaml_edit::path::{PathError, YamlPath};

/// A value the Settings page writes: config's scalars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Number(u64),
    Text(String),
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Number(v.into())
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Number(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

/// One change: a key set (made, with the mappings above it, when missing) or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set {
        key: Vec<String>,
        value: Value,
    },
    /// Removing a key that is not there changes nothing. A mapping left empty by the removal
    /// goes too (`providers:` with nothing under it would be null, which config refuses).
    Remove {
        key: Vec<String>,
    },
}

impl Change {
    pub fn set<'a>(key: impl IntoIterator<Item = &'a str>, value: impl Into<Value>) -> Self {
        Self::Set {
            key: key.into_iter().map(str::to_owned).collect(),
            value: value.into(),
        }
    }

    pub fn remove<'a>(key: impl IntoIterator<Item = &'a str>) -> Self {
        Self::Remove {
            key: key.into_iter().map(str::to_owned).collect(),
        }
    }

    /// The key it changes, segment by segment.
    pub fn key(&self) -> &[String] {
        match self {
            Self::Set { key, .. } | Self::Remove { key } => key,
        }
    }
}

/// Why a change could not be made; the text is then left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the file is not YAML that can be edited ({0}): fix it by hand first")]
    NotYaml(String),
    #[error("the file holds {0} YAML documents; config is one: remove the `---` separators")]
    SeveralDocuments(usize),
    #[error("the file's top level is not a mapping of sections (providers:, gateway:, ...)")]
    NotAMapping,
    #[error("`{0}` cannot be a key in config (letters, digits, `_` and `-` only)")]
    BadKey(String),
    #[error("cannot change `{key}`: {reason}")]
    Key { key: String, reason: String },
}

/// Whether `segment` may be one step of a key: what config's own names use, and nothing that
/// the path syntax would read as a separator or an index.
fn plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn dotted(key: &[String]) -> Result<String, EditError> {
    if key.is_empty() {
        return Err(EditError::BadKey(String::new()));
    }
    if let Some(bad) = key.iter().find(|s| !plain_segment(s)) {
        return Err(EditError::BadKey(bad.clone()));
    }
    Ok(key.join("."))
}

fn path_failure(key: &str, e: PathError) -> EditError {
    let reason = match e {
        PathError::TypeMismatch { at } => {
            format!("`{at}` is not a mapping in the file, so nothing can go under it")
        }
        PathError::NoRoot => return EditError::NotAMapping,
        other => other.to_string(),
    };
    EditError::Key {
        key: key.to_owned(),
        reason,
    }
}

/// `text` with `changes` made, in order. An empty text (or one of comments only) gets the
/// sections the changes need.
pub fn edit(text: &str, changes: &[Change]) -> Result<String, EditError> {
    let file = YamlFile::from_str(text).map_err(|e| EditError::NotYaml(e.to_string()))?;
    let documents = file.documents().count();
    if documents > 1 {
        return Err(EditError::SeveralDocuments(documents));
    }
    let document = file.ensure_document();
    if document.as_mapping().is_none() && !text_is_blank(&document.to_string()) {
        return Err(EditError::NotAMapping);
    }
    for change in changes {
        let key = dotted(change.key())?;
        match change {
            Change::Set { value, .. } => {
                let set = match value {
                    Value::Bool(v) => document.try_set_path(&key, *v),
                    Value::Number(v) => document.try_set_path(&key, *v),
                    Value::Text(v) => document.try_set_path(&key, v.as_str()),
                };
                set.map_err(|e| path_failure(&key, e))?;
            }
            Change::Remove { key: segments } => {
                remove_with_empty_parents(&document, segments)?;
            }
        }
    }
    Ok(file.to_string())
}

/// Whether `text` has `key` (false when it is not YAML, or the key is not there).
pub fn has_key<'a>(text: &str, key: impl IntoIterator<Item = &'a str>) -> bool {
    let segments: Vec<String> = key.into_iter().map(str::to_owned).collect();
    let (Ok(file), Ok(key)) = (YamlFile::from_str(text), dotted(&segments)) else {
        return false;
    };
    file.document()
        .is_some_and(|d| d.try_get_path(&key).is_ok())
}

fn text_is_blank(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

fn remove_with_empty_parents(
    document: &yaml_edit::Document,
    segments: &[String],
) -> Result<(), EditError> {
    let mut depth = segments.len();
    while depth > 0 {
        let key = dotted(&segments[..depth])?;
        match document.try_remove_path(&key) {
            Ok(_) => {}
            // Already gone: nothing to do, here or above.
            Err(PathError::NotFound { .. } | PathError::NoRoot) => return Ok(()),
            Err(e) => return Err(path_failure(&key, e)),
        }
        depth -= 1;
        if depth == 0 {
            break;
        }
        let parent = dotted(&segments[..depth])?;
        let empty = matches!(
            document.try_get_path(&parent),
            Ok(yaml_edit::YamlNode::Mapping(m)) if m.is_empty()
        );
        if !empty {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = include_str!("../../../deploy/config.example.yaml");

    fn parses(text: &str) -> crate::Config {
        struct Any;
        impl crate::Env for Any {
            fn var(&self, _: &str) -> Option<String> {
                Some("x".repeat(40))
            }
            fn secret(&self, _: &str) -> Result<Option<String>, String> {
                Ok(Some("x".repeat(40)))
            }
        }
        crate::parse(text, "edited.yaml", &Any).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn edits_keep_the_comments_order_and_references_of_the_guides_file() {
        let out = edit(
            GUIDE,
            &[
                Change::set(
                    ["security", "rate_limiting", "default_messages_per_minute"],
                    30u32,
                ),
                Change::set(["channels", "telegram", "enabled"], false),
                Change::set(["backup", "schedule"], "0 3 * * *"),
                Change::set(["channels", "discord", "enabled"], true),
                Change::set(["channels", "discord", "bot_token"], "${keyring:discord}"),
            ],
        )
        .unwrap();
        // Only the lines changed or added differ.
        let before: Vec<&str> = GUIDE.lines().collect();
        let after: Vec<&str> = out.lines().collect();
        assert_eq!(after.len(), before.len() + 3, "{out}");
        let changed: Vec<&str> = after
            .iter()
            .filter(|l| !before.contains(l))
            .copied()
            .collect();
        assert_eq!(
            changed,
            [
                "    enabled: false",
                "  discord:",
                "    bot_token: ${keyring:discord}",
                "    default_messages_per_minute: 30",
                "  schedule: '0 3 * * *'    # Daily at 2 AM",
            ],
            "{out}"
        );
        assert!(out.starts_with("# config.yaml for openclaw"), "{out}");
        assert!(
            out.contains("    token: \"${TELEGRAM_BOT_TOKEN}\""),
            "{out}"
        );
        let config = parses(&out);
        assert_eq!(
            config.security.rate_limiting.default_messages_per_minute,
            30
        );
        assert!(!config.channels.telegram.enabled);
        assert!(config.channels.discord.enabled);
        assert_eq!(config.backup.schedule, "0 3 * * *");
    }

    #[test]
    fn an_empty_or_comment_only_file_gets_the_sections_it_needs() {
        for text in ["", "\n", "# mine\n"] {
            let out = edit(
                text,
                &[
                    Change::set(
                        ["providers", "anthropic", "api_key"],
                        "${keyring:anthropic}",
                    ),
                    Change::set(["backup", "enabled"], true),
                    Change::set(["backup", "max_backups"], 7u32),
                ],
            )
            .unwrap();
            assert!(out.starts_with(text.trim_end()), "{out}");
            let config = parses(&out);
            assert_eq!(config.providers().len(), 1, "{out}");
            assert!(config.backup.enabled);
            assert_eq!(config.backup.max_backups, 7);
        }
    }

    #[test]
    fn text_that_yaml_would_read_as_another_type_stays_text() {
        let out = edit(
            "backup:\n  enabled: true\n",
            &[
                Change::set(["backup", "path"], "true"),
                Change::set(["providers", "local", "model_path"], "/m/a: b #c.gguf"),
                Change::set(["agent", "name"], "123"),
            ],
        )
        .unwrap();
        let config = parses(&out);
        assert_eq!(config.backup.path.as_deref(), Some("true"), "{out}");
        assert_eq!(config.agent.name, "123", "{out}");
        assert_eq!(
            config.providers["local"].model_path.as_deref(),
            Some("/m/a: b #c.gguf"),
            "{out}"
        );
    }

    #[test]
    fn removing_takes_the_key_and_the_mappings_it_leaves_empty() {
        let text = "# top\nproviders:\n  anthropic:\n    api_key: \"${A}\"\n  openai:\n    model: gpt\nbackup:\n  enabled: true\n";
        let out = edit(text, &[Change::remove(["providers", "anthropic"])]).unwrap();
        assert_eq!(
            out,
            "# top\nproviders:\n  openai:\n    model: gpt\nbackup:\n  enabled: true\n"
        );
        let out = edit(&out, &[Change::remove(["providers", "openai", "model"])]).unwrap();
        assert_eq!(
            out, "# top\nbackup:\n  enabled: true\n",
            "nothing empty stays"
        );
        parses(&out);
        // Not there: nothing changes.
        assert_eq!(
            edit(&out, &[Change::remove(["providers", "openai"])]).unwrap(),
            out
        );
    }

    #[test]
    fn flow_mappings_and_trailing_comments_are_edited_in_place() {
        let out = edit(
            "backup: {enabled: true, path: /x}\nchannels:\n  telegram:\n    enabled: true # on\n",
            &[
                Change::set(["backup", "enabled"], false),
                Change::set(["channels", "telegram", "enabled"], false),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "backup: {enabled: false, path: /x}\nchannels:\n  telegram:\n    enabled: false # on\n"
        );
    }

    #[test]
    fn has_key_finds_keys_and_not_their_absence() {
        let text = "# c\nproviders:\n  openai:\n    api_key: ${K}\n";
        assert!(has_key(text, ["providers", "openai", "api_key"]));
        assert!(!has_key(text, ["providers", "openai", "model"]));
        assert!(!has_key(text, ["providers", "anthropic", "api_key"]));
        assert!(!has_key("", ["providers"]));
        assert!(!has_key("a: [", ["a"]));
    }

    #[test]
    fn what_cannot_be_edited_is_refused_with_the_reason() {
        let set = [Change::set(["backup", "enabled"], true)];
        assert!(matches!(edit("a: [1\n", &set), Err(EditError::NotYaml(_))));
        assert_eq!(
            edit("a: 1\n---\nb: 2\n", &set),
            Err(EditError::SeveralDocuments(2))
        );
        assert_eq!(edit("- a\n- b\n", &set), Err(EditError::NotAMapping));
        let err = edit("backup: daily\n", &set).unwrap_err();
        assert!(
            matches!(&err, EditError::Key { key, .. } if key == "backup.enabled"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("`backup` is not a mapping"),
            "{err}"
        );
        for bad in ["a.b", "", "x[0]", "sp ace"] {
            assert_eq!(
                edit("", &[Change::set(["providers", bad], true)]),
                Err(EditError::BadKey(bad.to_owned()))
            );
        }
    }
}
