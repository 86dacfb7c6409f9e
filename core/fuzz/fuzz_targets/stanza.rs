#![no_main]
//! Any bytes as a stanza: every XML parser, the inbound classification, the store.
libfuzzer_sys::fuzz_target!(|data: &[u8]| starling_core::fuzz::stanza(data));
