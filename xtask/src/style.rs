//! Colour and bars for people at a terminal; plain text for logs.
//!
//! Colour only when stdout is a terminal, `NO_COLOR` is unset or empty
//! (<https://no-color.org>) and `TERM` is not `dumb`. Without colour, every
//! mark is still a word (`ok`, `warn`, `FAIL`), so a log reads the same.

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// What this process's stdout can show.
    pub fn detect() -> Style {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Style {
            colour: std::io::stdout().is_terminal() && !no_colour && !dumb,
        }
    }

    /// No colour, ASCII bars: what tests compare.
    #[cfg(test)]
    pub fn plain() -> Style {
        Style { colour: false }
    }

    pub fn colour(&self) -> bool {
        self.colour
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// `[######----]` in a log; solid blocks at a terminal.
    pub fn bar(&self, score: u32, total: u32, width: usize) -> String {
        let filled = if total == 0 {
            0
        } else {
            (score as usize * width + total as usize / 2) / total as usize
        };
        let filled = filled.min(width);
        if self.colour {
            let done = "█".repeat(filled);
            let left = "░".repeat(width - filled);
            let done = if score == total && total > 0 {
                self.green(&done)
            } else {
                self.yellow(&done)
            };
            format!("{done}{}", self.dim(&left))
        } else {
            format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
        }
    }
}

/// `1 point`, `3 points`.
pub fn points(n: u32) -> String {
    if n == 1 {
        "1 point".to_string()
    } else {
        format!("{n} points")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_bars_are_ascii_and_rounded() {
        let s = Style::plain();
        assert_eq!(s.bar(0, 10, 10), "[----------]");
        assert_eq!(s.bar(5, 10, 10), "[#####-----]");
        assert_eq!(s.bar(24, 24, 10), "[##########]");
        assert_eq!(s.bar(1, 49, 10), "[----------]");
        assert_eq!(s.bar(0, 0, 4), "[----]");
    }

    #[test]
    fn plain_text_has_no_escapes() {
        let s = Style::plain();
        assert_eq!(s.red("FAIL"), "FAIL");
        assert!(!s.colour());
        let c = Style { colour: true };
        assert_eq!(c.red("FAIL"), "\x1b[31mFAIL\x1b[0m");
    }
}
