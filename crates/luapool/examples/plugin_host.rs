//! A plugin host: tenants' plugins run on one `WorkerPool`, each job with its tenant's
//! CPU budget, timeout and `Context`. One shared `Module` (`kv`) serves every tenant:
//! it reads the caller from the context to pick the tenant's store and quota.
//!
//! Run with `cargo run -p luapool --example plugin_host`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luapool::{Context, Error, HostError, Job, Module, Script, Value, VmConfig};
use luapool::{WorkerPool, WorkerPoolConfig};

/// Who runs a plugin, and within which limits: the context of each of its jobs.
#[derive(Clone)]
struct Tenant {
    name: &'static str,
    cpu: Duration,
    timeout: Duration,
    max_keys: usize,
}

/// Every tenant's keys, by tenant name (a database, in a real host).
type Stores = Arc<Mutex<HashMap<&'static str, HashMap<String, String>>>>;

/// The calling job's tenant, as host functions see it.
fn caller() -> Result<Arc<Tenant>, HostError> {
    Context::get::<Tenant>().ok_or_else(|| HostError::new("kv: called outside a tenant's job"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stores = Stores::default();
    let (for_get, for_set) = (stores.clone(), stores.clone());
    // Built once, registered on every worker's VM; scripts call `kv.get` and `kv.set`.
    let kv = Module::new("kv")
        .function("get", move |key: String| {
            let t = caller()?;
            let stores = for_get.lock().unwrap_or_else(|p| p.into_inner());
            Ok(stores.get(t.name).and_then(|s| s.get(&key)).cloned())
        })
        .function("set", move |(key, value): (String, String)| {
            let t = caller()?;
            let mut stores = for_set.lock().unwrap_or_else(|p| p.into_inner());
            let store = stores.entry(t.name).or_default();
            if store.len() >= t.max_keys && !store.contains_key(&key) {
                return Err(HostError::new(format!(
                    "{}: quota of {} keys",
                    t.name, t.max_keys
                )));
            }
            store.insert(key, value);
            Ok(())
        });
    // The pool's ceiling; each job may only tighten it.
    let vm = VmConfig::default().with_cpu_limit(Duration::from_secs(1));
    let config = WorkerPoolConfig::default().with_workers(2).with_vm(vm);
    let pool = WorkerPool::builder(config).module(kv).build()?;

    let acme = Tenant {
        name: "acme",
        cpu: Duration::from_millis(200),
        timeout: Duration::from_secs(1),
        max_keys: 100,
    };
    let free = Tenant {
        name: "free",
        cpu: Duration::from_millis(20),
        timeout: Duration::from_millis(100),
        max_keys: 2,
    };
    let job = |tenant: &Tenant, plugin: &Script, n: usize| {
        Job::exec(plugin.clone())
            .with_cpu_limit(tenant.cpu)
            .with_timeout(tenant.timeout)
            .with_id(format!("{}-{n}", tenant.name)) // its `log` lines carry the id
            .with_context(tenant.clone())
    };

    // A well-behaved plugin: each tenant counts its own visits.
    let counter = Script::new(
        "counter.lua",
        r#"
        local n = tonumber(kv.get("visits") or "0") + 1
        kv.set("visits", tostring(n))
        return n"#,
    );
    for (n, tenant) in [&acme, &acme, &free, &acme].into_iter().enumerate() {
        let visits: i64 = pool.eval(job(tenant, &counter, n)).await?;
        println!("{:<4} counter.lua: visit {visits}", tenant.name);
    }

    // A plugin stuck in a loop: its tenant's CPU budget stops it, not the pool's.
    let stuck = Script::new("stuck.lua", "while true do end");
    match pool.submit(job(&free, &stuck, 4)).await {
        Err(Error::CpuLimit { limit }) if limit == free.cpu => {
            println!("free stuck.lua:   stopped after {limit:?} of CPU")
        }
        other => return Err(format!("stuck.lua: expected a CPU limit, got {other:?}").into()),
    }

    // A plugin that fails with a structured error: the host reads its fields.
    let import = Script::new(
        "import.lua",
        r#"
        for i = 1, 10 do
            local ok, err = pcall(kv.set, "item" .. i, "x")
            if not ok then error({ code = 429, message = tostring(err), imported = i - 1 }) end
        end"#,
    );
    let err = match pool.submit(job(&free, &import, 5)).await {
        Err(err) => err,
        Ok(_) => return Err("import.lua: expected the quota error".into()),
    };
    let field = |name| {
        err.value()
            .and_then(|v| v.get(name))
            .cloned()
            .unwrap_or(Value::Nil)
    };
    if field("code") != Value::Integer(429) {
        return Err(format!("import.lua: expected code 429, got {err:?}").into());
    }
    println!(
        "free import.lua:  error {:?}, imported {:?}: {:?}",
        field("code"),
        field("imported"),
        field("message")
    );

    let s = pool.status();
    println!("pool: {} completed, {} failed", s.completed, s.failed);
    pool.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
