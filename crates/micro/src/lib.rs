//! wedge-micro: wedge's runtime for microcontrollers (a Cortex-M with 1 MiB of RAM or
//! less), `no_std` + `alloc` on wasmtime's runtime and its Pulley interpreter.
//!
//! Apps are core modules compiled on the host for `pulley32` with the settings of
//! [`settings::configure`], the one place host and device share, so that code made for
//! another engine is refused by wasmtime rather than loaded. A [`Board`] gives the
//! runtime its console, clocks and randomness; [`Runtime`] runs the device's apps on
//! one core, each in its own store under its memory cap and fuel budget, in turns (a
//! slice of fuel each, or until it sleeps), with the WASI preview 1 calls a device has
//! ([`wasi`]) and wedge's messaging between them ([`messaging`]). A [`bundle`] carries the apps from the host, with their digests.
//!
//! The firmware supplies what wasmtime needs of a platform without std: a global
//! allocator, a panic handler, and the two thread-local slots `wasmtime_tls_get` /
//! `wasmtime_tls_set` (the feature `one-thread-tls` supplies those as two statics).

#![no_std]

extern crate alloc;

mod app;
mod board;
pub mod bundle;
mod error;
mod guest;
pub mod messaging;
mod runtime;
pub mod settings;
#[cfg(feature = "one-thread-tls")]
mod tls;
mod wait;
pub mod wasi;

pub use app::{AppSpec, FUEL_SLICE, Outcome, Restart};
pub use board::Board;
pub use error::MicroError;
pub use runtime::Runtime;
