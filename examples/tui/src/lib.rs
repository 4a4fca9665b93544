//! A full-screen terminal app over SSH: a live dashboard of the server drawn
//! with `ratatui` on the session's pty. Every connected session is listed
//! with its user, address, age and the keys it pressed; a menu on the left
//! (arrow keys or `j` / `k`) picks what the right side shows; `q` or Ctrl-C
//! quits and gives the terminal back as it was.
//!
//! No terminal exists on the server: the size comes from the client's
//! `pty-req` and `window-change` requests, keys arrive as bytes on stdin, and
//! what ratatui draws is collected in memory ([`SshBackend`]) and written to
//! the channel's stdout once per frame.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize as BackendWindowSize};
use ratatui::buffer::Cell;
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout, Position, Size};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, List, ListState, Paragraph};
use ssh_framework::authorized_keys::AuthorizedKeys;
use ssh_framework::extract::{PeerAddr, Pty, User};
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelEvent, ChannelIo, ExitStatus, PtyRequest, WindowSize};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The title drawn at the top of the screen.
pub const TITLE: &str = "ssh-framework dashboard";

/// The largest screen drawn, in columns and rows: ratatui keeps two buffers
/// of one cell per position, so a client announcing a 60,000-column terminal
/// must not make the server allocate for it. A larger terminal shows the
/// dashboard in its top-left corner.
pub const MAX_SIZE: Size = Size { width: 400, height: 200 };

/// How often the screen is redrawn when nothing happens (the clock and the
/// session list change on their own).
const TICK: Duration = Duration::from_secs(1);

// ANCHOR: state
/// The application: its logins and what every session shares. One value
/// serves every connection (handlers take `&self`).
pub struct Dashboard {
    user: String,
    password: String,
    keys: Vec<PublicKey>,
    started: Instant,
    next_session: AtomicU64,
    sessions: Mutex<BTreeMap<u64, SessionInfo>>,
}

/// One open dashboard, as the others see it.
#[derive(Debug, Clone)]
struct SessionInfo {
    user: String,
    peer: Option<SocketAddr>,
    opened: Instant,
    keys: u64,
}
// ANCHOR_END: state

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard").field("user", &self.user).field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

impl Dashboard {
    /// A dashboard that lets `user` in with `password`, and anyone whose key
    /// is one of `keys` (an `authorized_keys` file already read). Lines with
    /// options (`from=`, `restrict`, ...) or `cert-authority` are left out
    /// with a warning: this app does not enforce them, so it must not accept
    /// their keys as if they had none.
    pub fn new(user: impl Into<String>, password: impl Into<String>, keys: &AuthorizedKeys) -> Self {
        for error in keys.errors() {
            tracing::warn!(line = error.line(), ?error, "authorized_keys: line skipped");
        }
        let keys = keys
            .entries()
            .iter()
            .filter(|entry| {
                let plain = entry.options == Default::default();
                if !plain {
                    tracing::warn!(line = entry.line, "authorized_keys: line with options skipped (not enforced by this app)");
                }
                plain
            })
            .map(|entry| entry.key.clone())
            .collect();
        Dashboard {
            user: user.into(),
            password: password.into(),
            keys,
            started: Instant::now(),
            next_session: AtomicU64::new(0),
            sessions: Mutex::new(BTreeMap::new()),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, BTreeMap<u64, SessionInfo>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists a session until the returned guard is dropped, however the body ends.
    fn open(&self, user: &str, peer: Option<SocketAddr>) -> Listed<'_> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let info = SessionInfo { user: user.to_owned(), peer, opened: Instant::now(), keys: 0 };
        self.sessions().insert(id, info);
        Listed { dashboard: self, id }
    }
}

/// Removes a session from the list when dropped.
struct Listed<'a> {
    dashboard: &'a Dashboard,
    id: u64,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.dashboard.sessions().remove(&self.id);
    }
}

#[ssh_framework::server]
impl Dashboard {
    // ANCHOR: auth
    /// The demo user's password, compared in constant time.
    #[auth(password)]
    async fn password(&self, user: &str, password: &str) -> Auth {
        let user_ok = user.as_bytes().ct_eq(self.user.as_bytes());
        let password_ok = password.as_bytes().ct_eq(self.password.as_bytes());
        Auth::from_bool((user_ok & password_ok).into())
    }

    /// Any user name, with a key listed in the authorized_keys file.
    #[auth(publickey)]
    async fn key(&self, _user: &str, key: &PublicKey) -> Auth {
        Auth::from_bool(self.keys.iter().any(|allowed| allowed.key_data() == key.key_data()))
    }
    // ANCHOR_END: auth

    #[channel(session)]
    async fn session(&self) -> bool {
        true
    }

    // ANCHOR: pty
    /// Without this handler every `pty-req` is refused and the shell below
    /// would never see a terminal. The size is bounded when drawing (`MAX_SIZE`).
    #[pty]
    async fn pty(&self, pty: &PtyRequest) -> bool {
        tracing::debug!(term = %pty.term, cols = pty.size.cols, rows = pty.size.rows, "pty allowed");
        true
    }
    // ANCHOR_END: pty

    // ANCHOR: window_change
    /// Without this handler resizes are refused and never reach the body.
    #[window_change]
    async fn resize(&self, _size: WindowSize) -> bool {
        true
    }
    // ANCHOR_END: window_change

    // ANCHOR: shell
    /// The dashboard, on a pty only: `Pty` is `None` when the client asked for none.
    #[shell]
    async fn shell(&self, user: User, Pty(pty): Pty, PeerAddr(peer): PeerAddr, mut io: ChannelIo) -> ExitStatus {
        let Some(pty) = pty else {
            let _ = io.stderr.write_all(b"this app needs a terminal: connect with `ssh -t`\n").await;
            return ExitStatus::FAILURE;
        };
        let listed = self.open(&user, peer);
        tracing::info!(%user, term = %pty.term, cols = pty.size.cols, rows = pty.size.rows, "dashboard opened");
        match run(self, listed.id, pty.size, &mut io).await {
            Ok(()) => {
                tracing::info!(%user, "dashboard closed");
                ExitStatus::SUCCESS
            }
            Err(e) => {
                tracing::info!(%user, error = %e, "dashboard ended: the client is gone");
                ExitStatus::FAILURE
            }
        }
    }
    // ANCHOR_END: shell
}

// ANCHOR: keys
/// What a key press means to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Arrow up or `k`.
    Up,
    /// Arrow down or `j`.
    Down,
    /// `q` or Ctrl-C (byte 0x03: on a pty, Ctrl-C is a byte, not a signal).
    Quit,
    /// Anything else.
    Other,
}

/// Turns the bytes of stdin into [`Key`]s. An arrow key is three bytes
/// (`ESC [ A`, or `ESC O A` in application mode) that may arrive split
/// across reads, so the parser keeps its state between calls; it stores no
/// bytes, so a flood of input costs no memory.
#[derive(Debug, Default)]
pub struct KeyParser {
    state: ParseState,
}

#[derive(Debug, Default, Clone, Copy)]
enum ParseState {
    #[default]
    Ground,
    /// After ESC.
    Escape,
    /// After `ESC [` or `ESC O`, before the final byte.
    Sequence,
}

impl KeyParser {
    /// The keys in `bytes`, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut keys = Vec::new();
        for &byte in bytes {
            self.state = match (self.state, byte) {
                (ParseState::Ground, 0x1b) => ParseState::Escape,
                (ParseState::Ground, byte) => {
                    keys.push(match byte {
                        b'q' | 0x03 => Key::Quit,
                        b'k' => Key::Up,
                        b'j' => Key::Down,
                        _ => Key::Other,
                    });
                    ParseState::Ground
                }
                (ParseState::Escape, b'[' | b'O') => ParseState::Sequence,
                (ParseState::Escape, 0x1b) => ParseState::Escape,
                (ParseState::Escape, _) => {
                    keys.push(Key::Other); // Alt + a key
                    ParseState::Ground
                }
                // Parameters and intermediates (`ESC [ 1 ; 5 A` is Ctrl-Up).
                (ParseState::Sequence, 0x20..=0x3f) => ParseState::Sequence,
                (ParseState::Sequence, byte) => {
                    keys.push(match byte {
                        b'A' => Key::Up,
                        b'B' => Key::Down,
                        _ => Key::Other,
                    });
                    ParseState::Ground
                }
            };
        }
        keys
    }
}
// ANCHOR_END: keys

// ANCHOR: backend
/// A ratatui backend for a terminal at the other end of an SSH channel.
///
/// ratatui's `CrosstermBackend` writes the right escape sequences, but asks
/// the *local* terminal for its size and cursor position, and a server has
/// none (or worse, the one it was started from). This backend keeps the size
/// the client announced, lets `CrosstermBackend` encode into a buffer, and
/// hands the bytes over with [`take_output`](SshBackend::take_output).
#[derive(Debug)]
pub struct SshBackend {
    output: Vec<u8>,
    size: Size,
    cursor: Position,
}

impl SshBackend {
    /// A backend for a terminal of `size` (from the pty request).
    pub fn new(size: WindowSize) -> Self {
        SshBackend { output: Vec::new(), size: screen_size(size), cursor: Position::ORIGIN }
    }

    /// Records a new size (from a window-change); the next draw redraws everything at it.
    pub fn resize(&mut self, size: WindowSize) {
        self.size = screen_size(size);
    }

    /// Switches to the alternate screen and hides the cursor.
    pub fn enter(&mut self) -> io::Result<()> {
        execute!(self.output, terminal::EnterAlternateScreen, cursor::Hide, terminal::Clear(terminal::ClearType::All))
    }

    /// Clears the screen, shows the cursor and leaves the alternate screen:
    /// the terminal is as before `enter`. Clearing first matters on
    /// terminals without an alternate screen, and on tmux after a resize
    /// (which can carry the alternate screen's rows into the normal one).
    pub fn leave(&mut self) -> io::Result<()> {
        execute!(
            self.output,
            terminal::Clear(terminal::ClearType::All),
            cursor::MoveTo(0, 0),
            cursor::Show,
            terminal::LeaveAlternateScreen
        )
    }

    /// The bytes written since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// `CrosstermBackend` over the buffer, for one call.
    fn crossterm(&mut self) -> CrosstermBackend<&mut Vec<u8>> {
        CrosstermBackend::new(&mut self.output)
    }
}

/// The size drawn for a pty size: 80x24 when the client sent none (0), at most [`MAX_SIZE`].
fn screen_size(size: WindowSize) -> Size {
    let bound = |value: u32, default: u16, max: u16| match value {
        0 => default,
        value => u16::try_from(value).unwrap_or(max).min(max),
    };
    Size { width: bound(size.cols, 80, MAX_SIZE.width), height: bound(size.rows, 24, MAX_SIZE.height) }
}

impl Backend for SshBackend {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.crossterm().draw(content)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.crossterm().hide_cursor()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.crossterm().show_cursor()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(self.cursor)
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let position = position.into();
        self.cursor = position;
        self.crossterm().set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.crossterm().clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.crossterm().clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        Ok(self.size)
    }

    fn window_size(&mut self) -> io::Result<BackendWindowSize> {
        Ok(BackendWindowSize { columns_rows: self.size, pixels: Size::default() })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // the event loop writes the frame to the channel
    }
}
// ANCHOR_END: backend

/// The menu on the left: what the right side shows.
const VIEWS: [&str; 4] = ["Sessions", "Server", "This session", "Help"];

/// One session's screen state.
#[derive(Debug)]
struct Screen {
    id: u64,
    selected: usize,
    size: WindowSize,
}

// ANCHOR: event_loop
/// Runs one dashboard until the user quits (`Ok`) or the client goes away (`Err`).
async fn run(dashboard: &Dashboard, id: u64, size: WindowSize, io: &mut ChannelIo) -> io::Result<()> {
    let mut terminal = Terminal::new(SshBackend::new(size))?;
    terminal.backend_mut().enter()?;
    let mut screen = Screen { id, selected: 0, size };
    let mut keys = KeyParser::default();
    let mut input = [0u8; 1024];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        terminal.draw(|frame| draw(frame, dashboard, &screen))?;
        let frame = terminal.backend_mut().take_output();
        io.stdout.write_all(&frame).await?;
        tokio::select! {
            read = io.stdin.read(&mut input) => {
                let n = read?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into()); // the client sent EOF
                }
                let pressed = keys.feed(&input[..n]);
                if let Some(info) = dashboard.sessions().get_mut(&id) {
                    info.keys += pressed.len() as u64;
                }
                for key in pressed {
                    match key {
                        Key::Up => screen.selected = screen.selected.saturating_sub(1),
                        Key::Down => screen.selected = (screen.selected + 1).min(VIEWS.len() - 1),
                        Key::Quit => return quit(&mut terminal, io).await,
                        Key::Other => {}
                    }
                }
            }
            event = io.events.recv() => match event {
                Some(ChannelEvent::WindowChange(size)) => {
                    screen.size = size;
                    // The next draw sees the new size, clears and redraws all.
                    terminal.backend_mut().resize(size);
                }
                Some(_) => {}
                None => return Err(io::ErrorKind::BrokenPipe.into()),
            },
            _ = tick.tick() => {}
        }
    }
}

/// Gives the terminal back: cursor shown, alternate screen left.
async fn quit(terminal: &mut Terminal<SshBackend>, io: &mut ChannelIo) -> io::Result<()> {
    terminal.backend_mut().leave()?;
    let restore = terminal.backend_mut().take_output();
    io.stdout.write_all(&restore).await
}
// ANCHOR_END: event_loop

// ANCHOR: draw
/// Draws one frame: a header, the menu and the selected view, a help line.
fn draw(frame: &mut ratatui::Frame<'_>, dashboard: &Dashboard, screen: &Screen) {
    let [header, body, help] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0), Constraint::Length(1)]).areas(frame.area());
    let [menu, view] = Layout::horizontal([Constraint::Length(20), Constraint::Min(0)]).areas(body);

    let sessions = dashboard.sessions().clone();
    let summary = format!(
        "up {}   {} session(s) open   your screen {}x{}",
        clock(dashboard.started.elapsed()),
        sessions.len(),
        screen.size.cols,
        screen.size.rows,
    );
    frame.render_widget(Paragraph::new(summary).block(Block::bordered().title(format!(" {TITLE} "))), header);

    let mut state = ListState::default().with_selected(Some(screen.selected));
    let list = List::new(VIEWS)
        .block(Block::bordered().title(" View "))
        .highlight_symbol(">> ")
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    frame.render_stateful_widget(list, menu, &mut state);

    let lines: Vec<Line<'_>> = match VIEWS[screen.selected] {
        "Sessions" => sessions
            .values()
            .map(|s| {
                let peer = s.peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
                format!("{:<16} {:<22} {:>9}  {} keys", s.user, peer, clock(s.opened.elapsed()), s.keys).into()
            })
            .collect(),
        "Server" => vec![
            format!("uptime          {}", clock(dashboard.started.elapsed())).into(),
            format!("sessions open   {}", sessions.len()).into(),
            format!("sessions ever   {}", dashboard.next_session.load(Ordering::Relaxed)).into(),
        ],
        "This session" => {
            let me = sessions.get(&screen.id);
            vec![
                format!("user            {}", me.map_or("?", |s| s.user.as_str())).into(),
                format!("open for        {}", me.map_or_else(|| "?".to_owned(), |s| clock(s.opened.elapsed()))).into(),
                format!("keys pressed    {}", me.map_or(0, |s| s.keys)).into(),
                format!("terminal        {}x{}", screen.size.cols, screen.size.rows).into(),
            ]
        }
        _ => vec![
            "Everything here is drawn by the server with ratatui,".into(),
            "sent over the SSH channel, and redrawn when you resize.".into(),
        ],
    };
    let title = format!(" {} ", VIEWS[screen.selected]);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), view);

    frame.render_widget(Line::from(" Up/Down or j/k: choose a view   q or Ctrl-C: quit"), help);
}
// ANCHOR_END: draw

/// `h:mm:ss`.
fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_keys_split_across_reads_are_one_key() {
        let mut parser = KeyParser::default();
        assert_eq!(parser.feed(b"\x1b"), vec![]);
        assert_eq!(parser.feed(b"["), vec![]);
        assert_eq!(parser.feed(b"B"), vec![Key::Down]);
        assert_eq!(parser.feed(b"\x1bOA\x1b[1;5Bjkq\x03x"), vec![
            Key::Up,
            Key::Down,
            Key::Down,
            Key::Up,
            Key::Quit,
            Key::Quit,
            Key::Other
        ]);
    }

    #[test]
    fn pty_sizes_are_bounded_and_zero_means_80x24() {
        let size = |cols, rows| WindowSize { cols, rows, pix_width: 0, pix_height: 0 };
        assert_eq!(screen_size(size(0, 0)), Size { width: 80, height: 24 });
        assert_eq!(screen_size(size(u32::MAX, 100_000)), MAX_SIZE);
        assert_eq!(screen_size(size(120, 40)), Size { width: 120, height: 40 });
    }

    #[test]
    fn a_frame_draws_the_title_at_the_announced_width() {
        let dashboard = Dashboard::new("demo", "pw", &AuthorizedKeys::default());
        let listed = dashboard.open("demo", None);
        let size = WindowSize { cols: 120, rows: 40, pix_width: 0, pix_height: 0 };
        let mut terminal = Terminal::new(SshBackend::new(size)).unwrap();
        let screen = Screen { id: listed.id, selected: 0, size };
        let frame = terminal.draw(|frame| draw(frame, &dashboard, &screen)).unwrap();
        assert_eq!(frame.area.width, 120);
        let top: String = (0..120).map(|x| frame.buffer[(x, 0)].symbol()).collect();
        assert!(top.contains(TITLE) && top.ends_with('┐'), "{top}");
        let out = terminal.backend_mut().take_output();
        assert!(String::from_utf8_lossy(&out).contains("dashboard"));
    }
}
