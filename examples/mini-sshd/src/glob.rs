//! The `*` and `?` patterns of sshd_config's `AcceptEnv`.

/// Whether `name` matches `pattern`, where `*` matches any run of characters and `?` one character.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was and how much of `name` it has swallowed: backtrack there on mismatch.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
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
