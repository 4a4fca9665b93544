//! Authentication against framework servers: password, publickey and
//! keyboard-interactive, driven by OpenSSH's `ssh` (with askpass scripts) and
//! by russh's client for what `ssh` never does on purpose.

mod keyboard_interactive;
mod methods;
mod password;
mod publickey;
