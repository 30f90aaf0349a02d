//! Site rules files: never panic; a file that loads yields rule sets that
//! print back to a file that loads again to the same rules.
#![no_main]

use anquan_edge_rules::file::{RuleFile, to_toml};
use anquan_protocol::DeviceKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = RuleFile::parse(src) else {
        return;
    };
    for kind in DeviceKind::ALL {
        let set = file.rules_for("s1", kind, "d1");
        let text = to_toml(&format!("kind.{kind}"), &set);
        let again = RuleFile::parse(&text).expect("printed rules load");
        assert_eq!(again.rules_for("s1", kind, "d1"), set);
    }
});
