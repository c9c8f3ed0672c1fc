//! Which public types cross threads, checked by doctests (this module exists only under
//! `cfg(doctest)`).
//!
//! A [`Vm`](crate::Vm) lives on the thread that created it, and so does a VM checked out
//! of a [`CheckoutPool`](crate::CheckoutPool), the [`VmGuard`](crate::VmGuard): neither
//! is `Send`. Each `compile_fail` example below is preceded by a passing twin that differs
//! only in the line that must make it fail, the `Send` bound of `check`: the twin shows
//! that the rest (the type's path, the call) compiles, so a misspelt path cannot make the
//! `compile_fail` example pass. The `compile_fail` examples also name the error they
//! expect, `E0277` (a trait bound not satisfied), which rustdoc checks on nightly only.
//!
//! # `Vm` is not `Send`
//!
//! ```
//! fn check<T>() {}
//! check::<luapool::Vm>();
//! ```
//!
//! ```compile_fail,E0277
//! fn check<T: Send>() {}
//! check::<luapool::Vm>();
//! ```
//!
//! # `VmGuard` is not `Send`
//!
//! ```
//! fn check<T>() {}
//! check::<luapool::VmGuard>();
//! ```
//!
//! ```compile_fail,E0277
//! fn check<T: Send>() {}
//! check::<luapool::VmGuard>();
//! ```
//!
//! # What is `Send` and `Sync`
//!
//! Values, errors, scripts and jobs move between threads; a [`WorkerPool`](crate::WorkerPool)
//! handle is used from any thread or task.
//!
//! ```
//! fn assert_send_sync<T: Send + Sync>() {}
//! assert_send_sync::<luapool::Value>();
//! assert_send_sync::<luapool::Error>();
//! assert_send_sync::<luapool::Script>();
//! assert_send_sync::<luapool::WorkerPool>();
//! assert_send_sync::<luapool::Job>();
//! ```
