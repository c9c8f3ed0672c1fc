//! The worker pool: a thread per VM, shared by any thread or task.
