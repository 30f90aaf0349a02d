//! Replays the rules-file fuzz corpus and regressions through the property
//! the fuzz target checks (fuzz/fuzz_targets/rules_toml.rs).

use std::fs;
use std::path::Path;

use anquan_edge_rules::file::{RuleFile, to_toml};
use anquan_protocol::DeviceKind;

#[test]
fn rules_toml_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz.join(dir).join("rules_toml")) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(src) = fs::read_to_string(&path) else {
                continue;
            };
            seen += 1;
            let Ok(file) = RuleFile::parse(&src) else {
                continue;
            };
            for kind in DeviceKind::ALL {
                let set = file.rules_for("s1", kind, "d1");
                let text = to_toml(&format!("kind.{kind}"), &set);
                let again =
                    RuleFile::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(again.rules_for("s1", kind, "d1"), set, "{}", path.display());
            }
        }
    }
    assert!(seen >= 2, "the seed corpus is committed");
}
