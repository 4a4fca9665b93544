//! Run with: cargo build --release -p ssh-framework-bench && target/release/idle-sessions --counts 1000,10000
//!
//! Memory per idle authenticated session: the server under test runs in a
//! child process, a second child process (this binary, russh's client) opens N
//! sessions with a shell each and lets them sit, and the server's resident set
//! is read from /proc before the first connection and once it is stable.

#[path = "../idle/mod.rs"]
mod idle;

fn main() -> std::process::ExitCode {
    idle::main()
}
