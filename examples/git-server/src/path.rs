//! The repository a client names, checked before anything touches the disk.
//!
//! git sends the path from the URL as the command's one argument, quoted:
//! `git-upload-pack 'project.git'` for `host:project.git`, `'/project.git'`
//! for `ssh://host/project.git`, `'~/project.git'` for `ssh://host/~/project.git`.
//! All three name the same repository under the server's root. Anything
//! else, `..` and hidden names above all, is refused here, so what reaches
//! the file system is always a plain relative path of one or two names.

use std::fmt;

/// The longest repository path accepted, in bytes.
const MAX_LEN: usize = 200;

/// A repository path the rules allow: `name.git` or `group/name.git`, each
/// name of `[A-Za-z0-9._-]`, not starting with `.` or `-`, relative to the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

/// Why a path is not a repository path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPath(&'static str);

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidPath {}

// ANCHOR: parse
impl RepoPath {
    /// Checks a path as git sends it: one leading `/` or `~/` is dropped
    /// (both mean "under the root"), then one or two names separated by `/`,
    /// each of `[A-Za-z0-9._-]`, none starting with `.` (no `.`, `..`, hidden
    /// files) or `-` (never an option to git), the last ending in `.git`.
    pub fn parse(requested: &str) -> Result<RepoPath, InvalidPath> {
        let relative = requested.strip_prefix("~/").or_else(|| requested.strip_prefix('/')).unwrap_or(requested);
        if relative.is_empty() {
            return Err(InvalidPath("the path is empty"));
        }
        if relative.len() > MAX_LEN {
            return Err(InvalidPath("the path is too long"));
        }
        let names: Vec<&str> = relative.split('/').collect();
        if names.len() > 2 {
            return Err(InvalidPath("at most one directory level: `name.git` or `group/name.git`"));
        }
        for name in &names {
            if name.is_empty() {
                return Err(InvalidPath("empty name between slashes"));
            }
            if name.starts_with('.') || name.starts_with('-') {
                return Err(InvalidPath("a name may not start with `.` or `-`"));
            }
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return Err(InvalidPath("names are made of A-Z, a-z, 0-9, `.`, `_` and `-`"));
            }
        }
        if !relative.ends_with(".git") || relative.ends_with("/.git") {
            return Err(InvalidPath("a repository name ends in `.git`"));
        }
        Ok(RepoPath(relative.to_owned()))
    }
}
// ANCHOR_END: parse

impl RepoPath {
    /// The path relative to the server's root, such as `group/name.git`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings_git_sends_name_one_repository() {
        for requested in ["project.git", "/project.git", "~/project.git"] {
            assert_eq!(RepoPath::parse(requested).unwrap().as_str(), "project.git", "{requested}");
        }
        assert_eq!(RepoPath::parse("/team/site.git").unwrap().as_str(), "team/site.git");
    }

    #[test]
    fn escapes_and_odd_names_are_refused() {
        for requested in [
            "", "/", "~/", "..", "../x.git", "/../etc.git", "~/../x.git", "a/../b.git", "./x.git", "x/./y.git",
            "//x.git", "/etc/passwd", "x", "x.git/", ".git", "a/.git", ".hidden.git", "-u.git", "a/-x.git",
            "a/b/c.git", "~alice/x.git", "x y.git", "x\n.git", "x\0.git", "é.git", "a//b.git", "x.GIT",
        ] {
            assert!(RepoPath::parse(requested).is_err(), "{requested:?} was accepted");
        }
        assert!(RepoPath::parse(&format!("{}.git", "a".repeat(MAX_LEN))).is_err());
    }
}
