//! The checkout pool: VMs held on one thread (a `LocalSet`, a GUI or game loop).
