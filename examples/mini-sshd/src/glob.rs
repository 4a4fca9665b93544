//! The `*` and `?` patterns of sshd_config's `AcceptEnv`.

/// Whether `name` matches `pattern`, where `*` matches any run of characters and `?` one character.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(name)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn star_and_question_mark() {
        assert!(matches("LANG", "LANG"));
        assert!(!matches("LANG", "LANGUAGE"));
        assert!(matches("LC_*", "LC_ALL"));
        assert!(matches("LC_*", "LC_"));
        assert!(!matches("LC_*", "LANG"));
        assert!(matches("*", ""));
        assert!(matches("A?C", "ABC"));
        assert!(!matches("A?C", "AC"));
        assert!(matches("*X*Y", "aXbXcY"));
        assert!(!matches("*X*Y", "aXbXcYd"));
        assert!(matches("**", "anything"));
    }
}
