//! `images --filter`: docker's image filters (`dangling`, `label`, `reference`, `before`,
//! `since`), and the time an image is shown with (made here, else its config's).

use crate::config::parse_rfc3339;
use crate::error::{Result, StoreError};
use crate::image::Image;
use crate::reference::Reference;
use crate::store::Store;

/// When `img` was made, for `images` and `inspect`: the local record's time (a build in
/// this store), else the config's `created`. Seconds since the epoch.
pub fn created_secs(store: &Store, img: &Image) -> i64 {
    match store.image_record(&img.config_digest).created_here {
        Some(t) => parse_rfc3339(&t),
        None => img.config.created.as_deref().map(parse_rfc3339).unwrap_or(0),
    }
}

/// Parsed `--filter` values for images. Values of one key are alternatives (any may
/// match); different keys must all match, as docker's filters.
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub dangling: Option<bool>,
    /// `KEY` or `KEY=VALUE`.
    pub labels: Vec<(String, Option<String>)>,
    pub references: Vec<String>,
    /// Created before / after (the time of) these images.
    pub before: Option<i64>,
    pub since: Option<i64>,
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::BadReference(msg.into())
}

impl ImageFilter {
    /// From `KEY=VALUE` strings; `before` and `since` name images of `store`.
    pub fn parse(store: &Store, filters: &[String]) -> Result<ImageFilter> {
        let mut f = ImageFilter::default();
        for s in filters {
            let Some((k, v)) = s.split_once('=') else {
                return Err(bad(format!("bad format of filter (expected name=value): {s}")));
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "dangling" => {
                    f.dangling = Some(match v.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad(format!("invalid filter 'dangling={v}'"))),
                    })
                }
                "label" => f.labels.push(match v.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (v.to_string(), None),
                }),
                "reference" => {
                    crate::reference::path_match(v, "")?;
                    f.references.push(v.to_string())
                }
                "before" => f.before = Some(created_secs(store, &store.image(v)?)),
                "since" => f.since = Some(created_secs(store, &store.image(v)?)),
                other => return Err(bad(format!("invalid filter '{other}'"))),
            }
        }
        Ok(f)
    }

    /// Whether `img` passes the filters other than `reference` (which selects names).
    pub fn matches_image(&self, store: &Store, img: &Image) -> bool {
        if let Some(d) = self.dangling {
            if d != img.names.is_empty() {
                return false;
            }
        }
        let labels = &img.config.config.labels;
        if !self.labels.iter().all(|(k, v)| match v {
            Some(v) => labels.get(k) == Some(v),
            None => labels.contains_key(k),
        }) {
            return false;
        }
        let t = created_secs(store, img);
        self.before.is_none_or(|b| t < b) && self.since.is_none_or(|s| t > s)
    }

    /// Whether `name` passes the `reference` filters (any of them).
    pub fn matches_name(&self, name: &Reference) -> bool {
        self.references.is_empty() || self.references.iter().any(|p| name.familiar_match(p).unwrap_or(false))
    }

    pub fn has_references(&self) -> bool {
        !self.references.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let f = ImageFilter::parse(&s, &["dangling=true".into(), "label=a=b".into(), "label=c".into()]).unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.labels, vec![("a".into(), Some("b".into())), ("c".into(), None)]);
        for bad in ["dangling=maybe", "nokey", "color=red", "before=nosuch:1", "reference=["] {
            assert!(ImageFilter::parse(&s, &[bad.into()]).is_err(), "{bad}");
        }
        let f = ImageFilter::parse(&s, &["reference=org/*".into()]).unwrap();
        assert!(f.matches_name(&Reference::parse("org/a:1").unwrap()));
        assert!(!f.matches_name(&Reference::parse("other/a:1").unwrap()));
    }
}
