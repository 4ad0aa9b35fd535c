//! Fuzz `open` and the header and receipt parsers with arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gsp_federation::fuzzing::open_any(data);
});
