//! The git server driven by the real `git` (clone, push, archive) and OpenSSH
//! `ssh`, against the server in-process on 127.0.0.1:0. Every git runs with
//! its own `HOME`, no system config and a fixed identity, so nothing from the
//! machine's git or ssh setup takes part.

use std::path::{Path, PathBuf};
use std::process::Output;

use example_git_server::{Access, GitHost};
use ssh_framework_tests::openssh::{self, ClientKey, ISOLATION, Ssh};
use ssh_framework_tests::server::TestServer;
use ssh_framework_tests::within;

/// The seeded file's bytes: not text-only, so a clone that mangled line ends or bytes would show.
fn seeded_bytes() -> Vec<u8> {
    (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// A server with three repositories under its root and three keys:
///
/// | repository | alice | bob |
/// |---|---|---|
/// | `project.git` | write | read |
/// | `secret.git` | write | none |
/// | `link.git` (a symlink to a repository outside the root) | read | none |
///
/// carol's key is in no list.
struct Fixture {
    server: TestServer,
    dir: tempfile::TempDir,
    root: PathBuf,
    alice: ClientKey,
    bob: ClientKey,
    carol: ClientKey,
    /// The commit `project.git`'s `main` points at when the test starts.
    seeded: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().join("root");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let alice = openssh::keygen(&keys, "alice").await;
        let bob = openssh::keygen(&keys, "bob").await;
        let carol = openssh::keygen(&keys, "carol").await;

        // A work tree with one commit, cloned bare into the root twice and once outside it.
        let work = dir.path().join("seed");
        git(dir.path(), &home, None, &["init", "-q", "-b", "main", "seed"]).await.ok();
        std::fs::write(work.join("data.bin"), seeded_bytes()).unwrap();
        git(&work, &home, None, &["add", "data.bin"]).await.ok();
        git(&work, &home, None, &["commit", "-q", "-m", "seed"]).await.ok();
        let seeded = git(&work, &home, None, &["rev-parse", "HEAD"]).await.ok().stdout_line();
        for bare in [root.join("project.git"), root.join("secret.git"), dir.path().join("outside.git")] {
            git(dir.path(), &home, None, &["clone", "-q", "--bare", "seed"]).await.ok();
            std::fs::rename(dir.path().join("seed.git"), bare).unwrap();
        }
        std::os::unix::fs::symlink(dir.path().join("outside.git"), root.join("link.git")).unwrap();

        let access = Access::parse(&format!(
            "[users.alice]\nkeys = [\"{}\"]\n[users.bob]\nkeys = [\"{}\"]\n\
             [repos.\"project.git\"]\nalice = \"write\"\nbob = \"read\"\n\
             [repos.\"secret.git\"]\nalice = \"write\"\n\
             [repos.\"link.git\"]\nalice = \"read\"\n",
            alice.public.to_openssh().unwrap(),
            bob.public.to_openssh().unwrap(),
        ))
        .expect("the access file parses");
        let host = GitHost::new(&root, access).expect("the root exists");
        let server = TestServer::start(|builder| builder.handlers(host)).await;
        Fixture { server, dir, root, alice, bob, carol, seeded }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn url(&self, path: &str) -> String {
        format!("ssh://git@127.0.0.1:{}/{path}", self.server.port())
    }

    /// `git ARGS` in `cwd` as the holder of `key`.
    async fn git(&self, cwd: &Path, key: &ClientKey, args: &[&str]) -> GitOutput {
        git(cwd, &self.home(), Some((key, self.server.port())), args).await
    }

    /// Where `main` points in the server's copy of `repo`.
    async fn server_main(&self, repo: &str) -> String {
        let dir = self.root.join(repo);
        git(&self.root, &self.home(), None, &["--git-dir", dir.to_str().unwrap(), "rev-parse", "refs/heads/main"])
            .await
            .ok()
            .stdout_line()
    }

    /// `ssh git@127.0.0.1 COMMAND` as the holder of `key`.
    fn ssh(&self, key: &ClientKey) -> Ssh {
        self.server.ssh("git").identity(&key.path)
    }
}

/// What a finished git did.
struct GitOutput {
    args: String,
    output: Output,
}

impl GitOutput {
    fn ok(self) -> Self {
        assert!(self.output.status.success(), "git {} failed: {}", self.args, self.stderr());
        self
    }

    fn failed(self) -> Self {
        assert!(!self.output.status.success(), "git {} succeeded: {}", self.args, self.stderr());
        self
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn stdout_line(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).trim().to_owned()
    }
}

// ANCHOR: git_env
/// Runs `git ARGS` in `cwd`, hermetic: `HOME` is the fixture's empty home, no
/// system config, no prompts, a fixed author; with `ssh`, the transport is
/// OpenSSH with the harness's isolation options, batch mode and that key only.
async fn git(cwd: &Path, home: &Path, ssh: Option<(&ClientKey, u16)>, args: &[&str]) -> GitOutput {
    git_with(cwd, home, ssh, &[], args).await
}

/// [`git`] with extra `NAME=value` environment variables.
async fn git_with(cwd: &Path, home: &Path, ssh: Option<(&ClientKey, u16)>, env: &[&str], args: &[&str]) -> GitOutput {
    let mut command = tokio::process::Command::new("git");
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.invalid")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for variable in env {
        let (name, value) = variable.split_once('=').expect("NAME=value");
        command.env(name, value);
    }
    if let Some((key, port)) = ssh {
        let mut line = format!("ssh -F /dev/null -o Port={port} -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile='{}'", key.path.display());
        for option in ISOLATION {
            line.push_str(&format!(" -o {option}"));
        }
        command.env("GIT_SSH_COMMAND", line).env("GIT_SSH_VARIANT", "ssh");
    }
    // ANCHOR_END: git_env
    let joined = args.join(" ");
    let output = within(&format!("git {joined}"), command.output()).await.expect("running git (these tests drive the real git: apt-get install git)");
    GitOutput { args: joined, output }
}

#[tokio::test]
async fn clone_gets_the_seeded_bytes_and_commit_over_all_three_path_spellings() {
    let f = Fixture::start().await;
    // git sends '/project.git', '~/project.git' and 'project.git' for these.
    let urls = [
        ("one", f.url("project.git")),
        ("two", f.url("~/project.git")),
        ("three", "git@127.0.0.1:project.git".to_owned()),
    ];
    for (dest, url) in urls {
        f.git(f.dir.path(), &f.bob, &["clone", "-q", &url, dest]).await.ok();
        let clone = f.dir.path().join(dest);
        assert_eq!(std::fs::read(clone.join("data.bin")).unwrap(), seeded_bytes(), "{url}");
        let head = f.git(&clone, &f.bob, &["rev-parse", "HEAD"]).await.ok().stdout_line();
        assert_eq!(head, f.seeded, "{url}");
    }
    // And through protocol v0 as well as the default v2.
    f.git(f.dir.path(), &f.bob, &["-c", "protocol.version=0", "clone", "-q", &f.url("project.git"), "v0"]).await.ok();
    assert_eq!(std::fs::read(f.dir.path().join("v0/data.bin")).unwrap(), seeded_bytes());
    // v2 is what git asks for through GIT_PROTOCOL, which the server passes on.
    let traced = git_with(f.dir.path(), &f.home(), Some((&f.bob, f.server.port())), &["GIT_TRACE_PACKET=1"], &["ls-remote", &f.url("project.git")]).await.ok();
    assert!(traced.stderr().contains("< version 2"), "{}", traced.stderr());
    assert!(traced.stdout_line().starts_with(&f.seeded), "{}", traced.stdout_line());
}

#[tokio::test]
async fn push_by_a_writer_moves_the_servers_ref() {
    let f = Fixture::start().await;
    f.git(f.dir.path(), &f.alice, &["clone", "-q", &f.url("project.git"), "work"]).await.ok();
    let work = f.dir.path().join("work");
    std::fs::write(work.join("new.txt"), b"pushed by alice\n").unwrap();
    f.git(&work, &f.alice, &["add", "new.txt"]).await.ok();
    f.git(&work, &f.alice, &["commit", "-q", "-m", "alice's change"]).await.ok();
    let pushed = f.git(&work, &f.alice, &["rev-parse", "HEAD"]).await.ok().stdout_line();
    assert_ne!(pushed, f.seeded);

    f.git(&work, &f.alice, &["push", "-q", "origin", "main"]).await.ok();
    assert_eq!(f.server_main("project.git").await, pushed);

    // A fresh clone by a reader sees the new commit and file.
    f.git(f.dir.path(), &f.bob, &["clone", "-q", &f.url("project.git"), "again"]).await.ok();
    assert_eq!(std::fs::read(f.dir.path().join("again/new.txt")).unwrap(), b"pushed by alice\n");
}

// ANCHOR: refused_push
#[tokio::test]
async fn push_by_a_reader_is_refused_with_the_reason_and_the_ref_stays() {
    let f = Fixture::start().await;
    f.git(f.dir.path(), &f.bob, &["clone", "-q", &f.url("project.git"), "work"]).await.ok();
    let work = f.dir.path().join("work");
    std::fs::write(work.join("new.txt"), b"bob tries\n").unwrap();
    f.git(&work, &f.bob, &["add", "new.txt"]).await.ok();
    f.git(&work, &f.bob, &["commit", "-q", "-m", "bob's change"]).await.ok();

    let push = f.git(&work, &f.bob, &["push", "origin", "main"]).await.failed();
    assert!(push.stderr().contains("bob has no write access to project.git"), "{}", push.stderr());
    assert_eq!(f.server_main("project.git").await, f.seeded);

    // The same refusal seen by ssh: exit code 128, one line on stderr, nothing on stdout.
    let out = f.ssh(&f.bob).run("git-receive-pack '/project.git'").await;
    assert_eq!(out.code, Some(128), "{out:?}");
    assert_eq!(out.stderr.lines().filter(|l| !l.starts_with("Warning:")).collect::<Vec<_>>(), ["bob has no write access to project.git"]);
    assert!(out.stdout.is_empty(), "{out:?}");
}
// ANCHOR_END: refused_push

#[tokio::test]
async fn clone_of_a_repository_the_user_cannot_read_is_refused() {
    let f = Fixture::start().await;
    let clone = f.git(f.dir.path(), &f.bob, &["clone", &f.url("secret.git"), "secret"]).await.failed();
    assert!(clone.stderr().contains("bob has no read access to secret.git"), "{}", clone.stderr());
    assert!(!f.dir.path().join("secret").exists(), "git left a directory behind");
    // Not in the access file at all: the same answer, whether it exists or not.
    let clone = f.git(f.dir.path(), &f.bob, &["clone", &f.url("nothing-here.git"), "nothing"]).await.failed();
    assert!(clone.stderr().contains("bob has no read access to nothing-here.git"), "{}", clone.stderr());
    // alice may: the refusal above was about bob.
    f.git(f.dir.path(), &f.alice, &["clone", "-q", &f.url("secret.git"), "secret"]).await.ok();
}

#[tokio::test]
async fn path_traversal_and_symlinks_out_of_the_root_are_refused() {
    let f = Fixture::start().await;
    for (url, dest) in [
        (f.url("../etc.git"), "a"),
        (f.url("~/../project.git"), "b"),
        ("git@127.0.0.1:../x.git".to_owned(), "c"),
        ("git@127.0.0.1:/project.git/../secret.git".to_owned(), "d"),
    ] {
        let clone = f.git(f.dir.path(), &f.alice, &["clone", &url, dest]).await.failed();
        assert!(clone.stderr().contains("invalid repository path"), "{url}: {}", clone.stderr());
    }
    // Raw commands, quoted as git quotes them or not at all: exit 128 each time.
    for command in [
        "git-upload-pack '../x.git'",
        "git-upload-pack '/etc/passwd'",
        "git-upload-pack --help",
        "git-upload-pack 'project.git' 'secret.git'",
        "git-upload-pack",
    ] {
        let out = f.ssh(&f.alice).run(command).await;
        assert_eq!(out.code, Some(128), "{command}: {out:?}");
    }
    // link.git names a repository outside the root: alice may read link.git,
    // but it does not resolve inside the root, so it does not exist.
    let clone = f.git(f.dir.path(), &f.alice, &["clone", &f.url("link.git"), "link"]).await.failed();
    assert!(clone.stderr().contains("repository link.git not found"), "{}", clone.stderr());
}

#[tokio::test]
async fn ssh_without_a_command_greets_and_exits_1_with_or_without_a_pty() {
    let f = Fixture::start().await;
    let greeting = "Hi alice! You've successfully authenticated, but this server does not provide shell access.";
    let out = f.ssh(&f.alice).run("").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(greeting), "{out:?}");
    let out = f.ssh(&f.alice).tty().run("").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(greeting) || out.stdout_text().contains(greeting), "{out:?}");
    // Any other command: 127 and the list of what runs.
    let out = f.ssh(&f.bob).run("ls -la").await;
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(out.stderr.contains("Hi bob! This server runs git-upload-pack"), "{out:?}");
}

#[tokio::test]
async fn only_listed_keys_log_in_and_passwords_are_never_asked() {
    let f = Fixture::start().await;
    let out = f.ssh(&f.carol).run("").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("Permission denied (publickey)"), "{out:?}");
    let clone = f.git(f.dir.path(), &f.carol, &["clone", &f.url("project.git"), "carol"]).await.failed();
    assert!(clone.stderr().contains("Permission denied (publickey)"), "{}", clone.stderr());
    // A listed key under another login name than `git`.
    let out = f.server.ssh("alice").identity(&f.alice.path).run("").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    // Password only: the server offers no password method at all.
    let out = f.server.ssh("git").password("anything").run("").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("Permission denied (publickey)"), "{out:?}");
}

#[tokio::test]
async fn archive_needs_read_and_gives_the_seeded_file() {
    let f = Fixture::start().await;
    let url = f.url("project.git");
    let out = f.git(f.dir.path(), &f.bob, &["archive", "--format=tar", "--remote", &url, "main", "data.bin", "-o", "a.tar"]).await.ok();
    drop(out);
    let tar = std::fs::read(f.dir.path().join("a.tar")).unwrap();
    // A tar holds the file's bytes uncompressed, after a 512-byte header (and git's pax header).
    let bytes = seeded_bytes();
    assert!(tar.windows(bytes.len()).any(|w| w == bytes.as_slice()), "the archive does not hold data.bin");
    let refused = f
        .git(f.dir.path(), &f.bob, &["archive", "--remote", &f.url("secret.git"), "main", "-o", "b.tar"])
        .await
        .failed();
    assert!(refused.stderr().contains("bob has no read access to secret.git"), "{}", refused.stderr());
}

/// The pids of `git upload-pack` processes serving a repository under `root`,
/// not counting zombies (exited, not yet reaped).
fn upload_packs_under(root: &Path) -> Vec<u32> {
    let root = std::fs::canonicalize(root).unwrap();
    let needle = root.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')));
        if cmdline.contains("upload-pack") && cmdline.contains(&needle) && !zombie {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test]
async fn git_does_not_outlive_a_client_that_goes_away() {
    use tokio::io::AsyncReadExt;
    let f = Fixture::start().await;
    let ssh = f.ssh(&f.bob);
    // Protocol v0 (no GIT_PROTOCOL sent): upload-pack advertises its refs, then waits for the client's wants.
    let mut command = ssh.command("git-upload-pack 'project.git'");
    command.stdin(std::process::Stdio::piped());
    let mut client = command.spawn().expect("starting ssh");
    let mut stdout = client.stdout.take().unwrap();
    let mut advertised = Vec::new();
    within("the ref advertisement", async {
        while !String::from_utf8_lossy(&advertised).contains(&f.seeded) {
            let mut chunk = [0u8; 4096];
            let n = stdout.read(&mut chunk).await.expect("reading ssh's stdout");
            assert!(n > 0, "ssh ended before the advertisement: {}", String::from_utf8_lossy(&advertised));
            advertised.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    let running = upload_packs_under(&f.root);
    assert_eq!(running.len(), 1, "one git upload-pack while the client waits: {running:?}");

    client.kill().await.expect("killing ssh");
    // /proc is polled: another process's exit is no event this process can await.
    let started = std::time::Instant::now();
    within("git upload-pack to end after its client went away", async {
        while !upload_packs_under(&f.root).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let gone = started.elapsed();
    eprintln!("git upload-pack gone {gone:?} after the client was killed");
    assert!(gone < std::time::Duration::from_secs(5), "git ran on for {gone:?} after its client went away");
}
