//! The Lua helpers (see `lua_helpers`) that differ by engine: which files this engine
//! loads, and which belong to the other engines.

/// A Lua helper whose source depends on the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EngineHelper {
    /// A trusted state's per-execution globals (see `sandbox/trusted.rs`): `fresh.lua`,
    /// or `fresh_luajit.lua` on LuaJIT.
    Fresh,
    /// `factory.lua` (LuaJIT): the factory of a wrapped chunk (see `engine/chunk.rs`).
    #[cfg(feature = "luajit")]
    Factory,
    /// `cstack.lua` (LuaJIT): the C stack checks and sealed-table refusals (see
    /// `engine/luajit.rs`).
    #[cfg(feature = "luajit")]
    CStack,
}

impl EngineHelper {
    /// Every engine helper of this build's engine.
    #[cfg(test)]
    pub(crate) const ALL: &'static [EngineHelper] = &[
        EngineHelper::Fresh,
        #[cfg(feature = "luajit")]
        EngineHelper::Factory,
        #[cfg(feature = "luajit")]
        EngineHelper::CStack,
    ];

    /// Number of variants, whatever the engine (their slots in the bytecode cache).
    pub(crate) const COUNT: usize = 3;

    /// Files under `src/lua/` that only the other engines load.
    #[cfg(all(test, feature = "luajit"))]
    pub(crate) const OTHER_ENGINES: &'static [&'static str] = &["fresh.lua"];
    /// Files under `src/lua/` that only the other engines load.
    #[cfg(all(test, not(feature = "luajit")))]
    pub(crate) const OTHER_ENGINES: &'static [&'static str] =
        &["cstack.lua", "factory.lua", "fresh_luajit.lua"];

    /// The file under `src/lua/` holding the helper's source, and the source.
    pub(crate) fn file_and_source(self) -> (&'static str, &'static str) {
        match self {
            #[cfg(not(feature = "luajit"))]
            EngineHelper::Fresh => ("fresh.lua", include_str!("../lua/fresh.lua")),
            #[cfg(feature = "luajit")]
            EngineHelper::Fresh => ("fresh_luajit.lua", include_str!("../lua/fresh_luajit.lua")),
            #[cfg(feature = "luajit")]
            EngineHelper::Factory => ("factory.lua", include_str!("../lua/factory.lua")),
            #[cfg(feature = "luajit")]
            EngineHelper::CStack => ("cstack.lua", include_str!("../lua/cstack.lua")),
        }
    }

    /// The helper's index among the engine helpers, below [`COUNT`](Self::COUNT).
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
