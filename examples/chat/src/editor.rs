//! The line editor: turns the bytes a terminal sends (one key or a pasted
//! run of them, a UTF-8 character possibly split between two packets) into
//! edits of the line being typed and into actions.
//!
//! On a pty the client's terminal is in raw mode: nothing is echoed or edited
//! for us, Enter arrives as `\r`, Backspace as DEL (`0x7f`, or `^H` on some
//! terminals), Ctrl-C as the byte `0x03` (not a signal) and Ctrl-D as `0x04`
//! (not an end of file). Keys the editor does not know, arrow keys among them,
//! are typed as text and shown escaped (`^[[A`): nothing a user types can
//! reach another terminal as a control sequence.

// ANCHOR: editor
/// What a run of input asks for, besides editing the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enter on a non-empty line: the line, which the editor has cleared.
    Submit(String),
    /// Ctrl-C or Ctrl-D: leave the room. Input after it is ignored.
    Leave,
    /// A character did not fit: the line is at its maximum length.
    Full,
}

/// The line being typed.
#[derive(Debug)]
pub struct LineEditor {
    line: Vec<char>,
    max: usize,
    /// The start of a UTF-8 character whose other bytes are in the next packet (at most 3 bytes).
    partial: Vec<u8>,
    /// The last byte was `\r`: a `\n` right after it is the same Enter.
    after_cr: bool,
}

impl LineEditor {
    /// An empty line that holds at most `max` characters.
    pub fn new(max: usize) -> Self {
        LineEditor { line: Vec::new(), max, partial: Vec::new(), after_cr: false }
    }

    /// The line as typed so far.
    pub fn line(&self) -> &[char] {
        &self.line
    }

    /// Applies `input` and returns the actions it asked for, in order.
    pub fn feed(&mut self, input: &[u8]) -> Vec<Action> {
        let mut actions = Vec::new();
        for &byte in input {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            if !self.partial.is_empty() || byte >= 0x80 {
                self.utf8(byte, &mut actions);
                if actions.last() == Some(&Action::Leave) {
                    return actions;
                }
                continue;
            }
            match byte {
                0x03 | 0x04 => {
                    actions.push(Action::Leave);
                    return actions;
                }
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    if !self.line.is_empty() {
                        actions.push(Action::Submit(self.line.drain(..).collect()));
                    }
                }
                0x7f | 0x08 => {
                    self.line.pop();
                }
                // Ctrl-U clears the line, Ctrl-W deletes the word before the cursor.
                0x15 => self.line.clear(),
                0x17 => {
                    while self.line.last() == Some(&' ') {
                        self.line.pop();
                    }
                    while self.line.last().is_some_and(|c| *c != ' ') {
                        self.line.pop();
                    }
                }
                _ => self.insert(char::from(byte), &mut actions),
            }
        }
        actions
    }

    /// One byte of a multi-byte UTF-8 character; an invalid sequence becomes U+FFFD.
    fn utf8(&mut self, byte: u8, actions: &mut Vec<Action>) {
        self.partial.push(byte);
        match std::str::from_utf8(&self.partial) {
            Ok(text) => {
                let c = text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                self.partial.clear();
                self.insert(c, actions);
            }
            // Incomplete so far: wait for the next byte (never more than 4 in all).
            Err(e) if e.error_len().is_none() && self.partial.len() < 4 => {}
            Err(_) => {
                let alone = self.partial.len() == 1;
                self.partial.clear();
                self.insert(char::REPLACEMENT_CHARACTER, actions);
                // The byte that broke the sequence may be a key or start a character of its own.
                if !alone {
                    let more = self.feed(&[byte]);
                    actions.extend(more);
                }
            }
        }
    }

    fn insert(&mut self, c: char, actions: &mut Vec<Action>) {
        if self.line.len() < self.max {
            self.line.push(c);
        } else if actions.last() != Some(&Action::Full) {
            actions.push(Action::Full);
        }
    }
}
// ANCHOR_END: editor

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(input: &[u8]) -> (Vec<Action>, String) {
        let mut editor = LineEditor::new(10);
        let actions = editor.feed(input);
        (actions, editor.line().iter().collect())
    }

    #[test]
    fn keys_edit_the_line() {
        assert_eq!(typed(b"hello\x7f\x7fp"), (vec![], "help".into()));
        assert_eq!(typed(b"hello\x08"), (vec![], "hell".into()));
        assert_eq!(typed(b"one two\x17"), (vec![], "one ".into()));
        assert_eq!(typed(b"junk\x15ok"), (vec![], "ok".into()));
        assert_eq!(typed(b"hi\r\nyo\r"), (vec![Action::Submit("hi".into()), Action::Submit("yo".into())], "".into()));
        assert_eq!(typed(b"\r\r\n"), (vec![], "".into()));
        assert_eq!(typed(b"bye\x03more"), (vec![Action::Leave], "bye".into()));
        assert_eq!(typed(b"\x04"), (vec![Action::Leave], "".into()));
    }

    #[test]
    fn the_line_is_capped() {
        assert_eq!(typed(b"0123456789abc"), (vec![Action::Full], "0123456789".into()));
    }

    #[test]
    fn utf8_split_between_packets_and_invalid_bytes() {
        let mut editor = LineEditor::new(10);
        let euro = "€".as_bytes();
        editor.feed(&euro[..1]);
        editor.feed(&euro[1..]);
        editor.feed(b"\xff");
        editor.feed(b"\xe2x");
        assert_eq!(editor.line().iter().collect::<String>(), "€\u{fffd}\u{fffd}x");
    }
}
