//! One stage: its base, ONBUILD triggers, and each instruction dispatched to its step.

use crate::build::{epoch_string, Ctx, FResult, StageOut, Unchanged};
use crate::builder::{Event, Failure};
use crate::cache_key::{image_key, scratch_key, CacheKey, KeyBuilder, KeyKind};
use crate::error::{BuildError, Result};
use crate::explain::{Part, StepRecord};
use crate::meta::{self, Words, DEFAULT_PATH};
use rbuild_parser::graph::Base;
use rbuild_parser::instruction::{Instruction, Kind};
use rbuild_parser::shell::Lexer;
use rbuild_store::config::History;
use rbuild_store::config::ImageConfig;
use rbuild_store::LayerRef;
use std::collections::BTreeMap;

/// The per-stage state while its instructions run.
pub(crate) struct State {
    /// The stage being built.
    pub(crate) stage: usize,
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRef>,
    pub(crate) key: CacheKey,
    /// ARGs declared in this stage and their values (None: declared, no value).
    pub(crate) args: BTreeMap<String, Option<String>>,
    pub(crate) cmd_set: bool,
    /// The last step with a layer may have removed the working directory; docker makes it
    /// again when it creates the next step's container, so the next metadata step commits
    /// it (also recorded in the cache, as a cached step has no upper to look at).
    pub(crate) workdir_gone: bool,
    pub(crate) created: String,
    pub(crate) clamp: i64,
    pub(crate) escape: char,
    /// The Env indexed for expansion (see `meta::StageEnv`).
    pub(crate) env: meta::StageEnv,
    /// The step being run (its position and text) and the steps so far, with the parts
    /// of their keys (`--explain-cache`).
    pub(crate) current: (usize, String),
    pub(crate) trail: Vec<StepRecord>,
    pub(crate) label: String,
}

impl State {
    /// Build args visible to RUN (sorted), as docker passes them.
    pub(crate) fn run_args(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, val)| val.as_ref().map(|x| (k, x)))
            .filter(|(k, _)| !self.env.assigns(k))
            .map(|(k, x)| format!("{k}={x}"))
            .collect()
    }

    /// Continues the stage's key with a step of `kind` whose inputs `inputs` encodes.
    pub(crate) fn chain(&mut self, kind: KeyKind, inputs: impl FnOnce(&mut KeyBuilder)) {
        let mut k = KeyBuilder::child(kind, &self.key);
        inputs(&mut k);
        let parent = self.key;
        self.key = k.finish();
        self.record(parent.hex(), k.take_parts());
    }

    /// Notes the current step's key and parts; a step that chains several times (an ARG
    /// of several names) is one record.
    pub(crate) fn record(&mut self, parent: String, parts: Vec<Part>) {
        let (index, text) = self.current.clone();
        match self.trail.last_mut() {
            Some(r) if r.index == index && r.text == text => {
                r.key = self.key.hex();
                r.parts.extend(parts);
            }
            _ => self.trail.push(StepRecord {
                stage: self.label.clone(),
                index,
                text,
                parent,
                key: self.key.hex(),
                parts,
            }),
        }
    }

    pub(crate) fn history(&mut self, created_by: String, empty: bool) {
        self.config.history.push(History {
            created: Some(self.created.clone()),
            created_by: Some(created_by),
            author: None,
            comment: None,
            empty_layer: empty,
        });
    }
}

impl Ctx<'_> {
    pub(crate) fn run_stage(&self, i: usize) -> FResult<()> {
        let stage = &self.df.stages[i];
        let label = self.stage_label(i);
        let labelled = i == self.graph.target && !self.opts.labels.is_empty();
        let flag_labels = if labelled { self.opts.labels.len() } else { 0 };
        // A stage a named context replaces is that context: its instructions do not run.
        let instructions: &[Instruction] = if self.graph.stages[i].replaced { &[] } else { &stage.instructions };
        let total = instructions.len() + 1 + flag_labels;
        let span = stage.from.span;
        let from_text = match (&self.graph.stages[i].base, stage.name()) {
            (Base::Image(r), n) => format!("FROM {r}{}", n.map(|n| format!(" AS {n}")).unwrap_or_default()),
            (_, _) => stage.from.source.trim().to_string(),
        };
        let (id, t0) = self.start(&label, 1, total, &from_text);
        let (mut st, unchanged) = self.base_state(i).map_err(|e| Failure::from(e).at(span))?;
        st.current = (1, stage.from.source.trim().to_string());
        let base = match &self.graph.stages[i].base {
            Base::Image(r) => format!("base image {r}"),
            Base::Stage(j) => format!("base stage {}", self.stage_label(*j)),
            Base::Scratch => "base scratch".into(),
            Base::Context(name) => format!("build context {name}"),
        };
        let key = st.key.hex();
        st.record(String::new(), vec![Part { name: base, digest: key, items: Default::default() }]);
        if let Some(e) = self.opts.source_date_epoch {
            st.clamp = e;
        }
        // A stage without instructions (nor ONBUILD triggers, nor --label on the target) is
        // its base as it is: docker commits nothing for it, so not even the default PATH
        // is added (it is added to the runConfig each instruction commits).
        if instructions.is_empty()
            && (st.config.config.on_build.is_empty() || self.graph.stages[i].replaced)
            && !labelled
        {
            self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
            self.journal(std::mem::take(&mut st.trail));
            self.outs.lock().unwrap_or_else(|e| e.into_inner())[i] =
                Some(StageOut { config: st.config, layers: st.layers, key: st.key, unchanged });
            return Ok(());
        }
        st.created = epoch_string(st.clamp);
        st.config.created = Some(st.created.clone());
        if st.config.config.env_get("PATH").is_none() {
            st.config.config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        // A new image: its own history continues the base's; ONBUILD triggers fire now.
        let triggers = std::mem::take(&mut st.config.config.on_build);
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        for ins in self.df.triggers(i, &triggers, span)? {
            self.step(&mut st, &ins, &label, 1, total).map_err(|f| f.at(ins.span))?;
        }
        for (n, ins) in instructions.iter().enumerate() {
            self.check_cancel()?;
            self.step(&mut st, ins, &label, n + 2, total).map_err(|f| f.at(ins.span))?;
        }
        if labelled {
            for (n, (k, v)) in self.opts.labels.iter().enumerate() {
                self.check_cancel()?;
                self.flag_label(&mut st, k, v, &label, instructions.len() + 2 + n, total)?;
            }
        }
        self.journal(std::mem::take(&mut st.trail));
        self.outs.lock().unwrap_or_else(|e| e.into_inner())[i] =
            Some(StageOut { config: st.config, layers: st.layers, key: st.key, unchanged: None });
        Ok(())
    }

    /// The state a stage starts in: its base's config, layers and key, and what the stage
    /// is when no instruction changes it.
    fn base_state(&self, i: usize) -> Result<(State, Option<Unchanged>)> {
        let fresh = |config: ImageConfig, layers: Vec<LayerRef>, key: CacheKey| {
            let clamp = config.created.as_deref().map(rbuild_store::config::parse_rfc3339).unwrap_or(0);
            State {
                stage: i,
                config,
                layers,
                key,
                args: BTreeMap::new(),
                cmd_set: false,
                workdir_gone: false,
                created: String::new(),
                clamp,
                escape: self.df.directives.escape,
                env: Default::default(),
                current: (1, String::new()),
                trail: Vec::new(),
                label: self.stage_label(i),
            }
        };
        Ok(match &self.graph.stages[i].base {
            Base::Scratch => (fresh(ImageConfig::default(), vec![], scratch_key()), Some(Unchanged::Scratch)),
            Base::Stage(j) => {
                let o =
                    self.outs.lock().unwrap_or_else(|e| e.into_inner())[*j].clone().ok_or(BuildError::BaseNotBuilt)?;
                (fresh(o.config, o.layers, o.key), o.unchanged)
            }
            Base::Context(name) => {
                let b = self.context_base(name)?;
                let unchanged = b.image.map(|img| Unchanged::Image(Box::new(img)));
                (fresh(b.config, b.layers, b.key), unchanged)
            }
            Base::Image(r) => {
                let img = self
                    .image(r, true)
                    .map_err(|e| BuildError::BaseImage { reference: r.clone(), source: Box::new(e) })?;
                let key = image_key(&img);
                (fresh(img.config.clone(), img.layers.clone(), key), Some(Unchanged::Image(Box::new(img))))
            }
        })
    }

    /// One `--label key=value`: docker appends a `LABEL` instruction per flag, sorted by
    /// key, to the target stage (builder.go `buildLabelOptions`), so each is an ordinary
    /// metadata step with its history entry; the value is taken as it is (no expansion).
    fn flag_label(&self, st: &mut State, k: &str, v: &str, label: &str, index: usize, total: usize) -> FResult<()> {
        let text = format!("LABEL {k}={v}");
        let created_by = format!("/bin/sh -c #(nop)  {text}");
        st.config.config.labels.insert(k.to_string(), v.to_string());
        st.env.grow(2 * created_by.len())?;
        st.chain(KeyKind::Meta, |kb| {
            kb.text(&created_by);
        });
        self.commit_meta(st, created_by, label, index, total, &text)
    }

    /// Whether a RUN step may follow the step at `pos` of stage `stage` ([`run_follows`]).
    pub(crate) fn run_follows(&self, stage: usize, pos: usize) -> bool {
        run_follows(self.df, self.graph, stage, pos)
    }

    pub(crate) fn step(
        &self,
        st: &mut State,
        ins: &Instruction,
        label: &str,
        index: usize,
        total: usize,
    ) -> FResult<()> {
        st.env.sync(&st.config.config.env);
        st.current = (index, ins.source.trim().to_string());
        let env = meta::StepEnv { env: &st.env, args: &st.args };
        let words = Words { lex: Lexer::new(st.escape), env: &env };
        let text = ins.source.trim();
        match &ins.kind {
            Kind::Arg { args } => {
                let mut declared = Vec::new();
                for a in args {
                    let name = a.name.clone();
                    let default = match &a.default {
                        Some(d) => Some(words.word(d)?),
                        None => None,
                    };
                    let value = self
                        .opts
                        .build_args
                        .get(&name)
                        .cloned()
                        .or(default)
                        .or_else(|| self.graph.meta_args.get(&name).cloned());
                    self.used_args.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone());
                    declared.push((name, value));
                }
                // All expanded with the environment from before the instruction.
                for (name, value) in declared {
                    st.chain(KeyKind::Arg, |k| {
                        k.part(&format!("the value of ARG {name}")).text(&name).opt_text(value.as_deref());
                    });
                    st.args.insert(name, value);
                }
                self.commit_meta(st, format!("/bin/sh -c #(nop)  {text}"), label, index, total, text)
            }
            Kind::Run(run) => self.run(st, run, ins, label, index, total),
            Kind::Copy(c) => self.copy(st, c, false, ins, label, index, total),
            Kind::Add(c) => self.copy(st, c, true, ins, label, index, total),
            Kind::Workdir { .. } => {
                let applied = meta::apply(&mut st.config, &ins.kind, &words, &mut st.cmd_set)?;
                let wd = st.config.config.working_dir.clone();
                st.chain(KeyKind::Workdir, |k| {
                    k.part("the working directory").text(&wd);
                });
                self.commit_workdir(st, applied.created_by, label, index, total, text)
            }
            Kind::Env { pairs } => {
                // As meta::apply does, through the index.
                let (set, msg) = meta::expand_env(pairs, &words)?;
                for (k, v) in &set {
                    st.env.set(&mut st.config.config.env, k, v);
                }
                let created_by = format!("/bin/sh -c #(nop)  {msg}");
                st.env.grow(2 * created_by.len())?;
                st.chain(KeyKind::Meta, |k| {
                    k.part("the values it sets").text(&created_by);
                });
                self.commit_meta(st, created_by, label, index, total, text)
            }
            _ => {
                let applied = meta::apply(&mut st.config, &ins.kind, &words, &mut st.cmd_set)?;
                st.env.grow(2 * applied.created_by.len())?;
                if matches!(ins.kind, Kind::Volume { .. }) {
                    self.check_volumes(st)?;
                }
                st.chain(KeyKind::Meta, |k| {
                    k.part("what it sets").text(&applied.created_by);
                });
                self.commit_meta(st, applied.created_by, label, index, total, text)
            }
        }
    }
}

/// Whether a RUN step may follow the step at `pos` (its progress position: 1 is the
/// ONBUILD triggers, n + 2 the stage's instruction n) of stage `stage`: a later RUN of the
/// stage, or one of a stage of a later level. Only then is the sandbox of a next step
/// started ahead while this one runs: in a build whose RUN steps are the last of their
/// stages (three parallel stages joined by COPY --from), those were three shims started
/// for nothing, on the cores the real ones were starting on.
fn run_follows(df: &rbuild_parser::Dockerfile, graph: &rbuild_parser::graph::Graph, stage: usize, pos: usize) -> bool {
    let own = &df.stages[stage].instructions;
    if has_run(own.get(pos.saturating_sub(1)..).unwrap_or_default()) {
        return true;
    }
    let level = graph.stages[stage].level;
    graph
        .levels
        .iter()
        .enumerate()
        .filter(|(l, _)| Some(*l) > level)
        .flat_map(|(_, stages)| stages)
        .any(|&s| stage_runs(df, graph, s))
}

/// Whether stage `s` has a RUN step to run (a stage a named context replaces runs none).
pub(crate) fn stage_runs(df: &rbuild_parser::Dockerfile, graph: &rbuild_parser::graph::Graph, s: usize) -> bool {
    !graph.stages[s].replaced && has_run(&df.stages[s].instructions)
}

/// Whether `ins` has a RUN step.
fn has_run(ins: &[Instruction]) -> bool {
    ins.iter().any(|i| matches!(i.kind, Kind::Run(_)))
}

#[cfg(test)]
mod tests {
    use super::run_follows;
    use rbuild_parser::graph::Graph;
    use rbuild_parser::Dockerfile;

    fn follows(src: &str, stage: usize, pos: usize) -> bool {
        let df = Dockerfile::parse(src).unwrap();
        let g = Graph::build(&df, &Default::default(), None).unwrap();
        run_follows(&df, &g, stage, pos)
    }

    /// A shim is started ahead only for a RUN to come: after every RUN of a stage but
    /// its last, after the last of a stage that a later stage with RUN steps waits for,
    /// never after the last RUN of the build.
    #[test]
    fn a_next_sandbox_is_started_only_for_a_run_to_come() {
        let one = "FROM b\nRUN a\nENV X=1\nRUN b\nCMD c\n";
        assert!(follows(one, 0, 2), "the first RUN (instruction 0)");
        assert!(!follows(one, 0, 4), "the last RUN (instruction 2)");
        assert!(follows(one, 0, 1), "the ONBUILD triggers come before every instruction");
        let joined = "FROM b AS a\nRUN x\nFROM b AS c\nRUN y\nFROM b\nCOPY --from=a /x /x\nCOPY --from=c /y /y\n";
        assert!(!follows(joined, 0, 2) && !follows(joined, 1, 2), "nothing runs after the parallel stages");
        let chained = "FROM b AS build\nRUN make\nFROM build\nRUN test\n";
        assert!(follows(chained, 0, 2), "the next stage has a RUN");
        assert!(!follows(chained, 1, 2));
    }
}
