//! `${VAR}` expansion inside string values.
//!
//! Forms: `${NAME}` (must be set), `${NAME:-default}` (default when unset or empty),
//! `${NAME-default}` (default when unset), and `$$` for a literal `$`. A lone `$` not followed by
//! `{` or `$` is kept as it is, so prices and regexes survive.

use crate::Env;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    Missing(String),
    Malformed(String),
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
