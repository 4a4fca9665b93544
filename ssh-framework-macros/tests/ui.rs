//! Compile-time behaviour of the macros: every misuse is an error at the
//! offending tokens saying what would be accepted, and correct uses compile.
//!
//! Review snapshot changes with `TRYBUILD=overwrite cargo test -p ssh-framework-macros --test ui`
//! followed by `git diff`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
