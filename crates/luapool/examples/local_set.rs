//! Several tasks on one thread with a `LocalSet`, each checking a
//! VM out of a shared `CheckoutPool` for as long as it needs it.
//!
//! Run with `cargo run -p luapool --example local_set`.

use std::time::Duration;

use luapool::{CheckoutPool, CheckoutPoolConfig, Script, Vm, VmGuard};
use tokio::task::LocalSet;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two VMs for six tasks: the others wait their turn, first come first served.
    let pool = CheckoutPool::builder(CheckoutPoolConfig::default().with_max_size(2))
        .init(|vm: &Vm| {
            vm.register_async("pause", |ms: u64| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            })
        })
        .build()?;
    let job = Script::new(
        "job.lua",
        "local task = ... pause(10) return string.format('task %d: %d', task, task * task)",
    );

    let local = LocalSet::new();
    let lines = local
        .run_until(async {
            let mut tasks = Vec::new();
            for task in 1..=6_i64 {
                // Clones of the pool are handles to the same VMs; `spawn_local` because
                // the pool and its VMs stay on this thread (`!Send`).
                let (pool, job) = (pool.clone(), job.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let vm = pool.get().await?; // held until the end of this task
                    let result = vm.exec_with_args_async(&job, task).await?;
                    let line = result.first().and_then(|v| v.as_str()).unwrap_or("?");
                    Ok::<_, luapool::Error>(format!(
                        "{line} (VM used {} times)",
                        VmGuard::uses(&vm)
                    ))
                }));
            }
            let mut lines = Vec::new();
            for task in tasks {
                lines.push(task.await??);
            }
            Ok::<_, Box<dyn std::error::Error>>(lines)
        })
        .await?;
    for line in lines {
        println!("{line}");
    }
    let status = pool.status();
    println!(
        "pool: {} VMs created for 6 tasks, {} idle, {} waiting",
        status.created, status.idle, status.waiting
    );
    Ok(())
}
