//! The checkout pool's API: `get`, `try_get`, `get_timeout`, `status`, `close`.
//!
//! Run with `cargo run -p luapool --example checkout_pool`.

use std::time::Duration;

use luapool::{CheckoutPool, CheckoutPoolConfig, Error, Script, Vm};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = CheckoutPoolConfig::default()
        .with_max_size(2) // at most two VMs
        .with_prewarm(1) // one built now, the other on demand
        .with_max_uses(1000); // then rebuilt
    let pool = CheckoutPool::builder(config)
        .init(|vm: &Vm| vm.register("greet", |name: String| Ok(format!("hello, {name}"))))
        .build()?;
    println!("built:            {:?}", pool.status());

    // `get` returns an idle VM, or creates one below max_size, or waits.
    let first = pool.get().await?;
    let greeting: String = first.eval(&Script::new("greet.lua", "return greet('pool')"))?;
    println!("first VM says:    {greeting}");
    let second = pool.get().await?;
    println!("two checked out:  {:?}", pool.status());

    // `try_get` never waits.
    match pool.try_get() {
        Err(Error::Busy { what }) => println!("try_get:          busy ({what})"),
        other => println!("try_get:          unexpected {other:?}"),
    }

    // `get_timeout` waits, but not forever.
    match pool.get_timeout(Duration::from_millis(50)).await {
        Err(err @ Error::WaitTimeout { .. }) => println!("get_timeout:      {err}"),
        other => println!("get_timeout:      unexpected {other:?}"),
    }

    // Dropping a guard returns its VM; a waiting `get` takes it at once.
    let (third, ()) = tokio::join!(pool.get(), async { drop(first) });
    let third = third?;
    println!(
        "handed over:      the VM was used {} times",
        luapool::VmGuard::uses(&third)
    );

    // `close` refuses new gets and waits for the checked-out VMs to come back.
    tokio::join!(pool.close(), async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop((second, third));
    });
    println!("closed:           {:?}", pool.status());
    match pool.get().await {
        Err(err) => println!("get after close:  {err}"),
        Ok(_) => println!("get after close:  unexpected VM"),
    }
    Ok(())
}
