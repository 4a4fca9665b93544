//! How a framework server is put together and lives: user `tower` layers and
//! the `TraceLayer`, several handler types on one builder, the state handed to
//! handlers (extensions, factors, the disconnect hook), panicking handlers,
//! the login grace time and graceful shutdown.

mod composition;
mod extensions;
mod faults;
mod layers;
mod lifecycle;
mod limits;
