//! Why a step missed the cache (`build --explain-cache`).
//!
//! Every step's key is made from named parts (the command, the environment, the context
//! files, …; see [`crate::cache_key::KeyBuilder::part`]). A build keeps, for each step,
//! its parent's key, its own key and a digest per part — with a digest per item where a
//! part has items (per variable, per file) — as a journal in the store, one per build
//! (context, Dockerfile and target). The next build of the same thing compares a step
//! that missed with the same step (stage and position) of the journal: the first step of
//! the stage whose own inputs changed is the reason, said in terms of those inputs.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One named input of a step's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub name: String,
    /// sha256 of what the part encodes into the key.
    pub digest: String,
    /// Per item (a variable, a file): its value's digest, or a short value as it is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<String, String>,
}

/// A step as a build met it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The stage's name, else its index.
    pub stage: String,
    /// The step's position in the stage (1 is FROM).
    pub index: usize,
    /// The instruction as written.
    pub text: String,
    pub parent: String,
    pub key: String,
    pub parts: Vec<Part>,
}

/// All the steps of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub steps: Vec<StepRecord>,
}

/// How many builds' journals the store keeps (the most recently written).
const KEEP: usize = 256;

/// Removes the oldest journals beyond `keep`.
fn trim(dir: &Path, keep: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut all: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(_, p)| p.extension().is_some_and(|x| x == "json"))
        .collect();
    if all.len() <= keep {
        return;
    }
    all.sort();
    for (_, p) in &all[..all.len() - keep] {
        let _ = std::fs::remove_file(p);
    }
}

/// Where a build's journal is kept: one file per context, Dockerfile and target.
pub(crate) fn journal_path(area: &Path, context: Option<&Path>, dockerfile: &str, target: Option<&str>) -> PathBuf {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    let ctx = context.map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.to_path_buf()));
    h.update(ctx.map(|c| c.display().to_string()).unwrap_or_default().as_bytes());
    h.update([0]);
    h.update(dockerfile.as_bytes());
    h.update([0]);
    h.update(target.unwrap_or("").as_bytes());
    area.join(format!("{}.json", &hex::encode(h.finalize())[..32]))
}

impl Journal {
    pub(crate) fn from_json(data: &[u8]) -> Option<Journal> {
        serde_json::from_slice(data).ok()
    }

    /// Writes the journal (by rename) unless `stored`, the file's bytes, are already what
    /// it would write; a journal that cannot be written explains nothing next time, and
    /// fails nothing now.
    pub(crate) fn save_if_changed(&self, path: &Path, stored: Option<&[u8]>) {
        let Ok(data) = serde_json::to_vec(self) else { return };
        if stored == Some(data.as_slice()) {
            return;
        }
        let Some(dir) = path.parent() else { return };
        let _ = std::fs::create_dir_all(dir);
        let _ = rbuild_store::write_atomic(path, &data, rbuild_store::Durability::Atomic);
        trim(dir, KEEP);
    }

    fn find(&self, stage: &str, index: usize) -> Option<&StepRecord> {
        self.steps.iter().rev().find(|s| s.stage == stage && s.index == index)
    }

    /// Why `trail`'s last step (the steps of its stage so far) missed, in a sentence.
    pub fn explain(&self, trail: &[StepRecord]) -> String {
        let Some(miss) = trail.last() else { return String::new() };
        let Some(before) = self.find(&miss.stage, miss.index) else {
            return "not built before (no earlier build of this step to compare with)".into();
        };
        if before.key == miss.key {
            return "the same inputs as the last build, but its cache record is gone (pruned)".into();
        }
        // The first step of the stage whose own inputs changed is the reason.
        for r in trail {
            let Some(p) = self.find(&r.stage, r.index) else {
                return format!("line {}: `{}` is new", r.index, r.text);
            };
            if p.key == r.key {
                continue;
            }
            let changes = differences(p, r);
            if changes.is_empty() && r.index > 1 && p.parent != r.parent {
                // Its inputs are the same: something before it changed (not traced).
                continue;
            }
            let what = if changes.is_empty() { "its inputs changed".to_string() } else { changes.join("; ") };
            if std::ptr::eq(r, miss) {
                return what;
            }
            return format!("`{}` changed before it: {what}", r.text);
        }
        "an earlier step changed".into()
    }
}

/// What differs between a step as it was (`p`) and as it is (`r`), in words.
fn differences(p: &StepRecord, r: &StepRecord) -> Vec<String> {
    let mut out = Vec::new();
    let edited = p.text != r.text;
    if edited {
        out.push(format!("the instruction changed: `{}` → `{}`", short(&p.text), short(&r.text)));
    }
    let old: BTreeMap<&str, &Part> = p.parts.iter().map(|x| (x.name.as_str(), x)).collect();
    // An edited instruction explains the parts that follow from its text; what has
    // items (files, variables) can change besides, and is said.
    for part in r.parts.iter().filter(|x| !edited || !x.items.is_empty()) {
        match old.get(part.name.as_str()) {
            Some(o) if o.digest == part.digest => {}
            Some(o) => out.push(describe(&part.name, &o.items, &part.items)),
            None => out.push(format!("{} is new", part.name)),
        }
    }
    out
}

/// A changed part, with the items that changed when it has items.
fn describe(name: &str, old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> String {
    if old.is_empty() && new.is_empty() {
        return format!("{name} changed");
    }
    let mut items = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            None => items.push(format!("{k} (added)")),
            Some(o) if o != v => items.push(format!("{k} (changed)")),
            _ => {}
        }
    }
    items.extend(old.keys().filter(|k| !new.contains_key(*k)).map(|k| format!("{k} (removed)")));
    const SHOWN: usize = 8;
    let n = items.len();
    let mut list = items.into_iter().take(SHOWN).collect::<Vec<_>>().join(", ");
    if n > SHOWN {
        list.push_str(&format!(" and {} more", n - SHOWN));
    }
    if n == 0 {
        return format!("{name} changed");
    }
    format!("{name} changed: {list}")
}

/// A value's digest as an item records it.
pub(crate) fn short_digest(b: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(&Sha256::digest(b)[..8])
}

/// The most files a COPY records one by one; beyond, it says only that they changed.
const MAX_FILES: usize = 2000;

/// Each selected context file's path and a digest of what is copied of it (kind, mode,
/// owner, size, content, link target).
pub(crate) fn file_items<'a>(items: impl Iterator<Item = &'a crate::context::Item> + Clone) -> Vec<(String, String)> {
    use crate::context::EntryKind;
    use std::os::unix::ffi::OsStrExt;
    if items.clone().map(|i| i.entries.len()).sum::<usize>() > MAX_FILES {
        return vec![];
    }
    let mut out = Vec::new();
    for it in items {
        for e in &it.entries {
            let path = match (e.rel.as_os_str().is_empty(), it.path.as_os_str() == ".") {
                (true, _) => it.path.clone(),
                (false, true) => e.rel.clone(),
                (false, false) => it.path.join(&e.rel),
            };
            let mut b = Vec::new();
            let link: &[u8] = match &e.kind {
                EntryKind::Symlink(l) => l.as_os_str().as_bytes(),
                _ => b"",
            };
            b.push(match e.kind {
                EntryKind::File => b'f',
                EntryKind::Dir => b'd',
                EntryKind::Symlink(_) => b'l',
                EntryKind::Other => b'o',
            });
            for n in [u64::from(e.raw_mode), u64::from(e.uid), u64::from(e.gid), e.size] {
                b.extend_from_slice(&n.to_le_bytes());
            }
            b.extend_from_slice(&e.digest.unwrap_or([0; 32]));
            b.extend_from_slice(link);
            out.push((path.display().to_string(), short_digest(&b)));
        }
    }
    out
}

fn short(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part: name, digest, items.
    type P<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    #[test]
    fn a_journal_is_written_only_when_it_changed() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("j.json");
        let j = Journal { steps: vec![rec(1, "FROM x", "", "k1", &[])] };
        j.save_if_changed(&path, None);
        let stored = std::fs::read(&path).unwrap();
        assert_eq!(Journal::from_json(&stored), Some(j.clone()));
        let ino = std::fs::metadata(&path).unwrap().ino();
        j.save_if_changed(&path, Some(&stored));
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), ino, "an unchanged journal was written again");
        let changed = Journal { steps: vec![rec(1, "FROM y", "", "k2", &[])] };
        changed.save_if_changed(&path, Some(&stored));
        assert_eq!(Journal::from_json(&std::fs::read(&path).unwrap()), Some(changed));
    }

    fn rec(index: usize, text: &str, parent: &str, key: &str, parts: &[P<'_>]) -> StepRecord {
        StepRecord {
            stage: "app".into(),
            index,
            text: text.into(),
            parent: parent.into(),
            key: key.into(),
            parts: parts
                .iter()
                .map(|(n, d, items)| Part {
                    name: n.to_string(),
                    digest: d.to_string(),
                    items: items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_first_changed_step_is_the_reason() {
        let before = Journal {
            steps: vec![
                rec(1, "FROM busybox", "", "b", &[("base image", "i1", &[])]),
                rec(2, "COPY . /src", "b", "c", &[("context files", "f1", &[("a.txt", "1"), ("b.txt", "2")])]),
                rec(3, "RUN make", "c", "r", &[("command", "m", &[])]),
            ],
        };
        let now = vec![
            rec(1, "FROM busybox", "", "b", &[("base image", "i1", &[])]),
            rec(2, "COPY . /src", "b", "c2", &[("context files", "f2", &[("a.txt", "1"), ("b.txt", "3"), ("c", "4")])]),
            rec(3, "RUN make", "c2", "r2", &[("command", "m", &[])]),
        ];
        assert_eq!(before.explain(&now[..2]), "context files changed: b.txt (changed), c (added)");
        assert_eq!(
            before.explain(&now),
            "`COPY . /src` changed before it: context files changed: b.txt (changed), c (added)"
        );
        let edited = vec![now[0].clone(), rec(2, "COPY . /app", "b", "c3", &[])];
        assert!(before.explain(&edited).starts_with("the instruction changed: `COPY . /src` → `COPY . /app`"));
        let rebased = vec![rec(1, "FROM busybox", "", "b2", &[("base image", "i2", &[])])];
        assert_eq!(before.explain(&rebased), "base image changed");
        assert!(Journal::default().explain(&now[..1]).starts_with("not built before"));
        assert!(before.explain(&before.steps[..2]).contains("cache record is gone"));
    }

    #[test]
    fn long_lists_are_cut() {
        let old = BTreeMap::new();
        let new: BTreeMap<String, String> = (0..20).map(|i| (format!("f{i:02}"), "x".to_string())).collect();
        let d = describe("context files", &old, &new);
        assert!(d.ends_with("and 12 more"), "{d}");
    }
}
