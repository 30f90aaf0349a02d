//! Replays the `gb26875_panel` fuzz target's seed corpus and every
//! committed regression (fuzz/corpus/gb26875_panel,
//! fuzz/regressions/gb26875_panel) through the target's own property
//! (the same file), so a crash found once stays fixed without libFuzzer.

use std::path::Path;

#[path = "../../fuzz/fuzz_targets/gb26875_panel_property.rs"]
mod property;

#[test]
fn gb26875_panel_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("gb26875_panel")) else {
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
