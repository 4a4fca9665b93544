//! Session channels of the test client: a shell, command or subsystem and what it wrote.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use russh::{Channel, ChannelMsg, client};
use tokio::time::Instant;

use super::{Error, ErrorKind, TestClient, within};
use crate::channel::{ExitStatus, Signal};

/// A session channel being set up; see [`TestClient::session`].
#[derive(Debug)]
#[must_use = "a session starts with shell, exec or subsystem"]
pub struct SessionBuilder<'a> {
    client: &'a TestClient,
    pty: Option<(u16, u16)>,
    term: String,
    env: Vec<(String, String)>,
}

impl<'a> SessionBuilder<'a> {
    pub(super) fn new(client: &'a TestClient) -> Self {
        SessionBuilder { client, pty: None, term: "xterm-256color".to_owned(), env: Vec::new() }
    }

    /// Asks for a `cols` x `rows` pty; the process's [`screen`](Process::screen) has that size.
    pub fn pty(mut self, cols: u16, rows: u16) -> Self {
        self.pty = Some((cols, rows));
        self
    }

    /// The `TERM` sent with the pty request (`xterm-256color` unless set).
    pub fn term(mut self, term: impl Into<String>) -> Self {
        self.term = term.into();
        self
    }

    /// Sends an `env` request (as `ssh -o SetEnv` does: without asking for a reply,
    /// so a refused variable is dropped silently, as with OpenSSH).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Starts a shell.
    pub async fn shell(self) -> Result<Process, Error> {
        let mut process = self.open().await?;
        process.request("shell", |c| Box::pin(async move { c.request_shell(true).await })).await?;
        Ok(process)
    }

    /// Runs `command`.
    pub async fn exec(self, command: &str) -> Result<Process, Error> {
        let mut process = self.open().await?;
        let command = command.to_owned();
        process.request("exec", |c| Box::pin(async move { c.exec(true, command).await })).await?;
        Ok(process)
    }

    /// Starts subsystem `name`.
    pub async fn subsystem(self, name: &str) -> Result<Process, Error> {
        let mut process = self.open().await?;
        let name = name.to_owned();
        process.request("subsystem", |c| Box::pin(async move { c.request_subsystem(true, name).await })).await?;
        Ok(process)
    }

    /// The raw channel of subsystem `name`, for a client speaking its protocol.
    pub(super) async fn subsystem_channel(self, name: &str) -> Result<Channel<client::Msg>, Error> {
        let process = self.subsystem(name).await?;
        Ok(process.channel)
    }

    async fn open(self) -> Result<Process, Error> {
        let channel = self.client.open_session().await?;
        let mut process = Process::new(channel, self.client.timeout, self.pty);
        for (name, value) in self.env {
            process.send_request("env", |c| Box::pin(async move { c.set_env(false, name, value).await })).await?;
        }
        if let Some((cols, rows)) = self.pty {
            let term = self.term;
            process
                .request("pty", |c| {
                    Box::pin(async move { c.request_pty(true, &term, u32::from(cols), u32::from(rows), 0, 0, &[]).await })
                })
                .await?;
        }
        Ok(process)
    }
}

/// What a command wrote and how it ended; see [`TestClient::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// Everything on stdout.
    pub stdout: Vec<u8>,
    /// Everything on stderr (extended data).
    pub stderr: Vec<u8>,
    /// The exit status or signal; `None` when the channel closed without one
    /// (a handler that panicked or timed out, a server that went away).
    pub status: Option<ExitStatus>,
}

impl Output {
    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(ExitStatus::SUCCESS)
    }

    /// The exit code, if it exited with one (not by a signal).
    pub fn code(&self) -> Option<u32> {
        match self.status {
            Some(ExitStatus::Code(code)) => Some(code),
            _ => None,
        }
    }
}

type Sent<'c> = std::pin::Pin<Box<dyn Future<Output = Result<(), russh::Error>> + Send + 'c>>;

/// A running shell, command or subsystem: send it input, read what it
/// wrote (as a terminal screen when it has a pty), see how it ended.
pub struct Process {
    channel: Channel<client::Msg>,
    screen: Option<vt100::Parser>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
    eof: bool,
    closed: bool,
    timeout: Duration,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pty", &self.screen.as_ref().map(|p| p.screen().size()))
            .field("stdout_bytes", &self.stdout.len())
            .field("stderr_bytes", &self.stderr.len())
            .field("status", &self.status)
            .field("eof", &self.eof)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Process {
    fn new(channel: Channel<client::Msg>, timeout: Duration, pty: Option<(u16, u16)>) -> Self {
        // Scrollback keeps what scrolled off the top out of `contents`, as a terminal does.
        let screen = pty.map(|(cols, rows)| vt100::Parser::new(rows, cols, 0));
        Process { channel, screen, stdout: Vec::new(), stderr: Vec::new(), status: None, eof: false, closed: false, timeout }
    }

    /// Sends a request without waiting for a reply.
    async fn send_request<F>(&mut self, what: &str, send: F) -> Result<(), Error>
    where
        F: for<'c> FnOnce(&'c Channel<client::Msg>) -> Sent<'c>,
    {
        within(self.timeout, what, send(&self.channel))
            .await?
            .map_err(|e| Error::new(ErrorKind::Connection, format!("sending the {what} request")).with_source(e))
    }

    /// Sends a request and waits for its reply; a failure is a refusal.
    async fn request<F>(&mut self, what: &str, send: F) -> Result<(), Error>
    where
        F: for<'c> FnOnce(&'c Channel<client::Msg>) -> Sent<'c>,
    {
        self.send_request(what, send).await?;
        self.reply(&format!("the {what} request")).await
    }

    /// Sends `input` to the process's stdin (what a user types, on a pty).
    pub async fn send(&mut self, input: impl AsRef<[u8]>) -> Result<(), Error> {
        let data = Bytes::copy_from_slice(input.as_ref());
        within(self.timeout, "the server to take input", self.channel.data_bytes(data))
            .await?
            .map_err(|e| Error::new(ErrorKind::Connection, "sending input").with_source(e))
    }

    /// Closes the process's stdin (EOF, as a pipe closing or Ctrl-D at `ssh`'s end without a pty).
    pub async fn send_eof(&mut self) -> Result<(), Error> {
        within(self.timeout, "sending EOF", self.channel.eof())
            .await?
            .map_err(|e| Error::new(ErrorKind::Connection, "sending EOF").with_source(e))
    }

    /// Resizes the terminal (a `window-change` request) and the [`screen`](Self::screen).
    pub async fn resize(&mut self, cols: u16, rows: u16) -> Result<(), Error> {
        if let Some(parser) = &mut self.screen {
            parser.screen_mut().set_size(rows, cols);
        }
        self.send_request("window-change", |c| {
            Box::pin(async move { c.window_change(u32::from(cols), u32::from(rows), 0, 0).await })
        })
        .await
    }

    /// Sends a `signal` request (what OpenSSH sends for `~B`-less signals of a
    /// client library; a user's Ctrl-C on a pty is the byte `0x03` instead: [`send`](Self::send) it).
    pub async fn signal(&mut self, signal: &Signal) -> Result<(), Error> {
        let sig = signal.to_russh();
        self.send_request("signal", |c| Box::pin(async move { c.signal(sig).await })).await
    }

    /// Reads output until `text` is on the [`screen`](Self::screen) (with a
    /// pty) or in stdout (without one).
    pub async fn wait_for(&mut self, text: &str) -> Result<(), Error> {
        let what = format!("{text:?} in the output");
        self.wait_until_described(&what, |process| process.shows(text)).await
    }

    /// Reads output until `done` is true of the process (its screen,
    /// stdout, stderr or status).
    pub async fn wait_until(&mut self, done: impl FnMut(&Process) -> bool) -> Result<(), Error> {
        self.wait_until_described("the condition", done).await
    }

    async fn wait_until_described(&mut self, what: &str, mut done: impl FnMut(&Process) -> bool) -> Result<(), Error> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if done(self) {
                return Ok(());
            }
            if self.closed {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("the channel closed before {what}; it showed:\n{}", self.shown()),
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.channel.wait()).await {
                Ok(message) => self.take(message),
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("{what} ({:?}); it showed:\n{}", self.timeout, self.shown()),
                    ));
                }
            };
        }
    }

    /// Reads until the server closes the channel and returns everything it wrote and its status.
    pub async fn wait(mut self) -> Result<Output, Error> {
        self.wait_until_described("the channel to close", |p| p.closed).await?;
        Ok(Output { stdout: self.stdout, stderr: self.stderr, status: self.status })
    }

    /// The terminal's screen as a user would see it now: stdout and stderr,
    /// as `ssh` writes both to the terminal (a [`vt100::Screen`]:
    /// `contents()`, `cell(row, col)`, `cursor_position()`, `alternate_screen()`, ...).
    ///
    /// # Panics
    ///
    /// When the process has no pty: use [`TestClient::shell`] or
    /// [`SessionBuilder::pty`], or read [`stdout`](Self::stdout) instead.
    pub fn screen(&self) -> &vt100::Screen {
        match &self.screen {
            Some(parser) => parser.screen(),
            None => panic!("Process::screen needs a pty: open the session with .pty(cols, rows) or TestClient::shell"),
        }
    }

    /// Everything read from stdout so far.
    pub fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// Everything read from stderr so far.
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }

    /// Takes what was read from stdout so far (so a long-running test keeps memory flat).
    pub fn take_stdout(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.stdout)
    }

    /// The exit status, once the server sent it.
    pub fn status(&self) -> Option<&ExitStatus> {
        self.status.as_ref()
    }

    /// Whether the server sent EOF (the process will write nothing more).
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Whether the server closed the channel.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn shows(&self, text: &str) -> bool {
        match &self.screen {
            Some(parser) => parser.screen().contents().contains(text),
            None => String::from_utf8_lossy(&self.stdout).contains(text),
        }
    }

    /// What the process showed, for an error message.
    fn shown(&self) -> String {
        let mut shown = match &self.screen {
            Some(parser) => parser.screen().contents(),
            None => String::from_utf8_lossy(&self.stdout).into_owned(),
        };
        if !self.stderr.is_empty() {
            shown.push_str("\n[stderr] ");
            shown.push_str(&String::from_utf8_lossy(&self.stderr));
        }
        shown
    }

    /// Reads until the reply to the request just sent, recording any output that came first.
    async fn reply(&mut self, what: &str) -> Result<(), Error> {
        loop {
            match within(self.timeout, what, self.channel.wait()).await? {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) => return Err(Error::new(ErrorKind::Refused, format!("{what} refused"))),
                None => {
                    self.closed = true;
                    return Err(Error::new(ErrorKind::Refused, format!("{what}: the channel closed")));
                }
                message => self.take(message),
            }
        }
    }

    /// Records one message.
    fn take(&mut self, message: Option<ChannelMsg>) {
        match message {
            Some(ChannelMsg::Data { data }) => {
                if let Some(parser) = &mut self.screen {
                    parser.process(&data);
                }
                self.stdout.extend_from_slice(&data);
            }
            Some(ChannelMsg::ExtendedData { data, .. }) => {
                // `ssh` writes both streams to the user's terminal.
                if let Some(parser) = &mut self.screen {
                    parser.process(&data);
                }
                self.stderr.extend_from_slice(&data);
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => self.status = Some(ExitStatus::Code(exit_status)),
            Some(ChannelMsg::ExitSignal { signal_name, core_dumped, error_message, .. }) => {
                self.status = Some(ExitStatus::Signal {
                    signal: Signal::from_russh(&signal_name),
                    core_dumped,
                    message: error_message,
                });
            }
            Some(ChannelMsg::Eof) => self.eof = true,
            Some(ChannelMsg::Close) | None => self.closed = true,
            Some(_) => {}
        }
    }
}
