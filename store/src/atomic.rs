//! Publishing a file by rename: write a temp file, sync it when the content must survive
//! a crash, rename it over the target, sync the directory. Every crate writes whole files
//! this way, through [`write_atomic`] or (for content that is streamed) [`AtomicWriter`]:
//! the store's index and areas, the runtime's container, volume and network state, the
//! builder's stat caches and journals, docker's `config.json`, `save -o`, `--output`. A
//! reader sees the old content or the new, never a part, and a failed write leaves no
//! temp file behind (a crash may: the store's own temp files are in its tmp area, where
//! prune finds them; those beside a file start with a dot and end in `.tmp-PID-RANDOM`).

use crate::store::rand_suffix;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How long a published file must last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Old or new content even across a crash: the file is synced before the rename and
    /// its directory after.
    Durable,
    /// Old or new content while the machine runs; a crash may lose the new content (or,
    /// on some filesystems, leave an empty file). For what can be made again.
    Atomic,
}

/// A file being written under a temp name; [`AtomicWriter::commit`] publishes it under
/// its name, and dropping it uncommitted removes it.
#[derive(Debug)]
pub struct AtomicWriter {
    tmp: PathBuf,
    dest: PathBuf,
    /// None once committed.
    file: Option<File>,
}

/// The longest part of the target's name kept in a temp name (NAME_MAX is 255).
const MAX_NAME_IN_TEMP: usize = 200;

impl AtomicWriter {
    /// A temp file beside `dest` (`.NAME.tmp-PID-RANDOM`), mode 0666 before the umask
    /// (as `File::create` makes it).
    pub fn create(dest: &Path) -> io::Result<AtomicWriter> {
        Self::create_with_mode(dest, 0o666)
    }

    /// [`AtomicWriter::create`] with the file's permission bits (before the umask).
    pub fn create_with_mode(dest: &Path, mode: u32) -> io::Result<AtomicWriter> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut cut = name.len().min(MAX_NAME_IN_TEMP);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let name = &name[..cut];
        Self::create_named(|| dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), rand_suffix())), dest, mode)
    }

    /// A temp file in `tmp_dir` (on the filesystem of `dest`), named `tmp-PID-RANDOM-N`
    /// as the store's temp files are, so that prune finds what a crash left there.
    pub fn create_in(tmp_dir: &Path, dest: &Path) -> io::Result<AtomicWriter> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let name = || {
            let n = N.fetch_add(1, Ordering::Relaxed);
            tmp_dir.join(format!("tmp-{}-{}-{n}", std::process::id(), rand_suffix()))
        };
        Self::create_named(name, dest, 0o666)
    }

    fn create_named(name: impl Fn() -> PathBuf, dest: &Path, mode: u32) -> io::Result<AtomicWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        for _ in 0..100 {
            let tmp = name();
            match fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp) {
                Ok(file) => return Ok(AtomicWriter { tmp, dest: dest.to_path_buf(), file: Some(file) }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::ErrorKind::AlreadyExists.into())
    }

    /// Where the file goes.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Publishes the file under its name (synced first when `durability` says so).
    pub fn commit(mut self, durability: Durability) -> io::Result<()> {
        let file = self.file.take().ok_or_else(|| io::Error::other("already committed"))?;
        if durability == Durability::Durable {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&self.tmp, &self.dest)?;
        // Published: nothing for drop to remove.
        self.tmp = PathBuf::new();
        if durability == Durability::Durable {
            let parent = self.dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().ok_or_else(|| io::Error::other("already committed"))?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Replaces `dest` with `data` in one rename (the temp file beside it). The directory
/// must exist.
pub fn write_atomic(dest: &Path, data: &[u8], durability: Durability) -> io::Result<()> {
    let mut w = AtomicWriter::create(dest)?;
    w.write_all(data)?;
    w.commit(durability)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_file_is_replaced_whole() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f.json");
        write_atomic(&p, b"one", Durability::Atomic).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", Durability::Durable).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(names(t.path()), ["f.json"], "a temp file was left");
    }

    #[test]
    fn a_failed_write_keeps_the_old_content_whole_and_leaves_no_temp_file() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        write_atomic(&p, b"old content", Durability::Durable).unwrap();
        // Written, then dropped before the commit (what `?` does on an error).
        {
            let mut w = AtomicWriter::create(&p).unwrap();
            w.write_all(b"new content, never published").unwrap();
        }
        assert_eq!(fs::read(&p).unwrap(), b"old content");
        assert_eq!(names(t.path()), ["f"]);
        // The rename fails (a directory is in the way): the temp file goes too.
        let d = t.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("x"), b"").unwrap();
        assert!(write_atomic(&d, b"x", Durability::Atomic).is_err());
        assert_eq!(names(t.path()), ["d", "f"]);
        // Into a directory that is not there: an error, nothing made.
        assert!(write_atomic(&t.path().join("no/such/dir/f"), b"x", Durability::Atomic).is_err());
        assert_eq!(names(t.path()), ["d", "f"]);
    }

    #[test]
    fn modes_temp_dirs_and_long_names() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        let mut w = AtomicWriter::create_with_mode(&secret, 0o600).unwrap();
        w.write_all(b"pw").unwrap();
        w.commit(Durability::Durable).unwrap();
        assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
        // The temp file elsewhere (the store's tmp dir), published beside `secret`.
        let tmp = t.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        let mut w = AtomicWriter::create_in(&tmp, &t.path().join("other")).unwrap();
        assert_eq!(names(&tmp).len(), 1);
        w.write_all(b"o").unwrap();
        w.commit(Durability::Atomic).unwrap();
        assert_eq!(fs::read(t.path().join("other")).unwrap(), b"o");
        assert!(names(&tmp).is_empty());
        // A name as long as a name can be: its temp name still fits.
        let long = t.path().join("é".repeat(127));
        write_atomic(&long, b"l", Durability::Atomic).unwrap();
        assert_eq!(fs::read(&long).unwrap(), b"l");
    }
}
