//! The dashboard driven as its users drive it: OpenSSH's `ssh -tt` inside a
//! detached `tmux` session (a real terminal emulator), keys sent with
//! `send-keys`, the screen read with `capture-pane`, the terminal resized
//! with `resize-window`. Every wait polls the screen until a deadline.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use example_tui::{Dashboard, TITLE};
use ssh_framework::authorized_keys::AuthorizedKeys;
use ssh_framework_tests::openssh::{ClientKey, Ssh, keygen};
use ssh_framework_tests::server::TestServer;
use tokio::time::Instant;

/// How long the screen may take to show what a test waits for.
const SCREEN_DEADLINE: Duration = Duration::from_secs(20);
const PASSWORD: &str = "demo-password";

/// A tmux server of its own (its socket in a temp dir), killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `command` (run by `sh -c`) in a detached session of `cols` x `rows`.
    fn start(dir: &Path, command: &str, cols: u16, rows: u16) -> Tmux {
        let tmux = Tmux { socket: dir.join("tmux.sock") };
        let (cols, rows) = (cols.to_string(), rows.to_string());
        tmux.run(&["new-session", "-d", "-x", &cols, "-y", &rows, command]);
        tmux
    }

    /// Runs one tmux command against this server; fails the test if tmux does.
    fn run(&self, args: &[&str]) -> Output {
        let output = std::process::Command::new("tmux")
            .args(["-u", "-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("tmux runs (install it with: apt-get install tmux)");
        assert!(output.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        output
    }

    /// The visible screen, one string per row (trailing blanks trimmed by tmux).
    fn screen(&self) -> Vec<String> {
        let out = self.run(&["capture-pane", "-p"]);
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }

    /// A tmux format evaluated on the pane, such as `#{alternate_on}`.
    fn format(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Polls the screen until `done` holds, failing with `what` and the last
    /// screen after [`SCREEN_DEADLINE`].
    async fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + SCREEN_DEADLINE;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{}", screen.join("\n"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Always, also when the test failed: ends ssh and the session.
        let _ = std::process::Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

/// The dashboard on a free port, letting in `demo` by password and `key` by key.
async fn dashboard(key: &ClientKey) -> TestServer {
    let line = std::fs::read_to_string(key.public_file()).expect("the public key");
    let keys = AuthorizedKeys::parse(&line).expect("ssh-keygen's line parses");
    TestServer::start(|builder| builder.handlers(Dashboard::new("demo", PASSWORD, &keys))).await
}

/// `ssh -tt` to the dashboard with `key`, then the exit status on the normal screen.
fn ssh_command(server: &TestServer, key: &ClientKey) -> String {
    let ssh = Ssh::new(server.port(), "demo").tty().identity(&key.path).command("");
    let std = ssh.as_std();
    let argv: Vec<String> = std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|a| a.to_str().expect("UTF-8 arguments").to_owned())
        .collect();
    // `exec cat` keeps the pane open (and its screen readable) after ssh exits.
    format!("{}; echo \"ssh exited with $?\"; exec cat", shell_words::join(argv))
}

/// The row showing the selected view (`>> ` is the list's highlight symbol).
fn selected(screen: &[String]) -> Option<String> {
    screen.iter().find_map(|row| row.split_once(">> ").map(|(_, rest)| rest.split('│').next().unwrap_or("").trim().to_owned()))
}

fn width(row: &str) -> usize {
    row.chars().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_redraws_on_resize_moves_with_arrows_and_quits_restoring_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_ed25519").await;
    let server = dashboard(&key).await;
    let tmux = Tmux::start(dir.path(), &ssh_command(&server, &key), 80, 24);

    // The title, in a header as wide as the 80-column terminal.
    let screen = tmux.wait_for("the title", |s| s.first().is_some_and(|row| row.contains(TITLE))).await;
    assert_eq!(width(&screen[0]), 80, "{}", screen.join("\n"));
    assert!(screen[0].ends_with('┐'), "{}", screen[0]);
    assert_eq!(tmux.format("#{alternate_on} #{cursor_flag}"), "1 0", "alternate screen on, cursor hidden");
    assert!(screen.iter().any(|row| row.contains("demo") && row.contains("127.0.0.1:")), "the session is listed");

    // A resize reaches the app as a window-change; it redraws at the new width.
    tmux.run(&["resize-window", "-x", "120", "-y", "40"]);
    let screen = tmux
        .wait_for("a redraw at 120x40", |s| s.first().is_some_and(|row| width(row) == 120) && s.len() == 40)
        .await;
    assert!(screen[0].ends_with('┐') && screen[0].contains(TITLE), "the border is at column 119: {}", screen[0]);
    assert!(screen.iter().any(|row| row.contains("your screen 120x40")), "{}", screen.join("\n"));
    assert!(screen[39].contains("q or Ctrl-C: quit"), "the help line is on the last row: {}", screen[39]);

    // Arrow keys and j / k move the selection.
    assert_eq!(selected(&screen).as_deref(), Some("Sessions"));
    for (key, view) in [("Down", "Server"), ("j", "This session"), ("Down", "Help"), ("Up", "This session"), ("k", "Server")] {
        tmux.keys(&[key]);
        tmux.wait_for(&format!("{view} selected after {key}"), |s| selected(s).as_deref() == Some(view)).await;
    }

    // q quits: ssh exits 0 and the terminal is back on the normal screen with its cursor.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("ssh to exit", |s| s.iter().any(|row| row.starts_with("ssh exited with"))).await;
    assert!(screen.iter().any(|row| row == "ssh exited with 0"), "{}", screen.join("\n"));
    assert!(!screen.iter().any(|row| row.contains(TITLE)), "the dashboard is gone: {}", screen.join("\n"));
    assert_eq!(tmux.format("#{alternate_on} #{cursor_flag}"), "0 1", "normal screen, cursor shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_arrives_as_a_byte_and_quits_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_ed25519").await;
    let server = dashboard(&key).await;
    let tmux = Tmux::start(dir.path(), &ssh_command(&server, &key), 80, 24);
    tmux.wait_for("the title", |s| s.iter().any(|row| row.contains(TITLE))).await;

    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("ssh to exit", |s| s.iter().any(|row| row.starts_with("ssh exited with"))).await;
    assert!(screen.iter().any(|row| row == "ssh exited with 0"), "{}", screen.join("\n"));
    assert!(!screen.iter().any(|row| row.contains(TITLE)), "the dashboard is gone: {}", screen.join("\n"));
    assert_eq!(tmux.format("#{alternate_on} #{cursor_flag}"), "0 1", "normal screen, cursor shown");
}

#[tokio::test]
async fn a_shell_without_a_pty_gets_a_message_and_exit_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id_ed25519").await;
    let server = dashboard(&key).await;
    // `ssh -T` with no command: a shell without a pty, logged in by password.
    let out = Ssh::new(server.port(), "demo").password(PASSWORD).run("").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("this app needs a terminal: connect with `ssh -t`"), "{out:?}");
    assert!(out.stdout.is_empty(), "nothing drawn: {out:?}");
}

#[tokio::test]
async fn a_key_missing_from_authorized_keys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = keygen(dir.path(), "allowed").await;
    let other = keygen(dir.path(), "other").await;
    let server = dashboard(&allowed).await;
    let out = Ssh::new(server.port(), "demo").identity(&other.path).option("PreferredAuthentications=publickey").run("").await;
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("Permission denied (publickey"), "{out:?}");
}
