#![no_main]
//! Any bytes as OMEMO wire data: key exchanges, keys, decrypted envelopes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| starling_core::fuzz::omemo_bytes(data));
