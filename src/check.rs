//! `luapool check`: compile files without running them.

use std::io::Write;
use std::process::ExitCode;

use luapool::{Script, Vm, VmConfig};

use crate::cli::CheckArgs;

/// Compiles every file and prints each error as `file:line: message`; exit code 1 if any
/// file failed, and `ok FILE` on standard output for each file that compiled.
pub(crate) fn check(args: CheckArgs) -> ExitCode {
    let vm = match Vm::new(VmConfig::default()) {
        Ok(vm) => vm,
        Err(e) => {
            crate::run::report(&e);
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
    for path in &args.files {
        // A failed write (a closed pipe) must not stop the check or change its verdict.
        match Script::from_file(path).and_then(|script| vm.compile(&script)) {
            Ok(()) => {
                let _ = writeln!(stdout, "ok {}", path.display());
            }
            Err(e) => {
                let _ = writeln!(stderr, "{e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
