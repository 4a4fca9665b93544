// Generated code names everything by absolute path: local items named like
// the prelude (`Option`, `Result`, `Box`, `String`, `Arc`, `Send`, ...), like
// the `core` and `std` crates, and like the bindings generated code might use
// change nothing.
#![allow(dead_code, non_upper_case_globals)]

use ssh_framework::extract::User;
use ssh_framework::keys::PublicKey;
use ssh_framework::{Auth, ChannelIo, Command, ExitStatus, MethodSet, Prompter, PtyRequest, Server};

struct Option;
struct Some;
struct None;
struct Result;
struct Ok;
struct Err;
struct Box;
struct String;
struct Arc;
struct Vec;
struct Pin;
struct Request;
struct Response;
trait Send {}
trait Sync {}
trait Clone {}
trait From {}
trait Into {}
trait Fn {}
trait FnOnce {}
trait Future {}
trait FromRequest {}
trait IntoAuth {}
trait IntoDecision {}
trait IntoExitStatus {}
mod core {}
mod std {}
mod ssh_framework_private {}
const value: u8 = 0;
const key: u8 = 0;
const user: u8 = 0;
const response: u8 = 0;
const rejection: u8 = 0;
const out: u8 = 0;
const this: u8 = 0;

struct App;

#[::ssh_framework::server]
impl App {
    #[auth(password)]
    async fn password(&self, name: &str, secret: &str) -> ::core::result::Result<bool, ::std::string::String> {
        ::core::result::Result::Ok(name == secret)
    }

    #[auth(publickey)]
    async fn publickey(&self, _name: &str, _k: &PublicKey) -> Auth {
        Auth::Reject
    }

    #[auth(keyboard_interactive)]
    async fn otp(&self, _name: &str, _prompter: &mut Prompter) -> Auth {
        Auth::Reject
    }

    #[allowed_auths]
    async fn methods(&self, _name: &str) -> MethodSet {
        MethodSet::EMPTY
    }

    #[banner]
    async fn banner(&self) -> ::core::option::Option<::std::string::String> {
        ::core::option::Option::None
    }

    #[channel(session)]
    async fn session(&self, who: ::core::option::Option<User>) -> bool {
        who.is_some()
    }

    #[pty]
    async fn pty(&self, _pty: &PtyRequest) -> bool {
        true
    }

    #[env]
    async fn env(&self, _name: &str, _v: &str) -> bool {
        false
    }

    #[exec]
    async fn exec(&self, _command: Command, _io: ChannelIo) -> ExitStatus {
        ExitStatus::SUCCESS
    }

    #[subsystem("sftp")]
    async fn sftp(&self, _io: ChannelIo) {}
}

fn main() {
    let _builder = Server::builder().handlers(App);
}
