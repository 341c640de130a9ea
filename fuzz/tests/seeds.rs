//! Regenerates the seed corpora: `cargo test --test seeds -- --ignored`.

#[test]
#[ignore = "writes files under corpus/"]
fn write_seed_corpora() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    outpost_fuzz::write_seeds(&dir);
}
