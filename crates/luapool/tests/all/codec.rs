//! The host library's `codec` and `crypto` (issue 17): known vectors, errors that name
//! the function, and host buffers bounded by the copy budget.

use luapool::{Value, Vm, VmConfig};

use crate::{assert_contains, ok, runtime_error, vm};

/// The script's results as strings.
fn strings(vm: &Vm, source: &str) -> Vec<String> {
    ok(vm, source)
        .into_iter()
        .map(|v| match v {
            Value::String(s) => String::from_utf8_lossy(&s).into_owned(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn sha256_of_known_inputs() {
    let got = strings(
        &vm(),
        "return codec.hex_encode(crypto.sha256('')), crypto.sha256_hex('abc'), #crypto.sha256('x')",
    );
    assert_eq!(
        got,
        [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "Integer(32)",
        ]
    );
}

/// RFC 4231, test cases 1, 2, 3 and 6 (a key longer than the block).
#[test]
fn hmac_sha256_rfc4231_vectors() {
    let got = strings(
        &vm(),
        r#"local h = function(k, m) return codec.hex_encode(crypto.hmac_sha256(k, m)) end
           return h(string.rep("\x0b", 20), "Hi There"),
                  h("Jefe", "what do ya want for nothing?"),
                  h(string.rep("\xaa", 20), string.rep("\xdd", 50)),
                  h(string.rep("\xaa", 131), "Test Using Larger Than Block-Size Key - Hash Key First")"#,
    );
    assert_eq!(
        got,
        [
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ]
    );
}

#[test]
fn base64_and_hex_round_trip_any_bytes() {
    let got = strings(
        &vm(),
        r#"local all = {} for i = 0, 255 do all[#all + 1] = string.char(i) end
           all = table.concat(all)
           local b, h = codec.base64_encode(all), codec.hex_encode(all)
           return codec.base64_encode(""), codec.base64_encode("f"), codec.base64_encode("foobar"),
                  tostring(codec.base64_decode(b) == all), tostring(codec.hex_decode(h) == all),
                  codec.hex_encode("\0\255"), codec.hex_decode("DEADbeef") == "\xde\xad\xbe\xef" and "ok" or "bad",
                  codec.base64_decode("Zm9vYmFy")"#,
    );
    assert_eq!(
        got,
        ["", "Zg==", "Zm9vYmFy", "true", "true", "00ff", "ok", "foobar"]
    );
}

#[test]
fn bad_input_to_a_decoder_is_nil_and_a_message() {
    let got = strings(
        &vm(),
        r#"local a, ea = codec.base64_decode("not base64!")
           local b, eb = codec.hex_decode("abc")
           local c, ec = codec.hex_decode("zz")
           return tostring(a), ea, tostring(b), eb, tostring(c), ec"#,
    );
    assert_eq!(got[0], "nil");
    assert_contains(&got[1], "codec.base64_decode: invalid input");
    assert_eq!(got[2], "nil");
    assert_contains(&got[3], "codec.hex_decode: invalid input");
    assert_eq!(got[4], "nil");
    assert_contains(&got[5], "codec.hex_decode: invalid input");
}

#[test]
fn url_encoding_escapes_reserved_and_non_ascii_bytes() {
    let got = strings(
        &vm(),
        r#"return codec.url_encode("a b&c=d/e?f#g+h%i~j-k.l_m"),
                  codec.url_encode("é\0\255"),
                  codec.url_decode("a%20b+c%2Bd%zz%C3%A9"),
                  codec.form_decode("a%20b+c%2Bd"),
                  tostring(codec.url_decode(codec.url_encode("\0\1\255 x")) == "\0\1\255 x")"#,
    );
    assert_eq!(
        got,
        [
            "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25i~j-k.l_m",
            "%C3%A9%00%FF",
            "a b+c+d%zzé",
            "a b c+d",
            "true",
        ]
    );
}

#[test]
fn random_bytes_are_fresh_and_bounded() {
    let vm = vm();
    let got = strings(
        &vm,
        "local a, b = crypto.random_bytes(32), crypto.random_bytes(32)
         return #a, tostring(a ~= b), #crypto.random_bytes(0), #crypto.random_bytes(1048576)",
    );
    assert_eq!(
        got,
        ["Integer(32)", "true", "Integer(0)", "Integer(1048576)"]
    );
    for bad in ["1048577", "-1", "1.5", "'x'"] {
        let message = runtime_error(&vm, &format!("return crypto.random_bytes({bad})"));
        assert_contains(&message, "crypto.random_bytes");
    }
}

#[test]
fn errors_name_the_function() {
    let vm = vm();
    assert_contains(
        &runtime_error(&vm, "local x = codec.base64_encode({})"),
        "bad argument #1 to 'codec.base64_encode' (string expected, got table)",
    );
    assert_contains(
        &runtime_error(&vm, "local x = crypto.hmac_sha256('k')"),
        "bad argument #2 to 'crypto.hmac_sha256' (string expected, got no value)",
    );
    // Numbers are strings to them, as to Lua's string functions.
    assert_eq!(
        strings(&vm, "return codec.hex_encode(12)"),
        [String::from("3132")]
    );
}

#[test]
fn modules_are_required_and_sealed() {
    let vm = vm();
    let got = strings(
        &vm,
        "return tostring(require('codec') == codec), tostring(require('crypto') == crypto),
                tostring(pcall(function() codec.x = 1 end))",
    );
    assert_eq!(got, ["true", "true", "false"]);
}

/// The buffers the host fills from script data are charged to the call's copy budget:
/// an encoding bigger than what the VM may still allocate fails with the copy-limit
/// error, named, before the host allocates it.
#[test]
fn host_buffers_are_bounded_by_the_copy_budget() {
    let new_vm = || Vm::new(VmConfig::default().with_memory_limit(64 << 20)).unwrap();
    // 30 MB in, 40, 60 and 90 MB out: more than the VM may still allocate (34 MB). A
    // fresh VM for each: the last one's 30 MB string may not be collected yet (Lua 5.5).
    for call in [
        "codec.base64_encode(s)",
        "codec.hex_encode(s)",
        "codec.url_encode(s)",
    ] {
        let source = format!("local s = string.rep('\\255', 30000000) return {call}");
        let message = runtime_error(&new_vm(), &source);
        let name = call.split('(').next().unwrap();
        assert_contains(&message, &format!("{name}: host copy limit exceeded"));
    }
    // Small inputs go through.
    assert_eq!(
        strings(&new_vm(), "return #codec.hex_encode(string.rep('x', 1000))"),
        ["Integer(2000)"]
    );
}
