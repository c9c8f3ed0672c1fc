//! scratch
use mlua::{Lua, LuaOptions, StdLib};
fn main() {
    for _ in 0..3 {
        let n = 5000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            let l = Lua::new_with(StdLib::NONE, LuaOptions::default()).unwrap();
            drop(l);
        }
        println!("new_with NONE: {:?} each", t.elapsed() / n);
        let t = std::time::Instant::now();
        for _ in 0..n {
            let l = Lua::new_with(
                StdLib::STRING
                    | StdLib::TABLE
                    | StdLib::MATH
                    | StdLib::UTF8
                    | StdLib::COROUTINE
                    | StdLib::OS,
                LuaOptions::default(),
            )
            .unwrap();
            drop(l);
        }
        println!("new_with libs: {:?} each", t.elapsed() / n);
        let t = std::time::Instant::now();
        for _ in 0..n {
            let l = Lua::new();
            drop(l)
        }
        println!("new: {:?} each", t.elapsed() / n);
        let t = std::time::Instant::now();
        for _ in 0..n {
            let l = unsafe { mlua::ffi::luaL_newstate() };
            unsafe {
                mlua::ffi::luaL_openlibs(l);
                mlua::ffi::lua_close(l)
            }
        }
        println!("raw C newstate+openlibs: {:?} each", t.elapsed() / n);
    }
}
