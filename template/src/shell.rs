//! The interactive shell: a prompt, a line editor and a few commands, on the
//! client's terminal.
//!
//! On a pty the client's terminal is in raw mode: every key arrives as bytes
//! the moment it is pressed (Enter is `\r`, Ctrl-C is the byte 3, arrows are
//! escape sequences), nothing is echoed unless the app writes it back, and a
//! new line needs `\r\n`.

use ssh_framework::{ChannelEvent, ChannelIo, ExitStatus, WindowSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CTRL_C: u8 = 3;
const CTRL_D: u8 = 4;
const BACKSPACE: u8 = 8;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;
/// The longest line the editor keeps, in bytes.
const MAX_LINE: usize = 1024;

/// Runs the shell for `user` until they quit or the channel closes.
pub async fn run(user: &str, mut size: WindowSize, io: ChannelIo) -> ExitStatus {
    let (mut stdin, mut stdout, _stderr, mut events) = io.split();
    let welcome = format!(
        "Welcome, {user}! Your terminal is {}x{}.\r\nType help for the commands.\r\n> ",
        size.cols, size.rows
    );
    if stdout.write_all(welcome.as_bytes()).await.is_err() {
        return ExitStatus::FAILURE;
    }
    let mut line: Vec<u8> = Vec::new();
    let mut escape = Escape::None;
    let mut buf = [0u8; 1024];
    loop {
        let mut out: Vec<u8> = Vec::new();
        tokio::select! {
            read = stdin.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => return ExitStatus::SUCCESS,
                    Ok(n) => n,
                };
                for &byte in &buf[..n] {
                    if escape.skip(byte) {
                        continue;
                    }
                    match byte {
                        b'\r' | b'\n' => {
                            out.extend_from_slice(b"\r\n");
                            let command = String::from_utf8_lossy(&line).trim().to_owned();
                            line.clear();
                            match reply(&command, user, size) {
                                Reply::Quit => {
                                    out.extend_from_slice(b"Bye!\r\n");
                                    let _ = stdout.write_all(&out).await;
                                    return ExitStatus::SUCCESS;
                                }
                                Reply::Text(text) => out.extend_from_slice(text.as_bytes()),
                            }
                            out.extend_from_slice(b"> ");
                        }
                        CTRL_C | CTRL_D => {
                            out.extend_from_slice(b"\r\nBye!\r\n");
                            let _ = stdout.write_all(&out).await;
                            return ExitStatus::SUCCESS;
                        }
                        BACKSPACE | DEL => {
                            // Remove one character: its UTF-8 continuation bytes, then its first byte.
                            while line.last().is_some_and(|b| b & 0xc0 == 0x80) {
                                line.pop();
                            }
                            if line.pop().is_some() {
                                out.extend_from_slice(b"\x08 \x08");
                            }
                        }
                        ESC => escape = Escape::Started,
                        byte if (byte >= 0x20) && line.len() < MAX_LINE => {
                            line.push(byte);
                            out.push(byte);
                        }
                        _ => {} // other control bytes, or a full line
                    }
                }
            }
            Some(event) = events.recv() => {
                if let ChannelEvent::WindowChange(new) = event {
                    size = new;
                    out.extend_from_slice(format!("\r\n[terminal resized to {}x{}]\r\n> ", size.cols, size.rows).as_bytes());
                    out.extend_from_slice(&line);
                }
            }
        }
        if stdout.write_all(&out).await.is_err() {
            return ExitStatus::FAILURE;
        }
    }
}

enum Reply {
    Text(String),
    Quit,
}

/// What the shell answers to a command line.
fn reply(command: &str, user: &str, size: WindowSize) -> Reply {
    Reply::Text(match command {
        "" => String::new(),
        "help" => "commands: help, whoami, size, quit\r\n".to_owned(),
        "whoami" => format!("{user}\r\n"),
        "size" => format!("{}x{}\r\n", size.cols, size.rows),
        "quit" | "exit" => return Reply::Quit,
        other => format!("unknown command: {} (try help)\r\n", other.escape_debug()),
    })
}

/// Skips the escape sequences keys send (arrows are `ESC [ A`, ...), which
/// this editor does not use.
#[derive(Clone, Copy)]
enum Escape {
    None,
    Started,
    Csi,
}

impl Escape {
    /// Whether `byte` belongs to an escape sequence (and so is not typed text).
    fn skip(&mut self, byte: u8) -> bool {
        match *self {
            Escape::None => false,
            Escape::Started => {
                *self = if byte == b'[' || byte == b'O' { Escape::Csi } else { Escape::None };
                true
            }
            Escape::Csi => {
                if (0x40..=0x7e).contains(&byte) {
                    *self = Escape::None;
                }
                true
            }
        }
    }
}
