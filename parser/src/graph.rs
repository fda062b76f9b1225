//! The instruction graph: which stage needs which, what a `--target` build must build, and
//! which stages can be built at the same time.
//!
//! Edges come from `FROM <stage>`, `COPY --from=<stage>` and `RUN --mount=from=<stage>`.
//! FROM lines are resolved after expanding the global ARGs (those before the first FROM),
//! with `--build-arg` values overriding their defaults, as docker does; `--from` values
//! are never expanded (the parser resolved them).

use crate::diagnostic::{Diagnostic, Span};
use crate::dockerfile::Dockerfile;
use crate::frontend::{check_platform, PLATFORM_ARGS};
use crate::instruction::{FromArgs, FromRef, Kind};
use crate::shell::Lexer;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The predefined ARGs docker accepts from `--build-arg` without an ARG instruction.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "ref", rename_all = "lowercase")]
pub enum Base {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference, after ARG expansion.
    Image(String),
    Scratch,
    /// A named build context (`--build-context NAME=…`): one named like the base, or
    /// one named like the stage itself, which it then replaces.
    Context(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    From,
    CopyFrom,
    MountFrom,
}

/// `to` needs `from` to be built first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphStage {
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    /// Images (or named contexts) named by `COPY --from` or `RUN --mount=from=` that are
    /// not stages.
    pub image_refs: Vec<String>,
    /// A named build context has this stage's name: it stands for the stage, whose
    /// instructions do not run.
    pub replaced: bool,
    /// Built for this target.
    pub needed: bool,
    /// The parallel level: every stage of a level depends only on lower levels.
    pub level: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub stages: Vec<GraphStage>,
    pub edges: Vec<Edge>,
    /// Needed stages grouped by level; each group can run at the same time.
    pub levels: Vec<Vec<usize>>,
    pub target: usize,
    /// The global ARGs after expansion and overrides (unset ones are absent).
    pub meta_args: BTreeMap<String, String>,
}

/// Expands the global ARGs: each default is expanded with the ARGs before it; a
/// `--build-arg` replaces the default.
pub fn meta_arg_values(
    df: &Dockerfile,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Diagnostic> {
    let lex = Lexer::new(df.directives.escape);
    // BuildKit's automatic platform ARGs are defined before anything else.
    let mut env: BTreeMap<String, String> = PLATFORM_ARGS
        .iter()
        .map(|(k, v)| (k.to_string(), overrides.get(*k).map_or(*v, String::as_str).to_string()))
        .collect();
    for ins in &df.meta_args {
        let Kind::Arg { args } = &ins.kind else { continue };
        for a in args {
            let name = lex.process_word(&a.name, &env).map_err(|e| Diagnostic::at(e.to_string(), ins.span))?;
            if let Some(v) = overrides.get(&name) {
                env.insert(name, v.clone());
            } else if let Some(d) = &a.default {
                let v = lex.process_word(d, &env).map_err(|e| Diagnostic::at(e.to_string(), ins.span))?;
                env.insert(name, v);
            } else if !PLATFORM_ARGS.iter().any(|(k, _)| *k == name) {
                env.remove(&name);
            }
        }
    }
    Ok(env)
}

/// The stage a `--from` value names by number, for a Dockerfile of `stages` stages: None
/// when the value is not a number (a stage name or an image), an error when the number
/// names no stage. Any number is a stage index, also one too big for an integer — as an
/// image name it would be looked up on Docker Hub.
pub fn stage_index(value: &str, stages: usize) -> Option<Result<usize, BadStageIndex>> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let negative = value.starts_with('-') && digits.bytes().any(|b| b != b'0');
    let index = if negative { None } else { digits.parse::<usize>().ok() };
    Some(index.filter(|i| *i < stages).ok_or_else(|| BadStageIndex(value.to_string())))
}

/// A `--from` number that names no stage of the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stage index {0}")]
pub struct BadStageIndex(pub String);

impl Graph {
    /// Builds the graph of `df` for `target` (a stage name, or the last stage).
    pub fn build(
        df: &Dockerfile,
        overrides: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Graph, Diagnostic> {
        Graph::build_with(df, overrides, target, &BTreeSet::new())
    }

    /// [`Graph::build`] with named build contexts (`--build-context NAME=…`): a FROM
    /// whose base (or a stage whose name) is one of `contexts` starts from that context.
    pub fn build_with(
        df: &Dockerfile,
        overrides: &BTreeMap<String, String>,
        target: Option<&str>,
        contexts: &BTreeSet<String>,
    ) -> Result<Graph, Diagnostic> {
        let meta = meta_arg_values(df, overrides)?;
        let (mut stages, mut edges, names) = bases(df, &meta, contexts)?;
        from_edges(df, &mut stages, &mut edges);
        let target = match target {
            None => df.stages.len() - 1,
            Some(t) => *names
                .get(&t.to_lowercase())
                .ok_or_else(|| Diagnostic::new(format!("failed to reach build target {t} in Dockerfile")))?,
        };
        let n = stages.len();
        let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in &edges {
            if !adjacency[e.to].contains(&e.from) {
                adjacency[e.to].push(e.from);
            }
        }
        check_cycles(df, &stages, &adjacency)?;
        // Stages the target needs.
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !stages[i].needed {
                stages[i].needed = true;
                todo.extend(adjacency[i].iter().copied());
            }
        }
        let levels = levels(&mut stages, &adjacency);
        Ok(Graph { stages, edges, levels, target, meta_args: meta })
    }

    /// The stages `i` depends on.
    pub fn dependencies(&self, i: usize) -> Vec<usize> {
        let mut d: Vec<usize> = self.edges.iter().filter(|e| e.to == i).map(|e| e.from).collect();
        d.sort_unstable();
        d.dedup();
        d
    }
}

/// Every stage and its base (an earlier stage, a named context, scratch or an image),
/// the FROM edges, and the stage names.
#[allow(clippy::type_complexity)]
fn bases(
    df: &Dockerfile,
    meta: &BTreeMap<String, String>,
    contexts: &BTreeSet<String>,
) -> Result<(Vec<GraphStage>, Vec<Edge>, BTreeMap<String, usize>), Diagnostic> {
    let lex = Lexer::new(df.directives.escape);
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut stages = Vec::new();
    let mut edges = Vec::new();
    for s in &df.stages {
        let image = lex.process_word(s.base(), meta).map_err(|e| Diagnostic::at(e.to_string(), s.from.span))?;
        if image.is_empty() {
            return Err(Diagnostic::at(format!("base name ({}) should not be blank", s.base()), s.from.span));
        }
        if let Kind::From(FromArgs { platform: Some(p), .. }) = &s.from.kind {
            let p = lex.process_word(p, meta).map_err(|e| Diagnostic::at(e.to_string(), s.from.span))?;
            check_platform(&p).map_err(|e| Diagnostic::at(e.to_string(), s.from.span))?;
        }
        let replaced = s.name().is_some_and(|n| contexts.contains(n));
        let base = if replaced {
            Base::Context(s.name().unwrap_or_default().to_string())
        } else if let Some(&i) = names.get(&image.to_lowercase()) {
            edges.push(Edge { from: i, to: s.index, kind: EdgeKind::From, span: s.from.span });
            Base::Stage(i)
        } else if contexts.contains(&image) {
            Base::Context(image)
        } else if image == "scratch" {
            Base::Scratch
        } else {
            Base::Image(image)
        };
        if let Some(n) = s.name() {
            if names.insert(n.to_string(), s.index).is_some() {
                return Err(Diagnostic::at(format!("duplicate stage name {n:?}"), s.from.span));
            }
        }
        stages.push(GraphStage {
            index: s.index,
            name: s.name().map(String::from),
            base,
            image_refs: vec![],
            replaced,
            needed: false,
            level: None,
        });
    }
    Ok((stages, edges, names))
}

/// The edges of `COPY --from` and `RUN --mount=from` (any stage, earlier or later, as
/// Dockerfile::parse resolved them); what is not a stage is an image reference.
fn from_edges(df: &Dockerfile, stages: &mut [GraphStage], edges: &mut Vec<Edge>) {
    for s in &df.stages {
        if stages[s.index].replaced {
            continue;
        }
        for ins in &s.instructions {
            let refs: Vec<(&FromRef, EdgeKind)> = match &ins.kind {
                Kind::Copy(c) | Kind::Add(c) => c.from.iter().map(|f| (f, EdgeKind::CopyFrom)).collect(),
                Kind::Run(r) => {
                    r.mounts.iter().filter_map(|m| m.from.as_ref()).map(|f| (f, EdgeKind::MountFrom)).collect()
                }
                _ => vec![],
            };
            for (r, kind) in refs {
                match r.stage {
                    Some(t) => edges.push(Edge { from: t, to: s.index, kind, span: ins.span }),
                    None => {
                        if !stages[s.index].image_refs.contains(&r.name) {
                            stages[s.index].image_refs.push(r.name.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Cycles: a depth-first search over dependencies, iterative to bound the stack.
fn check_cycles(df: &Dockerfile, stages: &[GraphStage], adjacency: &[Vec<usize>]) -> Result<(), Diagnostic> {
    let n = stages.len();
    let mut color = vec![0u8; n]; // 0 new, 1 on the path, 2 done
    for start in 0..n {
        if color[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, adjacency[start].clone())];
        color[start] = 1;
        while let Some((node, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(d) if color[d] == 1 => {
                    let name = stages[d].name.clone().unwrap_or_else(|| d.to_string());
                    let span = df.stages[*node].from.span;
                    return Err(Diagnostic::at(format!("circular dependency detected on stage: {name}"), span));
                }
                Some(d) if color[d] == 0 => {
                    color[d] = 1;
                    stack.push((d, adjacency[d].clone()));
                }
                Some(_) => {}
                None => {
                    color[*node] = 2;
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

/// Levels: 1 + the highest level among dependencies, in a topological order (Kahn); the
/// needed stages grouped by level (the graph is acyclic here).
fn levels(stages: &mut [GraphStage], adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = stages.len();
    let mut level: Vec<Option<usize>> = vec![None; n];
    let mut waiting: Vec<usize> = (0..n).map(|i| adjacency[i].len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in adjacency.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    while let Some(i) = ready.pop() {
        level[i] = Some(adjacency[i].iter().filter_map(|d| level[*d]).map(|l| l + 1).max().unwrap_or(0));
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(j);
            }
        }
    }
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for (i, l) in level.iter().enumerate() {
        let l = l.filter(|_| stages[i].needed);
        stages[i].level = l;
        if let Some(l) = l {
            if levels.len() <= l {
                levels.resize(l + 1, vec![]);
            }
            levels[l].push(i);
        }
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(src: &str, target: Option<&str>) -> Result<Graph, Diagnostic> {
        Graph::build(&Dockerfile::parse(src)?, &BTreeMap::new(), target)
    }

    #[test]
    fn independent_stages_share_a_level() {
        let g = graph("FROM b AS a\nFROM b AS b2\nFROM b AS c\nFROM b\nCOPY --from=a / /\nCOPY --from=b2 / /\nCOPY --from=2 / /\n", None).unwrap();
        assert_eq!(g.levels, vec![vec![0, 1, 2], vec![3]]);
        assert_eq!(g.stages[0].base, Base::Image("b".into()));
    }

    #[test]
    fn target_prunes() {
        let g = graph("FROM x AS a\nFROM a AS b\nFROM x AS c\n", Some("b")).unwrap();
        assert_eq!(g.target, 1);
        assert_eq!(g.stages.iter().map(|s| s.needed).collect::<Vec<_>>(), vec![true, true, false]);
        assert_eq!(g.levels, vec![vec![0], vec![1]]);
        assert!(graph("FROM x AS a\n", Some("nope")).is_err());
    }

    /// Regression (issue 12): `COPY --from=<a number too big for an integer>` was taken
    /// for an image name and looked up on Docker Hub. A number is a stage index; one out
    /// of range is an error at the instruction.
    #[test]
    fn every_number_is_a_stage_index() {
        for v in ["99999", "99999999999999999999", "-1", "+7", "00000000000000000000000000009"] {
            let e = graph(&format!("FROM x\nRUN true\nCOPY --from={v} / /\n"), None).unwrap_err();
            assert!(e.message.contains("invalid stage index"), "{v}: {e}");
            assert_eq!(e.span.map(|s| (s.start_line, s.start_col)), Some((3, 1)), "{v}");
        }
        let g = graph("FROM x\nFROM y\nCOPY --from=+0 / /\n", None).unwrap();
        assert!(g.stages[1].image_refs.is_empty());
        assert_eq!(stage_index("0012", 13), Some(Ok(12)));
        assert_eq!(stage_index("alpine", 3), None);
        assert!(matches!(stage_index("3", 3), Some(Err(_))));
    }

    #[test]
    fn errors() {
        assert!(graph("FROM x AS a\nFROM y AS a\n", None).unwrap_err().message.contains("duplicate stage name"));
        assert!(graph("FROM x\nCOPY --from=5 / /\n", None).unwrap_err().message.contains("invalid stage index"));
        assert!(graph("FROM x AS a\nCOPY --from=b / /\nFROM x AS b\nCOPY --from=a / /\n", None)
            .unwrap_err()
            .message
            .contains("circular dependency"));
        assert!(graph("FROM x AS a\nCOPY --from=a / /\n", None).is_err());
    }

    #[test]
    fn from_uses_meta_args() {
        let df =
            Dockerfile::parse("ARG BASE=build\nARG OTHER\nFROM x AS build\nFROM ${BASE}\nFROM $OTHER:1\n").unwrap();
        let mut o = BTreeMap::new();
        o.insert("OTHER".to_string(), "img".to_string());
        let g = Graph::build(&df, &o, None).unwrap();
        assert_eq!(g.stages[1].base, Base::Stage(0));
        assert_eq!(g.stages[2].base, Base::Image("img:1".into()));
    }

    /// docker's builders take `--from` literally; rbuild expanded it (with the global ARGs
    /// here, with the stage's in the builder — which could disagree). Now it is refused
    /// with BuildKit's message, at the instruction.
    #[test]
    fn from_values_are_not_expanded() {
        for src in [
            "ARG S=a\nFROM x AS a\nFROM y\nCOPY --from=$S / /\n",
            "FROM x\nARG N=0\nRUN --mount=from=${N},target=/m true\n",
        ] {
            let e = graph(src, None).unwrap_err();
            assert!(e.message.contains("variable expansion is not supported for --from"), "{e}");
            assert_eq!(e.span.map(|s| s.start_line), Some(src.lines().count()), "{src}");
        }
    }

    /// BuildKit's platform ARGs are global ARGs of their own (FROM lines use them as they
    /// are); a FROM --platform other than linux/amd64 is refused at the FROM.
    #[test]
    fn platform_args_and_from_platform() {
        let g = graph("FROM --platform=$BUILDPLATFORM x:$TARGETARCH\n", None).unwrap();
        assert_eq!(g.stages[0].base, Base::Image("x:amd64".into()));
        assert_eq!(g.meta_args.get("TARGETPLATFORM").map(String::as_str), Some("linux/amd64"));
        let g = graph("ARG TARGETOS\nFROM x:$TARGETOS\n", None).unwrap();
        assert_eq!(g.stages[0].base, Base::Image("x:linux".into()));
        let e = graph("FROM x\nFROM --platform=linux/arm64 y\n", None).unwrap_err();
        assert!(e.message.contains("linux/amd64 images only"), "{e}");
        assert_eq!(e.span.map(|s| s.start_line), Some(2));
    }

    /// A named build context stands for a base of its name, and replaces a stage of its
    /// name (whose own dependencies then do not count).
    #[test]
    fn named_contexts() {
        let df = Dockerfile::parse(
            "FROM alpine AS deps\nCOPY --from=tools / /\nFROM deps\nFROM alpine\nCOPY --from=deps / /\n",
        )
        .unwrap();
        let contexts: BTreeSet<String> = ["alpine".to_string(), "deps".to_string()].into();
        let g = Graph::build_with(&df, &BTreeMap::new(), None, &contexts).unwrap();
        assert_eq!(g.stages[0].base, Base::Context("deps".into()));
        assert!(g.stages[0].replaced && g.stages[0].image_refs.is_empty());
        assert_eq!(g.stages[1].base, Base::Stage(0));
        assert_eq!(g.stages[2].base, Base::Context("alpine".into()));
        assert_eq!(g.levels, vec![vec![0], vec![2]]);
    }

    #[test]
    fn copy_from_image_is_not_an_edge() {
        let g = graph("FROM x\nCOPY --from=alpine:3 /a /a\nRUN --mount=from=other,target=/m true\n", None).unwrap();
        assert!(g.edges.is_empty());
        assert_eq!(g.stages[0].image_refs, vec!["alpine:3", "other"]);
    }
}
