//! A rules engine: one rules script evaluated over many typed inputs on a `WorkerPool`.
//! Orders go in as serde structs (Lua tables), verdicts come back as serde structs.
//!
//! Run with `cargo run -p luapool --example rules_engine`.

use std::collections::{BTreeMap, BTreeSet};
use std::iter::StepBy;
use std::ops::Range;
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
    account_age_days: u32,
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
    id: u32,
    action: Action,
    reason: String,
}

/// The rules, as an operator would write them. Each worker VM compiles the script once
/// and caches it; every job runs it in fresh globals, then calls `decide`.
const RULES: &str = r#"
local blocked = { XX = true, YY = true }
function decide(order)
    local v = { id = order.id, action = "approve", reason = "ok" }
    if blocked[order.country] then v.action, v.reason = "reject", "blocked country"
    elseif order.total > 5000 then v.action, v.reason = "review", "large amount"
    elseif order.account_age_days < 7 and order.total > 500 then v.action, v.reason = "review", "new account"
    end
    return v
end"#;

/// A deterministic order for index `i`.
fn order(i: u32) -> Order {
    let countries = ["FR", "DE", "US", "XX", "JP", "BR", "IN"];
    Order {
        id: i,
        total: f64::from(i * 7919 % 6000) + 0.5,
        country: countries[(i % 7) as usize].to_string(),
        account_age_days: i * 31 % 90,
    }
}

/// Evaluates the rules over the orders `ids`, with up to 64 jobs in flight.
async fn evaluate(
    pool: WorkerPool,
    rules: Script,
    ids: StepBy<Range<u32>>,
) -> Result<Vec<Verdict>> {
    let job = |i| Job::call_in(rules.clone(), "decide", (order(i),));
    let verdicts = stream::iter(ids).map(|i| pool.eval::<Verdict>(job(i)));
    verdicts.buffer_unordered(64).try_collect().await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(2)).build()?;
    let rules = Script::new("rules.lua", RULES);
    let (inputs, tasks) = (10_000u32, 4usize);

    // Several tasks submit at once, as the request handlers of a service would.
    let start = Instant::now();
    let ids = |t| (t..inputs).step_by(tasks);
    let handles: Vec<_> = (0..tasks as u32)
        .map(|t| tokio::spawn(evaluate(pool.clone(), rules.clone(), ids(t))))
        .collect();
    let (mut summary, mut seen) = (BTreeMap::<String, u32>::new(), BTreeSet::new());
    for handle in handles {
        for verdict in handle.await?? {
            seen.insert(verdict.id);
            *summary
                .entry(format!("{:?}: {}", verdict.action, verdict.reason))
                .or_default() += 1;
        }
    }
    let elapsed = start.elapsed();

    let rate = f64::from(inputs) / elapsed.as_secs_f64();
    println!("{inputs} orders in {elapsed:.2?}: {rate:.0} jobs/s");
    for (verdict, n) in &summary {
        println!("  {verdict}: {n}");
    }
    if seen.len() != inputs as usize || !summary.contains_key("Reject: blocked country") {
        return Err("expected one verdict per order, some of them rejections".into());
    }
    pool.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
