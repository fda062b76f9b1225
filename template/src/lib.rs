//! Go templates for `--format`, as docker runs them.
//!
//! - [`Template`]: Go's text/template language (parse once, execute per object);
//! - [`Value`]: what templates see — structs (ordered, unknown fields are errors), maps
//!   (sorted, unknown keys are `<no value>`), typed nils, and methods;
//! - [`funcs`]: Go's builtins and docker's `json join split title lower upper pad truncate`;
//! - [`Format`]: docker's `--format` values: `table …` (a header row and columns through
//!   Go's tabwriter), `json` (one JSON object per line), or a plain template;
//! - [`tabwriter`]: Go's text/tabwriter (docker's tables: min width 10, padding 3).
//!
//! ```
//! use rbuild_template::{Format, Value};
//! let rows = vec![Value::object([("ID", "abc".into()), ("Name", "web".into())])];
//! let header = Value::map([("ID", "CONTAINER ID".into()), ("Name", "NAMES".into())]);
//! let out = Format::parse("table {{.ID}}\t{{.Name}}").unwrap().render(&rows, &header).unwrap();
//! assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
//! ```

pub mod funcs;
pub mod tabwriter;
mod template;
pub mod value;

pub use funcs::FuncError;
pub use template::{render, Template, TemplateError};
pub use value::{print_value, to_json, to_json_with, NilKind, Value};

/// A `--format` value.
#[derive(Debug, Clone)]
pub enum Format {
    /// `table TEMPLATE`: a header row (the template run on the header map), then a row per
    /// object, aligned by tabs.
    Table(Template),
    /// `json`: each object as one line of JSON.
    Json,
    /// A template run per object, each followed by a newline.
    Raw(Template),
}

impl Format {
    /// Parses a `--format` value (`table`, `table …`, `json` or a template).
    pub fn parse(s: &str) -> Result<Format, TemplateError> {
        if s == "json" {
            return Ok(Format::Json);
        }
        if let Some(rest) = s.strip_prefix("table") {
            return Ok(Format::Table(Template::parse(&unescape(rest))?));
        }
        Ok(Format::Raw(Template::parse(&unescape(s))?))
    }

    pub fn is_table(&self) -> bool {
        matches!(self, Format::Table(_))
    }

    /// Renders `rows`; a table's header row comes from `header` (a map from field name to
    /// column title).
    pub fn render(&self, rows: &[Value], header: &Value) -> Result<String, TemplateError> {
        match self {
            Format::Json => Ok(rows.iter().map(|r| to_json(r, false) + "\n").collect()),
            Format::Raw(t) => {
                let mut out = String::new();
                for r in rows {
                    out.push_str(&t.execute(r)?);
                    out.push('\n');
                }
                Ok(out)
            }
            Format::Table(t) => {
                let mut text = String::new();
                let h = t.execute(header)?;
                if !h.trim().is_empty() {
                    text.push_str(&h);
                    text.push('\n');
                }
                for r in rows {
                    text.push_str(&t.execute(r)?);
                    text.push('\n');
                }
                Ok(tabwriter::format(&text, 10, 3))
            }
        }
    }
}

/// docker's `preFormat`: spaces around the format trimmed, and the two-character
/// sequences `\t` and `\n` (as shells pass them) made a tab and a newline.
fn unescape(s: &str) -> String {
    s.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let rows = vec![
            Value::object([("ID", "1".into()), ("Image", "busybox".into())]),
            Value::object([("ID", "22".into()), ("Image", "x".into())]),
        ];
        let header = Value::map([("ID", "CONTAINER ID".into()), ("Image", "IMAGE".into())]);
        assert_eq!(
            Format::parse(r"table {{.ID}}\t{{.Image}}").unwrap().render(&rows, &header).unwrap(),
            "CONTAINER ID   IMAGE\n1              busybox\n22             x\n"
        );
        assert_eq!(Format::parse("{{.ID}}").unwrap().render(&rows, &header).unwrap(), "1\n22\n");
        assert_eq!(
            Format::parse("json").unwrap().render(&rows[..1], &header).unwrap(),
            "{\"ID\":\"1\",\"Image\":\"busybox\"}\n"
        );
    }
}
