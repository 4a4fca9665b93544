//! A chat room over SSH: everyone who logs in with a terminal talks to
//! everyone else. The handler type holds the room (who is in it, the last
//! lines said), each session runs a line editor on its pty, and every line
//! goes to every session through one bounded broadcast that a slow client
//! cannot stall. The chat name is the user name the login proved.
//!
//! | module | holds |
//! |---|---|
//! | [`room`] | the members, the history and the broadcast |
//! | [`editor`] | the line editor: bytes from a raw terminal to edits and actions |
//! | [`text`] | the escaping of what other users typed |
//! | here | logins, the handlers and the session loop |

pub mod editor;
pub mod room;
pub mod text;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use ssh_framework::extract::{Pty, User};
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelEvent, ChannelIo, ExitStatus, PtyRequest, WindowSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::editor::{Action, LineEditor};
use crate::room::{Line, Membership, Room, Said};
use crate::text::{display_name, escape};

/// The room's limits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lines shown to whoever joins (default 20).
    pub history: usize,
    /// Lines a session may fall behind before it loses the oldest (default 256).
    pub queue: usize,
    /// The longest line a user may type, in characters (default 500).
    pub max_line: usize,
    /// Lines a user may say at once (default 5) ...
    pub burst: u32,
    /// ... and then one more every `refill` (default 1 s).
    pub refill: Duration,
    /// Names are shown cut to this many characters (default 24).
    pub max_name: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            history: 20,
            queue: 256,
            max_line: 500,
            burst: 5,
            refill: Duration::from_secs(1),
            max_name: 24,
        }
    }
}

/// Who may log in: users with a password, users with public keys.
#[derive(Debug, Default)]
pub struct Users {
    passwords: HashMap<String, String>,
    keys: HashMap<String, Vec<PublicKey>>,
}

impl Users {
    /// No users.
    pub fn new() -> Self {
        Users::default()
    }

    /// Lets `name` log in with `password`.
    pub fn password(mut self, name: &str, password: &str) -> Self {
        self.passwords.insert(name.to_owned(), password.to_owned());
        self
    }

    /// Lets `name` log in with `key`.
    pub fn key(mut self, name: &str, key: PublicKey) -> Self {
        self.keys.entry(name.to_owned()).or_default().push(key);
        self
    }

    /// Lets `name` log in with the keys of an OpenSSH `authorized_keys` file
    /// (options and bad lines are skipped with a warning).
    pub fn authorized_keys(mut self, name: &str, path: &std::path::Path) -> std::io::Result<Self> {
        let file = ssh_framework::authorized_keys::AuthorizedKeys::read(path)?;
        for error in file.errors() {
            tracing::warn!(file = %path.display(), line = error.line(), %error, "authorized_keys line skipped");
        }
        for entry in file.entries() {
            if entry.options != Default::default() {
                tracing::warn!(file = %path.display(), key = %entry.key.fingerprint(Default::default()), "authorized_keys options are not enforced by the chat; line skipped");
                continue;
            }
            self = self.key(name, entry.key.clone());
        }
        Ok(self)
    }

    /// The user names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.passwords.keys().chain(self.keys.keys()).map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Whether nobody may log in.
    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty() && self.keys.is_empty()
    }
}

// ANCHOR: state
/// The handler type: one value serves every connection, so the room it holds
/// is the one room everybody shares.
#[derive(Debug)]
pub struct Chat {
    users: Users,
    room: Arc<Room>,
}

impl Chat {
    /// A room for `users`, limited by `settings`.
    pub fn new(users: Users, settings: Settings) -> Self {
        Chat { users, room: Room::new(settings) }
    }
}
// ANCHOR_END: state

/// Compares secrets in constant time.
fn same_secret(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

#[ssh_framework::server]
impl Chat {
    // ANCHOR: login
    /// A password login; unknown users take the same steps and fail.
    #[auth(password)]
    async fn password(&self, user: &str, password: &str) -> Auth {
        let expected = self.users.passwords.get(user);
        let ok = same_secret(expected.map_or("", String::as_str), password) && expected.is_some();
        if !ok {
            tracing::info!(user, "password rejected");
        }
        Auth::from_bool(ok)
    }

    /// A key login: the key must be one of the user's (called after the client proved it holds it).
    #[auth(publickey)]
    async fn key(&self, user: &str, key: &PublicKey) -> Auth {
        let keys = self.users.keys.get(user).map_or(&[][..], Vec::as_slice);
        let ok = keys.iter().any(|allowed| allowed.key_data() == key.key_data());
        if !ok {
            tracing::info!(user, "key rejected");
        }
        Auth::from_bool(ok)
    }
    // ANCHOR_END: login

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    // ANCHOR: pty
    /// Any terminal of a sensible size.
    #[pty]
    async fn pty(&self, pty: &PtyRequest) -> bool {
        pty.size.cols <= 1000 && pty.size.rows <= 1000
    }

    /// Resizes reach the session as `ChannelEvent::WindowChange`.
    #[window_change]
    async fn resize(&self, size: WindowSize) -> bool {
        size.cols <= 1000 && size.rows <= 1000
    }

    /// The chat itself; without a pty there is no line editor to run.
    #[shell]
    async fn shell(&self, user: User, pty: Pty, mut io: ChannelIo) -> std::io::Result<ExitStatus> {
        let Pty(Some(pty)) = pty else {
            tracing::info!("shell without a pty refused");
            io.stderr.write_all(b"the chat needs a terminal: connect with `ssh -t`\n").await?;
            return Ok(ExitStatus::FAILURE);
        };
        let membership = self.room.join(&user);
        chat(&self.room, membership, pty.size.cols, io).await?;
        Ok(ExitStatus::SUCCESS)
    }
    // ANCHOR_END: pty
}

// ANCHOR: session
/// One session: waits for whichever comes first, a key from the client, a
/// line from the room or a resize, and answers it. Only this task writes to
/// the client, so when the client is slow only this task waits.
async fn chat(room: &Room, mut me: Membership, cols: u32, io: ChannelIo) -> std::io::Result<()> {
    let (mut stdin, mut stdout, _stderr, mut events) = io.split();
    let settings = room.settings();
    let mut screen = Screen::new(display_name(&me.name, settings.max_name), cols);
    let mut editor = LineEditor::new(settings.max_line);
    let mut out = String::from("Welcome to the chat. /who lists who is here, /me does, /quit (or Ctrl-D) leaves.\r\n");
    for line in std::mem::take(&mut me.history) {
        out.push_str(&render(&line, settings.max_name));
    }
    screen.prompt(&mut out, editor.line());
    stdout.write_all(out.as_bytes()).await?;
    let mut input = [0u8; 4096];
    loop {
        let mut out = String::new();
        tokio::select! {
            read = stdin.read(&mut input) => {
                let n = read?;
                if n == 0 {
                    break;
                }
                let mut leave = false;
                for action in editor.feed(&input[..n]) {
                    match action {
                        Action::Submit(text) => leave |= command(room, &me, &text, &mut screen, &mut out),
                        Action::Leave => leave = true,
                        Action::Full => out.push('\x07'),
                    }
                }
                if leave {
                    screen.above(&mut out, "Bye.");
                    stdout.write_all(out.as_bytes()).await?;
                    break;
                }
            }
            line = me.lines.recv() => {
                // Everything already waiting goes out in one write.
                let mut next = Some(line);
                let mut batch = 0;
                while let Some(line) = next.take() {
                    match line {
                        Ok(line) if line.session == me.session && line.said == Said::Joined => {}
                        Ok(line) => screen.above_raw(&mut out, &render(&line, settings.max_name)),
                        Err(RecvError::Lagged(n)) => screen.above(&mut out, &format!("[{n} messages dropped]")),
                        Err(RecvError::Closed) => return Ok(()),
                    }
                    batch += 1;
                    if batch < 64 {
                        next = match me.lines.try_recv() {
                            Ok(line) => Some(Ok(line)),
                            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                            Err(TryRecvError::Empty) => None,
                        };
                    }
                }
                if out.is_empty() {
                    continue;
                }
            }
            Some(event) = events.recv() => {
                if let ChannelEvent::WindowChange(size) = event {
                    screen.cols = Screen::width(size.cols);
                }
            }
        }
        screen.prompt(&mut out, editor.line());
        stdout.write_all(out.as_bytes()).await?;
    }
    Ok(())
}
// ANCHOR_END: session

/// Handles a submitted line: a command or a message. True when the session should end.
fn command(room: &Room, me: &Membership, text: &str, screen: &mut Screen, out: &mut String) -> bool {
    let said = match text.split_once(' ').unwrap_or((text, "")) {
        ("/quit", _) => return true,
        ("/who", _) => {
            let names: Vec<String> = room
                .who()
                .into_iter()
                .map(|(name, n)| {
                    let name = display_name(&name, room.settings().max_name);
                    if n > 1 { format!("{name} ({n})") } else { name }
                })
                .collect();
            screen.above(out, &format!("[in the room: {}]", names.join(", ")));
            return false;
        }
        ("/me", action) if !action.trim().is_empty() => Said::Action(action.trim().to_owned()),
        (word, _) if word.starts_with('/') => {
            screen.above(out, &format!("[unknown command {}: try /who, /me ACTION, /quit]", escape(word)));
            return false;
        }
        _ => Said::Message(text.to_owned()),
    };
    if let Err(slow) = room.say(me, said) {
        screen.above(out, &format!("[slow down: one more line in {:.1} s]", slow.wait.as_secs_f64()));
    }
    false
}

// ANCHOR: render
/// A line of the room as shown on a terminal: `\r\n` line ends, and names and
/// text escaped (a name comes from authentication, but nothing another user
/// chose reaches a terminal unescaped).
fn render(line: &Line, max_name: usize) -> String {
    let name = display_name(&line.name, max_name);
    match &line.said {
        Said::Message(text) => format!("{name}: {}\r\n", escape(text)),
        Said::Action(text) => format!("* {name} {}\r\n", escape(text)),
        Said::Joined => format!("*** {name} joined\r\n"),
        Said::Left => format!("*** {name} left\r\n"),
    }
}
// ANCHOR_END: render

// ANCHOR: screen
/// The bottom line of the terminal: the prompt and the line being typed.
/// Lines from the room are written over it and it is drawn again below them,
/// so what the user is typing is never lost.
#[derive(Debug)]
struct Screen {
    prompt: String,
    cols: u32,
}

impl Screen {
    fn new(name: String, cols: u32) -> Self {
        Screen { prompt: format!("{name}> "), cols: Self::width(cols) }
    }

    /// A client without a terminal of its own (`ssh -tt` from a script) asks for 0 columns: assume 80.
    fn width(cols: u32) -> u32 {
        if cols == 0 { 80 } else { cols }
    }

    /// Clears the prompt line (`\r`, then `ESC [ K`: erase to its end) and
    /// writes `text` (already escaped, ending in `\r\n`) in its place.
    fn above_raw(&self, out: &mut String, text: &str) {
        out.push_str("\r\x1b[K");
        out.push_str(text);
    }

    /// As `above_raw`, for a notice of our own.
    fn above(&self, out: &mut String, notice: &str) {
        self.above_raw(out, &format!("{notice}\r\n"));
    }

    /// Draws the prompt line. It never wraps: a line longer than the terminal
    /// is wide shows its end behind a `<`, so the cursor stays on this row.
    fn prompt(&self, out: &mut String, line: &[char]) {
        let typed = escape(&line.iter().collect::<String>());
        // The last column stays free: writing there makes some terminals wrap.
        let room = (self.cols as usize).saturating_sub(1 + self.prompt.chars().count()).max(8);
        let count = typed.chars().count();
        let _ = write!(out, "\r\x1b[K{}", self.prompt);
        if count <= room {
            out.push_str(&typed);
        } else {
            out.push('<');
            out.extend(typed.chars().skip(count - (room - 1)));
        }
    }
}
// ANCHOR_END: screen
