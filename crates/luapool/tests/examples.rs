//! Runs the examples' `main`s, so that a broken example fails CI like any test (on every
//! engine: `cargo test --workspace`, also with `--no-default-features --features luajit`).
//! Each example checks its own outcomes and returns an error when one is not as shown.

#[path = "../examples/plugin_host.rs"]
mod plugin_host;

#[path = "../examples/orchestrator.rs"]
mod orchestrator;

#[path = "../examples/rules_engine.rs"]
mod rules_engine;

#[test]
fn plugin_host_runs() -> Result<(), Box<dyn std::error::Error>> {
    plugin_host::main()
}

#[test]
fn orchestrator_runs() -> Result<(), Box<dyn std::error::Error>> {
    orchestrator::main()
}

#[test]
fn rules_engine_runs() -> Result<(), Box<dyn std::error::Error>> {
    rules_engine::main()
}
