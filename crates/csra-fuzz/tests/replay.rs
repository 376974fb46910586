//! Every saved fuzz input through its target, on stable: the corpora `cargo fuzz` grew (and
//! minimised) are regression tests, so a reader that starts to panic on one fails CI.

use std::path::Path;

#[test]
fn every_corpus_input_runs_through_its_target() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in csra_fuzz::TARGETS {
        let dir = corpus.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; every target keeps a corpus", dir.display()));
        let mut inputs = 0;
        for entry in entries {
            let path = entry.expect("listing a corpus").path();
            let data = std::fs::read(&path).expect("reading a corpus input");
            target(&data);
            inputs += 1;
        }
        assert!(inputs > 0, "{}: an empty corpus", dir.display());
    }
}

#[test]
fn every_target_has_its_cargo_fuzz_binary() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (name, _) in csra_fuzz::TARGETS {
        let file = targets.join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("csra_fuzz::{name}(")),
            "{} does not call csra_fuzz::{name}",
            file.display()
        );
    }
}
