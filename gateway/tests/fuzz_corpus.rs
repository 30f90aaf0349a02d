//! Replays the gateway's fuzz targets' seed corpora and every committed
//! regression (fuzz/corpus/<target>, fuzz/regressions/<target>) through
//! each target's own property (the same files), so a crash found once
//! stays fixed without libFuzzer.

use std::path::Path;

#[path = "../../fuzz/fuzz_targets/dtu_registration_property.rs"]
mod dtu_registration;
#[path = "../../fuzz/fuzz_targets/gb26875_panel_property.rs"]
mod gb26875_panel;

/// Runs `check` on every input of `target`; the number of inputs.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.file_name().is_some_and(|n| n == ".keep") {
                continue;
            }
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{}", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn dtu_registration_corpus() {
    let n = replay("dtu_registration", dtu_registration::check);
    assert!(n >= 5, "the seed corpus is committed ({n} inputs)");
}

#[test]
fn gb26875_panel_corpus() {
    let n = replay("gb26875_panel", gb26875_panel::check);
    assert!(n >= 5, "the seed corpus is committed ({n} inputs)");
}
