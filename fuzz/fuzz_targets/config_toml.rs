//! Config TOML text → validated config or an error. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waypost::config::{file, Config};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = file::parse(text) {
            let _ = Config::from_spec(spec, std::path::Path::new("/nonexistent"));
        }
    }
});
