//! Replays every committed input (`corpus/<target>/*` and
//! `regressions/<target>/*`) through its target, without libFuzzer, so a
//! regression shows in an ordinary `cargo test`.

use std::path::Path;

#[test]
fn every_committed_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, target) in outpost_fuzz::TARGETS {
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            let mut paths: Vec<_> = entries.map(|e| e.expect("readable directory").path()).collect();
            paths.sort();
            for path in paths {
                let data = std::fs::read(&path).expect("readable input");
                let result = std::panic::catch_unwind(|| target(&data));
                assert!(result.is_ok(), "{name} fails on {}", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= outpost_fuzz::TARGETS.len(), "only {replayed} inputs found");
}

#[test]
fn every_target_has_a_fuzz_binary_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in outpost_fuzz::TARGETS {
        assert!(
            root.join("fuzz_targets").join(format!("{name}.rs")).is_file(),
            "{name}: no binary"
        );
        let seeds = std::fs::read_dir(root.join("corpus").join(name))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(seeds > 0, "{name}: no committed corpus");
    }
}
