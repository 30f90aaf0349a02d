//! Replays the `dtu_registration` fuzz target's seed corpus and every
//! committed regression (fuzz/corpus/dtu_registration,
//! fuzz/regressions/dtu_registration) through the target's own property
//! (the same file), so a crash found once stays fixed without libFuzzer.

use std::path::Path;

#[path = "../../fuzz/fuzz_targets/dtu_registration_property.rs"]
mod property;

#[test]
fn dtu_registration_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("dtu_registration")) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.file_name().is_some_and(|n| n == ".keep") {
                continue;
            }
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let r = std::panic::catch_unwind(|| property::check(&data));
            assert!(r.is_ok(), "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 5, "the seed corpus is committed ({n} inputs)");
}
