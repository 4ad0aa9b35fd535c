//! This process's name in the outbox's claims, kept from one run to the next.
//!
//! A delivery worker claims outbox rows under its `gsp serve` instance's
//! name for the length of an attempt (the lease: the federation request
//! timeout plus a margin). A process killed mid-attempt leaves its claims
//! behind; with a fresh name at every start they lapse only when the lease
//! runs out — a minute and more during which a restarted node sends nothing
//! of what it had on the way. So the name is kept in the data folder, and a
//! restarted instance that finds its own name releases its claims at once.
//!
//! Two instances may share one database (PostgreSQL) and even one data
//! folder; each must have its own name. The name lives in a *slot* file,
//! `instance-N.id`, that the running process holds locked (an advisory lock
//! the operating system drops when the process ends, however it ends): a
//! second instance finds slot 0 locked and takes slot 1, and so on. The
//! name is `host-uuid`, so instances on different machines never collide.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Slots tried before giving up (instances sharing one data folder).
const SLOTS: usize = 32;

/// Longest name accepted from a slot file (longer is treated as damaged).
const MAX_NAME: usize = 200;

/// A slot held by this process: its name, and the lock that keeps it ours.
#[derive(Debug)]
pub struct InstanceSlot {
    name: String,
    path: PathBuf,
    reused: bool,
    /// Holds the lock for as long as the slot lives.
    _file: File,
}

impl InstanceSlot {
    /// Takes the first free slot in `dir` (creating the folder and the slot
    /// file if need be): its name, or a new one written there if the file is
    /// new, empty or damaged. An error names the file and what failed.
    pub fn acquire(dir: &Path) -> Result<InstanceSlot, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        for n in 0..SLOTS {
            let path = dir.join(format!("instance-{n}.id"));
            let mut file = open_slot(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => {
                    return Err(format!("locking {}: {e}", path.display()));
                }
            }
            let mut text = String::new();
            // Unreadable or not UTF-8: damaged, replaced below.
            let read = file.read_to_string(&mut text).is_ok();
            let kept = text.trim();
            if read && valid_name(kept) {
                return Ok(InstanceSlot {
                    name: kept.to_owned(),
                    path,
                    reused: true,
                    _file: file,
                });
            }
            let name = new_name();
            file.set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(format!("{name}\n").as_bytes()))
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            return Ok(InstanceSlot {
                name,
                path,
                reused: false,
                _file: file,
            });
        }
        Err(format!(
            "all {SLOTS} instance slots in {} are held by running processes",
            dir.display()
        ))
    }

    /// The instance's name, as written in the outbox's `claimed_by`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The slot file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the name was an earlier run's (its claims may still be in the
    /// outbox).
    pub fn reused(&self) -> bool {
        self.reused
    }
}

/// Opens (or creates, readable by the owner only) a slot file.
fn open_slot(path: &Path) -> Result<File, String> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

/// A name as [`new_name`] makes them: printable ASCII without spaces, not
/// too long.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME && s.bytes().all(|b| b.is_ascii_graphic())
}

/// `host-uuid`: the host for people reading the outbox, the UUID so that no
/// two instances anywhere share a name.
fn new_name() -> String {
    let host: String = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    let host = if host.is_empty() { "gsp".into() } else { host };
    format!("{host}-{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_slot_keeps_its_name_and_two_held_at_once_differ() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstanceSlot::acquire(dir.path()).unwrap();
        assert!(!first.reused());
        assert!(valid_name(first.name()), "{}", first.name());
        // Held: a second instance takes the next slot, with another name.
        let second = InstanceSlot::acquire(dir.path()).unwrap();
        assert_ne!(first.name(), second.name());
        assert_ne!(first.path(), second.path());
        // Released (the process ended): the next start gets the name back.
        let name = first.name().to_owned();
        drop(first);
        let again = InstanceSlot::acquire(dir.path()).unwrap();
        assert_eq!(again.name(), name);
        assert!(again.reused());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(again.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_slot_file_gets_a_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("instance-0.id");
        for damaged in [&b""[..], b"  \n", b"two words", &[0xff, 0xfe], &[b'x'; 300]] {
            std::fs::write(&path, damaged).unwrap();
            let slot = InstanceSlot::acquire(dir.path()).unwrap();
            assert_eq!(slot.path(), path);
            assert!(!slot.reused());
            assert!(valid_name(slot.name()));
            let written = std::fs::read_to_string(&path).unwrap();
            assert_eq!(written.trim(), slot.name());
        }
    }

    #[test]
    fn a_slot_file_that_cannot_be_opened_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("instance-0.id")).unwrap();
        let err = InstanceSlot::acquire(dir.path()).unwrap_err();
        assert!(err.contains("instance-0.id"), "{err}");
    }

    #[test]
    fn an_unusable_folder_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, b"x").unwrap();
        let err = InstanceSlot::acquire(&file.join("sub")).unwrap_err();
        assert!(err.contains("not-a-folder"), "{err}");
    }
}
