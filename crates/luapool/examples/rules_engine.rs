//! A rules engine: one rules script evaluated over many typed inputs on a `WorkerPool`.
//! Orders go in as serde structs (Lua tables), verdicts come back as serde structs.
//!
//! Run with `cargo run -p luapool --example rules_engine`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt, TryStreamExt};
use luapool::{Job, Result, Script, WorkerPool, WorkerPoolConfig};
use serde::{Deserialize, Serialize};

/// What the rules look at.
#[derive(Serialize)]
struct Order {
    id: u32,
    total: f64,
    country: String,
    age_days: u32,
}

/// What the rules decide (serde reads it from the Lua string).
#[derive(Deserialize, Debug)]
#[serde(rename_all = "lowercase")]
enum Action {
    Approve,
    Review,
    Reject,
}

/// The verdict on one order.
#[derive(Deserialize)]
struct Verdict {
    action: Action,
    reason: String,
}

/// The rules, as an operator would write them. Each worker VM compiles the script once
/// and caches it; every job runs it in fresh globals, then calls `decide`.
const RULES: &str = r#"
local blocked = { XX = true, YY = true }
function decide(o) -- o: an Order
    if blocked[o.country] then return { action = "reject", reason = "blocked country" } end
    if o.total > 5000 then return { action = "review", reason = "large amount" } end
    if o.age_days < 7 and o.total > 500 then return { action = "review", reason = "new buyer" } end
    return { action = "approve", reason = "ok" }
end"#;

/// A deterministic order for index `i`.
fn order(i: u32) -> Order {
    Order {
        id: i,
        total: f64::from(i * 7919 % 6000) + 0.5,
        country: ["FR", "DE", "US", "XX", "JP", "BR", "IN"][(i % 7) as usize].into(),
        age_days: i * 31 % 90,
    }
}

/// How many orders, submitted by how many tasks.
const INPUTS: u32 = 10_000;
const TASKS: u32 = 4;

/// Evaluates the rules over every `TASKS`th order from `first`, up to 64 jobs at once.
async fn evaluate(pool: WorkerPool, rules: Script, first: u32) -> Result<Vec<Verdict>> {
    let job = |i| Job::call_in(rules.clone(), "decide", (order(i),));
    let ids = (first..INPUTS).step_by(TASKS as usize);
    let verdicts = stream::iter(ids).map(|i| pool.eval::<Verdict>(job(i)));
    verdicts.buffer_unordered(64).try_collect().await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(2)).build()?;
    let rules = Script::new("rules.lua", RULES);

    // Several tasks submit at once, as the request handlers of a service would.
    let start = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(evaluate(pool.clone(), rules.clone(), t)))
        .collect();
    let mut summary = BTreeMap::<String, u32>::new();
    for handle in handles {
        for verdict in handle.await?? {
            let key = format!("{:?}: {}", verdict.action, verdict.reason);
            *summary.entry(key).or_default() += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = f64::from(INPUTS) / secs;
    println!("{INPUTS} orders in {secs:.2} s: {rate:.0} jobs/s");
    for (verdict, n) in &summary {
        println!("  {verdict}: {n}");
    }
    if summary.values().sum::<u32>() != INPUTS || !summary.contains_key("Reject: blocked country") {
        return Err("expected one verdict per order, some of them rejections".into());
    }
    pool.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
