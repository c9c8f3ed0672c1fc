//! `luapool run`: one script on one sandboxed VM, on a current-thread runtime.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use luapool::mlua::{MultiValue, Variadic};
use luapool::{Error, Isolation, Script, Value, Vm, VmConfig};

use crate::cli::{RunArgs, Source};

/// Runs the script and prints its results with the VM's own `print`, as Lua's
/// interactive interpreter does (strings raw, other values as Lua's `tostring` makes
/// them: `1.0`, `function: 0x…`); on error prints the error and its traceback to standard
/// error and returns exit code 1. Usage errors exit with code 2.
pub(crate) fn run(args: RunArgs) -> ExitCode {
    let (source, script_args) = match args.source() {
        Ok(parts) => parts,
        Err(usage) => usage.exit(),
    };
    match execute(&args, source, script_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error like `lua` does: `luapool: ` then the error (`file:line: message` for
/// syntax and runtime errors), then the traceback when there is one.
pub(crate) fn report(e: &Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "luapool: {e}");
    if let Some(tb) = e.traceback() {
        let _ = writeln!(stderr, "{tb}");
    }
}

/// Loads the script, builds the VM, runs the script on it and prints its results.
///
/// The VM has shared globals: one script runs, as in one `lua` process (a trusted VM is
/// then the interpreter itself, see `VmConfig::trusted`). `require` searches the
/// `--module-path` directories, then the script's own.
fn execute(args: &RunArgs, source: Source, script_args: &[String]) -> Result<(), Error> {
    let (script, module_dir) = load(source)?;
    let config = args
        .vm
        .apply(VmConfig::default().with_isolation(Isolation::Shared))
        .with_module_path(module_dir);
    let vm = Vm::new(config)?;
    vm.set_global("arg", arg_table(script.name(), script_args))?;
    luapool_http_client::register(&vm)?;
    if let Some(url) = &args.redis {
        let redis = luapool_redis::Redis::new(luapool_redis::RedisConfig::new(url.clone()))
            .map_err(|e| Error::Config {
                message: e.to_string(),
            })?;
        luapool_redis::register(&vm, &redis)?;
    }

    // IO as well as time: `http.request` needs the IO driver.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Engine {
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let varargs = Variadic::from(script_args.to_vec());
    runtime.block_on(async {
        let results: MultiValue = vm.eval_with_args_async(&script, varargs).await?;
        if results.is_empty() {
            return Ok(());
        }
        vm.call_async::<()>("print", results).await
    })
}

/// Reads the script and picks the directory `require` searches: the script's own
/// directory, or the current directory for `-e` and standard input.
fn load(source: Source) -> Result<(Script, PathBuf), Error> {
    let here = PathBuf::from(".");
    Ok(match source {
        Source::Code(code) => (Script::new("(command line)", code), here),
        Source::Stdin => {
            let mut text = Vec::new();
            std::io::stdin()
                .read_to_end(&mut text)
                .map_err(|source| Error::Io {
                    path: "stdin".to_string(),
                    source: source.into(),
                })?;
            (Script::new("stdin", text), here)
        }
        Source::File(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => here,
            };
            (Script::from_file(&path)?, dir)
        }
    })
}

/// The `arg` table of the `lua` interpreter: `arg[0]` is the script's name, `arg[1..]`
/// its arguments.
fn arg_table(name: &str, args: &[String]) -> Value {
    let mut arg = vec![(Value::Integer(0), Value::from(name))];
    arg.extend(
        (1..)
            .zip(args)
            .map(|(i, a)| (Value::Integer(i), Value::from(a.as_str()))),
    );
    Value::Map(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_table_has_name_at_zero() {
        let t = arg_table("s.lua", &["a".to_string()]);
        assert_eq!(
            t,
            Value::Map(vec![
                (Value::Integer(0), Value::from("s.lua")),
                (Value::Integer(1), Value::from("a")),
            ])
        );
    }
}
