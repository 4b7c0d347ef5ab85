//! What [`clean`](super::clean) believes before it acts: a state dir and
//! state files that only this user can have written, and entries named the
//! way a run of the file's own tag names what it creates.
//!
//! A state file is an instruction to kill and delete, possibly run as root,
//! and the default state dir is a guessable path in `/tmp`. So the dir must
//! be a real directory (not a symlink) owned by this user and writable by
//! no one else, each state file a regular file owned by this user, and
//! every entry must look like something the run made:
//!
//! - namespaces `fl-<tag>-n<K>`, links `fl-<tag>-br`, `fl-<tag>-h<K>` and
//!   `fl-<tag>-p<K>`, where `<tag>` is the file's own tag and the file is
//!   named `<tag>.json`;
//! - files `<tag>-n<K>.faketime` directly inside the state dir, as
//!   [`FakeClock::create`](crate::clock::FakeClock::create) makes them,
//!   regular files owned by this user (a symlink is never followed);
//! - processes recorded with a start time no earlier than their owner's, a
//!   bare program name, still running that program as this user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Whether `tag` is six lowercase hex digits.
pub(crate) fn is_tag(tag: &str) -> bool {
    tag.len() == 6
        && tag
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `rest` is a node number: one to three digits, no leading zero.
fn is_node_number(rest: &str) -> bool {
    !rest.is_empty()
        && rest.len() <= 3
        && !rest.starts_with('0')
        && rest.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `name` is a namespace a run of `tag` creates.
pub(crate) fn is_namespace_of(name: &str, tag: &str) -> bool {
    suffix_of(name, tag)
        .and_then(|s| s.strip_prefix('n'))
        .is_some_and(is_node_number)
}

/// Whether `name` is a link a run of `tag` creates.
pub(crate) fn is_link_of(name: &str, tag: &str) -> bool {
    suffix_of(name, tag).is_some_and(|s| {
        s == "br"
            || s.strip_prefix('h')
                .or_else(|| s.strip_prefix('p'))
                .is_some_and(is_node_number)
    })
}

fn suffix_of<'a>(name: &'a str, tag: &str) -> Option<&'a str> {
    name.strip_prefix("fl-")?
        .strip_prefix(tag)?
        .strip_prefix('-')
}

/// The tag a state file's name claims: `<tag>.json` gives `<tag>`.
pub(crate) fn tag_of_state_file(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".json").filter(|tag| is_tag(tag))
}

/// The effective uid of this process.
fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `Ok` when `dir` is a directory (not a symlink) owned by this user and
/// not writable by group or others; otherwise what was found.
pub(crate) fn check_dir(dir: &Path) -> Result<(), String> {
    check_private(dir, "state dir", "directory")
}

/// `Ok` when `path` is a regular file owned by this user and not writable
/// by group or others; otherwise what was found.
pub(crate) fn check_state_file(path: &Path) -> Result<(), String> {
    check_private(path, "state file", "regular file")
}

fn check_private(path: &Path, what: &str, expected: &str) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let kind = kind_of(&meta);
    let mode = meta.permissions().mode() & 0o7777;
    if kind == expected && meta.uid() == me() && mode & 0o022 == 0 {
        return Ok(());
    }
    Err(format!(
        "refusing {what} {}: found a {kind} owned by uid {} with mode {mode:04o}; \
         expected a {expected} owned by uid {} (this user) and not writable by \
         group or others",
        path.display(),
        meta.uid(),
        me()
    ))
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_symlink() {
        "symlink"
    } else if kind.is_dir() {
        "directory"
    } else if kind.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// The file to delete for a recorded `path`, `Ok(None)` when it is already
/// gone, or why it must not be touched: it must be a clock file of `tag`
/// directly inside `dir` (compared after resolving both parents), a regular
/// file owned by this user.
pub(crate) fn clock_file(
    path: &Path,
    dir: &Path,
    tag: &str,
) -> Result<Option<PathBuf>, String> {
    let refuse = |why: &str| {
        format!(
            "refusing to remove file {}: {why}; expected {tag}-n<K>.faketime in {}",
            path.display(),
            dir.display()
        )
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let node = name
        .strip_prefix(tag)
        .and_then(|s| s.strip_prefix("-n"))
        .and_then(|s| s.strip_suffix(".faketime"));
    if !node.is_some_and(is_node_number) {
        return Err(refuse(&format!("not a clock file name for tag {tag}")));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let same_dir = match (
        parent.map(std::fs::canonicalize),
        std::fs::canonicalize(dir),
    ) {
        (Some(Ok(parent)), Ok(dir)) => parent == dir,
        _ => false,
    };
    if !same_dir {
        return Err(refuse("outside the state dir"));
    }
    let file = path.to_path_buf();
    let meta = match std::fs::symlink_metadata(&file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse(&e.to_string())),
    };
    if !meta.file_type().is_file() || meta.uid() != me() {
        let found = format!("found a {} owned by uid {}", kind_of(&meta), meta.uid());
        return Err(refuse(&found));
    }
    Ok(Some(file))
}

/// The uid a process runs as (the real uid on the `Uid:` line of
/// `/proc/PID/status`).
pub(crate) fn process_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` runs as this user.
pub(crate) fn runs_as_me(pid: u32) -> bool {
    process_uid(pid) == Some(me())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_carry_the_files_own_tag_and_a_known_shape() {
        assert!(is_namespace_of("fl-53e183-n1", "53e183"));
        assert!(is_link_of("fl-53e183-br", "53e183"));
        assert!(is_link_of("fl-53e183-h12", "53e183"));
        assert!(is_link_of("fl-53e183-p3", "53e183"));
        let bad = ["lo", "eth0", "fl-abcdef-h1", "fl-53e183-h0", "fl-53e183-n1"];
        for name in bad {
            assert!(!is_link_of(name, "53e183"), "{name}");
        }
        assert!(!is_namespace_of("fl-53e183-n", "53e183"));
        assert!(!is_namespace_of("fl-53e183-n1x", "53e183"));
        assert!(!is_namespace_of("fl-ffffff-n1", "53e183"));
        assert!(!is_tag("53E183") && !is_tag("53e18") && is_tag("000000"));
    }

    #[test]
    fn only_a_tags_clock_files_inside_the_dir_may_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tag = "abc123";
        let ours = dir.path().join("abc123-n1.faketime");
        std::fs::write(&ours, "+0 x1\n").unwrap();
        assert_eq!(clock_file(&ours, dir.path(), tag), Ok(Some(ours.clone())));

        let missing = dir.path().join("abc123-n2.faketime");
        assert_eq!(clock_file(&missing, dir.path(), tag), Ok(None));
        let other_tag = dir.path().join("ffffff-n1.faketime");
        assert!(clock_file(&other_tag, dir.path(), tag).is_err());
        let escaped = dir.path().join("../abc123-n1.faketime");
        assert!(clock_file(&escaped, dir.path(), tag).is_err());

        let link = dir.path().join("abc123-n3.faketime");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        let err = clock_file(&link, dir.path(), tag).unwrap_err();
        assert!(err.contains("symlink"), "{err}");
    }
}
