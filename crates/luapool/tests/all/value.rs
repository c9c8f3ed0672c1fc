//! `Value`: conversions from and to Lua, serde_json, and the `json` host library.

use luapool::{Error, Script, Value, Vm};

use crate::{assert_contains, float, lua, ok, run, runtime_error, s, vm};

fn conversion_error(vm: &Vm, source: &str) -> String {
    match run(vm, source) {
        Err(Error::Conversion { message }) => message,
        other => panic!("expected a conversion error from {source}, got {other:?}"),
    }
}

/// Compares two values as JSON (maps have no order).
fn json(v: Value) -> serde_json::Value {
    serde_json::Value::try_from(v).unwrap()
}

#[test]
fn scalars_convert() {
    let vm = vm();
    assert_eq!(
        ok(&vm, "return nil, true, false, 42, -7, 1.5, 2.0, 'text', ''"),
        vec![
            Value::Nil,
            Value::Boolean(true),
            Value::Boolean(false),
            Value::Integer(42),
            Value::Integer(-7),
            Value::Number(1.5),
            float(2.0),
            s("text"),
            s(""),
        ]
    );
    if !crate::JIT {
        // 64-bit integers are Lua 5.3+; LuaJIT's numbers are doubles.
        assert_eq!(
            ok(&vm, "return math.maxinteger, math.mininteger"),
            vec![Value::Integer(i64::MAX), Value::Integer(i64::MIN)]
        );
    }
}

#[test]
fn non_utf8_bytes_are_preserved() {
    let vm = vm();
    assert_eq!(
        ok(&vm, r#"return "\xff\xfe\0a""#),
        vec![Value::String(vec![0xff, 0xfe, 0, b'a'])]
    );
    assert_eq!(ok(&vm, r#"return "\xff""#)[0].as_str(), None);
}

#[test]
fn tables_become_arrays_and_maps() {
    let vm = vm();
    let values = ok(
        &vm,
        "return { 1, 'two', 3.5 }, { a = 1 }, { 1, 2, x = 3 }, {}, { [2] = 'b' }",
    );
    assert_eq!(
        values[0],
        Value::Array(vec![Value::Integer(1), s("two"), Value::Number(3.5)])
    );
    assert_eq!(values[1], Value::Map(vec![(s("a"), Value::Integer(1))]));
    assert_eq!(values[1].get("a"), Some(&Value::Integer(1)));
    let Value::Map(mixed) = &values[2] else {
        panic!("{:?}", values[2]);
    };
    assert_eq!(mixed.len(), 3);
    assert_eq!(values[2].get("x"), Some(&Value::Integer(3)));
    assert_eq!(values[3], Value::Map(vec![]));
    assert_eq!(values[4], Value::Map(vec![(Value::Integer(2), s("b"))]));
}

#[test]
fn nested_tables_convert() {
    let vm = vm();
    let v = ok(
        &vm,
        "return { user = { name = 'ada', tags = { 'x', 'y' } }, list = { { 1 }, { 2, { 3 } } } }",
    )
    .remove(0);
    assert_eq!(
        json(v),
        serde_json::json!({ "user": { "name": "ada", "tags": ["x", "y"] }, "list": [[1], [2, [3]]] })
    );
}

#[test]
fn cyclic_tables_are_conversion_errors() {
    let vm = vm();
    let message = conversion_error(&vm, "local t = {} t.self = t return t");
    assert_contains(&message, "cyclic");
    conversion_error(&vm, "local a, b = {}, {} a[1] = b b[1] = a return a");
}

#[test]
fn deeply_nested_tables_are_conversion_errors() {
    let vm = vm();
    let message = conversion_error(&vm, "local t = {} for _ = 1, 200 do t = { t } end return t");
    assert_contains(&message, "deeper than");
    // Much deeper, without a stack overflow.
    conversion_error(
        &vm,
        "local t = {} for _ = 1, 100000 do t = { t } end return t",
    );
    // Just within the limit is fine.
    let v = ok(
        &vm,
        &format!(
            "local t = 1 for _ = 1, {} do t = {{ t }} end return t",
            luapool::Value::MAX_DEPTH
        ),
    );
    assert!(matches!(v[0], Value::Array(_)));
}

#[test]
fn metamethods_are_not_run_during_conversion() {
    let vm = vm();
    let v = ok(
        &vm,
        "local boom = function() error('metamethod ran') end
         return setmetatable({ 1, 2 }, { __index = boom, __pairs = boom, __len = boom,
                                          __newindex = boom, __call = boom, __eq = boom }),
                setmetatable({ k = 'v' }, { __pairs = boom, __index = boom })",
    );
    assert_eq!(
        v[0],
        Value::Array(vec![Value::Integer(1), Value::Integer(2)])
    );
    assert_eq!(v[1], Value::Map(vec![(s("k"), s("v"))]));
}

#[test]
fn functions_and_coroutines_are_conversion_errors() {
    let vm = vm();
    assert_contains(&conversion_error(&vm, "return print"), "function");
    assert_contains(&conversion_error(&vm, "return function() end"), "function");
    conversion_error(&vm, "return { f = function() end }");
    conversion_error(&vm, "return coroutine.create(function() end)");
    conversion_error(&vm, "return { [{}] = 1 }");
}

#[test]
fn values_round_trip_through_a_host_function() {
    let vm = vm();
    vm.register("echo", |v: Value| Ok(v)).unwrap();
    let original = Value::from(serde_json::json!({
        "n": 1, "f": 2.5, "s": "str", "b": false,
        "list": [1, [2, 3], { "deep": ["x"] }],
        "empty_map": {}
    }));
    let back: Value = vm.call("echo", original.clone()).unwrap();
    assert_eq!(json(back), json(original.clone()));
    // Through Lua code too: the script sees a real table.
    let values = vm
        .exec_with_args(
            &Script::new(
                "echo.lua",
                "local v = echo(...) return v.list[3].deep[1], #v.list, v.s, echo(v)",
            ),
            original.clone(),
        )
        .unwrap();
    assert_eq!(values[..3], [s("x"), Value::Integer(3), s("str")]);
    assert_eq!(json(values[3].clone()), json(original));
    // Non-UTF-8 strings survive the trip.
    let bytes = Value::String(vec![0, 0xff, 0x80]);
    assert_eq!(vm.call::<Value>("echo", bytes.clone()).unwrap(), bytes);
}

#[test]
fn empty_array_round_trips_before_json_is_used() {
    // `Value::Array(vec![])` becomes a Lua table carrying the array marker, so it comes
    // back as an array, whether or not a script has touched `json` on this VM yet.
    let vm = vm();
    vm.register("echo", |v: Value| Ok(v)).unwrap();
    let empty = Value::Array(vec![]);
    assert_eq!(vm.call::<Value>("echo", empty.clone()).unwrap(), empty);
    ok(&vm, "local _ = json");
    assert_eq!(vm.call::<Value>("echo", empty.clone()).unwrap(), empty);
}

#[test]
fn value_map_with_nil_key_is_refused() {
    let vm = vm();
    vm.register("echo", |v: Value| Ok(v)).unwrap();
    let bad = Value::Map(vec![(Value::Nil, Value::Integer(1))]);
    assert!(vm.call::<Value>("echo", bad).is_err());
}

#[test]
fn serde_json_round_trip() {
    let original = serde_json::json!({
        "a": [1, 2.5, "x", null, true], "b": { "c": {} }, "d": [], "e": -3
    });
    let value = Value::from(original.clone());
    assert_eq!(value.get("e"), Some(&Value::Integer(-3)));
    assert_eq!(serde_json::Value::try_from(value).unwrap(), original);
}

#[test]
fn values_without_a_json_form_are_conversion_errors() {
    for v in [
        Value::String(vec![0xff]),
        Value::Number(f64::NAN),
        Value::Number(f64::INFINITY),
        Value::Map(vec![(Value::Array(vec![]), Value::Nil)]),
        Value::Map(vec![(Value::String(vec![0xff]), Value::Nil)]),
    ] {
        let result = serde_json::Value::try_from(v.clone());
        assert!(matches!(result, Err(Error::Conversion { .. })), "{v:?}");
    }
}

#[test]
fn value_accessors() {
    assert_eq!(Value::from("x").as_str(), Some("x"));
    assert_eq!(Value::Number(3.0).as_integer(), Some(3));
    assert_eq!(Value::Number(3.5).as_integer(), None);
    assert_eq!(Value::Integer(2).as_f64(), Some(2.0));
    assert!(Value::default().is_nil());
    assert_eq!(Value::Integer(1).get("a"), None);
}

#[test]
fn json_encode_objects_arrays_and_nesting() {
    let vm = vm();
    let values = ok(
        &vm,
        r#"return json.encode({ a = 1 }), json.encode({ 1, 2, 3 }), json.encode('s'),
                  json.encode({ o = { list = { true, false, 'x' }, n = 1.5 } })"#,
    );
    assert_eq!(values[0], s(r#"{"a":1}"#));
    assert_eq!(values[1], s("[1,2,3]"));
    assert_eq!(values[2], s(r#""s""#));
    let nested: serde_json::Value = serde_json::from_str(values[3].as_str().unwrap()).unwrap();
    assert_eq!(
        nested,
        serde_json::json!({ "o": { "list": [true, false, "x"], "n": 1.5 } })
    );
}

#[test]
fn json_decode_objects_arrays_and_nesting() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            &lua(
                r#"local v = json.decode('{"a": {"b": [10, 20, {"c": "d"}]}, "n": 2.5}')
               return v.a.b[1], v.a.b[3].c, #v.a.b, v.n, math.type(v.a.b[2])"#
            )
        ),
        vec![
            Value::Integer(10),
            s("d"),
            Value::Integer(3),
            Value::Number(2.5),
            s("integer")
        ]
    );
}

#[test]
fn json_null_in_arrays_and_objects() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            r#"return json.encode({ 1, json.null, 3 }), json.encode({ a = json.null })"#
        ),
        vec![s("[1,null,3]"), s(r#"{"a":null}"#)]
    );
    assert_eq!(
        ok(
            &vm,
            r#"local a = json.decode('[1, null, 3]') local o = json.decode('{"k": null}')
               return #a, a[2] == json.null, a[3], o.k == json.null, json.encode(a), json.encode(o)"#
        ),
        vec![
            Value::Integer(3),
            Value::Boolean(true),
            Value::Integer(3),
            Value::Boolean(true),
            s("[1,null,3]"),
            s(r#"{"k":null}"#)
        ]
    );
    // json.null reaches the host as nil.
    assert_eq!(
        ok(&vm, "return json.null, json.decode('[null]')"),
        vec![Value::Nil, Value::Array(vec![Value::Nil])]
    );
}

#[test]
fn empty_arrays_and_objects_keep_their_shape() {
    let vm = vm();
    assert_eq!(
        ok(
            &vm,
            r#"return json.encode(json.decode("[]")), json.encode({}), json.encode(json.decode("{}")),
                      json.encode(json.array({})), json.encode({ list = json.decode("[]") })"#
        ),
        vec![s("[]"), s("{}"), s("{}"), s("[]"), s(r#"{"list":[]}"#)]
    );
    assert_eq!(
        ok(&vm, "return json.decode('[]'), {}"),
        vec![Value::Array(vec![]), Value::Map(vec![])]
    );
}

#[test]
fn invalid_json_is_an_error_naming_json_decode() {
    let vm = vm();
    let message = runtime_error(&vm, "local v = json.decode('{not json') return v");
    assert!(message.starts_with("t.lua:1:"), "{message}");
    assert_contains(&message, "json.decode");
    let values = ok(&vm, "local ok, e = pcall(json.decode, '[1,') return ok, e");
    assert_eq!(values[0], Value::Boolean(false));
    assert_contains(values[1].as_str().unwrap(), "json.decode");
}

#[test]
fn deep_json_nesting_is_an_error_not_a_crash() {
    let vm = vm();
    let message = runtime_error(
        &vm,
        "return json.decode(string.rep('[', 10000) .. string.rep(']', 10000))",
    );
    assert_contains(&message, "json.decode");
    let message = runtime_error(
        &vm,
        "local t = {} for _ = 1, 10000 do t = { t } end return json.encode(t)",
    );
    assert_contains(&message, "deeper than");
    // The VM survives.
    assert_eq!(ok(&vm, "return json.encode({ 1 })"), vec![s("[1]")]);
}

#[test]
fn json_encode_of_unencodable_values_is_an_error() {
    let vm = vm();
    runtime_error(&vm, "return json.encode(print)");
    runtime_error(&vm, "return json.encode('\\xff')");
    runtime_error(&vm, "return json.encode(0/0)");
}
