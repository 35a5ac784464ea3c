//! Links and anchors of an HTML document, read with a WHATWG tokenizer (html5gum).
//!
//! A link is an attribute that names a resource the page loads or points to: `href` of `a`,
//! `area` and `link`; `src` of `img`, `script`, `iframe`, `frame`, `embed`, `source`,
//! `track`, `audio`, `video` and `input`; each candidate of a `srcset`; a video's `poster`;
//! an object's `data`; a form's `action` when it sends a GET. A bare URL in the page's text is not a link (a browser shows it as
//! text; Markdown differs, where GitHub makes it one), and neither is anything in a comment
//! or a script's code. A `<link rel="preconnect">` or `dns-prefetch` names a server, not a
//! page: it is not a link either.
//!
//! Every link's place is the first character of its value in the source (entities such as
//! `&amp;` are decoded in the URL, never in the column).

use std::collections::HashSet;

use html5gum::{DefaultEmitter, Token, Tokenizer};

use super::extract::{Gathered, Link};

/// The attributes of `element` that hold links, and whether each is a `srcset` list.
fn link_attributes(element: &str) -> &'static [(&'static str, bool)] {
    match element {
        "a" | "area" | "link" => &[("href", false)],
        "img" | "source" => &[("src", false), ("srcset", true)],
        "video" => &[("src", false), ("poster", false)],
        "script" | "iframe" | "frame" | "embed" | "track" | "audio" | "input" => &[("src", false)],
        "object" => &[("data", false)],
        "form" => &[("action", false)],
        _ => &[],
    }
}

/// Whether a `<link rel>` names a server to warm up rather than a resource.
fn resource_hint(rel: &str) -> bool {
    rel.split_whitespace()
        .any(|r| r.eq_ignore_ascii_case("preconnect") || r.eq_ignore_ascii_case("dns-prefetch"))
}

/// The tokens of `text`, with byte spans; `script`, `style` and friends read as raw text.
fn tokens(text: &str) -> impl Iterator<Item = Token<usize>> + '_ {
    let mut emitter = DefaultEmitter::<usize>::new_with_span();
    emitter.naively_switch_states(true);
    Tokenizer::new_with_emitter(text, emitter).flatten()
}

/// The URLs of a `srcset` (`a.png 1x, b.png 2x`): each candidate's first word.
fn srcset(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .filter_map(|candidate| candidate.split_whitespace().next())
}

/// Where `piece` starts in `text[range]`; where entities make the source differ from the
/// decoded piece, where an attribute's value starts (after `=` and its quote).
fn place(text: &str, range: std::ops::Range<usize>, piece: &str) -> usize {
    let Some(src) = text.get(range.clone()) else {
        return range.start;
    };
    if let Some(i) = src.find(piece) {
        return range.start + i;
    }
    let value = src.find('=').map_or(0, |eq| {
        let after = &src[eq + 1..];
        let skipped = after.len() - after.trim_start_matches([' ', '\t', '\n', '"', '\'']).len();
        eq + 1 + skipped
    });
    range.start + value
}

/// The links of an HTML text, in document order.
pub fn links(text: &str) -> Vec<Link> {
    let mut gathered = Gathered::new(text);
    for token in tokens(text) {
        let Token::StartTag(tag) = token else {
            continue;
        };
        // The tokenizer gives tag and attribute names in lower case.
        let name = std::str::from_utf8(&tag.name).unwrap_or_default();
        let attr = |a: &str| {
            tag.attributes
                .get(a.as_bytes())
                .map(|v| (String::from_utf8_lossy(v).into_owned(), v.span))
        };
        if name == "link" && attr("rel").is_some_and(|(rel, _)| resource_hint(&rel)) {
            continue;
        }
        // A form that posts names an endpoint a GET would wrongly fail: not a link.
        if name == "form" && attr("method").is_some_and(|(m, _)| !m.eq_ignore_ascii_case("get")) {
            continue;
        }
        for &(attribute, is_srcset) in link_attributes(name) {
            let Some((value, span)) = attr(attribute) else {
                continue;
            };
            let range = span.start..span.end.min(text.len());
            if is_srcset {
                for url in srcset(&value) {
                    gathered.push(url, place(text, range.clone(), url));
                }
            } else {
                gathered.push(&value, place(text, range, value.trim()));
            }
        }
    }
    gathered.links
}

/// The anchors an HTML text offers a `#fragment`: every element's `id`, and `name` of `a`.
pub fn anchors(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    for token in tokens(text) {
        if let Token::StartTag(tag) = token {
            let name_counts = tag.name.eq_ignore_ascii_case(b"a");
            for (attribute, value) in &tag.attributes {
                if attribute.as_slice() == b"id" || (name_counts && attribute.as_slice() == b"name")
                {
                    found.insert(String::from_utf8_lossy(value).into_owned());
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(html: &str) -> Vec<(String, u32, u32)> {
        crate::check::extract::tests::urls(&links(html))
    }

    #[test]
    fn attributes_that_carry_links_with_their_places() {
        let html = "<!doctype html>\n<p><a href=\"https://a.test/x?p=1&amp;q=2\">a</a>\n\
                    <img src=pic.png srcset=\"s.png 1x, https://b.test/l.png 2x\">\n\
                    <link rel=preconnect href=https://fonts.test>\n\
                    <link rel=stylesheet href='style.css'>\n\
                    <video poster=\"p.jpg\"><source src=\"v.mp4\"></video></p>\n\
                    <form action=\"/search\"></form><form method=post action=\"/login\"></form>";
        assert_eq!(
            found(html),
            [
                ("https://a.test/x?p=1&q=2".into(), 2, 13),
                ("pic.png".into(), 3, 10),
                ("s.png".into(), 3, 26),
                ("https://b.test/l.png".into(), 3, 36),
                ("style.css".into(), 5, 28),
                ("p.jpg".into(), 6, 16),
                ("v.mp4".into(), 6, 36),
                ("/search".into(), 7, 15),
            ]
        );
    }

    #[test]
    fn text_comments_and_scripts_hold_no_links() {
        let html = "<p>See https://a.test/page.</p>\n\
                    <script>var u = \"<a href='https://d.test/'>\";</script>\n\
                    <!-- <a href=\"https://e.test/\"> -->\n\
                    <pre><a href=\"src/lib.rs.html#10\">10</a></pre>";
        assert_eq!(found(html), [("src/lib.rs.html#10".into(), 4, 15)]);
    }

    #[test]
    fn anchors_are_ids_and_a_names() {
        let html = "<h2 id=\"intro\">Intro</h2><a name=old></a><div name=\"not-an-anchor\"></div>";
        let a = anchors(html);
        assert!(a.contains("intro") && a.contains("old"), "{a:?}");
        assert!(!a.contains("not-an-anchor"));
    }
}
