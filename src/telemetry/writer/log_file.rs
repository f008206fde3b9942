//! The log file as the writer thread sees it: opened for appending, reopened when another
//! process has rotated `path` away, rotated under the sidecar lock `path.lock` when full, and
//! written one batch per write so whole lines never mix with another process's.

use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The open log and the identity of the file it is, to notice when `path` names another one.
pub(super) struct LogFile {
    path: PathBuf,
    file: Option<File>,
    identity: Option<(u64, u64)>,
}

impl LogFile {
    /// Opens (or creates) `path` for appending; the error names the path.
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        let mut log = Self::deferred(path);
        log.reopen()?;
        Ok(log)
    }

    /// A log that opens `path` at its first write, so the opening happens on the writer thread.
    pub(super) fn deferred(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            identity: None,
        }
    }

    /// Follows `path` to the file now there, and rotates it first when it is full.
    pub(super) fn prepare(
        &mut self,
        rotate_bytes: Option<u64>,
        rotated_files: u32,
    ) -> io::Result<()> {
        if self.file.is_none() || self.moved_away() {
            self.reopen()?;
        }
        if let Some(limit) = rotate_bytes
            && self.size()? >= limit
        {
            self.rotate(limit, rotated_files)?;
        }
        Ok(())
    }

    /// Appends whole lines, with one `write` unless the kernel accepts only a part.
    pub(super) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let path = &self.path;
        let file = match self.file {
            Some(ref mut file) => file,
            None => {
                let (file, identity) = open_for_append(path)?;
                self.identity = identity;
                self.file.insert(file)
            }
        };
        let mut written = 0;
        while written < bytes.len() {
            match file.write(&bytes[written..]) {
                Ok(0) => {
                    return Err(context(
                        io::ErrorKind::WriteZero.into(),
                        "cannot write",
                        path,
                    ));
                }
                Ok(count) => written += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    if written > 0 && bytes[written - 1] != b'\n' {
                        // End the torn line, so the next batch's first line stays parseable.
                        let _ = file.write(b"\n");
                    }
                    return Err(context(error, "cannot write", path));
                }
            }
        }
        Ok(())
    }

    /// Makes what was written durable.
    pub(super) fn sync(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => file
                .sync_data()
                .map_err(|error| context(error, "cannot fsync", &self.path)),
            None => Ok(()),
        }
    }

    /// Another handle on the open file, for syncing it from another thread.
    pub(super) fn duplicate(&self) -> Option<io::Result<File>> {
        self.file.as_ref().map(File::try_clone)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let (file, identity) = open_for_append(&self.path)?;
        self.file = Some(file);
        self.identity = identity;
        Ok(())
    }

    /// True when `path` is missing or names another file than the open one.
    fn moved_away(&self) -> bool {
        match fs::metadata(&self.path) {
            Ok(metadata) => identity(&metadata) != self.identity,
            Err(_) => true,
        }
    }

    fn size(&self) -> io::Result<u64> {
        match &self.file {
            Some(file) => file
                .metadata()
                .map(|metadata| metadata.len())
                .map_err(|error| context(error, "cannot stat", &self.path)),
            None => Ok(0),
        }
    }

    /// Rotates under the sidecar lock, unless another process did while this one waited.
    pub(super) fn rotate(&mut self, limit: u64, rotated_files: u32) -> io::Result<()> {
        let lock_path = suffixed(&self.path, ".lock");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|error| context(error, "cannot open the rotation lock of", &self.path))?;
        lock.lock()
            .map_err(|error| context(error, "cannot lock the rotation lock of", &self.path))?;
        let rotated = self.rotate_locked(limit, rotated_files);
        // Closing the file releases the lock as well; unlocking first keeps that explicit.
        let _ = lock.unlock();
        rotated
    }

    fn rotate_locked(&mut self, limit: u64, rotated_files: u32) -> io::Result<()> {
        // Another process may have rotated while this one waited for the lock: follow it, and
        // rotate only if the file now at `path` is full as well.
        if self.moved_away() {
            self.reopen()?;
        }
        if self.size()? < limit {
            return Ok(());
        }
        self.shift(rotated_files)
            .map_err(|error| context(error, "cannot rotate", &self.path))?;
        self.reopen()
    }

    /// Renames `path.(N-1)` to `path.N` ... `path` to `path.1`, dropping the oldest.
    fn shift(&self, rotated_files: u32) -> io::Result<()> {
        if rotated_files == 0 {
            return ignore_missing(fs::remove_file(&self.path));
        }
        // Only the run of existing files from `path.1` moves: the first gap takes the shift.
        let mut last = 1;
        while last < rotated_files && numbered(&self.path, last).exists() {
            last += 1;
        }
        for index in (1..last).rev() {
            ignore_missing(fs::rename(
                numbered(&self.path, index),
                numbered(&self.path, index + 1),
            ))?;
        }
        fs::rename(&self.path, numbered(&self.path, 1))
    }
}

/// The name of the `index`th rotated file: `path.index`.
pub(super) fn numbered(path: &Path, index: u32) -> PathBuf {
    suffixed(path, &format!(".{index}"))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn open_for_append(path: &Path) -> io::Result<(File, Option<(u64, u64)>)> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|error| context(error, "cannot open", path))?;
    let metadata = file
        .metadata()
        .map_err(|error| context(error, "cannot stat", path))?;
    Ok((file, identity(&metadata)))
}

#[cfg(unix)]
fn identity(metadata: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

/// Without inodes, rotation by another process goes unnoticed until `path` disappears.
#[cfg(not(unix))]
fn identity(_metadata: &Metadata) -> Option<(u64, u64)> {
    None
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The same error, saying what failed on which file.
fn context(error: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("{action} telemetry log {}: {error}", path.display()),
    )
}
