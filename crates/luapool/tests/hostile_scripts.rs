//! A randomized harness of hostile scripts: Lua programs generated from a small grammar
//! of dangerous constructs (infinite loops, `pcall`/`xpcall`, coroutines, to-be-closed
//! variables, metamethods whose bodies loop or are engine functions, error objects with
//! looping `__tostring`, refused `__gc`, huge repetitions, `load`, deep recursion,
//! doubling concatenation, JSON of hostile tables), nested one to three levels, each run
//! on a [`Vm`] with a CPU limit, a wall-clock timeout and a memory limit.
//!
//! Every execution must return (`Ok` or an error of an expected kind) within [`BOUND`],
//! and the VM must still run `return 1` afterwards and never be poisoned (nothing
//! outlives an execution here, so not even a memory-limit hit poisons it). A script that
//! never returns is reported (the script is printed) and the process aborted after
//! [`HANG`], rather than hanging the suite.
//!
//! Knobs (environment variables):
//! - `LUAPOOL_FUZZ_CASES`: cases per randomized test (default 48). For a longer run:
//!   `LUAPOOL_FUZZ_CASES=2000 cargo test -p luapool --release --test hostile_scripts`.
//! - `PROPTEST_RNG_SEED` (proptest's own): the seed; without it the seed is fixed, so
//!   that CI runs the same cases every time. `LUAPOOL_FUZZ_RANDOM=1` draws a new one.
//!
//! Not generated, because they are documented as unbounded (docs/limits.md, "What
//! cannot be interrupted"): pathological pattern matching (`string.find/match/gsub` with
//! patterns like `('.-'):rep(n)`) and `table.sort` of a huge plain table.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use luapool::{Error, Script, Value, Vm, VmConfig};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngSeed, TestRunner};

/// CPU limit per execution.
const CPU: Duration = Duration::from_millis(50);
/// Wall-clock timeout per execution.
const TIMEOUT: Duration = Duration::from_millis(200);
/// Memory limit per VM.
const MEMORY: usize = 8 << 20;
/// Every execution must return within this (the timeout plus a loose grace, so that the
/// harness is not flaky on a loaded 2-core machine).
const BOUND: Duration = Duration::from_secs(1);
/// An execution still running after this is a hang: print it and abort.
const HANG: Duration = Duration::from_secs(30);

const LUAJIT: bool = cfg!(feature = "luajit");

/// FINDING (excluded, see [`excluded`]): on Lua 5.4 a `__call` chain that loops,
/// `local mt = {} local t = setmetatable({}, mt) mt.__call = t t()`, runs in one C loop
/// (`luaD_precall` -> `tryfuncTM`, which moves every argument up one slot per link and
/// pushes the table again as an argument), quadratic in the stack size, until the stack
/// overflows or the memory limit refuses to grow it: no instruction runs, so the CPU
/// limit and the timeout fire only when it returns (after 2.4 s with a 1 MiB memory limit,
/// 206 s with 8 MiB, debug build). Lua 5.5 stops such a chain after 15 links ("'__call'
/// chain too long").
const CALL_CHAIN_ESCAPES: bool = cfg!(feature = "lua54");

/// FIXED (no longer excluded): on Lua 5.4 and 5.5 a to-be-closed variable in a
/// `coroutine.wrap` coroutine that raises an error escaped every limit while the error
/// closed it (the sandbox's `wrap` now tells the interrupt which coroutine runs the
/// `__close`; `close_handlers_are_under_the_limit` in `hardening.rs` has the repro).
const WRAP_CLOSE_ESCAPES: bool = false;

/// True if the node has a to-be-closed variable in its own coroutine (not counting the
/// ones inside nested coroutines' bodies, which a further `CoWrap` catches).
fn has_close(node: &Node) -> bool {
    match node {
        Node::Close(..) => true,
        Node::Meta(_, n)
        | Node::ErrToString(n)
        | Node::ReturnMeta(n)
        | Node::Pcall(n)
        | Node::Load(n) => has_close(n),
        Node::Xpcall(f, h) => has_close(f) || has_close(h),
        Node::Seq(nodes) => nodes.iter().any(has_close),
        // Closing a coroutine of its own (resume, then close) is bounded; a wrapped one
        // is checked by `excluded` on its own.
        Node::CoResume(..) | Node::CoClose(..) | Node::CoWrap(..) => false,
        Node::Leaf(_) | Node::HugeLen(..) | Node::MetaEngine(..) => false,
    }
}

/// Constructs the harness does not generate because they escape the limits (findings to
/// fix in the library; each is described where it is tested).
fn excluded(node: &Node) -> bool {
    match node {
        Node::MetaEngine(Meta::Call, "a") => CALL_CHAIN_ESCAPES,
        Node::CoWrap(n) if WRAP_CLOSE_ESCAPES && has_close(n) => true,
        Node::Leaf(_) | Node::HugeLen(..) | Node::MetaEngine(..) => false,
        Node::Meta(_, n)
        | Node::ErrToString(n)
        | Node::ReturnMeta(n)
        | Node::Pcall(n)
        | Node::CoWrap(n)
        | Node::CoResume(n, _)
        | Node::CoClose(n)
        | Node::Load(n) => excluded(n),
        Node::Xpcall(a, b) | Node::Close(a, b) => excluded(a) || excluded(b),
        Node::Seq(nodes) => nodes.iter().any(excluded),
    }
}

fn cases() -> u32 {
    std::env::var("LUAPOOL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

/// The seed: fixed, so that CI runs the same cases every time, unless
/// `PROPTEST_RNG_SEED` names one (`LUAPOOL_FUZZ_RANDOM=1` draws a new one per run).
fn seed() -> RngSeed {
    if std::env::var_os("LUAPOOL_FUZZ_RANDOM").is_some() {
        return RngSeed::Random;
    }
    match Config::default().rng_seed {
        RngSeed::Random => RngSeed::Fixed(20_261_201),
        fixed => fixed,
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 512,
        rng_seed: seed(),
        ..Config::default()
    })
}

fn new_vm() -> Vm {
    Vm::new(
        VmConfig::default()
            .with_cpu_limit(CPU)
            .with_timeout(TIMEOUT)
            .with_memory_limit(MEMORY),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// The grammar.

/// A metamethod, with how a script triggers it.
#[derive(Debug, Clone, Copy)]
enum Meta {
    Index,
    NewIndex,
    Len,
    ToString,
    Format,
    Call,
    Eq,
    Concat,
    Lt,
    SortLt,
    Add,
    Pairs,
}

impl Meta {
    fn name(self) -> &'static str {
        match self {
            Meta::Index => "__index",
            Meta::NewIndex => "__newindex",
            Meta::Len => "__len",
            Meta::ToString | Meta::Format => "__tostring",
            Meta::Call => "__call",
            Meta::Eq => "__eq",
            Meta::Concat => "__concat",
            Meta::Lt | Meta::SortLt => "__lt",
            Meta::Add => "__add",
            Meta::Pairs => "__pairs",
        }
    }

    /// What a Lua metamethod of this kind returns.
    fn ret(self) -> &'static str {
        match self {
            Meta::Index | Meta::Len | Meta::Add => "return 1",
            Meta::ToString | Meta::Format | Meta::Concat => "return 's'",
            Meta::Eq | Meta::Lt | Meta::SortLt => "return true",
            Meta::Pairs => "return next, {}",
            Meta::NewIndex | Meta::Call => "",
        }
    }

    /// Statements that trigger the metamethod on `a` (and `b`, with the same metatable).
    fn trigger(self) -> &'static str {
        match self {
            Meta::Index => "local _ = a.x",
            Meta::NewIndex => "a.x = 1",
            Meta::Len => "local _ = #a",
            Meta::ToString => "local _ = tostring(a)",
            Meta::Format => "local _ = string.format('%s', a)",
            Meta::Call => "a()",
            Meta::Eq => "local _ = a == b",
            Meta::Concat => "local _ = a .. 'x'",
            Meta::Lt => "local _ = a < b",
            Meta::SortLt => "table.sort({a, b, a, b, a, b})",
            Meta::Add => "local _ = a + 1",
            Meta::Pairs => "for _ in pairs(a) do end",
        }
    }
}

fn meta() -> impl Strategy<Value = Meta> {
    prop_oneof![
        Just(Meta::Index),
        Just(Meta::NewIndex),
        Just(Meta::Len),
        Just(Meta::ToString),
        Just(Meta::Format),
        Just(Meta::Call),
        Just(Meta::Eq),
        Just(Meta::Concat),
        Just(Meta::Lt),
        Just(Meta::SortLt),
        Just(Meta::Add),
        Just(Meta::Pairs),
    ]
}

/// Engine functions (and the table itself) used directly as metamethods.
const ENGINE_FNS: &[&str] = &[
    "table.concat",
    "rawlen",
    "tostring",
    "type",
    "table.unpack",
    "string.rep",
    "next",
    "select",
    "pcall",
    "error",
    "setmetatable",
    "getmetatable",
    "rawequal",
    "coroutine.wrap",
    "a", // the table itself: a metamethod chain that loops
];

/// The table operations that loop over `#t` when `__len` says 2^53.
const HUGE_LEN_OPS: &[&str] = &[
    "table.insert(t, 'x')",
    "table.insert(t, 1, 'x')",
    "table.remove(t)",
    "table.remove(t, 1)",
    "table.concat(t)",
    "table.concat(t, ',', 1, 2^40)",
    "table.sort(t)",
    "table.sort(t, function(x, y) return false end)",
    "table.unpack(t)",
    "for _ in ipairs(t) do end",
    "json.encode(t)",
];

/// What `__index` of the huge-`__len` table is.
const HUGE_LEN_INDEX: &[&str] = &[
    "nil",
    "function() return 'x' end",
    "function(_, k) return k end",
    "rawlen",
    "string.lower",
];

/// What `__newindex` of the huge-`__len` table is.
const HUGE_LEN_NEWINDEX: &[&str] = &["nil", "function() end", "rawset", "rawequal"];

/// Constructs without a body.
const LEAVES: &[&str] = &[
    // Loops.
    "while true do end",
    "::top:: goto top",
    "local n = 0 while true do n = n + 1 end",
    "for i = 1, 1e5 do end",
    "for i = 1, 1e8 do end",
    "repeat until false",
    // Recursion.
    "local function f(n) return f(n + 1) + 1 end f(1)",
    "local function f() return f() end f()",
    "local function f() pcall(f) end f()",
    "local function f() xpcall(f, f) end f()",
    "local function f() local co = coroutine.wrap(f) co() end f()",
    "local function f(...) return f(1, ...) end f()",
    // Huge repetitions.
    "local _ = string.rep('x', 2^10)",
    "local _ = string.rep('x', 2^20)",
    "local _ = string.rep('x', 2^24)",
    "local _ = string.rep('x', 2^40)",
    "local _ = string.rep('', 2^53)",
    "local _ = string.rep('', 2^53, '')",
    "local _ = string.rep('', 2^53, 'x')",
    "local _ = string.rep('x', 2^20):rep(2^20)",
    "table.move({}, 1, 2^53, 1, {})",
    "table.move({}, 1, 2^53, 2)",
    "table.move({1, 2, 3}, 1, 2^53, 2^53)",
    "local _ = table.unpack({}, 1, 2^31)",
    "local _ = select('#', table.unpack({}, 1, 1e6))",
    "local _ = table.concat({}, 'x', 1, 2^53)",
    // Doubling and growth.
    "local s = 'x' while true do s = s .. s end",
    "local s = 'x' for i = 1, 40 do s = s .. s end",
    "local t = {} while true do t[#t + 1] = {} end",
    "local t = {} for i = 1, 1e7 do t[i] = i end",
    "local t = {} while true do t = {t, t} end",
    // `__gc` is refused, whichever way it is put.
    "setmetatable({}, {__gc = function() while true do end end})",
    "setmetatable({}, {__gc = true})",
    "local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end",
    "setmetatable({}, setmetatable({}, {__index = {__gc = function() while true do end end}}))",
    // load.
    "local f = load(function() return '-- x\\n' end)",
    "local i = 0 local f = load(function() i = i + 1 return string.rep('-', i) .. '\\n' end)",
    "local f = load(function() return 'x = 1 ' end)",
    "local f = load('x = = 1')",
    "local f = load(string.rep('(', 1e5))",
    "local f = load('return ' .. string.rep('{', 1e4))",
    "local f = load(string.rep('x = 1 ', 1e6))",
    "local f = load('\\27Lua')",
    // Errors and the collector.
    "error('boom')",
    "error({})",
    "error(nil)",
    "error(setmetatable({}, {__index = function() while true do end end}))",
    "collectgarbage('collect')",
    "local _ = collectgarbage('count')",
    // JSON of hostile values.
    "local t = {} t[1] = t json.encode(t)",
    "local t = {} for i = 1, 1e5 do t = {t} end json.encode(t)",
    "json.decode(string.rep('[', 1e5))",
    "json.decode(string.rep('[', 1e3) .. string.rep(']', 1e3))",
    "json.encode(string.rep('x', 2^22))",
    // Coroutines on their own.
    "coroutine.yield(1)",
    "while true do coroutine.yield() end",
    "local co = coroutine.running() coroutine.resume(co)",
    "local co = coroutine.wrap(function() while true do coroutine.yield() end end) while true do co() end",
];

/// Leaves of the async grammar only.
const ASYNC_LEAVES: &[&str] = &[
    "sleep(0)",
    "sleep(0) sleep(0)",
    "while true do sleep(0) end",
    "sleep(5)",
    "for i = 1, 100 do sleep(0) end",
];

/// Leaves for Lua 5.4 and 5.5 only.
const LUA54_LEAVES: &[&str] = &[
    "local co = coroutine.running() coroutine.close(co)",
    "local n = 2^53 // 1 local _ = string.rep('', n)",
];

#[derive(Debug, Clone)]
enum Node {
    Leaf(&'static str),
    /// `t` with `__len` returning 2^53, its `__index`, its `__newindex`, then an operation.
    HugeLen(&'static str, &'static str, &'static str),
    /// A metamethod whose body is the node.
    Meta(Meta, Box<Node>),
    /// An engine function as a metamethod.
    MetaEngine(Meta, &'static str),
    /// An error object whose `__tostring` runs the node.
    ErrToString(Box<Node>),
    /// A table returned to the host whose metamethods run the node.
    ReturnMeta(Box<Node>),
    Pcall(Box<Node>),
    Xpcall(Box<Node>, Box<Node>),
    CoWrap(Box<Node>),
    /// Resumed once, three times, or until dead.
    CoResume(Box<Node>, u8),
    /// Resumed once, then closed (Lua 5.4/5.5).
    CoClose(Box<Node>),
    /// A to-be-closed variable whose `__close` runs the first node, in a scope running
    /// the second (Lua 5.4/5.5).
    Close(Box<Node>, Box<Node>),
    /// `load` of the node's source, then a call.
    Load(Box<Node>),
    Seq(Vec<Node>),
}

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(list)
}

fn leaf(async_: bool) -> BoxedStrategy<Node> {
    let mut leaves: Vec<&'static str> = LEAVES.to_vec();
    if !LUAJIT {
        leaves.extend_from_slice(LUA54_LEAVES);
    }
    let mut options: Vec<(u32, BoxedStrategy<Node>)> = vec![
        (
            6,
            proptest::sample::select(leaves)
                .prop_map(Node::Leaf)
                .boxed(),
        ),
        (
            2,
            (
                pick(HUGE_LEN_INDEX),
                pick(HUGE_LEN_NEWINDEX),
                pick(HUGE_LEN_OPS),
            )
                .prop_map(|(i, n, op)| Node::HugeLen(i, n, op))
                .boxed(),
        ),
        (
            2,
            (meta(), pick(ENGINE_FNS))
                .prop_map(|(m, f)| Node::MetaEngine(m, f))
                .prop_filter("excluded construct", |n| !excluded(n))
                .boxed(),
        ),
    ];
    if async_ {
        options.push((4, pick(ASYNC_LEAVES).prop_map(Node::Leaf).boxed()));
    }
    Union::new_weighted(options).boxed()
}

fn node(async_: bool) -> BoxedStrategy<Node> {
    leaf(async_)
        .prop_recursive(3, 16, 3, |inner| {
            let b = |s: BoxedStrategy<Node>| s.prop_map(Box::new);
            let mut options: Vec<BoxedStrategy<Node>> = vec![
                (meta(), b(inner.clone()))
                    .prop_map(|(m, n)| Node::Meta(m, n))
                    .boxed(),
                b(inner.clone()).prop_map(Node::ErrToString).boxed(),
                b(inner.clone()).prop_map(Node::ReturnMeta).boxed(),
                b(inner.clone()).prop_map(Node::Pcall).boxed(),
                (b(inner.clone()), b(inner.clone()))
                    .prop_map(|(f, h)| Node::Xpcall(f, h))
                    .boxed(),
                b(inner.clone()).prop_map(Node::CoWrap).boxed(),
                (b(inner.clone()), 0u8..3)
                    .prop_map(|(n, k)| Node::CoResume(n, k))
                    .boxed(),
                b(inner.clone()).prop_map(Node::Load).boxed(),
                proptest::collection::vec(inner.clone(), 2..4)
                    .prop_map(Node::Seq)
                    .boxed(),
            ];
            if !LUAJIT {
                options.push(b(inner.clone()).prop_map(Node::CoClose).boxed());
                options.push(
                    (b(inner.clone()), b(inner.clone()))
                        .prop_map(|(c, s)| Node::Close(c, s))
                        .boxed(),
                );
            }
            Union::new(options)
        })
        .boxed()
}

/// A Lua string literal holding `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render(node: &Node) -> String {
    let body = match node {
        Node::Leaf(s) => (*s).to_string(),
        Node::HugeLen(index, newindex, op) => format!(
            "local t = setmetatable({{}}, {{__len = function() return 2^53 end, \
             __index = {index}, __newindex = {newindex}}})\n{op}"
        ),
        Node::Meta(m, n) => format!(
            "local mt = {{{name} = function(...)\n{body}\n{ret} end}}\n\
             local a, b = setmetatable({{}}, mt), setmetatable({{}}, mt)\n{trigger}",
            name = m.name(),
            body = render(n),
            ret = m.ret(),
            trigger = m.trigger(),
        ),
        Node::MetaEngine(m, f) => format!(
            "local mt = {{}} local a, b = setmetatable({{}}, mt), setmetatable({{}}, mt)\n\
             mt.{name} = {f}\n{trigger}",
            name = m.name(),
            trigger = m.trigger(),
        ),
        Node::ErrToString(n) => format!(
            "error(setmetatable({{}}, {{__tostring = function()\n{}\nreturn 'e' end}}))",
            render(n)
        ),
        Node::ReturnMeta(n) => format!(
            "local function f(...)\n{}\nend\n\
             do return setmetatable({{1, 2}}, {{__index = f, __len = f, __pairs = f, \
             __tostring = f, __eq = f, __newindex = f}}) end",
            render(n)
        ),
        Node::Pcall(n) => format!("pcall(function()\n{}\nend)", render(n)),
        Node::Xpcall(f, h) => format!(
            "xpcall(function()\n{}\nend, function(e)\n{}\nreturn e end)",
            render(f),
            render(h)
        ),
        Node::CoWrap(n) => format!(
            "local co = coroutine.wrap(function()\n{}\nend)\nco() co()",
            render(n)
        ),
        Node::CoResume(n, k) => {
            let resume = match k {
                0 => "coroutine.resume(co)",
                1 => "for i = 1, 3 do coroutine.resume(co) end",
                _ => "while coroutine.status(co) ~= 'dead' do coroutine.resume(co) end",
            };
            format!(
                "local co = coroutine.create(function()\n{}\nend)\n{resume}",
                render(n)
            )
        }
        Node::CoClose(n) => format!(
            "local co = coroutine.create(function()\n{}\nend)\n\
             coroutine.resume(co) coroutine.close(co)",
            render(n)
        ),
        Node::Close(c, s) => format!(
            "local x <close> = setmetatable({{}}, {{__close = function()\n{}\nend}})\n{}",
            render(c),
            render(s)
        ),
        Node::Load(n) => format!("local f = load({})\nif f then f() end", quote(&render(n))),
        Node::Seq(nodes) => nodes.iter().map(render).collect::<Vec<_>>().join("\n"),
    };
    // Each construct in its own block: its locals do not pile up, and a `return` in it
    // is the block's last statement.
    format!("do\n{body}\nend")
}

/// A generated script; shown as Lua source when a case fails.
#[derive(Clone)]
struct Lua(String);

impl std::fmt::Debug for Lua {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n----- script ({}) -----\n{}\n-----",
            luapool::ENGINE,
            self.0
        )
    }
}

fn scripts(async_: bool) -> impl Strategy<Value = Lua> {
    node(async_)
        .prop_filter("excluded construct", |n| !excluded(n))
        .prop_map(|n| Lua(render(&n)))
}

// ---------------------------------------------------------------------------------------
// Running and checking.

/// Aborts the process, printing the script, if it is not dropped within [`HANG`].
struct Watchdog(
    Option<mpsc::Sender<()>>,
    Option<std::thread::JoinHandle<()>>,
);

impl Watchdog {
    fn arm(source: &str) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let source = source.to_string();
        let handle = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(HANG) {
                eprintln!(
                    "hostile script still running after {HANG:?} ({}), aborting:\n{source}",
                    luapool::ENGINE
                );
                std::process::abort();
            }
        });
        Watchdog(Some(tx), Some(handle))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

thread_local! {
    /// How the executions of the current test ended, printed by [`print_outcomes`] (shown
    /// with `--nocapture`).
    static OUTCOMES: RefCell<BTreeMap<&'static str, u32>> = const { RefCell::new(BTreeMap::new()) };
}

fn outcome(result: &luapool::Result<Vec<Value>>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::CpuLimit { .. }) => "cpu limit",
        Err(Error::Timeout { .. }) => "timeout",
        Err(Error::MemoryLimit { .. }) => "memory limit",
        Err(Error::Runtime { .. }) => "runtime error",
        Err(Error::Conversion { .. }) => "conversion error",
        Err(_) => "other",
    }
}

fn print_outcomes(test: &str) {
    OUTCOMES.with(|o| {
        println!("{test} ({}): {:?}", luapool::ENGINE, o.borrow());
        o.borrow_mut().clear();
    });
}

/// Checks one execution's outcome and the VM after it; replaces a poisoned VM with a
/// fresh one. Panics (with the script) on a violation.
fn check(
    vm: &mut Vm,
    source: &str,
    result: luapool::Result<Vec<Value>>,
    elapsed: Duration,
    after: impl FnOnce(&Vm) -> luapool::Result<Vec<Value>>,
) {
    let engine = luapool::ENGINE;
    OUTCOMES.with(|o| *o.borrow_mut().entry(outcome(&result)).or_default() += 1);
    assert!(
        elapsed < BOUND,
        "{engine}: returned after {elapsed:?} ({result:?}):\n{source}"
    );
    match &result {
        Ok(_)
        | Err(Error::CpuLimit { .. })
        | Err(Error::Timeout { .. })
        | Err(Error::MemoryLimit { .. })
        | Err(Error::Runtime { .. })
        | Err(Error::CopyLimit { .. })
        | Err(Error::Conversion { .. }) => {}
        Err(other) => panic!("{engine}: unexpected error {other:?}:\n{source}"),
    }
    if let Err(Error::CpuLimit { limit }) = &result {
        assert_eq!(*limit, CPU);
    }
    // Nothing outlives an execution here (per-execution globals, no module): no limit
    // poisons the VM, not even the memory limit (Lua's state is consistent after it).
    let poison = vm.poisoned();
    assert_eq!(
        poison, None,
        "{engine}: poisoned {poison:?} after {result:?}:\n{source}"
    );
    // Poisoned or not, the VM still runs a trivial script.
    let start = Instant::now();
    let next = after(vm);
    assert!(
        matches!(&next, Ok(v) if v == &[Value::Integer(1)]),
        "{engine}: after {result:?}, `return 1` gave {next:?}:\n{source}"
    );
    assert!(start.elapsed() < BOUND);
    if poison.is_some() {
        *vm = new_vm();
    }
}

fn run_sync(vm: &mut Vm, source: &str) {
    let _watchdog = Watchdog::arm(source);
    let start = Instant::now();
    let result = vm.exec(&Script::new("hostile.lua", source));
    let elapsed = start.elapsed();
    check(vm, source, result, elapsed, |vm| {
        vm.exec(&Script::new("one.lua", "return 1"))
    });
}

fn run_async(rt: &tokio::runtime::Runtime, vm: &mut Vm, source: &str) {
    let _watchdog = Watchdog::arm(source);
    let start = Instant::now();
    let result = rt.block_on(vm.exec_async(&Script::new("hostile.lua", source)));
    let elapsed = start.elapsed();
    check(vm, source, result, elapsed, |vm| {
        rt.block_on(vm.exec_async(&Script::new("one.lua", "return 1")))
    });
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn generated_scripts_compile() {
    // The generator's output is valid Lua for the engine (a syntax error would make the
    // other tests vacuous): compile without running.
    let vm = Vm::new(VmConfig::default()).unwrap();
    runner()
        .run(&scripts(true), |Lua(source)| {
            let compiled = vm.compile(&Script::new("hostile.lua", source.as_str()));
            prop_assert!(compiled.is_ok(), "{compiled:?}:\n{source}");
            Ok(())
        })
        .unwrap();
}

#[test]
fn fresh_vm_per_script() {
    runner()
        .run(&scripts(false), |Lua(source)| {
            let mut vm = new_vm();
            run_sync(&mut vm, &source);
            Ok(())
        })
        .unwrap();
    print_outcomes("fresh_vm_per_script");
}

#[test]
fn reused_vm_survives_hostile_scripts() {
    let vm = RefCell::new(new_vm());
    runner()
        .run(&scripts(false), |Lua(source)| {
            run_sync(&mut vm.borrow_mut(), &source);
            Ok(())
        })
        .unwrap();
    print_outcomes("reused_vm_survives_hostile_scripts");
}

#[test]
fn async_hostile_scripts() {
    let rt = current_thread();
    let vm = RefCell::new(new_vm());
    let mut config_runner = TestRunner::new(Config {
        cases: cases() / 2,
        failure_persistence: None,
        max_shrink_iters: 512,
        rng_seed: seed(),
        ..Config::default()
    });
    config_runner
        .run(&scripts(true), |Lua(source)| {
            run_async(&rt, &mut vm.borrow_mut(), &source);
            Ok(())
        })
        .unwrap();
    print_outcomes("async_hostile_scripts");
}

/// Every leaf and a few fixed compositions, once each, whatever the random draw.
#[test]
fn every_construct_once() {
    let mut sources: Vec<String> = LEAVES.iter().map(|s| s.to_string()).collect();
    if !LUAJIT {
        sources.extend(LUA54_LEAVES.iter().map(|s| s.to_string()));
    }
    for index in HUGE_LEN_INDEX {
        for op in HUGE_LEN_OPS {
            sources.push(render(&Node::HugeLen(index, "nil", op)));
        }
    }
    for newindex in HUGE_LEN_NEWINDEX {
        sources.push(render(&Node::HugeLen(
            "nil",
            newindex,
            "table.insert(t, 1, 'x')",
        )));
    }
    let spin = || Box::new(Node::Leaf("while true do end"));
    let metas = [
        Meta::Index,
        Meta::NewIndex,
        Meta::Len,
        Meta::ToString,
        Meta::Format,
        Meta::Call,
        Meta::Eq,
        Meta::Concat,
        Meta::Lt,
        Meta::SortLt,
        Meta::Add,
        Meta::Pairs,
    ];
    for m in metas {
        sources.push(render(&Node::Meta(m, spin())));
        for f in ENGINE_FNS {
            let node = Node::MetaEngine(m, f);
            if !excluded(&node) {
                sources.push(render(&node));
            }
        }
    }
    sources.push(render(&Node::ErrToString(spin())));
    sources.push(render(&Node::ReturnMeta(spin())));
    sources.push(render(&Node::Xpcall(
        Box::new(Node::Leaf("error('x')")),
        spin(),
    )));
    if !LUAJIT {
        sources.push(render(&Node::CoClose(Box::new(Node::Close(
            spin(),
            Box::new(Node::Leaf("coroutine.yield()")),
        )))));
        sources.push(render(&Node::Close(
            spin(),
            Box::new(Node::Leaf("error('x')")),
        )));
    }
    let mut vm = new_vm();
    for source in &sources {
        run_sync(&mut vm, source);
    }
    let rt = current_thread();
    let mut vm = new_vm();
    for source in ASYNC_LEAVES
        .iter()
        .map(|s| s.to_string())
        .chain(sources.into_iter().take(20))
    {
        run_async(&rt, &mut vm, &source);
    }
    print_outcomes("every_construct_once");
}

#[test]
fn gc_metamethods_are_refused() {
    let vm = new_vm();
    for source in [
        "setmetatable({}, {__gc = function() end})",
        "setmetatable({}, {__gc = true})",
        "setmetatable({}, {__gc = false})",
    ] {
        let result = vm.exec(&Script::new("gc.lua", source));
        assert!(
            matches!(&result, Err(Error::Runtime { message, .. }) if message.contains("__gc")),
            "{source}: {result:?}"
        );
    }
}
