//! Attribute paths as drift reports them (`tags.Owner`,
//! `ingress["tcp:22-22:0.0.0.0/0"].description`), and ignore patterns over
//! them: the same syntax with `*` standing for any one segment; a pattern
//! also covers everything below the path it names (`tags` ignores every
//! tag, `tags.*` too, `tags.CostCenter` only that one).

use serde_json::Value;

use crate::diff::{diff_values, Change};

/// Splits a path into its segments.
pub fn parse(path: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = path;
    let mut first = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let mut de = serde_json::Deserializer::from_str(r).into_iter::<String>();
            let key = match de.next() {
                Some(Ok(k)) => k,
                _ => return Err(format!("path {path:?}: expected a quoted key after '['")),
            };
            let after = &r[de.byte_offset()..];
            rest = after
                .strip_prefix(']')
                .ok_or_else(|| format!("path {path:?}: expected ']' after a quoted key"))?;
            out.push(key);
        } else {
            let r = if first {
                rest
            } else {
                rest.strip_prefix('.')
                    .ok_or_else(|| format!("path {path:?}: expected '.' or '[' at {rest:?}"))?
            };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(format!("path {path:?}: empty segment"));
            }
            out.push(r[..end].to_string());
            rest = &r[end..];
        }
        first = false;
    }
    if out.is_empty() {
        return Err("empty path".into());
    }
    Ok(out)
}

/// Whether `pattern` covers `path` (both as segments).
pub fn covers(pattern: &[String], path: &[String]) -> bool {
    pattern.len() <= path.len() && pattern.iter().zip(path).all(|(p, s)| p == "*" || p == s)
}

/// Parsed ignore patterns.
#[derive(Clone, Debug, Default)]
pub struct Ignore(Vec<Vec<String>>);

impl Ignore {
    pub fn new(patterns: &[String]) -> Result<Ignore, String> {
        patterns
            .iter()
            .map(|p| parse(p))
            .collect::<Result<_, _>>()
            .map(Ignore)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ignores(&self, path: &str) -> bool {
        match parse(path) {
            Ok(segments) => self.0.iter().any(|p| covers(p, &segments)),
            Err(_) => false,
        }
    }

    /// The changes that are not ignored.
    pub fn filter(&self, changes: Vec<Change>) -> Vec<Change> {
        if self.is_empty() {
            return changes;
        }
        changes
            .into_iter()
            .filter(|c| !self.ignores(&c.path))
            .collect()
    }

    /// `desired` with every ignored attribute as it is in `current`, so a
    /// remediation never touches what the environment ignores.
    pub fn keep_current(&self, desired: &Value, current: &Value) -> Value {
        let mut out = desired.clone();
        if self.is_empty() {
            return out;
        }
        for c in diff_values(desired, current) {
            if self.ignores(&c.path) {
                if let Ok(segments) = parse(&c.path) {
                    set(&mut out, &segments, c.new);
                }
            }
        }
        out
    }
}

/// Sets (or, with `Null`, removes) the value at a path of objects.
fn set(root: &mut Value, segments: &[String], new: Value) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut cur = root;
    for s in parents {
        let Value::Object(m) = cur else { return };
        cur = m
            .entry(s.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    if let Value::Object(m) = cur {
        if new.is_null() {
            m.remove(last);
        } else {
            m.insert(last.clone(), new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_round_trip_with_quoted_keys() {
        assert_eq!(parse("tags.Owner").unwrap(), vec!["tags", "Owner"]);
        assert_eq!(
            parse(r#"ingress["tcp:22-22:0.0.0.0/0"].description"#).unwrap(),
            vec!["ingress", "tcp:22-22:0.0.0.0/0", "description"]
        );
        assert_eq!(
            parse(r#"attached_policies["arn:aws:iam::aws:policy/X"]"#).unwrap()[1],
            "arn:aws:iam::aws:policy/X"
        );
        assert!(parse("tags..x").unwrap_err().contains("empty segment"));
        assert!(parse(r#"tags["x"#).is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn patterns_cover_what_they_name_and_below() {
        let ig = Ignore::new(&["tags.CostCenter".into(), "ingress.*.description".into()]).unwrap();
        assert!(ig.ignores("tags.CostCenter"));
        assert!(!ig.ignores("tags.Owner"));
        assert!(ig.ignores(r#"ingress["tcp:22-22:0.0.0.0/0"].description"#));
        assert!(!ig.ignores(r#"ingress["tcp:22-22:0.0.0.0/0"]"#));
        let all_tags = Ignore::new(&["tags".into()]).unwrap();
        assert!(all_tags.ignores("tags.Anything"));
        assert!(Ignore::new(&["tags..x".into()]).is_err());
    }

    #[test]
    fn a_remediation_keeps_ignored_attributes_as_they_are() {
        let ig = Ignore::new(&["tags.CostCenter".into()]).unwrap();
        let desired = json!({"tags": {"CostCenter": "1", "Owner": "a"}, "port": 443});
        let current = json!({"tags": {"CostCenter": "2", "Owner": "b", "New": "x"}, "port": 22});
        let want = ig.keep_current(&desired, &current);
        assert_eq!(
            want,
            json!({"tags": {"CostCenter": "2", "Owner": "a"}, "port": 443})
        );
        let gone = json!({"tags": {"Owner": "a"}, "port": 443});
        assert_eq!(
            ig.keep_current(&desired, &gone),
            gone,
            "an ignored attribute removed stays removed"
        );
        let changes = ig.filter(diff_values(&desired, &current));
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec!["port", "tags.New", "tags.Owner"]);
    }
}
