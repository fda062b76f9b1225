//! The executor: walks the syntax tree over a [`Value`], with Go's scoping of variables
//! (a declaration lives to the end of its control structure), `range` over lists, maps
//! and integers, `break`/`continue`, lazy `and`/`or`, and errors that name the action
//! they happened at.

use super::parse::{Arg, Cmd, Node, Pipe, Term};
use super::{line_of, TemplateError};
use crate::funcs;
use crate::value::{print_value, Value};

/// How a loop body ended.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Runs `nodes` (parsed from `src`, which errors quote) on `data`.
pub(super) fn execute(src: &str, nodes: &[Node], data: &Value) -> Result<String, TemplateError> {
    let mut e = Exec { src, vars: vec![("$".into(), data.clone())], out: String::new() };
    e.nodes(nodes, data)?;
    Ok(e.out)
}

struct Exec<'a> {
    src: &'a str,
    vars: Vec<(String, Value)>,
    out: String,
}

impl Exec<'_> {
    fn err(&self, arg: &Arg, msg: impl std::fmt::Display) -> TemplateError {
        let before = &self.src[..arg.pos.min(self.src.len())];
        let line = line_of(self.src, arg.pos);
        let col = before.rfind('\n').map_or(arg.pos, |i| arg.pos - i - 1);
        TemplateError::Exec { line, col, operand: arg.text.clone(), msg: msg.to_string() }
    }

    /// Runs `nodes`; a `break` or `continue` stops them and is passed up to the `range`.
    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        for n in nodes {
            let flow = match n {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&print_value(&v));
                    }
                    Flow::Normal
                }
                Node::If { branches, otherwise } => self.scoped(|e| e.if_(branches, otherwise.as_deref(), dot))?,
                Node::With { pipe, body, otherwise } => {
                    self.scoped(|e| e.with(pipe, body, otherwise.as_deref(), dot))?
                }
                Node::Range { pipe, body, otherwise } => {
                    self.scoped(|e| e.range(pipe, body, otherwise.as_deref(), dot))?;
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs `f` in a scope: the variables it declares end with it.
    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, TemplateError>) -> Result<T, TemplateError> {
        let mark = self.vars.len();
        let r = f(self);
        self.vars.truncate(mark);
        r
    }

    /// `if`, `else if`…, `else`: the body of the first true branch.
    fn if_(
        &mut self,
        branches: &[(Pipe, Vec<Node>)],
        otherwise: Option<&[Node]>,
        dot: &Value,
    ) -> Result<Flow, TemplateError> {
        for (p, body) in branches {
            if self.pipe(p, dot)?.truthy() {
                return self.nodes(body, dot);
            }
        }
        match otherwise {
            Some(o) => self.nodes(o, dot),
            None => Ok(Flow::Normal),
        }
    }

    /// `with`: the body with dot set to the pipeline's value when it is true.
    fn with(
        &mut self,
        pipe: &Pipe,
        body: &[Node],
        otherwise: Option<&[Node]>,
        dot: &Value,
    ) -> Result<Flow, TemplateError> {
        let v = self.pipe(pipe, dot)?;
        if v.truthy() {
            self.nodes(body, &v)
        } else if let Some(o) = otherwise {
            self.nodes(o, dot)
        } else {
            Ok(Flow::Normal)
        }
    }

    /// `range`: the body per element (with `$e` or `$i, $e` declared), `else` when there
    /// is none; `break` ends the loop, `continue` the element.
    fn range(
        &mut self,
        pipe: &Pipe,
        body: &[Node],
        otherwise: Option<&[Node]>,
        dot: &Value,
    ) -> Result<(), TemplateError> {
        let bare = Pipe { decl: vec![], assign: false, cmds: pipe.cmds.clone() };
        let v = self.pipe(&bare, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l.iter().enumerate().map(|(i, e)| (Value::from(i), e.clone())).collect(),
            Value::Map(m) => m.iter().map(|(k, e)| (Value::String(k.clone()), e.clone())).collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Nil(_) | Value::NoValue => vec![],
            other => {
                let a = &pipe.cmds[0].args[0];
                return Err(self.err(a, format!("range can't iterate over {}", print_value(other))));
            }
        };
        if items.is_empty() {
            if let Some(o) = otherwise {
                self.nodes(o, dot)?;
            }
        }
        for (k, e) in items {
            let flow = self.scoped(|x| {
                match pipe.decl.as_slice() {
                    [one] => x.vars.push((one.clone(), e.clone())),
                    [i, el] => {
                        x.vars.push((i.clone(), k));
                        x.vars.push((el.clone(), e.clone()));
                    }
                    _ => {}
                }
                x.nodes(body, &e)
            })?;
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let mut v: Option<Value> = None;
        for c in &p.cmds {
            v = Some(self.cmd(c, dot, v)?);
        }
        let v = v.unwrap_or(Value::NoValue);
        for name in &p.decl {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(TemplateError::ExecUndeclared { var: name.clone() }),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn var(&self, arg: &Arg, name: &str) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(arg, format!("undefined variable: {name}")))
    }

    /// Follows `fields` from `v`; the last one may be a method called with `call_args`.
    fn fields(
        &self,
        arg: &Arg,
        mut v: Value,
        fields: &[String],
        call_args: Option<Vec<Value>>,
    ) -> Result<Value, TemplateError> {
        let n = fields.len();
        let mut call_args = call_args;
        for (i, f) in fields.iter().enumerate() {
            let last = i + 1 == n;
            let next = match &v {
                Value::Struct(fs) => match fs.iter().find(|(k, _)| k == f) {
                    Some((_, x)) => x.clone(),
                    None => return Err(self.err(arg, format!("can't evaluate field {f} in type {}", v.type_name()))),
                },
                Value::Map(m) => m.get(f).cloned().unwrap_or(Value::NoValue),
                // A nil map has no entries (docker's `.Config.Labels.x` without labels).
                Value::Nil(crate::value::NilKind::Map) => Value::NoValue,
                Value::Nil(_) => return Err(self.err(arg, format!("nil pointer evaluating interface {{}}.{f}"))),
                Value::NoValue => {
                    return Err(self.err(arg, format!("nil pointer evaluating interface {{}}.{f}")));
                }
                other => {
                    return Err(self.err(arg, format!("can't evaluate field {f} in type {}", other.type_name())));
                }
            };
            v = match next {
                Value::Method(m) => {
                    let args = if last { call_args.take().unwrap_or_default() } else { vec![] };
                    m(&args).map_err(|e| self.err(arg, format!("error calling {f}: {e}")))?
                }
                x => x,
            };
        }
        if let Some(a) = call_args {
            if !a.is_empty() {
                return Err(self.err(arg, format!("can't give argument to non-function {}", arg.text)));
            }
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        match &a.term {
            Term::Dot => Ok(dot.clone()),
            Term::Field(f) => self.fields(a, dot.clone(), f, None),
            Term::Var(n, f) => {
                let v = self.var(a, n)?;
                self.fields(a, v, f, None)
            }
            Term::Lit(v) => Ok(v.clone()),
            Term::Sub(p, f) => {
                let v = self.pipe(p, dot)?;
                self.fields(a, v, f, None)
            }
            Term::Ident(name) => self.call(a, name, &[], dot, None),
        }
    }

    fn call(
        &mut self,
        head: &Arg,
        name: &str,
        args: &[Arg],
        dot: &Value,
        last: Option<Value>,
    ) -> Result<Value, TemplateError> {
        // and/or evaluate their arguments only as far as needed.
        if name == "and" || name == "or" {
            let mut vals: Vec<Value> = Vec::new();
            let n = args.len() + usize::from(last.is_some());
            if n == 0 {
                return Err(self.err(head, format!("wrong number of args for {name}: want at least 1 got 0")));
            }
            for a in args {
                let v = self.arg(a, dot)?;
                let t = v.truthy();
                vals.push(v);
                if (name == "and" && !t) || (name == "or" && t) {
                    return Ok(vals.pop().unwrap_or(Value::NoValue));
                }
            }
            if let Some(l) = last {
                return Ok(l);
            }
            return Ok(vals.pop().unwrap_or(Value::NoValue));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(a, dot)?);
        }
        if let Some(l) = last {
            vals.push(l);
        }
        funcs::call(name, &vals).map_err(|e| self.err(head, format!("error calling {name}: {e}")))
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, last: Option<Value>) -> Result<Value, TemplateError> {
        let head = &c.args[0];
        let rest = &c.args[1..];
        match &head.term {
            Term::Ident(name) => {
                let name = name.clone();
                self.call(head, &name, rest, dot, last)
            }
            Term::Field(_) | Term::Var(..) | Term::Sub(..) if !rest.is_empty() || last.is_some() => {
                let mut vals = Vec::new();
                for a in rest {
                    vals.push(self.arg(a, dot)?);
                }
                if let Some(l) = last {
                    vals.push(l);
                }
                let (base, fields) = match &head.term {
                    Term::Field(f) => (dot.clone(), f.clone()),
                    Term::Var(n, f) => (self.var(head, n)?, f.clone()),
                    Term::Sub(p, f) => (self.pipe(p, dot)?, f.clone()),
                    _ => unreachable!("matched above"),
                };
                if fields.is_empty() {
                    return Err(self.err(head, format!("can't give argument to non-function {}", head.text)));
                }
                self.fields(head, base, &fields, Some(vals))
            }
            _ => {
                if !rest.is_empty() || last.is_some() {
                    return Err(self.err(head, format!("can't give argument to non-function {}", head.text)));
                }
                self.arg(head, dot)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::value::Value;

    fn run(src: &str) -> Result<String, String> {
        let data = Value::object([("L", Value::strings(&["a", "b", "c"], false)), ("N", Value::Int(3))]);
        super::super::render(src, &data).map_err(|e| e.to_string())
    }

    #[test]
    fn variables_end_with_their_scope() {
        assert_eq!(run("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}"), Ok("2".into()));
        assert_eq!(run("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}"), Ok("21".into()));
        assert_eq!(run("{{$e := 0}}{{range $i, $e := .L}}{{$e}}{{end}}{{$e}}"), Ok("abc0".into()));
        assert_eq!(run("{{$x := 0}}{{with $x := 5}}{{$x}}{{end}}{{$x}}"), Ok("50".into()));
    }

    #[test]
    fn loops_break_and_continue() {
        assert_eq!(run("{{range .L}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}"), Ok("ac".into()));
        assert_eq!(run("{{range $i, $e := .N}}{{if eq $i 2}}{{break}}{{end}}{{$e}}{{end}}"), Ok("01".into()));
        assert_eq!(run("{{range .N}}{{.}}{{end}}|{{range 0}}x{{else}}none{{end}}"), Ok("012|none".into()));
        assert_eq!(
            run("{{range true}}{{end}}"),
            Err("template: :1:8: executing \"\" at <true>: range can't iterate over true".into())
        );
    }
}
