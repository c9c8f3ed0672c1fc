//! `luapool check`: compile files without running them.

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
    for path in &args.files {
        match Script::from_file(path).and_then(|script| vm.compile(&script)) {
            Ok(()) => println!("ok {}", path.display()),
            Err(e) => {
                eprintln!("{e}");
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
