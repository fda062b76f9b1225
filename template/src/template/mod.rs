//! Go's text/template: [`Template::parse`] (the [`lex`]er, then the [`parse`]r) and
//! [`Template::execute`] (the [`exec`]utor); a [`TemplateError`] says which of them failed.
//!
//! Supported: text and actions with `{{-`/`-}}` trimming and comments; pipelines with `|`,
//! variables (`$x := …`, `$x = …`, `$`), fields and chains on `.`, variables and
//! parenthesised pipelines, method calls with arguments (`.Label "k"`), string, raw string,
//! char, number, bool and nil literals; `if`/`else if`/`else`, `range` (with `$i, $e :=`,
//! `else`, `break`, `continue`), `with`/`else`; Go's builtin functions and docker's
//! (see [`crate::funcs`]). `define`, `template` and `block` are refused with an error.

mod exec;
mod lex;
mod parse;

use crate::value::Value;
use parse::Node;

/// A parse or execution error. Each prints exactly as Go's text/template words it, since
/// users compare rbuild's messages with docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The source is not a template (an unclosed action, a bad literal, an unknown
    /// function, a misplaced `{{end}}`…): `template: :LINE: MSG`.
    #[error("template: :{line}: {msg}")]
    Parse { line: usize, msg: String },
    /// Executing failed at an operand (a missing field, a function's error…):
    /// `template: :LINE:COL: executing "" at <OPERAND>: MSG`, the column 0-based in bytes.
    #[error("template: :{line}:{col}: executing \"\" at <{operand}>: {msg}")]
    Exec { line: usize, col: usize, operand: String, msg: String },
    /// Executing `$x = …` found no `$x` declared: `template: : undefined variable: $x`.
    #[error("template: : undefined variable: {var}")]
    ExecUndeclared { var: String },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
}

fn line_of(src: &str, pos: usize) -> usize {
    1 + src[..pos.min(src.len())].matches('\n').count()
}

fn parse_err(src: &str, pos: usize, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError::Parse { line: line_of(src, pos), msg: msg.to_string() }
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let pieces = lex::split_pieces(src)?;
        let nodes = parse::parse(src, pieces)?;
        Ok(Template { src: src.to_string(), nodes })
    }

    /// Runs the template on `data`.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        exec::execute(&self.src, &self.nodes, data)
    }
}

/// Runs `src` on `data` (parse and execute).
pub fn render(src: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(src)?.execute(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{print_value, NilKind};

    fn data() -> Value {
        Value::object([
            ("Id", "sha256:abc".into()),
            (
                "Config",
                Value::object([
                    ("Env", Value::strings(&["A=1", "PATH=/bin"], false)),
                    ("Entrypoint", Value::Nil(NilKind::List)),
                    ("Labels", Value::map([("com.x", Value::from("y")), ("a", "b".into())])),
                ]),
            ),
            ("State", Value::object([("Running", true.into()), ("ExitCode", 0i64.into())])),
            ("Size", 1234i64.into()),
            ("Names", Value::strings(&["a", "b"], false)),
            ("Empty", "".into()),
            ("Label", Value::method(|a| Ok(Value::String(format!("label:{}", print_value(&a[0])))))),
        ])
    }

    fn r(src: &str) -> String {
        render(src, &data()).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn fields_and_printing() {
        assert_eq!(r("{{.Id}}"), "sha256:abc");
        assert_eq!(r("{{.State.Running}} {{.State.ExitCode}}"), "true 0");
        assert_eq!(r("{{.Config.Env}}"), "[A=1 PATH=/bin]");
        assert_eq!(r("{{.Config.Entrypoint}}"), "[]");
        assert_eq!(r("{{.Config.Labels}}"), "map[a:b com.x:y]");
        assert_eq!(r("{{.Config.Labels.nope}}"), "<no value>");
        let nil_labels = Value::object([("Labels", Value::Nil(NilKind::Map))]);
        assert_eq!(render("{{.Labels.x}}", &nil_labels).unwrap(), "<no value>");
        assert_eq!(r("{{json .Config.Env}}"), r#"["A=1","PATH=/bin"]"#);
        assert_eq!(r("{{json .Config.Entrypoint}}"), "null");
        assert_eq!(r(r#"{{index .Config.Labels "com.x"}}"#), "y");
        assert_eq!(r("{{index .Names 1}}"), "b");
        assert_eq!(r(r#"{{.Label "k"}}"#), "label:k");
        assert!(r("{{$}}").len() > 10);
    }

    #[test]
    fn control_structures() {
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
        assert_eq!(r("{{if .Empty}}a{{else if .Size}}b{{else}}c{{end}}"), "b");
        assert_eq!(r("{{range .Names}}[{{.}}]{{end}}"), "[a][b]");
        assert_eq!(r("{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}"), "0=a 1=b ");
        assert_eq!(r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"), "a=b;com.x=y;");
        assert_eq!(r("{{range .Config.Entrypoint}}x{{else}}none{{end}}"), "none");
        assert_eq!(r("{{with .State}}{{.ExitCode}}{{end}}"), "0");
        assert_eq!(r("{{with .Empty}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(r("{{$x := .Size}}{{$x}}"), "1234");
        assert_eq!(r("{{range .Names}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}"), "a");
        assert_eq!(r("a  {{- .Size -}}  b\n"), "a1234b\n");
        assert_eq!(r("{{/* a comment */}}x"), "x");
        assert_eq!(r("{{(index .Names 0) | upper}}"), "A");
        assert_eq!(r("{{.Id | printf \"%.10s\"}}"), "sha256:abc");
        assert_eq!(r("{{range $.Names}}{{$.Size}}{{end}}"), "12341234");
    }

    #[test]
    fn errors_are_worded_as_go() {
        let e = render("{{.Foo}}", &data()).unwrap_err().to_string();
        assert_eq!(e, "template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type struct");
        let e = render("{{.Config.Foo}}", &data()).unwrap_err().to_string();
        assert!(e.starts_with("template: :1:9: executing \"\" at <.Config.Foo>:"), "{e}");
        assert!(render("{{nosuch .}}", &data()).unwrap_err().to_string().contains("function \"nosuch\" not defined"));
        assert!(render("{{if .Id}}x", &data()).is_err());
        assert!(render("{{end}}", &data()).is_err());
        assert!(render("{{.Id", &data()).is_err());
        assert!(render("{{\"abc}}", &data()).is_err());
        assert!(render("{{define \"x\"}}{{end}}", &data()).is_err());
    }

    #[test]
    fn errors_say_which_stage_failed() {
        assert_eq!(
            render("a\n{{if .Id}}x", &data()),
            Err(TemplateError::Parse { line: 2, msg: "unexpected EOF".into() })
        );
        assert_eq!(
            render("a\n  {{.Size.X}}", &data()),
            Err(TemplateError::Exec {
                line: 2,
                col: 9,
                operand: ".Size.X".into(),
                msg: "can't evaluate field X in type int".into()
            })
        );
        let e = render("{{$x = 1}}", &data()).unwrap_err();
        assert_eq!(e, TemplateError::ExecUndeclared { var: "$x".into() });
        assert_eq!(e.to_string(), "template: : undefined variable: $x");
        assert_eq!(
            render("{{index .Names 5}}", &data()).unwrap_err().to_string(),
            "template: :1:2: executing \"\" at <index>: error calling index: index out of range: 5"
        );
    }
}
