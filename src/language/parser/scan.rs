//! A byte scan that knows where strings and comments are, for checks made around pest.

/// Each byte of `source` that is code: not inside a string literal or a comment.
pub(super) fn code_bytes(source: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    #[derive(Clone, Copy, PartialEq)]
    enum In {
        Code,
        Text,
        Escape,
        Comment,
    }
    let mut state = In::Code;
    source.bytes().enumerate().filter(move |&(_, byte)| {
        let was = state;
        state = match (state, byte) {
            (In::Code, b'"') => In::Text,
            (In::Code, b'#') => In::Comment,
            (In::Text | In::Escape | In::Comment, b'\n' | b'\r') => In::Code,
            (In::Text, b'\\') => In::Escape,
            (In::Text, b'"') | (In::Code, _) => In::Code,
            (In::Escape, _) => In::Text,
            (other, _) => other,
        };
        was == In::Code && state == In::Code
    })
}

/// The last `{`, `(` or `[` that is never closed, if any.
pub(super) fn last_unclosed(source: &str) -> Option<(usize, u8)> {
    let mut open = Vec::new();
    for (at, byte) in code_bytes(source) {
        match byte {
            b'{' | b'(' | b'[' => open.push((at, byte)),
            b'}' | b')' | b']' => {
                open.pop();
            }
            _ => {}
        }
    }
    open.pop()
}
