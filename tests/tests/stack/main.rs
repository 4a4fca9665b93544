//! How a framework server is put together and lives: user `tower` layers and
//! the `TraceLayer`, several handler types on one builder, the login grace
//! time and graceful shutdown.

mod composition;
mod layers;
mod lifecycle;
