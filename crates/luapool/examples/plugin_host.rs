//! A plugin host: tenants' plugins run on one `WorkerPool`, each job with its tenant's
//! CPU budget, timeout and `Context`. One shared `Module` (`kv`) serves every tenant:
//! it reads the caller from the context to pick the tenant's store and quota. Each job
//! has an id too, which its `log` lines carry (host functions read it with `Context::id`).
//!
//! Run with `cargo run -p luapool --example plugin_host`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use luapool::{Context, Error, ExecOptions, HostError, HostResult, Job, Module, Script};
use luapool::{VmConfig, WorkerPool, WorkerPoolConfig};
use serde::Deserialize;

/// Who calls, as host functions see it: the context of each of the tenant's jobs.
struct Tenant {
    name: &'static str,
    max_keys: usize,
}

/// A tenant's options for its jobs: its limits (they only tighten the VMs') and context.
fn tenant(name: &'static str, cpu_ms: u64, timeout_ms: u64, max_keys: usize) -> ExecOptions {
    ExecOptions::new()
        .with_cpu_limit(Duration::from_millis(cpu_ms))
        .with_timeout(Duration::from_millis(timeout_ms))
        .with_context(Tenant { name, max_keys })
}

/// Every tenant's keys, by tenant name (a database, in a real host).
static STORES: Mutex<BTreeMap<&str, BTreeMap<String, String>>> = Mutex::new(BTreeMap::new());

/// Runs `f` on the calling job's tenant and its store.
fn with_store<R>(f: impl FnOnce(&Tenant, &mut BTreeMap<String, String>) -> R) -> HostResult<R> {
    let tenant = Context::get::<Tenant>().ok_or_else(|| HostError::new("no tenant"))?;
    let mut stores = STORES.lock().unwrap_or_else(|p| p.into_inner());
    Ok(f(&tenant, stores.entry(tenant.name).or_default()))
}

/// The structured error plugins raise with `error({ code = ..., message = ... })`.
#[derive(Deserialize)]
struct PluginError {
    code: u16,
    message: String,
}

const COUNTER: &str = "local n = tonumber(kv.get('visits') or 0) + 1 kv.set('visits', n) return n";
const IMPORT: &str = "for i = 1, 10 do local ok, err = pcall(kv.set, 'item' .. i, 'x')
    if not ok then error({ code = 429, message = tostring(err) }) end end";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Built once, registered on every worker's VM; scripts call `kv.get` and `kv.set`.
    let get = |key: String| with_store(|_, s| s.get(&key).cloned());
    let set = |(key, value): (String, String)| {
        with_store(|tenant, s| {
            if s.len() >= tenant.max_keys && !s.contains_key(&key) {
                return Err(HostError::new(format!("quota of {} keys", tenant.max_keys)));
            }
            s.insert(key, value);
            Ok(())
        })?
    };
    let kv = Module::new("kv").function("get", get).function("set", set);
    // The VMs' own ceiling: no job of any tenant runs longer than this.
    let vm = VmConfig::default().with_cpu_limit(Duration::from_secs(1));
    let config = WorkerPoolConfig::default().with_workers(2).with_vm(vm);
    let pool = WorkerPool::builder(config).module(kv).build()?;
    let (acme, free) = (tenant("acme", 200, 1000, 100), tenant("free", 20, 100, 2));
    let job = |options: &ExecOptions, name: &str, source: &str, id: &str| {
        Job::exec(Script::new(name, source)).with_options(options.clone().with_id(id))
    };

    // A well-behaved plugin: each tenant counts its own visits.
    for (id, options) in [("acme-1", &acme), ("acme-2", &acme), ("free-1", &free)] {
        let visits: i64 = pool.eval(job(options, "counter.lua", COUNTER, id)).await?;
        println!("{id} counter.lua: visit {visits}");
    }

    // A plugin stuck in a loop: its tenant's CPU budget stops it.
    let stuck = job(&free, "stuck.lua", "while true do end", "free-2");
    let outcome = pool.submit(stuck).await;
    let Err(Error::CpuLimit { limit }) = outcome else {
        return Err(format!("stuck.lua: expected a CPU limit, got {outcome:?}").into());
    };
    println!("free-2 stuck.lua:   stopped after {limit:?} of CPU");

    // A plugin that fails with a structured error: the host reads its fields.
    let import = job(&free, "import.lua", IMPORT, "free-3");
    let outcome = pool.submit(import).await;
    let err = outcome.err().ok_or("import.lua: expected an error")?;
    let value = err.value().ok_or("import.lua: no error value")?;
    let Ok(PluginError { code: 429, message }) = value.clone().deserialize() else {
        return Err(format!("import.lua: expected code 429, got {value:?}").into());
    };
    println!("free-3 import.lua:  error 429: {message}");
    pool.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
