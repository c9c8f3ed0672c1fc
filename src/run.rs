//! `luapool run`: one script on one sandboxed VM, on a current-thread runtime.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use luapool::{Error, Script, Value, Vm, VmConfig};

use crate::cli::RunArgs;

/// Runs the script and reports its results or its error; exit code 1 on error.
pub(crate) fn run(args: RunArgs) -> ExitCode {
    match execute(args) {
        Ok(results) => {
            if !results.is_empty() {
                let line: Vec<String> = results.iter().map(display).collect();
                println!("{}", line.join("\t"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error like `lua` does: `file:line: message`, then the traceback.
pub(crate) fn report(e: &Error) {
    eprintln!("luapool: {e}");
    if let Some(tb) = e.traceback() {
        eprintln!("{tb}");
    }
}

fn execute(args: RunArgs) -> Result<Vec<Value>, Error> {
    let (script, dir) = match (&args.code, &args.script) {
        (Some(code), _) => (Script::new("(command line)", code.as_str()), None),
        (None, Some(path)) if path == Path::new("-") => {
            let mut source = Vec::new();
            std::io::stdin()
                .read_to_end(&mut source)
                .map_err(|source| Error::Io {
                    path: "stdin".to_string(),
                    source,
                })?;
            (Script::new("stdin", source), None)
        }
        (None, Some(path)) => (
            Script::from_file(path)?,
            Some(path.parent().unwrap_or(Path::new(".")).to_path_buf()),
        ),
        (None, None) => {
            return Err(Error::Config {
                message: "no script given (FILE, `-` or -e CODE)".to_string(),
            })
        }
    };
    let module_dir = match dir {
        Some(d) if d.as_os_str().is_empty() => ".".into(),
        Some(d) => d,
        None => ".".into(),
    };
    let mut config = VmConfig::default()
        .with_trusted(args.trusted)
        .with_module_path(module_dir);
    config.cpu_limit = args.cpu_limit;
    config.timeout = args.timeout;
    config.memory_limit = args.memory_limit;
    let vm = Vm::new(config)?;
    let mut arg = vec![(Value::Integer(0), Value::from(script.name()))];
    for (i, a) in args.args.iter().enumerate() {
        arg.push((Value::Integer(i as i64 + 1), Value::from(a.as_str())));
    }
    vm.set_global("arg", Value::Map(arg))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::Engine {
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let script_args: Vec<String> = args.args.clone();
    runtime.block_on(vm.exec_with_args_async(&script, luapool::mlua::Variadic::from(script_args)))
}

/// Formats a result like Lua's `tostring` does for plain values.
fn display(v: &Value) -> String {
    match v {
        Value::Nil => "nil".to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e16 => {
            format!("{n:.1}")
        }
        Value::Number(n) => format!("{n}"),
        Value::String(s) => String::from_utf8_lossy(s).into_owned(),
        Value::Array(_) | Value::Map(_) => "table".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_lua() {
        assert_eq!(display(&Value::Number(2.0)), "2.0");
        assert_eq!(display(&Value::Number(0.5)), "0.5");
        assert_eq!(display(&Value::Integer(2)), "2");
        assert_eq!(display(&Value::Nil), "nil");
        assert_eq!(display(&Value::Array(vec![])), "table");
    }
}
