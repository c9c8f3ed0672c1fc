//! A rules engine: one rules script evaluated over many typed inputs on a `WorkerPool`.
//! Orders go in as serde structs (Lua tables), verdicts come back as serde structs.
//!
//! Run with `cargo run -p luapool --example rules_engine`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{stream, FutureExt, StreamExt};
use luapool::{Job, Script, WorkerPool, WorkerPoolConfig};
use serde::{Deserialize, Serialize};

/// What the rules look at.
#[derive(Serialize)]
struct Order {
    id: u32,
    total: f64,
    country: String,
    account_age_days: u32,
}

/// What the rules decide.
#[derive(Deserialize, Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Action {
    Approve,
    Review,
    Reject,
}

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = WorkerPool::builder(WorkerPoolConfig::default().with_workers(2)).build()?;
    let rules = Script::new("rules.lua", RULES);
    let (inputs, tasks) = (10_000u32, 4u32);

    // Several tasks submit at once, as request handlers of a service would.
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (pool, rules) = (pool.clone(), rules.clone());
            tokio::spawn(async move {
                let mut verdicts = BTreeMap::<(Action, String), u32>::new();
                // Up to 64 jobs of this task in flight; each is the rules over one order.
                let mut results = stream::iter((t..inputs).step_by(tasks as usize))
                    .map(|i| {
                        let job = Job::call_in(rules.clone(), "decide", (order(i),));
                        pool.eval::<Verdict>(job).map(move |verdict| (i, verdict))
                    })
                    .buffer_unordered(64);
                while let Some((i, verdict)) = results.next().await {
                    let verdict = verdict.map_err(|e| e.to_string())?;
                    if verdict.id != i {
                        return Err(format!("order {i} got the verdict of {}", verdict.id));
                    }
                    *verdicts
                        .entry((verdict.action, verdict.reason))
                        .or_default() += 1;
                }
                Ok(verdicts)
            })
        })
        .collect();
    let mut summary = BTreeMap::<(Action, String), u32>::new();
    for handle in handles {
        for (key, n) in handle.await?? {
            *summary.entry(key).or_default() += n;
        }
    }
    let elapsed = start.elapsed();

    println!(
        "{inputs} orders in {elapsed:.2?}: {:.0} jobs/s",
        f64::from(inputs) / elapsed.as_secs_f64()
    );
    for ((action, reason), n) in &summary {
        println!("  {action:?} ({reason}): {n}");
    }
    if summary.values().sum::<u32>() != inputs
        || !summary.contains_key(&(Action::Reject, "blocked country".into()))
    {
        return Err("expected one verdict per order, some of them rejections".into());
    }
    pool.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
