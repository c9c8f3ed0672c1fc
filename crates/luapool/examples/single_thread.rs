//! One `Vm` on a current-thread runtime: the simplest setup.
//! Scripts call an async host function; while one awaits, the thread is free.
//!
//! Run with `cargo run -p luapool --example single_thread`.

use std::time::{Duration, Instant};

use luapool::{Script, Value, Vm, VmConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vm = Vm::new(VmConfig::default())?;

    // An async host function: the calling script's coroutine yields while it runs.
    vm.register_async("fetch", |key: String| async move {
        tokio::time::sleep(Duration::from_millis(20)).await; // stands in for real I/O
        Ok(format!("<value of {key}>"))
    })?;

    let handler = Script::new(
        "handler.lua",
        r#"
        local key = ...
        local value = fetch(key)
        hits = (hits or 0) + 1     -- a global: fresh in every execution
        return string.format("%s => %s", key, value), hits
        "#,
    );

    // One request after the other.
    let start = Instant::now();
    for key in ["alpha", "beta"] {
        let result = vm.exec_with_args_async(&handler, key).await?;
        println!("{}", show(&result));
    }
    println!("sequential: {:?}", start.elapsed());

    // Several executions interleaved on the same VM, as coroutines.
    let start = Instant::now();
    let (a, b, c) = tokio::join!(
        vm.exec_with_args_async(&handler, "gamma"),
        vm.exec_with_args_async(&handler, "delta"),
        vm.exec_with_args_async(&handler, "epsilon"),
    );
    for result in [a?, b?, c?] {
        println!("{}", show(&result));
    }
    println!("interleaved: {:?} for three 20 ms fetches", start.elapsed());
    Ok(())
}

fn show(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
