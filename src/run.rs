//! `luapool run`: one script on one sandboxed VM, on a current-thread runtime.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use luapool::mlua::Variadic;
use luapool::{Error, Script, Value, Vm, VmConfig};

use crate::cli::{RunArgs, Source};

/// Runs the script and prints its results; on error prints the error and its traceback
/// to standard error and returns exit code 1. Usage errors exit with code 2.
pub(crate) fn run(args: RunArgs) -> ExitCode {
    let (source, script_args) = match args.source() {
        Ok(parts) => parts,
        Err(usage) => usage.exit(),
    };
    let results = match execute(&args, source, script_args) {
        Ok(results) => results,
        Err(e) => {
            report(&e);
            return ExitCode::FAILURE;
        }
    };
    if results.is_empty() {
        return ExitCode::SUCCESS;
    }
    let line: Vec<String> = results.iter().map(display).collect();
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{}", line.join("\t")).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "luapool: cannot write the results: {e}");
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

/// Loads the script, builds the VM and runs the script on it.
fn execute(args: &RunArgs, source: Source, script_args: &[String]) -> Result<Vec<Value>, Error> {
    let (script, module_dir) = load(source)?;
    let mut config = VmConfig::default()
        .with_trusted(args.trusted)
        .with_module_path(module_dir);
    config.cpu_limit = args.cpu_limit;
    config.timeout = args.timeout;
    config.memory_limit = args.memory_limit;
    let vm = Vm::new(config)?;
    vm.set_global("arg", arg_table(script.name(), script_args))?;
    luapool_http::register_host_library(&vm)?;

    // IO as well as time: `http.request` needs the IO driver.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Engine {
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let varargs = Variadic::from(script_args.to_vec());
    runtime.block_on(vm.exec_with_args_async(&script, varargs))
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
                    source,
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

/// Formats a result like Lua's `tostring`: strings raw, tables as `table`.
fn display(v: &Value) -> String {
    match v {
        Value::Nil => "nil".to_string(),
        Value::Boolean(b) => b.to_string(),
        // LuaJIT has no integers: an integral number prints as a float (`1e+15`), and
        // without Lua 5.4's `.0`.
        Value::Integer(i) if cfg!(feature = "luajit") => {
            let text = float(*i as f64);
            text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
        }
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => float(*n),
        Value::String(s) => String::from_utf8_lossy(s).into_owned(),
        Value::Array(_) | Value::Map(_) => "table".to_string(),
    }
}

/// Formats a float like Lua 5.4: C's `%.14g`, plus `.0` when that looks like an integer.
/// Lua 5.5 falls back to `%.17g` when `%.14g` does not read back as the same number.
fn float(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    let mut text = g_format(n, 14);
    if cfg!(feature = "lua55") && text.parse::<f64>().ok() != Some(n) {
        text = g_format(n, 17);
    }
    if text.bytes().all(|b| b == b'-' || b.is_ascii_digit()) {
        format!("{text}.0")
    } else {
        text
    }
}

/// C's `%.{precision}g` of a finite `n`.
fn g_format(n: f64, precision: usize) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // The exponent after rounding to `precision` significant digits decides the notation.
    let sci = format!("{n:.*e}", precision - 1);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let limit = i32::try_from(precision).unwrap_or(17);
    if !(-4..limit).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(limit - 1 - exp).unwrap_or(0);
        strip_zeros(&format!("{n:.decimals$}")).to_string()
    }
}

/// Drops trailing zeros of a decimal fraction, and the point if nothing is left after it.
fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_lua() {
        assert_eq!(display(&Value::Integer(2)), "2");
        assert_eq!(display(&Value::Nil), "nil");
        assert_eq!(display(&Value::Boolean(true)), "true");
        assert_eq!(display(&Value::from("s")), "s");
        assert_eq!(display(&Value::Array(vec![])), "table");
        assert_eq!(display(&Value::Map(vec![])), "table");
    }

    #[test]
    fn floats_format_like_lua() {
        let cases = [
            (2.0, "2.0"),
            (0.5, "0.5"),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (1e15, "1e+15"),
            (1e14, "1e+14"),
            (99999999999999.0, "99999999999999.0"),
            (1e100, "1e+100"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5e-300, "-2.5e-300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-f64::NAN, "-nan"),
        ];
        // Those %.14g cannot represent exactly: Lua 5.5 prints them with %.17g.
        let lua55 = cfg!(feature = "lua55");
        let inexact = [
            (1.0 / 3.0, "0.33333333333333", "0.33333333333333331"),
            (2f64.powi(53), "9.007199254741e+15", "9007199254740992.0"),
            (
                123456789012345.0,
                "1.2345678901234e+14",
                "123456789012345.0",
            ),
            (0.1 + 0.2, "0.3", "0.30000000000000004"),
        ];
        let inexact =
            inexact.map(|(n, lua54, lua55_text)| (n, if lua55 { lua55_text } else { lua54 }));
        for (n, want) in cases.into_iter().chain(inexact) {
            assert_eq!(float(n), want, "{n:e}");
        }
    }

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
