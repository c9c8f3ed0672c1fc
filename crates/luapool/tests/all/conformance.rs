//! Runs the Lua conformance scripts of `tests/lua/conformance/` (in this crate)
//! through luapool on the engine this build uses. Each script checks language semantics
//! and the sandboxed standard library with `assert`, with per-engine expectations keyed
//! on `_VERSION`; a script passes when it runs to its end without an error.
//!
//! Every script runs four times, each as an async execution so that yields across the
//! guarded functions are exercised too: sandboxed on a plain VM, sandboxed on one with
//! limits (which puts the guarded `pcall`, `xpcall` and `coroutine` functions in place),
//! and the same two trusted, in shared isolation (a trusted VM is then one `lua`
//! process). Scripts tell trusted from sandboxed by `io`, which only trusted VMs have;
//! sandbox-only checks branch on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use luapool::{Isolation, Script, Vm, VmConfig};

/// Where the scripts are; their shared helpers are the module `lib.check` there.
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/conformance")
}

/// The conformance scripts, sorted by name.
fn scripts() -> Vec<PathBuf> {
    let dir = dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    files.sort();
    files
}

fn limited(config: VmConfig) -> VmConfig {
    config
        .with_cpu_limit(Duration::from_secs(30))
        .with_memory_limit(256 << 20)
}

fn configs() -> [(&'static str, VmConfig); 4] {
    let sandboxed = VmConfig::default().with_module_path(dir());
    let trusted = VmConfig::default()
        .with_module_path(dir())
        .with_trusted(true)
        .with_isolation(Isolation::Shared);
    [
        ("sandboxed", sandboxed.clone()),
        ("sandboxed, limited", limited(sandboxed)),
        ("trusted", trusted.clone()),
        ("trusted, limited", limited(trusted)),
    ]
}

#[test]
fn conformance_scripts_pass_on_this_engine() {
    let scripts = scripts();
    // A stub directory must not pass: the suite has one script per topic.
    assert!(scripts.len() >= 10, "only {} scripts", scripts.len());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for path in &scripts {
        // Named as `luapool run tests/lua/conformance/NAME.lua` names it from this
        // crate's directory: the scripts check error positions against their file name.
        let name = path.file_name().unwrap().to_string_lossy();
        let script = Script::new(
            format!("tests/lua/conformance/{name}"),
            std::fs::read(path).unwrap(),
        );
        for (label, config) in configs() {
            let vm = Vm::new(config).unwrap();
            vm.set_output(std::io::sink());
            if let Err(e) = runtime.block_on(vm.exec_async(&script)) {
                failures.push(format!("{name} ({label}): {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed on {}:\n{}",
        failures.len(),
        luapool::ENGINE,
        failures.join("\n")
    );
}
