//! Reading a list of URLs: one per line, with caps that keep memory flat whatever the input.
//!
//! - At most [`MAX_INPUT_BYTES`] of input and [`MAX_ENTRIES`] URLs: a larger input is one
//!   clear error before anything is checked (`url-check /dev/zero` stops at the cap, in a
//!   fraction of a second, holding one line's worth of memory).
//! - A line longer than [`MAX_LINE_BYTES`] is still one result (kind `line too long`), shown
//!   shortened; it is never held whole.
//! - A leading UTF-8 byte-order mark is ignored; `\r\n` endings are fine; surrounding white
//!   space is trimmed; blank lines and `#` comments are skipped (and counted).
//!
//! Every other line becomes exactly one [`Entry`]. The text of all entries lives in one
//! string, and an entry is four numbers, so 100 000 URLs take a few megabytes.

use std::borrow::Cow;
use std::io::BufRead;

use reqwest::Url;

use super::Kind;
use crate::lab::units;

/// The longest line kept as a URL, in bytes. Longer lines are reported, not checked.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// The most input read, in bytes (64 MiB).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;
/// The most URLs in one list.
pub const MAX_ENTRIES: usize = 1_000_000;
/// How much of an over-long line is kept, for messages.
const SHOWN_OF_LONG_LINE: usize = 80;

/// One line to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the input.
    pub line: u32,
    start: u32,
    len: u32,
    problem: Option<Problem>,
}

/// Why a line cannot even be parsed as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// Not UTF-8: the first bad byte's offset.
    NotUtf8 { at: u32 },
    /// Longer than [`MAX_LINE_BYTES`]: its length.
    TooLong { bytes: u64 },
}

/// A parsed list of URLs.
#[derive(Debug, Default)]
pub struct UrlList {
    text: String,
    entries: Vec<Entry>,
    /// Blank and comment lines skipped.
    pub skipped: usize,
    /// Lines in the input, counted from the newline bytes as they pass through the reader
    /// (by [`Counting`], which knows nothing of lines or entries): a second count, kept apart
    /// from the parsing, so a check can compare the two.
    pub lines: usize,
}

/// A reader that counts the bytes and newline bytes passing through it.
struct Counting<R> {
    inner: R,
    bytes: u64,
    newlines: u64,
    last: u8,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        self.newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        if n > 0 {
            self.last = buf[n - 1];
        }
        Ok(n)
    }
}

/// The input broke a cap: the message names the source and the cap.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// More bytes than [`MAX_INPUT_BYTES`].
    #[error("{source_name}: more than {} MiB of input (the cap; split the list)", MAX_INPUT_BYTES / (1024 * 1024))]
    TooLarge {
        /// The file name, or stdin.
        source_name: String,
    },
    /// More URLs than [`MAX_ENTRIES`].
    #[error(
        "{source_name}: more than {} URLs (the cap; split the list)",
        MAX_ENTRIES
    )]
    TooMany {
        /// The file name, or stdin.
        source_name: String,
    },
    /// The input could not be read.
    #[error("cannot read {source_name}: {error}")]
    Read {
        /// The file name, or stdin.
        source_name: String,
        /// What the OS said.
        error: std::io::Error,
    },
}

impl UrlList {
    /// Reads and parses a whole list from `reader`, naming it `source_name` in errors.
    pub fn read(reader: impl std::io::Read, source_name: &str) -> Result<UrlList, InputError> {
        let mut reader = std::io::BufReader::with_capacity(
            64 * 1024,
            Counting {
                inner: reader,
                bytes: 0,
                newlines: 0,
                last: b'\n',
            },
        );
        let mut list = UrlList::default();
        let mut line = Vec::with_capacity(256);
        let mut total: u64 = 0;
        let mut number = 0usize;
        loop {
            line.clear();
            let (read, ended, long) =
                read_capped_line(&mut reader, &mut line).map_err(|e| InputError::Read {
                    source_name: source_name.to_string(),
                    error: e,
                })?;
            total += read;
            if total > MAX_INPUT_BYTES {
                return Err(InputError::TooLarge {
                    source_name: source_name.to_string(),
                });
            }
            if read == 0 {
                break;
            }
            number += 1;
            if number == 1 && line.starts_with(b"\xEF\xBB\xBF") {
                line.drain(..3);
            }
            list.push(number, &line, long.then_some(read - u64::from(ended)))?
                .then_some(())
                .ok_or_else(|| InputError::TooMany {
                    source_name: source_name.to_string(),
                })?;
            if !ended {
                break;
            }
        }
        let counted = reader.get_ref();
        // A last line without a newline is still a line.
        list.lines =
            (counted.newlines + u64::from(counted.bytes > 0 && counted.last != b'\n')) as usize;
        Ok(list)
    }

    /// Parses a list held in memory (tests, the demo list).
    pub fn parse(bytes: &[u8]) -> UrlList {
        Self::read(bytes, "input").unwrap_or_default()
    }

    /// Adds line `number`; `long` is its full length when it was cut. Returns false when
    /// the list is full.
    fn push(&mut self, number: usize, raw: &[u8], long: Option<u64>) -> Result<bool, InputError> {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let (text, problem): (Cow<str>, Option<Problem>) = match (long, std::str::from_utf8(raw)) {
            (Some(bytes), _) => {
                let lossy = String::from_utf8_lossy(raw);
                let shown: String = lossy.trim().chars().take(SHOWN_OF_LONG_LINE).collect();
                (Cow::Owned(shown), Some(Problem::TooLong { bytes }))
            }
            (None, Ok(t)) => (Cow::Borrowed(t.trim()), None),
            (None, Err(e)) => (
                Cow::Owned(String::from_utf8_lossy(raw).trim().to_string()),
                Some(Problem::NotUtf8 {
                    at: e.valid_up_to() as u32,
                }),
            ),
        };
        if problem.is_none() && (text.is_empty() || text.starts_with('#')) {
            self.skipped += 1;
            return Ok(true);
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Ok(false);
        }
        let start = self.text.len() as u32;
        self.text.push_str(&text);
        self.entries.push(Entry {
            line: number as u32,
            start,
            len: text.len() as u32,
            problem,
        });
        Ok(true)
    }

    /// The entries, in input order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry's text as given (trimmed; shortened if over-long).
    pub fn text(&self, e: &Entry) -> &str {
        &self.text[e.start as usize..(e.start + e.len) as usize]
    }

    /// The entry's text as shown to people: credentials masked, control characters
    /// escaped.
    pub fn shown(&self, e: &Entry) -> String {
        let text = self.text(e);
        let masked = match Url::parse(text) {
            Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                Cow::Owned(mask_credentials(&url))
            }
            _ => Cow::Borrowed(text),
        };
        units::printable(&masked).into_owned()
    }

    /// The URL to check, or the kind and reason it cannot be checked.
    pub fn target(&self, e: &Entry) -> Result<Url, (Kind, String)> {
        match e.problem {
            Some(Problem::NotUtf8 { at }) => Err((
                Kind::InvalidLine,
                format!("invalid line: not UTF-8 (byte {at})"),
            )),
            Some(Problem::TooLong { bytes }) => Err((
                Kind::LineTooLong,
                format!("line too long: {bytes} bytes (at most {MAX_LINE_BYTES})"),
            )),
            None => parse_target(self.text(e)),
        }
    }
}

/// A URL with its user name and password replaced by `***`.
pub fn mask_credentials(url: &Url) -> String {
    let mut masked = url.clone();
    if masked.password().is_some() {
        let _ = masked.set_password(Some("***"));
    }
    if !masked.username().is_empty() {
        let _ = masked.set_username("***");
    }
    masked.to_string()
}

/// Parses a line as an http(s) URL, or says why it is not one.
pub fn parse_target(text: &str) -> Result<Url, (Kind, String)> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        Ok(url) => Err((
            Kind::UnsupportedScheme,
            format!("unsupported scheme '{}'", units::printable(url.scheme())),
        )),
        Err(url::ParseError::RelativeUrlWithoutBase) if !text.contains(char::is_whitespace) => {
            Err((
                Kind::InvalidUrl,
                format!(
                    "invalid URL (no scheme): did you mean https://{}?",
                    units::printable(&units::shortened(text, 60))
                ),
            ))
        }
        Err(e) => Err((Kind::InvalidUrl, format!("invalid URL ({e})"))),
    }
}

/// Reads one line into `line`, keeping at most [`MAX_LINE_BYTES`] + 1 bytes of it. Returns
/// (bytes consumed, whether a newline ended it, whether it was too long).
fn read_capped_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> std::io::Result<(u64, bool, bool)> {
    let mut consumed = 0u64;
    let mut long = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((consumed, false, long));
        }
        let (chunk, ended) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = (MAX_LINE_BYTES + 1).saturating_sub(line.len());
        if chunk.len() > room {
            long = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        consumed += n as u64;
        reader.consume(n);
        if ended {
            // A line is too long if its content (without the newline) exceeds the cap.
            let content = line.len() - 1;
            long |= content > MAX_LINE_BYTES;
            return Ok((consumed, true, long));
        }
        if consumed > MAX_INPUT_BYTES {
            return Ok((consumed, false, true));
        }
        long |= line.len() > MAX_LINE_BYTES;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(list: &UrlList) -> Vec<Option<Kind>> {
        list.entries()
            .iter()
            .map(|e| list.target(e).err().map(|(k, _)| k))
            .collect()
    }

    #[test]
    fn every_line_but_blanks_and_comments_becomes_one_entry() {
        let input = b"http://a.test/\n\n# comment\n  https://b.test/x  \nftp://c.test/\nnot a url\n\xff\xfe\nhttp://a.test/\r\n";
        let list = UrlList::parse(input);
        assert_eq!(list.skipped, 2);
        assert_eq!(list.lines, 8);
        let lines: Vec<u32> = list.entries().iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 4, 5, 6, 7, 8]);
        assert_eq!(list.text(&list.entries()[1]), "https://b.test/x");
        assert_eq!(
            kinds(&list),
            vec![
                None,
                None,
                Some(Kind::UnsupportedScheme),
                Some(Kind::InvalidUrl),
                Some(Kind::InvalidLine),
                None
            ]
        );
    }

    #[test]
    fn repeated_lines_are_each_an_entry() {
        let list = UrlList::parse(b"http://a.test/\nhttp://a.test/\nhttp://a.test/\n");
        assert_eq!(list.len(), 3);
        assert_eq!(list.lines, 3);
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let list = UrlList::parse(b"\xEF\xBB\xBFhttp://a.test/\n\xEF\xBB\xBF# not a comment\n");
        assert_eq!(list.text(&list.entries()[0]), "http://a.test/");
        assert!(list.target(&list.entries()[0]).is_ok());
        // Only a leading mark is one: later lines keep theirs (and fail as URLs).
        assert_eq!(list.len(), 2);
        let commented = UrlList::parse(b"\xEF\xBB\xBF# a comment\nhttp://a.test/\n");
        assert_eq!((commented.len(), commented.skipped), (1, 1));
    }

    #[test]
    fn a_long_line_is_one_result_shortened_never_held_whole() {
        let mut input = b"http://a.test/".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1_000_000));
        input.extend_from_slice(b"\nhttp://b.test/\n");
        let list = UrlList::parse(&input);
        assert_eq!(list.len(), 2);
        let (kind, msg) = list.target(&list.entries()[0]).unwrap_err();
        assert_eq!(kind, Kind::LineTooLong);
        assert!(msg.contains("1000014 bytes"), "{msg}");
        assert!(list.text(&list.entries()[0]).len() <= SHOWN_OF_LONG_LINE);
        assert!(list.target(&list.entries()[1]).is_ok());
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_kept() {
        let mut input = b"http://a.test/".to_vec();
        input.resize(MAX_LINE_BYTES, b'x');
        input.push(b'\n');
        let list = UrlList::parse(&input);
        assert!(list.target(&list.entries()[0]).is_ok());
    }

    #[test]
    fn input_past_the_cap_is_an_error_naming_the_source() {
        let endless = std::io::repeat(0).take(MAX_INPUT_BYTES + 10);
        let err = UrlList::read(endless, "/dev/zero").unwrap_err();
        assert!(
            err.to_string().starts_with("/dev/zero: more than 64 MiB"),
            "{err}"
        );
    }

    #[test]
    fn credentials_and_control_characters_never_reach_the_screen() {
        let list = UrlList::parse(b"https://user:secret@a.test/x\nhttp://a.test/\x1b]0;t\x07\n");
        assert_eq!(list.shown(&list.entries()[0]), "https://***:***@a.test/x");
        assert!(!list.shown(&list.entries()[1]).contains('\x1b'));
    }

    #[test]
    fn a_bare_host_suggests_a_scheme() {
        let (_, msg) = parse_target("example.com").unwrap_err();
        assert!(msg.contains("https://example.com"), "{msg}");
    }

    use std::io::Read;
}
