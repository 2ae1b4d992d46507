//! Zone file text → zone or problems. Any panic is a bug (the loader contains the
//! `domain` scanner's own panics and reports them as problems).
#![no_main]

use libfuzzer_sys::fuzz_target;
use waypost::config::LoadLimits;
use waypost::zones::load::load_zone;

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys aborts on any panic through its hook. The loader deliberately
    // contains the `domain` scanner's known panic (tests/data/fuzz-regressions), so let
    // panics unwind here; one that escapes load_zone still fails the run.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let dir = std::env::temp_dir().join(format!("waypost-fuzz-zone-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("example.com.zone");
    if std::fs::write(&path, data).is_ok() {
        let _ = load_zone(&path, &LoadLimits { max_records: 10_000, max_rrset_size: 1_000, ..LoadLimits::default() });
    }
});
