//! Post content from the network, made safe: HTML and XHTML are cleaned by ammonia with a
//! short allow-list (no scripts, styles, event handlers, frames, forms or unknown schemes),
//! then turned into plain text (search, notifications) and the markdown subset Slint's
//! `StyledText` renders. Images are never loaded: they become links the user may open.

use std::cell::RefCell;
use std::collections::HashSet;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// Raw content beyond this many bytes is cut before cleaning.
pub const MAX_INPUT: usize = 256 * 1024;
/// Derived text beyond this many bytes is cut (and marked truncated).
pub const MAX_TEXT: usize = 64 * 1024;

/// Content ready to store and show.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Rich {
    /// Cleaned HTML (`None` for plain-text content).
    pub html: Option<String>,
    /// Plain text.
    pub text: String,
    /// The markdown subset Slint renders (paragraphs, lists, emphasis, links, inline code).
    pub markdown: String,
    /// Remote images the content refers to; shown as links, never fetched by themselves.
    pub images: Vec<String>,
    /// Whether the input was cut to the size limits.
    pub truncated: bool,
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Escapes text for markdown: every ASCII punctuation character that could start markup.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '+'
                | '-'
                | '.'
                | '!'
                | '<'
                | '>'
                | '|'
                | '~'
                | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn strip_controls(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Plain-text content.
pub fn from_text(text: &str) -> Rich {
    let (text, truncated) = cut(text, MAX_TEXT);
    let text = strip_controls(text).trim().to_owned();
    let markdown = text
        .split("\n\n")
        .map(|p| {
            p.lines()
                .map(escape_markdown)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    Rich {
        html: None,
        text,
        markdown,
        images: Vec::new(),
        truncated,
    }
}

fn cleaner() -> ammonia::Builder<'static> {
    let tags: HashSet<&str> = [
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "s",
        "del",
        "strike",
        "code",
        "pre",
        "blockquote",
        "p",
        "br",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "img",
        "hr",
        "span",
        "div",
    ]
    .into_iter()
    .collect();
    let mut b = ammonia::Builder::empty();
    b.tags(tags)
        .add_tag_attributes("a", ["href"])
        .add_tag_attributes("img", ["src", "alt"])
        .url_schemes(["http", "https", "xmpp", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        .strip_comments(true);
    b
}

/// HTML content (Atom `type='html'`, or serialised XHTML).
pub fn from_html(html: &str) -> Rich {
    let (input, cut_input) = cut(html, MAX_INPUT);
    let cleaned = cleaner().clean(input).to_string();
    let sink = Render::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from(cleaned.as_str()));
    // The sink never asks to stop or run a script, so feeding always runs to the end.
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let out = tokenizer.sink.state.into_inner();
    Rich {
        html: Some(cleaned),
        text: out.text.trim().to_owned(),
        markdown: out.md.trim().to_owned(),
        images: out.images,
        truncated: cut_input || out.truncated,
    }
}

#[derive(Default)]
struct Render {
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    md: String,
    text: String,
    /// Open inline marks: the markdown that closes them and where their content starts.
    marks: Vec<(&'static str, &'static str, usize)>,
    /// Open lists: `None` for bullets, `Some(n)` for the next number.
    lists: Vec<Option<u32>>,
    /// A link being written: its target and where its text starts in `md`.
    link: Option<(String, usize)>,
    pre: bool,
    /// Whether the last thing written was whitespace (collapsing HTML whitespace).
    space: bool,
    images: Vec<String>,
    truncated: bool,
}

impl State {
    fn full(&mut self) -> bool {
        if self.text.len() >= MAX_TEXT {
            self.truncated = true;
        }
        self.truncated
    }

    /// Ends the current block with a blank line.
    fn block(&mut self) {
        for s in [&mut self.md, &mut self.text] {
            let trimmed = s.trim_end_matches([' ', '\n']).len();
            s.truncate(trimmed);
            if !s.is_empty() {
                s.push_str("\n\n");
            }
        }
        self.space = true;
    }

    fn line(&mut self) {
        for s in [&mut self.md, &mut self.text] {
            let trimmed = s.trim_end_matches(' ').len();
            s.truncate(trimmed);
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
        }
        self.space = true;
    }

    fn chars(&mut self, t: &str) {
        if self.full() {
            return;
        }
        let (t, cut_here) = cut(t, MAX_TEXT - self.text.len());
        self.truncated |= cut_here;
        if self.pre {
            for (i, l) in t.split('\n').enumerate() {
                if i > 0 {
                    self.line();
                }
                self.md.push_str(&escape_markdown(l));
                self.text.push_str(l);
            }
            return;
        }
        for (i, word) in t.split(char::is_whitespace).enumerate() {
            if i > 0 {
                self.space_once();
            }
            if word.is_empty() {
                continue;
            }
            let word = strip_controls(word);
            self.md.push_str(&escape_markdown(&word));
            self.text.push_str(&word);
            self.space = false;
        }
    }

    fn space_once(&mut self) {
        if !self.space {
            self.md.push(' ');
            self.text.push(' ');
            self.space = true;
        }
    }

    fn open_mark(&mut self, open: &'static str, close: &'static str) {
        self.md.push_str(open);
        self.marks.push((open, close, self.md.len()));
    }

    fn close_mark(&mut self, open: &'static str) {
        let Some(pos) = self.marks.iter().rposition(|(o, _, _)| *o == open) else {
            return;
        };
        let (open, close, start) = self.marks.remove(pos);
        if self.md.len() == start {
            // Nothing inside: drop the opener rather than write `****`.
            self.md.truncate(start - open.len());
        } else {
            // Markdown does not close emphasis after whitespace: move the space out.
            let had_space = self.md.ends_with(' ');
            let trimmed = self.md.trim_end_matches(' ').len();
            self.md.truncate(trimmed);
            self.md.push_str(close);
            if had_space {
                self.md.push(' ');
            }
        }
    }

    fn tag(&mut self, tag: &Tag) {
        let name: &str = &tag.name;
        let attr = |n: &str| {
            tag.attrs
                .iter()
                .find(|a| &*a.name.local == n)
                .map(|a| a.value.to_string())
        };
        let start = tag.kind == TagKind::StartTag;
        match (name, start) {
            ("p" | "div" | "blockquote" | "hr", _) => self.block(),
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", true) => {
                self.block();
                self.open_mark("**", "**");
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", false) => {
                self.close_mark("**");
                self.block();
            }
            ("br", _) => self.line(),
            ("pre", s) => {
                self.block();
                self.pre = s;
            }
            ("ul", true) => {
                self.line();
                self.lists.push(None);
            }
            ("ol", true) => {
                self.line();
                self.lists.push(Some(1));
            }
            ("ul" | "ol", false) => {
                self.lists.pop();
                self.block();
            }
            ("li", true) => {
                self.line();
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => "- ".to_owned(),
                };
                let indent = "   ".repeat(depth);
                self.md.push_str(&indent);
                self.md.push_str(&marker);
                self.text.push_str(&indent);
                self.text
                    .push_str(if marker == "- " { "• " } else { &marker });
                self.space = true;
            }
            ("b" | "strong", true) => self.open_mark("**", "**"),
            ("b" | "strong", false) => self.close_mark("**"),
            ("i" | "em", true) => self.open_mark("*", "*"),
            ("i" | "em", false) => self.close_mark("*"),
            ("s" | "del" | "strike", true) => self.open_mark("~~", "~~"),
            ("s" | "del" | "strike", false) => self.close_mark("~~"),
            ("u", true) => self.open_mark("<u>", "</u>"),
            ("u", false) => self.close_mark("<u>"),
            ("code", true) if !self.pre => self.open_mark("`", "`"),
            ("code", false) if !self.pre => self.close_mark("`"),
            ("a", true) => {
                if let Some(href) = attr("href") {
                    self.md.push('[');
                    self.link = Some((href, self.md.len()));
                }
            }
            ("a", false) => {
                if let Some((href, start)) = self.link.take() {
                    if self.md.len() == start {
                        self.md.push_str(&escape_markdown(&href));
                        self.text.push_str(&href);
                    }
                    self.md.push_str("](<");
                    self.md
                        .push_str(&href.replace('<', "%3C").replace('>', "%3E"));
                    self.md.push_str(">)");
                }
            }
            ("img", true) => {
                if let Some(src) = attr("src") {
                    let alt = attr("alt").filter(|a| !a.trim().is_empty());
                    let label = match alt.as_deref() {
                        Some(a) => format!("Image: {}", a.trim()),
                        None => "Image".to_owned(),
                    };
                    if self.link.is_none() {
                        self.md.push_str(&format!(
                            "[{}](<{}>)",
                            escape_markdown(&label),
                            src.replace('<', "%3C").replace('>', "%3E")
                        ));
                    } else {
                        self.md.push_str(&escape_markdown(&label));
                    }
                    self.text.push_str(&label);
                    self.images.push(src);
                    self.space = false;
                }
            }
            _ => {}
        }
    }
}

impl TokenSink for Render {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut st = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) => st.tag(&tag),
            Token::CharacterTokens(t) => st.chars(&t),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_styles_are_removed() {
        let r = from_html(
            "<p onclick='steal()'>Hi <script>alert(1)</script><b>there</b>\
             <style>p{}</style><iframe src='https://evil.example/'></iframe>\
             <a href='javascript:alert(1)'>x</a> <a href='https://ok.example/?a=1&amp;b=2'>ok</a>\
             <img src='https://tracker.example/p.gif' onerror='x()'></p>",
        );
        let html = r.html.clone().unwrap_or_default();
        for bad in [
            "script",
            "onclick",
            "style",
            "iframe",
            "javascript",
            "onerror",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(r.text.starts_with("Hi there"), "{}", r.text);
        assert!(!r.text.contains("alert"));
        assert_eq!(r.images, vec!["https://tracker.example/p.gif".to_owned()]);
        assert!(r.markdown.contains("**there**"), "{}", r.markdown);
        assert!(
            r.markdown.contains("[ok](<https://ok.example/?a=1&b=2>)"),
            "{}",
            r.markdown
        );
    }

    #[test]
    fn structure_becomes_markdown_slint_understands() {
        let r = from_html(
            "<h2>Title</h2><p>One <em>two</em>  three.</p>\
             <ul><li>a</li><li>b <code>c</code></li></ul><ol><li>x</li><li>y</li></ol>\
             <p>line<br/>break</p><blockquote>quoted</blockquote><p><b></b>x_y*z</p>",
        );
        assert_eq!(
            r.markdown,
            "**Title**\n\nOne *two* three\\.\n\n- a\n- b `c`\n\n1\\. x\n2\\. y\n\nline\nbreak\n\nquoted\n\nx\\_y\\*z"
                .replace("1\\. x\n2\\. y", "1. x\n2. y"),
        );
        assert_eq!(
            r.text,
            "Title\n\nOne two three.\n\n• a\n• b c\n\n1. x\n2. y\n\nline\nbreak\n\nquoted\n\nx_y*z"
        );
    }

    #[test]
    fn giant_and_broken_input_is_bounded() {
        let giant = format!("<p>{}</p>", "word ".repeat(200_000));
        let r = from_html(&giant);
        assert!(r.truncated);
        assert!(r.text.len() <= MAX_TEXT + 16);
        let broken = from_html("<p><b>unclosed <i>tags <a href='https://x.example/'>and");
        assert!(broken.text.contains("unclosed tags and"), "{}", broken.text);
        let deep = format!("{}x{}", "<div>".repeat(10_000), "</div>".repeat(10_000));
        assert_eq!(from_html(&deep).text, "x");
    }

    #[test]
    fn plain_text_is_escaped_for_markdown() {
        let r = from_text("*not bold* [not](a link)\n\nsecond\u{7} para");
        assert_eq!(r.text, "*not bold* [not](a link)\n\nsecond para");
        assert_eq!(
            r.markdown,
            "\\*not bold\\* \\[not\\]\\(a link\\)\n\nsecond para"
        );
        assert!(r.html.is_none());
    }
}
