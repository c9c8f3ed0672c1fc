//! The same behaviour assertions against every usage pattern where they apply: one `Vm`,
//! the `CheckoutPool` (one VM, checked out per execution) and the `WorkerPool` (one
//! worker, so that every job meets the same VM): isolation, interleaving, the sandbox,
//! errors, limits, and what happens to a VM after a memory error or a host panic.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use luapool::{
    CheckoutPool, CheckoutPoolConfig, Error, HostError, Poison, Script, Value, Vm, VmConfig,
    WorkerPool, WorkerPoolConfig,
};

type Recipe = Arc<dyn Fn(&Vm) -> luapool::Result<()> + Send + Sync>;

enum Pattern {
    Single(Box<Vm>),
    Checkout(CheckoutPool),
    Workers(WorkerPool),
}

impl Pattern {
    /// The three patterns over VMs built from `config` and `recipe`.
    fn all(config: VmConfig, recipe: Recipe) -> Vec<Pattern> {
        let vm = Vm::new(config.clone()).unwrap();
        recipe(&vm).unwrap();
        let r = Arc::clone(&recipe);
        let checkout = CheckoutPool::builder(
            CheckoutPoolConfig::default()
                .with_max_size(1)
                .with_vm(config.clone()),
        )
        .init(move |vm: &Vm| r(vm))
        .build()
        .unwrap();
        let workers =
            WorkerPool::builder(WorkerPoolConfig::default().with_workers(1).with_vm(config))
                .init(move |vm: &Vm| recipe(vm))
                .build()
                .unwrap();
        vec![
            Pattern::Single(Box::new(vm)),
            Pattern::Checkout(checkout),
            Pattern::Workers(workers),
        ]
    }

    fn plain(config: VmConfig) -> Vec<Pattern> {
        Pattern::all(config, Arc::new(|_: &Vm| Ok(())))
    }

    fn name(&self) -> &'static str {
        match self {
            Pattern::Single(_) => "single Vm",
            Pattern::Checkout(_) => "checkout pool",
            Pattern::Workers(_) => "worker pool",
        }
    }

    async fn exec(&self, source: &str) -> luapool::Result<Vec<Value>> {
        let script = Script::new("t.lua", source);
        match self {
            Pattern::Single(vm) => vm.exec_async(&script).await,
            Pattern::Checkout(pool) => pool.get().await?.exec_async(&script).await,
            Pattern::Workers(pool) => pool.exec(script).await,
        }
    }

    /// Runs `a` and `b` at once, interleaved on one VM.
    async fn exec_two(
        &self,
        a: &str,
        b: &str,
    ) -> (luapool::Result<Vec<Value>>, luapool::Result<Vec<Value>>) {
        let (a, b) = (Script::new("a.lua", a), Script::new("b.lua", b));
        match self {
            Pattern::Single(vm) => tokio::join!(vm.exec_async(&a), vm.exec_async(&b)),
            // One checkout, two executions on it: the pool has one VM.
            Pattern::Checkout(pool) => {
                let vm = pool.get().await.unwrap();
                tokio::join!(vm.exec_async(&a), vm.exec_async(&b))
            }
            Pattern::Workers(pool) => tokio::join!(pool.exec(a), pool.exec(b)),
        }
    }
}

fn ints(values: &[i64]) -> Vec<Value> {
    values.iter().map(|&i| Value::Integer(i)).collect()
}

#[tokio::test]
async fn globals_do_not_leak_between_executions() {
    for p in Pattern::plain(VmConfig::default()) {
        for _ in 0..3 {
            let r = p.exec("count = (count or 0) + 1 return count").await;
            assert_eq!(r.unwrap(), ints(&[1]), "{}", p.name());
        }
    }
}

#[tokio::test]
async fn interleaved_executions_keep_their_own_globals() {
    for p in Pattern::plain(VmConfig::default()) {
        let (a, b) = p
            .exec_two(
                "name = 'a' sleep(0.02) return name, rawget(_G, 'other')",
                "sleep(0.01) other = 'b' name = 'b' sleep(0.02) return name",
            )
            .await;
        // `a` sees its own `name`, and not the `other` that `b` set meanwhile.
        assert_eq!(
            a.unwrap(),
            vec![Value::from("a"), Value::Nil],
            "{}",
            p.name()
        );
        assert_eq!(b.unwrap(), vec![Value::from("b")], "{}", p.name());
    }
}

#[tokio::test]
async fn the_sandbox_is_the_same_everywhere() {
    for p in Pattern::plain(VmConfig::default()) {
        let r = p
            .exec("return io == nil, os.execute == nil, string.dump == nil, debug.getinfo == nil")
            .await;
        assert_eq!(r.unwrap(), vec![Value::Boolean(true); 4], "{}", p.name());
        let err = p
            .exec("getmetatable('').__index.upper = nil")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Runtime { .. }),
            "{}: {err:?}",
            p.name()
        );
        assert_eq!(
            p.exec("return ('x'):upper()").await.unwrap(),
            vec![Value::from("X")],
            "{}",
            p.name()
        );
    }
}

#[tokio::test]
async fn errors_have_the_same_variants_everywhere() {
    for p in Pattern::plain(VmConfig::default()) {
        let err = p.exec("x = = 1").await.unwrap_err();
        assert!(
            matches!(err, Error::Syntax { line: Some(1), .. }),
            "{}: {err:?}",
            p.name()
        );
        let err = p.exec("error('boom')").await.unwrap_err();
        assert!(
            matches!(err, Error::Runtime { ref message, .. } if message.contains("boom")),
            "{}: {err:?}",
            p.name()
        );
        assert_eq!(
            p.exec("return 1").await.unwrap(),
            ints(&[1]),
            "{}",
            p.name()
        );
    }
}

#[tokio::test]
async fn limits_stop_runaways_and_the_pattern_goes_on() {
    let config = VmConfig::default()
        .with_cpu_limit(Duration::from_millis(100))
        .with_timeout(Duration::from_millis(300));
    for p in Pattern::plain(config) {
        let err = p
            .exec("pcall(function() while true do end end) return 'escaped'")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::CpuLimit { .. }),
            "{}: {err:?}",
            p.name()
        );
        let err = p.exec("sleep(10) return 'woke'").await.unwrap_err();
        assert!(
            matches!(err, Error::Timeout { .. }),
            "{}: {err:?}",
            p.name()
        );
        assert_eq!(
            p.exec("return 2").await.unwrap(),
            ints(&[2]),
            "{}",
            p.name()
        );
    }
}

#[tokio::test]
async fn a_memory_error_poisons_the_vm_and_pools_replace_it() {
    let config = VmConfig::default().with_memory_limit(2 << 20);
    for p in Pattern::plain(config) {
        let err = p
            .exec("local ok = pcall(string.rep, 'x', 1e8) return 'escaped'")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::MemoryLimit { .. }),
            "{}: {err:?}",
            p.name()
        );
        assert_eq!(
            p.exec("return 3").await.unwrap(),
            ints(&[3]),
            "{}",
            p.name()
        );
        match &p {
            // Nothing outlives the execution: the VM is kept, not rebuilt.
            Pattern::Single(vm) => assert_eq!(vm.poisoned(), None),
            Pattern::Checkout(pool) => assert_eq!(pool.status().discarded, 0),
            Pattern::Workers(pool) => assert_eq!(pool.status().rebuilt, 0),
        }
    }
}

#[tokio::test]
async fn a_host_panic_is_an_error_and_pools_replace_the_vm() {
    let recipe: Recipe = Arc::new(|vm: &Vm| {
        vm.register("explode", |()| -> Result<(), HostError> {
            panic!("host bug")
        })
    });
    for p in Pattern::all(VmConfig::default(), recipe) {
        let err = p.exec("explode()").await.unwrap_err();
        assert!(
            matches!(err, Error::Runtime { ref message, .. } if message.contains("host bug")),
            "{}: {err:?}",
            p.name()
        );
        assert_eq!(
            p.exec("return 4").await.unwrap(),
            ints(&[4]),
            "{}",
            p.name()
        );
        match &p {
            Pattern::Single(vm) => assert_eq!(vm.poisoned(), Some(Poison::HostPanic)),
            Pattern::Checkout(pool) => assert_eq!(pool.status().discarded, 1),
            Pattern::Workers(pool) => assert_eq!(pool.status().rebuilt, 1),
        }
    }
}
