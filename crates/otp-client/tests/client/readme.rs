//! The README shows `examples/login.rs` verbatim (the example itself is
//! compiled by `cargo test` and run against the real server by
//! `crates/otp-server/tests/server/sdk_e2e.rs`).

#[test]
fn the_readme_shows_the_login_example_verbatim() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../../examples/login.rs");
    assert!(
        readme.contains(example.trim_end()),
        "README.md must contain examples/login.rs verbatim; copy it again"
    );
}
