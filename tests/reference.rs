//! `luapool run --trusted` against the reference interpreter.
//!
//! The reference is the engine luapool was built with, straight from mlua: a state with
//! every standard library open (debug included) that runs the file as its main chunk and
//! prints with Lua's own `print`, like the `lua` program. Since that `print` writes to
//! the C library's stdout, the reference runs in a child process: this test binary
//! re-executes itself with `LUAPOOL_REFERENCE_LUA` naming the script (see
//! [`reference`]). That mode also serves `bench/lua-testes.py` as a stand-in for `lua`.
//!
//! Compared, from the repository root with the same relative paths (so that error
//! positions read the same): every conformance script of `crates/luapool/tests/lua/conformance/` (each
//! prints `ok N`, and N must agree too) and every program of `bench/classic/` with a small
//! argument. Stdout and the exit status must be identical; a difference prints the first
//! line that differs. Arguments on the command line (`cargo test --test reference --
//! NAME`) keep only the comparisons whose name contains one of them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};

use luapool::mlua::{Function, Lua, MultiValue, Table, Value};

/// In a child: the script the reference runs (its arguments are this process's).
const REFERENCE_VAR: &str = "LUAPOOL_REFERENCE_LUA";

/// The conformance scripts' directory, relative to the repository root.
const CONFORMANCE: &str = "crates/luapool/tests/lua/conformance";

/// Arguments of the classic benchmarks: tiny sizes (`bench/classic.sh`'s QUICK sizes).
const CLASSIC: [(&str, &str); 5] = [
    ("binary-trees", "8"),
    ("fannkuch-redux", "7"),
    ("mandelbrot", "64"),
    ("n-body", "1000"),
    ("spectral-norm", "50"),
];

fn main() -> ExitCode {
    if let Some(script) = std::env::var_os(REFERENCE_VAR) {
        return reference(script);
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    compare_all(&filters)
}

// --- the reference interpreter ---------------------------------------------------------

/// Runs `script` like `lua script args...`: the `arg` table, the file loaded by Lua's own
/// `loadfile` (chunk name `@script`, a first `#` line skipped), called with the arguments.
/// On an error prints `lua: ` and the message (with a traceback) to stderr and exits
/// with status 1, like lua.c.
fn reference(script: OsString) -> ExitCode {
    let script = script.to_string_lossy().into_owned();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // SAFETY: `unsafe_new` only opens the unsafe libraries (debug, ffi); this is the point.
    let lua = unsafe { Lua::unsafe_new() };
    match run_reference(&lua, &script, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lua: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_reference(lua: &Lua, script: &str, args: &[String]) -> Result<(), String> {
    // lua.c (5.4 and 5.5) runs scripts with the collector in generational mode.
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    lua.gc_set_mode(luapool::mlua::state::GcMode::Generational(
        Default::default(),
    ));
    let setup = || -> luapool::mlua::Result<Function> {
        let arg: Table = lua.create_table()?;
        arg.raw_set(-1, "lua")?;
        arg.raw_set(0, script)?;
        for (i, a) in (1..).zip(args) {
            arg.raw_set(i, a.as_str())?;
        }
        lua.globals().raw_set("arg", arg)?;
        let loadfile: Function = lua.globals().raw_get("loadfile")?;
        let (chunk, err): (Option<Function>, Option<String>) = loadfile.call(script)?;
        chunk.ok_or_else(|| luapool::mlua::Error::runtime(err.unwrap_or_default()))
    };
    let chunk = setup().map_err(message)?;
    let args: MultiValue = args
        .iter()
        .map(|a| lua.create_string(a).map(Value::String))
        .collect::<luapool::mlua::Result<_>>()
        .map_err(message)?;
    chunk.call::<()>(args).map_err(message)
}

/// The text `lua` prints for an error: the message and its traceback.
fn message(e: luapool::mlua::Error) -> String {
    match e {
        luapool::mlua::Error::RuntimeError(m) => m,
        luapool::mlua::Error::SyntaxError { message, .. } => message,
        luapool::mlua::Error::CallbackError { traceback, cause } => {
            format!("{}\n{traceback}", message((*cause).clone()))
        }
        other => other.to_string(),
    }
}

// --- the comparison --------------------------------------------------------------------

/// The repository root: the directory every program runs from.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True in the published `luapool-cli` package, which has no `crates/` directory: the
/// conformance scripts are packaged with the core crate (whose tests run them), so only
/// the classic benchmarks are compared. In the repository they are always compared.
fn conformance_packaged_apart() -> bool {
    !root().join("crates").exists()
}

/// One program to run both ways: its path (relative to the root) and arguments.
struct Case {
    path: String,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let mut scripts: Vec<String> = if conformance_packaged_apart() {
        println!("{CONFORMANCE}: not in this package (the core crate has them): skipped");
        Vec::new()
    } else {
        std::fs::read_dir(root().join(CONFORMANCE))
            .unwrap_or_else(|e| panic!("{CONFORMANCE}: {e}"))
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().to_string_lossy().into_owned();
                name.ends_with(".lua")
                    .then(|| format!("{CONFORMANCE}/{name}"))
            })
            .collect()
    };
    scripts.sort();
    assert!(
        scripts.len() >= 10 || conformance_packaged_apart(),
        "only {} conformance scripts",
        scripts.len()
    );
    let mut cases: Vec<Case> = scripts
        .into_iter()
        .map(|path| Case { path, args: vec![] })
        .collect();
    cases.extend(CLASSIC.iter().map(|(name, n)| Case {
        path: format!("bench/classic/{name}.lua"),
        args: vec![n.to_string()],
    }));
    cases
}

fn run(cmd: &mut Command, what: &str) -> Output {
    cmd.current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
}

fn luapool(case: &Case) -> Output {
    run(
        Command::new(env!("CARGO_BIN_EXE_luapool"))
            .env("RUST_LOG", "warn")
            .args(["run", "--trusted", &case.path])
            .args(&case.args),
        "luapool",
    )
}

fn reference_of(case: &Case) -> Output {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    run(
        Command::new(exe)
            .env(REFERENCE_VAR, &case.path)
            // The conformance scripts' `require("lib.check")`: luapool finds modules next
            // to the script; `lua` needs to be told.
            .env("LUA_PATH", format!("{CONFORMANCE}/?.lua;;"))
            .env_remove("LUA_PATH_5_4")
            .env_remove("LUA_PATH_5_5")
            .env_remove("LUA_INIT")
            .env_remove("LUA_INIT_5_4")
            .env_remove("LUA_INIT_5_5")
            .args(&case.args),
        "the reference",
    )
}

/// Where `got` (luapool) and `want` (the reference) differ, or `None`.
fn difference(got: &Output, want: &Output) -> Option<String> {
    let (g, w) = (
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&want.stdout),
    );
    let mut report = String::new();
    if g != w {
        let (gl, wl): (Vec<&str>, Vec<&str>) = (g.lines().collect(), w.lines().collect());
        let line = (0..gl.len().max(wl.len()))
            .find(|&i| gl.get(i) != wl.get(i))
            .unwrap_or(gl.len().min(wl.len()));
        let show = |l: Option<&&str>| l.map_or("<end of output>".to_string(), |l| format!("{l:?}"));
        report += &format!(
            "  stdout differs at line {}:\n    reference: {}\n    luapool:   {}\n",
            line + 1,
            show(wl.get(line)),
            show(gl.get(line)),
        );
        if gl.len() != wl.len() {
            report += &format!(
                "  luapool printed {} lines, the reference {}\n",
                gl.len(),
                wl.len()
            );
        }
    }
    if got.status.code() != want.status.code() {
        report += &format!(
            "  exit status: reference {:?}, luapool {:?}\n",
            want.status.code(),
            got.status.code()
        );
    }
    if report.is_empty() {
        return None;
    }
    for (who, out) in [("reference", want), ("luapool", got)] {
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.trim().is_empty() {
            let head: Vec<&str> = err.lines().take(6).collect();
            report += &format!("  {who} stderr:\n    {}\n", head.join("\n    "));
        }
    }
    Some(report)
}

fn compare_all(filters: &[String]) -> ExitCode {
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.path.contains(f.as_str())))
        .collect();
    println!(
        "reference comparison on {}: {} programs",
        luapool::ENGINE,
        cases.len()
    );
    let mut failed = Vec::new();
    for case in &cases {
        let name = Path::new(&case.path)
            .file_name()
            .map_or(case.path.clone(), |n| n.to_string_lossy().into_owned());
        let label = format!("{} {}", case.path, case.args.join(" "));
        let want = reference_of(case);
        // The reference itself must run the program to its end.
        if !want.status.success() {
            println!("{label} ... REFERENCE FAILED");
            println!("{}", String::from_utf8_lossy(&want.stderr));
            failed.push(name);
            continue;
        }
        let got = luapool(case);
        match difference(&got, &want) {
            None => println!("{label} ... ok"),
            Some(report) => {
                println!("{label} ... DIFFERS\n{report}");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        println!("all {} match the reference", cases.len());
        ExitCode::SUCCESS
    } else {
        println!(
            "{} of {} differ from the reference: {}",
            failed.len(),
            cases.len(),
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}
