//! An SFTP client speaking raw packets over russh's client, for what
//! OpenSSH's `sftp` never sends.

use russh::{Channel, ChannelMsg, client};
use ssh_framework_tests::russh_client::{RusshClient, request_reply};
use ssh_framework_tests::within;

/// An SFTP client speaking raw packets, for what OpenSSH's client never sends.
pub(crate) struct RawSftp {
    _client: RusshClient,
    channel: Channel<client::Msg>,
    inbox: Vec<u8>,
    /// Channel messages other than data, in order: `exit-status N`, `eof`, `close`.
    pub(crate) events: Vec<String>,
}

pub(crate) fn string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

pub(crate) fn packet(kind: u8, id: Option<u32>, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    let len = 1 + id.map_or(0, |_| 4) + body.len();
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.push(kind);
    if let Some(id) = id {
        p.extend_from_slice(&id.to_be_bytes());
    }
    p.extend_from_slice(body);
    p
}

pub(crate) const FXP_OPEN: u8 = 3;
pub(crate) const FXP_CLOSE: u8 = 4;
pub(crate) const FXP_READ: u8 = 5;
pub(crate) const FXP_STAT: u8 = 17;
pub(crate) const FXP_READLINK: u8 = 19;
pub(crate) const FXP_STATUS: u8 = 101;
pub(crate) const FXP_HANDLE: u8 = 102;
pub(crate) const FXP_DATA: u8 = 103;
pub(crate) const FXP_NAME: u8 = 104;
pub(crate) const FXF_READ: u32 = 1;
pub(crate) const FXF_WRITE: u32 = 2;
pub(crate) const FXF_CREAT: u32 = 8;
pub(crate) const FXF_TRUNC: u32 = 0x10;

pub(crate) fn open_body(path: &[u8], flags: u32) -> Vec<u8> {
    let mut b = string(path);
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

pub(crate) fn status_code(body: &[u8]) -> u32 {
    u32::from_be_bytes(body[..4].try_into().unwrap())
}

impl RawSftp {
    /// Starts the sftp subsystem on a new session of `client` (logged in) and
    /// exchanges versions.
    pub(crate) async fn start(client: RusshClient) -> RawSftp {
        let mut channel = client.session().await;
        channel.request_subsystem(true, "sftp").await.unwrap();
        assert!(request_reply(&mut channel).await, "the sftp subsystem was refused");
        let mut raw = RawSftp { _client: client, channel, inbox: Vec::new(), events: Vec::new() };
        raw.send(&packet(1, None, &3u32.to_be_bytes())).await;
        let (kind, body) = raw.recv().await.expect("SSH_FXP_VERSION");
        assert_eq!(kind, 2);
        assert_eq!(&body[..4], &3u32.to_be_bytes());
        raw
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.channel.data(bytes).await.expect("the channel accepts data");
    }

    /// The next packet, without length: (type, rest after the type); `None` once the channel closes.
    pub(crate) async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.inbox.len() >= 4 {
                let len = u32::from_be_bytes(self.inbox[..4].try_into().unwrap()) as usize;
                if self.inbox.len() >= 4 + len {
                    let p: Vec<u8> = self.inbox.drain(..4 + len).collect();
                    return Some((p[4], p[5..].to_vec()));
                }
            }
            match within("an SFTP response", self.channel.wait()).await? {
                ChannelMsg::Data { data } => self.inbox.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => self.events.push(format!("exit-status {exit_status}")),
                ChannelMsg::Eof => self.events.push("eof".into()),
                ChannelMsg::Close => {
                    self.events.push("close".into());
                    return None;
                }
                _ => {}
            }
        }
    }

    /// Sends one request with `id` and returns the answer's type and body after the id.
    pub(crate) async fn call(&mut self, kind: u8, id: u32, body: &[u8]) -> (u8, Vec<u8>) {
        self.send(&packet(kind, Some(id), body)).await;
        let (kind, rest) = self.recv().await.expect("an answer");
        assert_eq!(u32::from_be_bytes(rest[..4].try_into().unwrap()), id, "answer to another request");
        (kind, rest[4..].to_vec())
    }

    /// Reads a whole file by path; `Err(status)` when open or read fails.
    pub(crate) async fn read_file(&mut self, path: &[u8]) -> Result<Vec<u8>, u32> {
        let (kind, body) = self.call(FXP_OPEN, 1, &open_body(path, FXF_READ)).await;
        if kind == FXP_STATUS {
            return Err(status_code(&body));
        }
        assert_eq!(kind, FXP_HANDLE);
        let handle = body[4..].to_vec();
        let mut data = Vec::new();
        loop {
            let mut req = string(&handle);
            req.extend_from_slice(&(data.len() as u64).to_be_bytes());
            req.extend_from_slice(&32768u32.to_be_bytes());
            let (kind, body) = self.call(FXP_READ, 2, &req).await;
            if kind == FXP_STATUS {
                let code = status_code(&body);
                self.call(FXP_CLOSE, 3, &string(&handle)).await;
                return if code == 1 { Ok(data) } else { Err(code) };
            }
            assert_eq!(kind, FXP_DATA);
            data.extend_from_slice(&body[4..]);
        }
    }
}

