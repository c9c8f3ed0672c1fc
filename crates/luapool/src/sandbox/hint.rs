//! Hints on errors about what the sandbox removed: `io.open(...)` fails with Lua's
//! "attempt to index a nil value (global 'io')", to which the host adds that `io` is not
//! available in the sandbox. Globals stay `nil` (scripts may test `if io then`); only the
//! error the host reports is explained.

use crate::error::Error;

/// Globals the sandbox does not have (see the crate docs' table).
const GLOBALS: &[&str] = &[
    "io",
    "package",
    "dofile",
    "loadfile",
    "loadstring",
    "module",
    "ffi",
    "jit",
];

/// Functions the sandbox removed from the libraries it keeps, by the name Lua's message
/// gives them (`field 'getenv'`).
const FIELDS: &[(&str, &str)] = &[
    ("execute", "os.execute"),
    ("exit", "os.exit"),
    ("getenv", "os.getenv"),
    ("remove", "os.remove"),
    ("rename", "os.rename"),
    ("tmpname", "os.tmpname"),
    ("setlocale", "os.setlocale"),
    ("dump", "string.dump"),
    ("getinfo", "debug.getinfo"),
    ("getlocal", "debug.getlocal"),
    ("setlocal", "debug.setlocal"),
    ("gethook", "debug.gethook"),
    ("sethook", "debug.sethook"),
    ("getregistry", "debug.getregistry"),
    ("getupvalue", "debug.getupvalue"),
    ("setupvalue", "debug.setupvalue"),
    ("upvalueid", "debug.upvalueid"),
    ("upvaluejoin", "debug.upvaluejoin"),
    ("getuservalue", "debug.getuservalue"),
    ("setuservalue", "debug.setuservalue"),
];

/// `err` with a hint appended when it is about a name the sandbox removed.
pub(crate) fn explain(err: Error) -> Error {
    let Error::Runtime {
        mut message,
        traceback,
        value,
    } = err
    else {
        return err;
    };
    if let Some(hint) = hint(&message) {
        message.push_str("; ");
        message.push_str(&hint);
    }
    Error::Runtime {
        message,
        traceback,
        value,
    }
}

/// The hint for a message about a nil global or field, if the name is one the sandbox
/// removed. Lua 5.4/5.5 say `... a nil value (global 'io')`; LuaJIT says
/// `... global 'io' (a nil value)`.
fn hint(message: &str) -> Option<String> {
    if !message.contains("a nil value") {
        return None;
    }
    let quoted = |kind: &str| {
        let start = message.find(kind)? + kind.len();
        let len = message[start..].find('\'')?;
        Some(&message[start..start + len])
    };
    if let Some(name) = quoted("global '").filter(|n| GLOBALS.contains(n)) {
        return Some(format!(
            "'{name}' is not available in the sandbox (see docs/sandbox.md)"
        ));
    }
    let name = quoted("field '")?;
    let (_, full) = FIELDS.iter().find(|(field, _)| *field == name)?;
    Some(format!(
        "if this is {full}: it is not available in the sandbox (see docs/sandbox.md)"
    ))
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn hints_name_what_the_sandbox_removed() {
        let h = hint("t.lua:1: attempt to index a nil value (global 'io')");
        assert_eq!(
            h.as_deref(),
            Some("'io' is not available in the sandbox (see docs/sandbox.md)")
        );
        assert!(hint("t.lua:1: attempt to call global 'dofile' (a nil value)").is_some());
        let h = hint("t.lua:1: attempt to call a nil value (field 'getenv')");
        assert!(h.is_some_and(|h| h.contains("os.getenv")));
        assert_eq!(
            hint("t.lua:1: attempt to index a nil value (global 'cfg')"),
            None
        );
        assert_eq!(
            hint("t.lua:1: attempt to call a nil value (field 'frob')"),
            None
        );
    }
}
