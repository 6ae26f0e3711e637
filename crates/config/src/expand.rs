//! `${VAR}` expansion inside string values.
//!
//! Forms: `${NAME}` (must be set), `${NAME:-default}` (default when unset or empty),
//! `${NAME-default}` (default when unset), and `$$` for a literal `$`. A lone `$` not followed by
//! `{` or `$` is kept as it is, so prices and regexes survive.
//!
//! `${keyring:NAME}` is the secret NAME from the OS keyring (the tray app's Settings keep API keys
//! and tokens there), looked up through [`Env::secret`]; it has no default form, since a missing
//! key should say so rather than run with an empty one.

use crate::Env;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    Missing(String),
    Malformed(String),
    /// `${keyring:NAME}` where the keyring has no NAME.
    MissingSecret(String),
    /// `${keyring:NAME}` where the keyring could not be read.
    Secret {
        name: String,
        reason: String,
    },
}

pub fn expand(text: &str, env: &dyn Env) -> Result<String, ExpandError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or_else(|| ExpandError::Malformed(format!("unclosed `${{` in `{text}`")))?;
            out.push_str(&resolve(&tail[..end], env)?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(reference: &str, env: &dyn Env) -> Result<String, ExpandError> {
    if let Some(name) = reference.strip_prefix("keyring:") {
        return match env.secret(name) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(ExpandError::MissingSecret(name.to_owned())),
            Err(reason) => Err(ExpandError::Secret {
                name: name.to_owned(),
                reason,
            }),
        };
    }
    let (name, default) = if let Some((n, d)) = reference.split_once(":-") {
        (n, Some((d, true)))
    } else if let Some((n, d)) = reference.split_once('-') {
        (n, Some((d, false)))
    } else {
        (reference, None)
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(ExpandError::Malformed(format!(
            "`${{{reference}}}` is not a variable reference (use ${{NAME}} or ${{NAME:-default}})"
        )));
    }
    match (env.var(name), default) {
        (Some(v), Some((d, true))) if v.is_empty() => Ok(d.to_owned()),
        (Some(v), _) => Ok(v),
        (None, Some((d, _))) => Ok(d.to_owned()),
        (None, None) => Err(ExpandError::Missing(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    struct WithKeyring;

    impl Env for WithKeyring {
        fn var(&self, name: &str) -> Option<String> {
            env(name)
        }

        fn secret(&self, name: &str) -> Result<Option<String>, String> {
            match name {
                "anthropic" => Ok(Some("sk-ant-1".into())),
                "locked" => Err("it did not answer".into()),
                _ => Ok(None),
            }
        }
    }

    #[test]
    fn keyring_references() {
        assert_eq!(
            expand("${keyring:anthropic}", &WithKeyring).unwrap(),
            "sk-ant-1"
        );
        assert_eq!(
            expand("Bearer ${keyring:anthropic} ${KEY}", &WithKeyring).unwrap(),
            "Bearer sk-ant-1 sk-1"
        );
        assert_eq!(
            expand("${keyring:slack}", &WithKeyring),
            Err(ExpandError::MissingSecret("slack".into()))
        );
        assert!(matches!(
            expand("${keyring:locked}", &WithKeyring),
            Err(ExpandError::Secret { name, reason }) if name == "locked" && reason.contains("answer")
        ));
        // A program that reads no keyring (a plain environment) says so.
        assert!(matches!(
            expand("${keyring:anthropic}", &env),
            Err(ExpandError::Secret { .. })
        ));
    }

    #[test]
    fn forms() {
        assert_eq!(expand("${KEY}", &env).unwrap(), "sk-1");
        assert_eq!(expand("a-${KEY}-b", &env).unwrap(), "a-sk-1-b");
        assert_eq!(expand("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${EMPTY-x}", &env).unwrap(), "");
        assert_eq!(expand("${NOPE-}", &env).unwrap(), "");
        assert_eq!(expand("$$KEY costs $5", &env).unwrap(), "$KEY costs $5");
        assert_eq!(expand("$${KEY}", &env).unwrap(), "${KEY}");
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(
            expand("${NOPE}", &env),
            Err(ExpandError::Missing("NOPE".into()))
        );
        assert!(matches!(
            expand("${KEY", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${1A}", &env),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${}", &env),
            Err(ExpandError::Malformed(_))
        ));
    }
}
