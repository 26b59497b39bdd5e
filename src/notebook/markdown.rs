//! A small Markdown subset for notebook notes, parsed without a GUI dependency so the GUI only
//! draws the blocks: ATX headings (`#` … `######`), bullet lists (`-`, `*`, `+`), numbered
//! lists (`1.`), fenced code blocks (```` ``` ````), paragraphs (consecutive lines joined), and
//! inline `**bold**`, `*italic*` and `` `code` ``. Anything else is kept as plain text, so no
//! note is ever lost or rejected.
//!
//! ```
//! use attnscope::notebook::markdown::{Block, Span, parse};
//! let blocks = parse("# Band\n- mass **0.9**");
//! assert_eq!(blocks[0], Block::Heading { level: 1, spans: vec![Span::Text("Band".into())] });
//! assert_eq!(
//!     blocks[1],
//!     Block::Bullet { marker: "•".into(), spans: vec![Span::Text("mass ".into()), Span::Bold("0.9".into())] }
//! );
//! ```

/// Inline text with its style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// Plain text.
    Text(String),
    /// `**bold**`.
    Bold(String),
    /// `*italic*` or `_italic_`.
    Italic(String),
    /// `` `code` ``.
    Code(String),
}

/// A block of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `#`-heading, level 1–6.
    Heading {
        /// Number of `#`.
        level: usize,
        /// Its text.
        spans: Vec<Span>,
    },
    /// One list item (`•` for bullets, `N.` for numbered items).
    Bullet {
        /// What to draw before the item.
        marker: String,
        /// Its text.
        spans: Vec<Span>,
    },
    /// A paragraph (consecutive non-blank lines).
    Paragraph(Vec<Span>),
    /// A fenced code block, verbatim.
    Code(String),
}

/// Parses a note into blocks (never fails).
pub fn parse(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut code: Option<Vec<&str>> = None;
    let flush = |paragraph: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !paragraph.is_empty() {
            blocks.push(Block::Paragraph(inline(&paragraph.join(" "))));
            paragraph.clear();
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(lines) = code.as_mut() {
            if trimmed.starts_with("```") {
                blocks.push(Block::Code(lines.join("\n")));
                code = None;
            } else {
                lines.push(line);
            }
            continue;
        }
        if trimmed.starts_with("```") {
            flush(&mut paragraph, &mut blocks);
            code = Some(Vec::new());
        } else if trimmed.is_empty() {
            flush(&mut paragraph, &mut blocks);
        } else if let Some((level, rest)) = heading(trimmed) {
            flush(&mut paragraph, &mut blocks);
            blocks.push(Block::Heading {
                level,
                spans: inline(rest),
            });
        } else if let Some(rest) = ["- ", "* ", "+ "]
            .iter()
            .find_map(|m| trimmed.strip_prefix(m))
        {
            flush(&mut paragraph, &mut blocks);
            blocks.push(Block::Bullet {
                marker: "•".into(),
                spans: inline(rest.trim()),
            });
        } else if let Some((number, rest)) = numbered(trimmed) {
            flush(&mut paragraph, &mut blocks);
            blocks.push(Block::Bullet {
                marker: format!("{number}."),
                spans: inline(rest),
            });
        } else {
            paragraph.push(trimmed);
        }
    }
    if let Some(lines) = code {
        // An unclosed fence keeps its text.
        blocks.push(Block::Code(lines.join("\n")));
    }
    flush(&mut paragraph, &mut blocks);
    blocks
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&level) {
        let rest = &line[level..];
        if rest.is_empty() {
            return Some((level, ""));
        }
        if let Some(text) = rest.strip_prefix(' ') {
            return Some((level, text.trim()));
        }
    }
    None
}

fn numbered(line: &str) -> Option<(&str, &str)> {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = line[digits..].strip_prefix(". ")?;
    Some((&line[..digits], rest.trim()))
}

/// Splits inline text into styled spans. Unmatched markers stay as text.
pub fn inline(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let styled = if let Some(after) = rest.strip_prefix("**") {
            after
                .find("**")
                .filter(|&end| end > 0)
                .map(|end| (Span::Bold(after[..end].to_string()), &after[end + 2..]))
        } else if let Some(after) = rest.strip_prefix('`') {
            after
                .find('`')
                .filter(|&end| end > 0)
                .map(|end| (Span::Code(after[..end].to_string()), &after[end + 1..]))
        } else if let Some(after) = rest.strip_prefix('*').or_else(|| rest.strip_prefix('_')) {
            let marker = &rest[..1];
            after
                .find(marker)
                .filter(|&end| end > 0 && !after[..end].starts_with(' '))
                .map(|end| (Span::Italic(after[..end].to_string()), &after[end + 1..]))
        } else {
            None
        };
        match styled {
            Some((span, next)) => {
                if !plain.is_empty() {
                    spans.push(Span::Text(std::mem::take(&mut plain)));
                }
                spans.push(span);
                rest = next;
            }
            None => {
                let mut chars = rest.chars();
                if let Some(c) = chars.next() {
                    plain.push(c);
                }
                rest = chars.as_str();
            }
        }
    }
    if !plain.is_empty() {
        spans.push(Span::Text(plain));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notebook_markdown_subset_headings_lists_paragraphs_code() {
        let text = "## Finding\nband mass is\n*high* here\n\n1. first `b = 4`\n* two\n```\nx | y\n```\n#nospace";
        let blocks = parse(text);
        assert_eq!(
            blocks,
            vec![
                Block::Heading {
                    level: 2,
                    spans: vec![Span::Text("Finding".into())]
                },
                Block::Paragraph(vec![
                    Span::Text("band mass is ".into()),
                    Span::Italic("high".into()),
                    Span::Text(" here".into()),
                ]),
                Block::Bullet {
                    marker: "1.".into(),
                    spans: vec![Span::Text("first ".into()), Span::Code("b = 4".into())]
                },
                Block::Bullet {
                    marker: "•".into(),
                    spans: vec![Span::Text("two".into())]
                },
                Block::Code("x | y".into()),
                Block::Paragraph(vec![Span::Text("#nospace".into())]),
            ]
        );
    }

    #[test]
    fn notebook_markdown_unmatched_markers_stay_text() {
        assert_eq!(inline("a ** b ` c"), vec![Span::Text("a ** b ` c".into())]);
        assert_eq!(inline("2 * 3 * 4"), vec![Span::Text("2 * 3 * 4".into())]);
    }
}
