//! [`Execution`]: a [`Vm`] with one execution's [`ExecOptions`], from
//! [`Vm::with_options`].

use mlua::{FromLuaMulti, IntoLuaMulti, Variadic};

use super::{ExecFuture, Target, Vm};
use crate::error::Result;
use crate::exec_options::ExecOptions;
use crate::script::Script;
use crate::value::Value;

/// A [`Vm`] with [`ExecOptions`]: each method runs one execution with those options
/// (its own limits within the VM's, its [`Context`](crate::Context)). The methods are
/// [`Vm`]'s, with arguments everywhere.
///
/// ```
/// use std::time::Duration;
/// use luapool::{ExecOptions, Script, Value, Vm, VmConfig};
///
/// let vm = Vm::new(VmConfig::default().with_timeout(Duration::from_secs(5)))?;
/// let opts = ExecOptions::new().with_timeout(Duration::from_millis(200));
/// let run = vm.with_options(&opts);
/// assert_eq!(run.exec(&Script::new("a", "return ... * 2"), 21)?, vec![Value::Integer(42)]);
/// let n: i64 = run.eval(&Script::new("b", "return select('#', ...)"), (1, 2, 3))?;
/// assert_eq!(n, 3);
/// # Ok::<(), luapool::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Execution<'a> {
    vm: &'a Vm,
    options: &'a ExecOptions,
}

impl Vm {
    /// This VM with `options` for the executions started through the returned
    /// [`Execution`]: limits within the VM's, and a [`Context`](crate::Context) for host
    /// functions.
    pub fn with_options<'a>(&'a self, options: &'a ExecOptions) -> Execution<'a> {
        Execution { vm: self, options }
    }
}

impl Execution<'_> {
    /// Runs a chunk with `args` as `...`; see [`Vm::exec`].
    ///
    /// # Errors
    /// As [`Vm::exec`], and [`Error::Config`](crate::Error::Config) for a limit the VM
    /// cannot enforce (see [`ExecOptions`]).
    pub fn exec(self, script: &Script, args: impl IntoLuaMulti) -> Result<Vec<Value>> {
        let values: Variadic<Value> = self.eval(script, args)?;
        Ok(values.into())
    }

    /// Async variant of [`exec`](Execution::exec).
    ///
    /// # Errors
    /// As [`exec`](Execution::exec).
    pub async fn exec_async(self, script: &Script, args: impl IntoLuaMulti) -> Result<Vec<Value>> {
        let values: Variadic<Value> = self.eval_async(script, args).await?;
        Ok(values.into())
    }

    /// Runs a chunk with `args` as `...` and converts its results; see [`Vm::eval`].
    ///
    /// # Errors
    /// As [`exec`](Execution::exec).
    pub fn eval<R: FromLuaMulti>(self, script: &Script, args: impl IntoLuaMulti) -> Result<R> {
        self.vm
            .plan_with(Target::Chunk(script), args, false, Some(self.options))?
            .run()
    }

    /// Async variant of [`eval`](Execution::eval).
    ///
    /// # Errors
    /// As [`exec`](Execution::exec).
    pub fn eval_async<R: FromLuaMulti>(
        self,
        script: &Script,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'static, R> {
        ExecFuture::new(
            self.vm
                .plan_with(Target::Chunk(script), args, true, Some(self.options)),
        )
    }

    /// Calls the global function `name`; see [`Vm::call`].
    ///
    /// # Errors
    /// As [`Vm::call`], and as [`exec`](Execution::exec).
    pub fn call<R: FromLuaMulti>(self, name: &str, args: impl IntoLuaMulti) -> Result<R> {
        self.vm
            .plan_with(Target::Global(name), args, false, Some(self.options))?
            .run()
    }

    /// Async variant of [`call`](Execution::call).
    ///
    /// # Errors
    /// As [`call`](Execution::call).
    pub fn call_async<'n, R: FromLuaMulti>(
        self,
        name: &'n str,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'n, R> {
        ExecFuture::new(
            self.vm
                .plan_with(Target::Global(name), args, true, Some(self.options)),
        )
    }

    /// Runs `script`, then calls the global function `name` it defined; see
    /// [`Vm::call_in`].
    ///
    /// # Errors
    /// As [`call`](Execution::call).
    pub fn call_in<R: FromLuaMulti>(
        self,
        script: &Script,
        name: &str,
        args: impl IntoLuaMulti,
    ) -> Result<R> {
        self.vm
            .plan_with(
                Target::ChunkThenCall(script, name),
                args,
                false,
                Some(self.options),
            )?
            .run()
    }

    /// Async variant of [`call_in`](Execution::call_in).
    ///
    /// # Errors
    /// As [`call`](Execution::call).
    pub fn call_in_async<'n, R: FromLuaMulti>(
        self,
        script: &Script,
        name: &'n str,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'n, R> {
        ExecFuture::new(self.vm.plan_with(
            Target::ChunkThenCall(script, name),
            args,
            true,
            Some(self.options),
        ))
    }

    /// Calls a Lua function value an earlier execution handed to the host; see
    /// [`Vm::call_function`].
    ///
    /// # Errors
    /// As [`Vm::call_function`], and as [`exec`](Execution::exec).
    pub fn call_function<R: FromLuaMulti>(
        self,
        func: &mlua::Function,
        args: impl IntoLuaMulti,
    ) -> Result<R> {
        self.vm
            .plan_with(Target::Function(func), args, false, Some(self.options))?
            .run()
    }

    /// Async variant of [`call_function`](Execution::call_function).
    ///
    /// # Errors
    /// As [`call_function`](Execution::call_function).
    pub fn call_function_async<R: FromLuaMulti>(
        self,
        func: &mlua::Function,
        args: impl IntoLuaMulti,
    ) -> ExecFuture<'static, R> {
        ExecFuture::new(
            self.vm
                .plan_with(Target::Function(func), args, true, Some(self.options)),
        )
    }
}
