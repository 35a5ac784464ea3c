//! The one place numbers become text: durations, counts, rates and percentages.
//! Results stay `Duration`/`f64`/`u64` in every type until they are printed.

use std::time::Duration;

/// A duration with a unit chosen for its size: `850 µs`, `3.1 ms`, `1.24 s`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}

/// Text that came from outside (an input line, a server's reply) made safe for a terminal:
/// every control character is shown escaped (`\u{1b}`), so no input can move the cursor,
/// retitle the window or clear the screen. Ordinary text is returned as it is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` cut to at most `max` characters, with `…` and the full length when cut.
pub fn shortened(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((at, _)) => {
            std::borrow::Cow::Owned(format!("{}… ({} bytes)", &text[..at], text.len()))
        }
    }
}

/// `text` in at most `max` characters, its end replaced by `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Milliseconds as a float, the unit of every time in the JSON report.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A count with a thin group separator for the projector: `131 442`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A ratio as a percentage with one decimal: `34.3 %`.
pub fn percent(part: f64, whole: f64) -> String {
    if whole == 0.0 {
        return "0.0 %".to_string();
    }
    format!("{:.1} %", 100.0 * part / whole)
}

/// A speedup factor: `2.50x`.
pub fn speedup(x: f64) -> String {
    format!("{x:.2}x")
}

/// A horizontal bar of `width` cells for `value` out of `max`, with eighth-cell resolution.
pub fn bar(value: f64, max: f64, width: usize) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    if max <= 0.0 || value <= 0.0 {
        return String::new();
    }
    let cells = (value / max).min(1.0) * width as f64;
    let full = cells.floor() as usize;
    let rest = ((cells - full as f64) * 8.0).round() as usize;
    let mut s = "█".repeat(full);
    if rest > 0 && full < width {
        s.push(if rest == 8 { '█' } else { EIGHTHS[rest] });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_unit_by_size() {
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(3100)), "3.1 ms");
        assert_eq!(duration(Duration::from_millis(1240)), "1.24 s");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(131_442), "131 442");
        assert_eq!(count(1_000_000), "1 000 000");
    }

    #[test]
    fn bars_scale_to_the_maximum() {
        assert_eq!(bar(10.0, 10.0, 4), "████");
        assert_eq!(bar(5.0, 10.0, 4), "██");
        assert_eq!(bar(0.0, 10.0, 4), "");
        assert!(bar(1.0, 10.0, 4).chars().count() == 1);
    }

    #[test]
    fn milliseconds_keep_microsecond_precision() {
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(printable("http://a.test/"), "http://a.test/");
        assert_eq!(
            printable("x\u{1b}]0;title\u{7}\u{1b}[2J"),
            "x\\u{1b}]0;title\\u{7}\\u{1b}[2J"
        );
        assert!(!printable("a\tb\r").chars().any(char::is_control));
    }

    #[test]
    fn long_text_is_shortened_with_its_length() {
        assert_eq!(shortened("abc", 5), "abc");
        assert_eq!(shortened("abcdef", 3), "abc… (6 bytes)");
    }
}
