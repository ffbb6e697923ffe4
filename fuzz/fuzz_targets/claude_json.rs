#![no_main]

#[path = "../../tests/robustness/oracles.rs"]
mod oracles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracles::claude_json(data));
