//! A small EDN reader that remembers where every value starts.
//!
//! Jepsen writes histories in EDN. Existing readers return values without
//! positions, and an error about an operation must name its line, so this
//! one keeps the line, column and byte span of every value. It reads what
//! histories contain: nil, booleans, integers, floats, ratios (as floats),
//! strings, characters, keywords, symbols, vectors, lists, maps, sets,
//! tagged values (`#jepsen.history.Op{...}` reads as its map), `#_`
//! discards, `;` comments and commas as whitespace.
//!
//! # Limits
//!
//! Integers must fit in 64 bits (signed or unsigned); nesting deeper than
//! [`MAX_DEPTH`] is refused rather than risking the stack.

use crate::formats::FormatError;
use std::ops::Range;

/// How deeply collections may nest.
pub const MAX_DEPTH: usize = 200;

/// An EDN value.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Char(char),
    /// Without the leading `:`.
    Keyword(String),
    Symbol(String),
    Vector(Vec<Node>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Set(Vec<Node>),
    Tagged(String, Box<Node>),
}

/// A value and where it starts in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Edn,
    pub line: usize,
    pub column: usize,
    /// Byte range of the value's text.
    pub span: Range<usize>,
}

impl Node {
    /// A short description for messages: "a vector", "the keyword :ok".
    pub fn describe(&self, text: &str) -> String {
        let source = text.get(self.span.clone()).unwrap_or("");
        let what = match &self.value {
            Edn::Vector(_) => return "a vector".into(),
            Edn::List(_) => return "a list".into(),
            Edn::Map(_) => return "a map".into(),
            Edn::Set(_) => return "a set".into(),
            Edn::Tagged(tag, _) => return format!("a value tagged #{tag}"),
            _ => source,
        };
        if what.chars().count() > 40 {
            format!("{}...", what.chars().take(37).collect::<String>())
        } else {
            what.to_string()
        }
    }
}

/// Reads every top-level value of a text.
pub fn read_all(text: &str) -> Result<Vec<Node>, FormatError> {
    let mut reader = Reader {
        text,
        pos: 0,
        line: 1,
        column: 1,
        depth: 0,
    };
    let mut nodes = Vec::new();
    loop {
        reader.skip_blank()?;
        if reader.peek().is_none() {
            return Ok(nodes);
        }
        nodes.push(reader.value()?);
    }
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    column: usize,
    depth: usize,
}

fn is_symbol_char(c: char) -> bool {
    c.is_alphanumeric() || ".*+!-_?$%&=<>/:'#".contains(c)
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, message: impl Into<String>) -> FormatError {
        FormatError::at_column(self.line, self.column, message)
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "end of input".into(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// Skips whitespace, commas, comments and `#_` discarded values.
    fn skip_blank(&mut self) -> Result<(), FormatError> {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' {
                self.bump();
            } else if c == ';' || (c == '#' && self.peek_second() == Some('!')) {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c == '#' && self.peek_second() == Some('_') {
                self.bump();
                self.bump();
                self.skip_blank()?;
                self.value()?;
            } else {
                break;
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Node, FormatError> {
        let (line, column, start) = (self.line, self.column, self.pos);
        let value = self.edn()?;
        Ok(Node {
            value,
            line,
            column,
            span: start..self.pos,
        })
    }

    fn edn(&mut self) -> Result<Edn, FormatError> {
        let Some(c) = self.peek() else {
            return Err(self.error("expected a value, found end of input"));
        };
        match c {
            '"' => self.string(),
            '\\' => self.character(),
            '[' => self.nested(|r| r.sequence(']', "vector").map(Edn::Vector)),
            '(' => self.nested(|r| r.sequence(')', "list").map(Edn::List)),
            '{' => self.nested(|r| r.map()),
            '#' => match self.peek_second() {
                Some('{') => {
                    self.bump();
                    self.nested(|r| r.sequence('}', "set").map(Edn::Set))
                }
                Some(c) if c.is_alphabetic() || c == '#' => self.tagged(),
                _ => {
                    self.bump();
                    Err(self.error(format!(
                        "expected a tag, a set or `#_` after `#`, found {}",
                        self.found()
                    )))
                }
            },
            ']' | ')' | '}' => Err(self.error(format!(
                "expected a value, found a closing {c:?} with nothing open"
            ))),
            c if is_symbol_char(c) => self.atom(),
            c => Err(self.error(format!("expected a value, found {c:?}"))),
        }
    }

    fn nested(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<Edn, FormatError>,
    ) -> Result<Edn, FormatError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "expected collections nested at most {MAX_DEPTH} deep, found deeper"
            )));
        }
        self.depth += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn sequence(&mut self, close: char, what: &str) -> Result<Vec<Node>, FormatError> {
        let (line, column) = (self.line, self.column);
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            match self.peek() {
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                None | Some(']' | ')' | '}') => {
                    return Err(self.error(format!(
                        "expected {close:?} to close the {what} opened at line {line}, \
                         column {column}, found {}",
                        self.found()
                    )))
                }
                Some(_) => items.push(self.value()?),
            }
        }
    }

    fn map(&mut self) -> Result<Edn, FormatError> {
        let (line, column) = (self.line, self.column);
        let items = self.sequence('}', "map")?;
        if items.len() % 2 == 1 {
            return Err(FormatError::at_column(
                line,
                column,
                format!(
                    "expected a value for every key of the map, found {} forms",
                    items.len()
                ),
            ));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    fn tagged(&mut self) -> Result<Edn, FormatError> {
        self.bump();
        let tag = self.token();
        self.skip_blank()?;
        if tag == "#Inf" || tag == "#-Inf" || tag == "#NaN" {
            return Err(
                self.error(format!("expected a finite number, found ##{}", &tag[1..]))
            );
        }
        self.nested(|r| r.value().map(|node| Edn::Tagged(tag, Box::new(node))))
    }

    fn token(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_symbol_char) {
            self.bump();
        }
        self.text[start..self.pos].to_string()
    }

    fn string(&mut self) -> Result<Edn, FormatError> {
        let (line, column) = (self.line, self.column);
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(FormatError::at_column(
                        line,
                        column,
                        "expected a closing '\"' for this string, found end of input",
                    ))
                }
                Some('"') => return Ok(Edn::Str(s)),
                Some('\\') => s.push(self.escape()?),
                Some(c) => s.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, FormatError> {
        let found = self.found();
        Ok(match self.bump() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('"') => '"',
            Some('\\') => '\\',
            Some('u') => self.unicode()?,
            _ => {
                return Err(self.error(format!(
                    "expected an escape such as \\n, \\\" or \\uXXXX, found \\{}",
                    found.trim_matches('\'')
                )))
            }
        })
    }

    fn unicode(&mut self) -> Result<char, FormatError> {
        let start = self.pos;
        for _ in 0..4 {
            if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                return Err(self.error(format!(
                    "expected 4 hex digits after \\u, found {}",
                    self.found()
                )));
            }
            self.bump();
        }
        u32::from_str_radix(&self.text[start..self.pos], 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error("expected a Unicode scalar value after \\u"))
    }

    fn character(&mut self) -> Result<Edn, FormatError> {
        self.bump();
        let Some(first) = self.bump() else {
            return Err(self.error("expected a character after \\, found end of input"));
        };
        let start = self.pos - first.len_utf8();
        while self.peek().is_some_and(|c| c.is_alphanumeric()) {
            self.bump();
        }
        let name = &self.text[start..self.pos];
        Ok(Edn::Char(match name {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            n if n.chars().count() == 1 => first,
            n if n.starts_with('u') && n.len() == 5 => u32::from_str_radix(&n[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    self.error(format!("expected a character, found \\{n}"))
                })?,
            n => return Err(self.error(format!("expected a character, found \\{n}"))),
        }))
    }

    fn atom(&mut self) -> Result<Edn, FormatError> {
        let (line, column) = (self.line, self.column);
        let token = self.token();
        let at = |m: String| FormatError::at_column(line, column, m);
        if let Some(name) = token.strip_prefix(':') {
            if name.is_empty() {
                return Err(at("expected a keyword name after ':'".into()));
            }
            return Ok(Edn::Keyword(name.to_string()));
        }
        let digits = token.trim_start_matches(['+', '-']);
        if digits.starts_with(|c: char| c.is_ascii_digit()) {
            return number(&token)
                .ok_or_else(|| at(format!("expected a number, found {token}")));
        }
        Ok(match token.as_str() {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => Edn::Symbol(token),
        })
    }
}

/// Parses an integer (`12`, `-3`, `7N`), a float (`1.5`, `2e3`, `1.5M`) or
/// a ratio (`1/2`, read as a float).
fn number(token: &str) -> Option<Edn> {
    let int = token.strip_suffix('N').unwrap_or(token);
    if let Ok(i) = int.parse::<i128>() {
        return Some(Edn::Int(i));
    }
    if let Some((n, d)) = token.split_once('/') {
        let (n, d) = (n.parse::<i128>().ok()?, d.parse::<i128>().ok()?);
        return (d != 0).then(|| Edn::Float(n as f64 / d as f64));
    }
    let float = token.strip_suffix('M').unwrap_or(token);
    let all_numeric = float
        .chars()
        .all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
    let f: f64 = float.parse().ok().filter(|_| all_numeric)?;
    f.is_finite().then_some(Edn::Float(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Edn {
        let mut nodes = read_all(text).unwrap();
        assert_eq!(nodes.len(), 1, "{text}");
        nodes.remove(0).value
    }

    #[test]
    fn reads_scalars() {
        assert_eq!(one("nil"), Edn::Nil);
        assert_eq!(one("-12"), Edn::Int(-12));
        assert_eq!(one("7N"), Edn::Int(7));
        assert_eq!(one("1.5"), Edn::Float(1.5));
        assert_eq!(one("1/4"), Edn::Float(0.25));
        assert_eq!(one(":timed-out"), Edn::Keyword("timed-out".into()));
        assert_eq!(one("\"a\\\"b\\u0041\""), Edn::Str("a\"bA".into()));
        assert_eq!(one("\\newline"), Edn::Char('\n'));
        assert_eq!(one("jepsen/op"), Edn::Symbol("jepsen/op".into()));
    }

    #[test]
    fn skips_comments_commas_and_discards() {
        let nodes = read_all("; a comment\n[1, #_ 2 3] ;; more\n").unwrap();
        let Edn::Vector(items) = &nodes[0].value else {
            panic!("expected a vector")
        };
        assert_eq!(items.len(), 2);
        assert_eq!((nodes[0].line, nodes[0].column), (2, 1));
    }

    #[test]
    fn reads_tagged_records_as_tagged_maps() {
        let v = one("#jepsen.history.Op{:index 0}");
        assert!(matches!(v, Edn::Tagged(ref t, _) if t == "jepsen.history.Op"));
    }

    #[test]
    fn names_the_opening_of_an_unclosed_vector() {
        let err = read_all("[{:a 1}\n{:b 2}").unwrap_err();
        assert!(err.message.contains("opened at line 1, column 1"), "{err}");
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing() {
        let text = "[".repeat(100_000);
        let err = read_all(&text).unwrap_err();
        assert!(err.message.contains("nested at most"), "{err}");
    }
}
