//! What may reach a terminal: every name and message another user chose is
//! passed through [`escape`] before it is written to anyone's screen.

// ANCHOR: escape
/// `text` with every character that a terminal would act on instead of
/// showing made visible: C0 controls and DEL in caret notation (`ESC` is `^[`,
/// `BEL` is `^G`), C1 controls (`U+0080`..`U+009F`, which some terminals
/// read as `ESC` sequences) and the Unicode line separators and bidirectional
/// overrides (which can make a line read as something else) as `<U+XXXX>`.
/// What is left is printable: a user can color, move the cursor on, retitle
/// or clear nobody's terminal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\0'..='\x1f' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            '\x7f' => out.push_str("^?"),
            '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("<U+{:04X}>", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}
// ANCHOR_END: escape

/// A name as shown to others: escaped, and at most `max` characters (longer
/// ones end with `~`).
pub fn display_name(name: &str, max: usize) -> String {
    let escaped = escape(name);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut short: String = escaped.chars().take(max.saturating_sub(1)).collect();
    short.push('~');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_come_out_visible_and_inert() {
        assert_eq!(escape("\x1b[31mred\x07"), "^[[31mred^G");
        assert_eq!(escape("a\x7fb\rc\n"), "a^?b^Mc^J");
        assert_eq!(escape("\u{9b}2J"), "<U+009B>2J");
        assert_eq!(escape("abc\u{202e}fed"), "abc<U+202E>fed");
        assert_eq!(escape("héllo wörld ✓"), "héllo wörld ✓");
        for c in (0u32..0x300).filter_map(char::from_u32) {
            let shown = escape(&c.to_string());
            assert!(shown.chars().all(|c| !c.is_control()), "{c:?} -> {shown:?}");
        }
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(display_name("alice", 8), "alice");
        assert_eq!(display_name("abcdefghijk", 8), "abcdefg~");
        assert_eq!(display_name("\x1b\x1b\x1b\x1b\x1b", 8), "^[^[^[^~");
    }
}
