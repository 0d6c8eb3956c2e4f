//! The Dockerfile subset minibox builds.
//!
//! A Dockerfile is a recipe for an image: a base image, then instructions
//! replayed on top of it in order, one per line, each a keyword and its
//! arguments:
//!
//! ```dockerfile
//! FROM ubuntu:18.04
//! LABEL org.opencontainers.image.authors="org@example.com"
//! COPY . /app
//! RUN make /app
//! RUN rm -r $HOME/.cache
//! CMD python /app/app.py
//! ```
//!
//! What each instruction does to the image:
//!
//! - `FROM IMAGE[:TAG]`: the starting point, its layers and its config. It
//!   must come first, and only once.
//! - `RUN COMMAND`: runs the command in a container of the image built so
//!   far; whatever it changed in the filesystem becomes a new **layer**.
//! - `COPY SRC... DEST`: copies files of the build context into a new
//!   **layer**. `ADD` is docker's older COPY with extras (it unpacks local
//!   tar archives).
//! - `ENV KEY=VALUE...`, `WORKDIR PATH`, `USER NAME[:GROUP]`,
//!   `CMD COMMAND`, `ENTRYPOINT COMMAND`, `LABEL KEY=VALUE...`: change only
//!   the image's *config* (the environment, the current directory, the user,
//!   what `run` starts, metadata). No layer: the image's history still lists
//!   them, marked `empty_layer`.
//!
//! So only `RUN`, `COPY` and `ADD` make layers; the example above is six
//! instructions and three layers on top of ubuntu's.
//!
//! The format, as docker reads it:
//!
//! - keywords are case-insensitive (`run` is `RUN`); upper case is the custom;
//! - a line whose first non-blank character is `#` is a comment; blank lines
//!   are skipped. `#` later in a line is not a comment: `RUN echo hi # there`
//!   hands `echo hi # there` to the shell;
//! - a line ending with `\` continues on the next one: the backslash and the
//!   line break are removed and the next line follows as written (its
//!   indentation included). Comment and blank lines inside a continuation are
//!   skipped. An instruction is known by the line it starts on;
//! - `RUN`, `CMD` and `ENTRYPOINT` take a *shell form*, `RUN make /app`, run
//!   as `/bin/sh -c "make /app"`, or an *exec form*, a JSON array of strings,
//!   `CMD ["python", "/app/app.py"]`, run as is, with no shell. Anything
//!   starting with `[` that is not valid JSON is shell form after all;
//! - `COPY` and `ADD` take whitespace-separated words, or a JSON array for
//!   names with spaces: `COPY ["my file", "/app/"]`;
//! - `ENV` and `LABEL` take `KEY=VALUE` words, where quotes and backslashes
//!   group, as in a shell: `ENV A=1 B="two words" C=three\ words`. `ENV KEY
//!   VALUE` (one pair, the value being the rest of the line) is the older form;
//! - `$VAR` and `${VAR}` in `COPY`, `ADD`, `ENV`, `LABEL`, `WORKDIR` and
//!   `USER` are replaced by the values `ENV` set before: see [`expand`]. Not
//!   in `RUN`, `CMD` and `ENTRYPOINT`: there, the shell does it when the
//!   command runs (and the exec form has no shell to do it).
//!
//! [`parse`] keeps each argument as written (quotes, backslashes and `$`
//! included): the builder, which knows the environment at each step, turns
//! a word into its value with [`expand`].
//!
//! Left out: `ARG`, multi-stage builds (`FROM ... AS name`, a second
//! `FROM`, `COPY --from`), flags (`RUN --mount`, `COPY --chown`,
//! `FROM --platform`...), heredocs (`RUN <<EOF`), `ONBUILD`, `HEALTHCHECK`,
//! `EXPOSE`, `VOLUME`, `STOPSIGNAL`, `SHELL` and the deprecated `MAINTAINER`:
//! each is an error naming it, not silently skipped. The parser directives
//! at the top (`# syntax=...`, `# escape=...`) are read as comments: the
//! escape character is always `\`.

use anyhow::{anyhow, bail};
use std::iter::Peekable;
use std::str::Chars;

/// One instruction, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Where the instruction starts in the Dockerfile, for error messages.
    pub line: usize,
    /// What it does.
    pub kind: Kind,
    /// The instruction as the image's history shows it: the keyword in upper
    /// case, then the arguments as written (continuations joined, surrounding
    /// whitespace trimmed), e.g. `RUN apt install vim -y`. Also the build
    /// cache's key: change a character, and the step runs again.
    pub text: String,
}

/// A command to run: `RUN`, `CMD` and `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `RUN make /app`: a line for `/bin/sh -c`.
    Shell(String),
    /// `RUN ["make", "/app"]`: the argv itself, no shell involved.
    Exec(Vec<String>),
}

impl Command {
    /// argv to run: `Shell(s)` => `["/bin/sh", "-c", s]`; `Exec(v)` => `v`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
            Command::Exec(argv) => argv.clone(),
        }
    }
}

// ANCHOR: kind
/// What an instruction does. Words marked *raw* are kept as written in the
/// Dockerfile: pass each through [`expand`] to get its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `FROM ubuntu:18.04`: the base image, as written (no variables: those
    /// would come from `ARG`).
    From { image: String },
    /// `RUN make /app`: run a command; its changes are a layer.
    Run(Command),
    /// `COPY . /app`: files of the build context into a layer (raw words).
    Copy { sources: Vec<String>, dest: String },
    /// `ADD a.tar /`: COPY, and local tar archives are unpacked (raw words).
    Add { sources: Vec<String>, dest: String },
    /// `ENV A=1 B="2 3"`: environment variables of the image, in order
    /// (raw keys and values: here `1` and `"2 3"`). docker expands all of an
    /// `ENV`'s values with the environment from *before* that `ENV`.
    Env(Vec<(String, String)>),
    /// `WORKDIR /app`: the current directory, for the next instructions and
    /// for the container (raw).
    Workdir(String),
    /// `CMD python app.py`: what `run IMAGE` starts (after the ENTRYPOINT,
    /// if any).
    Cmd(Command),
    /// `ENTRYPOINT ["/entry.sh"]`: the fixed start of what `run IMAGE` runs.
    Entrypoint(Command),
    /// `LABEL k=v`: metadata on the image (raw keys and values).
    Label(Vec<(String, String)>),
    /// `USER app` or `USER app:staff`: who the next instructions and the
    /// container run as (raw).
    User(String),
}
// ANCHOR_END: kind

impl Kind {
    /// Does this instruction make a layer? (RUN, COPY, ADD)
    pub fn makes_layer(&self) -> bool {
        matches!(self, Kind::Run(_) | Kind::Copy { .. } | Kind::Add { .. })
    }
}

/// The keywords minibox builds.
pub(crate) const SUPPORTED: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "WORKDIR",
    "CMD",
    "ENTRYPOINT",
    "LABEL",
    "USER",
];

/// Real Dockerfile keywords that minibox refuses, with a clearer message than
/// "unknown instruction": the Dockerfile is fine, minibox is just smaller.
const NOT_SUPPORTED: &[&str] = &[
    "ARG",
    "EXPOSE",
    "VOLUME",
    "STOPSIGNAL",
    "SHELL",
    "ONBUILD",
    "HEALTHCHECK",
    "MAINTAINER",
];

// ANCHOR: parse
/// Parse a whole Dockerfile; the first instruction is the FROM.
pub fn parse(text: &str) -> anyhow::Result<Vec<Instruction>> {
    let mut instructions: Vec<Instruction> = Vec::new();
    for (line, joined) in logical_lines(text) {
        // The keyword is the first word; the arguments are the rest.
        let (written, args) = match joined.find(char::is_whitespace) {
            Some(end) => (&joined[..end], joined[end..].trim_start()),
            None => (joined.as_str(), ""),
        };
        let keyword = written.to_ascii_uppercase();
        if NOT_SUPPORTED.contains(&keyword.as_str()) {
            bail!("line {line}: {keyword} is not supported by minibox");
        }
        if !SUPPORTED.contains(&keyword.as_str()) {
            bail!("line {line}: unknown instruction `{written}`");
        }
        // One stage: FROM first, and never again.
        match (instructions.is_empty(), keyword == "FROM") {
            (true, false) => {
                bail!("line {line}: the first instruction must be FROM, found {keyword}")
            }
            (false, true) => bail!("line {line}: {MULTI_STAGE}"),
            _ => {}
        }
        let kind = parse_arguments(&keyword, args).map_err(|e| anyhow!("line {line}: {e}"))?;
        let text = match args {
            "" => keyword,
            _ => format!("{keyword} {args}"),
        };
        instructions.push(Instruction { line, kind, text });
    }
    if instructions.is_empty() {
        bail!("the Dockerfile has no FROM");
    }
    Ok(instructions)
}
// ANCHOR_END: parse

const MULTI_STAGE: &str = "multi-stage builds (a second FROM / AS) are not supported";

/// The instructions of a Dockerfile, each as one line (continuations joined)
/// with the number of the line it starts on. Comments and blank lines are
/// gone.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    // An editor may have put a byte order mark at the start.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut done = Vec::new();
    // The instruction being joined: its first line's number, and its text.
    let mut open: Option<(usize, String)> = None;
    // `lines` also drops the `\r` of a `\r\n` line break.
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        // Comments and blank lines are skipped, inside a continuation too.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // A continued line is appended as written, its indentation included;
        // an instruction's first line loses its indentation.
        let piece = if open.is_some() { raw } else { trimmed };
        // `\` at the end of a line (blanks after it allowed) continues it.
        let before_blanks = piece.trim_end_matches([' ', '\t']);
        let (piece, continues) = match before_blanks.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (piece, false),
        };
        let (start, mut joined) = open.take().unwrap_or((index + 1, String::new()));
        joined.push_str(piece);
        if continues {
            open = Some((start, joined));
        } else {
            done.push((start, joined));
        }
    }
    // A `\` on the last line continues into nothing: the instruction ends.
    done.extend(open);
    done.into_iter()
        .map(|(line, joined)| (line, joined.trim().to_string()))
        .filter(|(_, joined)| !joined.is_empty())
        .collect()
}

/// The arguments of one instruction, whose keyword is known and upper-case.
/// Errors are messages without the line number, which the caller adds.
fn parse_arguments(keyword: &str, args: &str) -> Result<Kind, String> {
    // docker reads `--name` or `--name=value` words at the start of any
    // instruction's arguments as flags. minibox has none.
    if let Some(flag) = args
        .split_whitespace()
        .next()
        .and_then(|w| w.strip_prefix("--"))
    {
        if !flag.is_empty() {
            let name = flag.split('=').next().unwrap_or(flag);
            return Err(format!("{keyword} --{name} is not supported"));
        }
    }
    Ok(match keyword {
        "FROM" => Kind::From {
            image: parse_from(args)?,
        },
        "RUN" => {
            let command = parse_command(keyword, args)?;
            match &command {
                Command::Exec(argv) if argv.is_empty() => return Err("RUN needs a command".into()),
                Command::Shell(line) => reject_heredoc(line)?,
                Command::Exec(_) => {}
            }
            Kind::Run(command)
        }
        "CMD" => Kind::Cmd(parse_command(keyword, args)?),
        "ENTRYPOINT" => Kind::Entrypoint(parse_command(keyword, args)?),
        "COPY" => {
            let (sources, dest) = parse_copy(keyword, args)?;
            Kind::Copy { sources, dest }
        }
        "ADD" => {
            let (sources, dest) = parse_copy(keyword, args)?;
            Kind::Add { sources, dest }
        }
        "ENV" => Kind::Env(parse_pairs(keyword, args)?),
        "LABEL" => Kind::Label(parse_pairs(keyword, args)?),
        // The whole rest of the line is the one argument, as in docker:
        // `WORKDIR /my dir` is the directory "/my dir".
        "WORKDIR" if args.is_empty() => return Err("WORKDIR needs a path".into()),
        "WORKDIR" => Kind::Workdir(args.to_string()),
        "USER" if args.is_empty() => {
            return Err("USER needs a user name (USER NAME or USER NAME:GROUP)".into())
        }
        "USER" => Kind::User(args.to_string()),
        other => unreachable!("{other} is in SUPPORTED but has no parser"),
    })
}

/// `FROM IMAGE[:TAG]`: one image, no stage name.
fn parse_from(args: &str) -> Result<String, String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.as_slice() {
        [] => Err("FROM needs an image, e.g. FROM ubuntu:24.04".into()),
        [image] => Ok(image.to_string()),
        // `FROM golang AS build` names a stage, for a later `COPY --from`.
        [_, rest @ ..] if rest.iter().any(|w| w.eq_ignore_ascii_case("as")) => {
            Err(MULTI_STAGE.into())
        }
        _ => Err(format!("FROM takes a single image, found `{args}`")),
    }
}

/// What a JSON-looking argument turned out to be.
enum Json {
    /// A JSON array of strings: the exec form.
    Strings(Vec<String>),
    /// Valid JSON, but not an array of strings only: docker refuses it.
    NotStrings,
    /// Not JSON at all: the shell form after all.
    Other,
}

fn json_array(args: &str) -> Json {
    if !args.starts_with('[') {
        return Json::Other;
    }
    match serde_json::from_str::<serde_json::Value>(args) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<String>>>()
            .map_or(Json::NotStrings, Json::Strings),
        Ok(_) => Json::NotStrings,
        Err(_) => Json::Other,
    }
}

/// The shell form or the exec form of `RUN`, `CMD` and `ENTRYPOINT`.
fn parse_command(keyword: &str, args: &str) -> Result<Command, String> {
    if args.is_empty() {
        return Err(format!("{keyword} needs a command"));
    }
    match json_array(args) {
        Json::Strings(argv) => Ok(Command::Exec(argv)),
        // `CMD ["sleep", 10]` would otherwise run the shell on that text.
        Json::NotStrings => Err(format!(
            "{keyword}: a JSON array must hold strings only, e.g. [\"sleep\", \"10\"]"
        )),
        // `RUN [ -f x ] && make` is shell code that happens to start with `[`.
        Json::Other => Ok(Command::Shell(args.to_string())),
    }
}

/// `COPY SRC... DEST` or `COPY ["SRC", ..., "DEST"]`: the sources and the
/// destination, raw.
fn parse_copy(keyword: &str, args: &str) -> Result<(Vec<String>, String), String> {
    let mut words = match json_array(args) {
        Json::Strings(words) => words,
        Json::NotStrings => return Err(format!("{keyword}: a JSON array must hold strings only")),
        // Plain whitespace splitting: quotes don't group here (docker's rule),
        // which is why names with spaces need the JSON form.
        Json::Other => {
            reject_heredoc(args)?;
            args.split_whitespace().map(String::from).collect()
        }
    };
    match words.pop() {
        Some(dest) if !words.is_empty() => Ok((words, dest)),
        _ => Err(format!(
            "{keyword} needs at least one source and a destination"
        )),
    }
}

/// docker reads `<<EOF` in RUN, COPY and ADD as a heredoc: the lines that
/// follow, up to `EOF`, are a script or a file. minibox doesn't, and would
/// otherwise take those lines for instructions.
fn reject_heredoc(args: &str) -> Result<(), String> {
    let heredoc = args.split_whitespace().any(|word| {
        // `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`; not `<<<` (a shell
        // here-string) nor `$((1<<2))`.
        let word = word.trim_start_matches(|c: char| c.is_ascii_digit());
        word.strip_prefix("<<")
            .map(|rest| rest.strip_prefix('-').unwrap_or(rest))
            .is_some_and(|name| !name.is_empty() && !name.contains('<'))
    });
    match heredoc {
        true => Err("heredocs (<<EOF) are not supported".into()),
        false => Ok(()),
    }
}

/// `ENV`'s and `LABEL`'s arguments: `K=V K2="V 2"...`, or the older
/// `KEY VALUE` (one pair, the value being the rest of the line).
fn parse_pairs(keyword: &str, args: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(args);
    let Some(first) = words.first() else {
        return Err(format!("{keyword} needs KEY=VALUE"));
    };
    // docker's rule: if the first word has no `=`, it is the older form.
    if !first.contains('=') {
        return match args.split_once(char::is_whitespace) {
            Some((key, value)) => Ok(vec![(key.to_string(), value.trim_start().to_string())]),
            None => Err(format!(
                "{keyword} `{args}` has no value (write {keyword} {args}=VALUE)"
            )),
        };
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err(format!("{keyword} `{word}` has an empty key")),
            Some((key, value)) => Ok((key.to_string(), value.to_string())),
            None => Err(format!("{keyword} `{word}` is not of the form KEY=VALUE")),
        })
        .collect()
}

/// Split on whitespace, except inside quotes or after a backslash, keeping
/// the quotes and backslashes: `A="x y" B=z\ w` is the two words `A="x y"`
/// and `B=z\ w`. [`expand`] removes them later.
fn split_words(args: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // The quote we are inside of, if any.
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        word.push(c);
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            // Nothing is special between single quotes, not even `\`.
            (Some('\''), _) => {}
            // `\` keeps the next character in the word, whatever it is.
            (_, '\\') => word.extend(chars.next()),
            (None, '\'' | '"') => quote = Some(c),
            _ => {}
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A word of the Dockerfile turned into its value, as docker does for the
/// arguments of `COPY`, `ADD`, `ENV`, `LABEL`, `WORKDIR` and `USER`:
///
/// - `$VAR` and `${VAR}` become the variable's value in `env` (the later of
///   two pairs with the same key wins), or nothing if it is not set;
/// - `${VAR:-default}`: the value, or `default` if unset or empty;
///   `${VAR:+alt}`: `alt` if set and not empty, otherwise nothing;
/// - quotes group and disappear: `"a b"` and `'a b'` are `a b`; nothing is
///   replaced inside single quotes; inside double quotes `\` escapes only
///   `"`, `$` and `\`;
/// - outside quotes, `\` makes the next character plain: `\$HOME` is
///   `$HOME`, `a\ b` is `a b`.
///
/// An unclosed quote or `${`, or another `${...}` form, is an error.
pub fn expand(word: &str, env: &[(String, String)]) -> anyhow::Result<String> {
    let mut lexer = Lexer {
        chars: word.chars().peekable(),
        env,
    };
    lexer.until(None).map_err(|e| anyhow!("`{word}`: {e}"))
}

/// Reads a word left to right, writing its value.
struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    env: &'a [(String, String)],
}

const UNCLOSED_BRACE: &str = "`${` is not closed by `}`";

impl<'a> Lexer<'a> {
    /// The value of the characters up to `stop` (consumed), or to the end.
    fn until(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.chars.next() {
            if Some(c) == stop {
                return Ok(out);
            }
            match c {
                '\'' => self.single_quoted(&mut out)?,
                '"' => self.double_quoted(&mut out)?,
                '$' => self.dollar(&mut out)?,
                // A `\` at the very end escapes nothing and is dropped.
                '\\' => out.extend(self.chars.next()),
                _ => out.push(c),
            }
        }
        match stop {
            Some(_) => Err(UNCLOSED_BRACE.into()),
            None => Ok(out),
        }
    }

    /// After a `'`: everything is plain up to the next `'`.
    fn single_quoted(&mut self, out: &mut String) -> Result<(), String> {
        loop {
            match self.chars.next() {
                Some('\'') => return Ok(()),
                Some(c) => out.push(c),
                None => return Err("a single quote is not closed".into()),
            }
        }
    }

    /// After a `"`: variables are replaced, up to the next `"`.
    fn double_quoted(&mut self, out: &mut String) -> Result<(), String> {
        loop {
            match self.chars.next() {
                Some('"') => return Ok(()),
                Some('$') => self.dollar(out)?,
                Some('\\') => match self.chars.peek() {
                    Some('"' | '$' | '\\') => out.extend(self.chars.next()),
                    // Any other `\` is kept: "C:\dir" stays C:\dir.
                    _ => out.push('\\'),
                },
                Some(c) => out.push(c),
                None => return Err("a double quote is not closed".into()),
            }
        }
    }

    /// After a `$`: `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME:+word}`, or
    /// a plain `$` if no name follows (`$5`, `a$`, `$ x`).
    fn dollar(&mut self, out: &mut String) -> Result<(), String> {
        if self.chars.peek() != Some(&'{') {
            match self.name() {
                Some(name) => out.push_str(self.lookup(&name)),
                None => out.push('$'),
            }
            return Ok(());
        }
        self.chars.next();
        let Some(name) = self.name() else {
            return Err("bad substitution: `${` must be followed by a variable name".into());
        };
        let bad = "bad substitution: only ${VAR}, ${VAR:-default} and ${VAR:+alt} are supported";
        match self.chars.next() {
            Some('}') => out.push_str(self.lookup(&name)),
            Some(':') => {
                let modifier = self.chars.next().ok_or(UNCLOSED_BRACE)?;
                if modifier != '-' && modifier != '+' {
                    return Err(bad.into());
                }
                // The word may itself hold quotes and variables.
                let word = self.until(Some('}'))?;
                let value = self.lookup(&name);
                match (modifier, value.is_empty()) {
                    ('-', true) | ('+', false) => out.push_str(&word),
                    ('-', false) => out.push_str(value),
                    _ => {}
                }
            }
            Some(_) => return Err(bad.into()),
            None => return Err(UNCLOSED_BRACE.into()),
        }
        Ok(())
    }

    /// A variable name, as in the shell: a letter or `_`, then letters,
    /// digits and `_`.
    fn name(&mut self) -> Option<String> {
        let first = *self.chars.peek()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let mut name = String::new();
        while let Some(&c) = self.chars.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.chars.next();
        }
        Some(name)
    }

    fn lookup(&self, name: &str) -> &'a str {
        self.env
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The kinds of a Dockerfile that must parse.
    fn kinds(text: &str) -> Vec<Kind> {
        parse(text).unwrap().into_iter().map(|i| i.kind).collect()
    }

    /// The error message of a Dockerfile that must not parse.
    fn error(text: &str) -> String {
        let message = parse(text).unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message:?}");
        message
    }

    const BLOG: &str = r#"FROM ubuntu:18.04
LABEL org.opencontainers.image.authors="org@example.com"
COPY . /app
RUN make /app
RUN rm -r $HOME/.cache
CMD python /app/app.py
"#;

    #[test]
    fn the_blog_dockerfile() {
        let instructions = parse(BLOG).unwrap();
        assert_eq!(instructions.len(), 6);
        assert_eq!(
            instructions.iter().filter(|i| i.kind.makes_layer()).count(),
            3
        );
        let kinds: Vec<Kind> = instructions.iter().map(|i| i.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::From {
                    image: "ubuntu:18.04".into()
                },
                Kind::Label(pairs(&[(
                    "org.opencontainers.image.authors",
                    "\"org@example.com\""
                )])),
                Kind::Copy {
                    sources: strings(&["."]),
                    dest: "/app".into()
                },
                Kind::Run(Command::Shell("make /app".into())),
                // Left for the shell: no expansion in RUN.
                Kind::Run(Command::Shell("rm -r $HOME/.cache".into())),
                Kind::Cmd(Command::Shell("python /app/app.py".into())),
            ]
        );
        let lines: Vec<usize> = instructions.iter().map(|i| i.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6]);
        let texts: Vec<&str> = instructions.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, BLOG.lines().collect::<Vec<_>>());
    }

    #[test]
    fn keywords_are_case_insensitive_and_text_is_normalized() {
        let instructions = parse("from base\n  run   echo  hi  \r\nCopy a b\n").unwrap();
        let texts: Vec<&str> = instructions.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, ["FROM base", "RUN echo  hi", "COPY a b"]);
        assert_eq!(
            instructions[1].kind,
            Kind::Run(Command::Shell("echo  hi".into()))
        );
    }

    #[test]
    fn comments_blank_lines_and_directives() {
        let text = "# syntax=docker/dockerfile:1\n# escape=`\n\n   # indented comment\nFROM base\n\nRUN echo hi # not a comment\n";
        let instructions = parse(text).unwrap();
        assert_eq!(instructions.len(), 2);
        assert_eq!(instructions[0].line, 5);
        assert_eq!(instructions[1].line, 7);
        assert_eq!(
            instructions[1].kind,
            Kind::Run(Command::Shell("echo hi # not a comment".into()))
        );
    }

    #[test]
    fn continuation_lines() {
        let text = "FROM base\n\
                    RUN apt-get update && \\\n\
                    # a comment inside is skipped\n\
                    \n\
                    \x20   apt-get install -y vim \\  \n\
                    \x20   && true\n\
                    RUN apt install \\\nvim -y\n\
                    CMD echo last \\\n";
        let instructions = parse(text).unwrap();
        let lines: Vec<usize> = instructions.iter().map(|i| i.line).collect();
        assert_eq!(lines, [1, 2, 7, 9]);
        // The backslash and the line break go; indentation stays.
        assert_eq!(
            instructions[1].text,
            "RUN apt-get update &&     apt-get install -y vim     && true"
        );
        assert_eq!(instructions[2].text, "RUN apt install vim -y");
        // A `\` on the last line: the instruction just ends.
        assert_eq!(
            instructions[3].kind,
            Kind::Cmd(Command::Shell("echo last".into()))
        );
    }

    #[test]
    fn exec_form_and_shell_form() {
        let kinds = kinds(
            "FROM base\n\
             RUN [\"make\", \"/app\"]\n\
             CMD [\"python\", \"/app/app.py\"]\n\
             ENTRYPOINT [ \"/entry.sh\" ]\n\
             CMD []\n\
             RUN [ -f /etc/os-release ] && echo yes\n\
             CMD [\"unclosed\"\n\
             ENTRYPOINT exec /entry.sh\n",
        );
        assert_eq!(
            kinds[1..],
            [
                Kind::Run(Command::Exec(strings(&["make", "/app"]))),
                Kind::Cmd(Command::Exec(strings(&["python", "/app/app.py"]))),
                Kind::Entrypoint(Command::Exec(strings(&["/entry.sh"]))),
                Kind::Cmd(Command::Exec(vec![])),
                // Not JSON: shell code that starts with `[`.
                Kind::Run(Command::Shell("[ -f /etc/os-release ] && echo yes".into())),
                Kind::Cmd(Command::Shell("[\"unclosed\"".into())),
                Kind::Entrypoint(Command::Shell("exec /entry.sh".into())),
            ]
        );
    }

    #[test]
    fn argv() {
        assert_eq!(
            Command::Shell("make /app".into()).argv(),
            strings(&["/bin/sh", "-c", "make /app"])
        );
        assert_eq!(
            Command::Exec(strings(&["make", "/app"])).argv(),
            strings(&["make", "/app"])
        );
    }

    #[test]
    fn copy_and_add() {
        let kinds = kinds(
            "FROM base\n\
             COPY a b c /dest/\n\
             ADD [\"my file\", \"/my dir/\"]\n\
             COPY $SRC ${DEST}\n",
        );
        assert_eq!(
            kinds[1..],
            [
                Kind::Copy {
                    sources: strings(&["a", "b", "c"]),
                    dest: "/dest/".into()
                },
                Kind::Add {
                    sources: strings(&["my file"]),
                    dest: "/my dir/".into()
                },
                // Raw: the builder expands.
                Kind::Copy {
                    sources: strings(&["$SRC"]),
                    dest: "${DEST}".into()
                },
            ]
        );
    }

    #[test]
    fn env_both_forms() {
        let kinds = kinds(
            "FROM base\n\
             ENV K1=V1 K2=\"v 2\" K3=v\\ 3 K4='a \"b\"' K5=\n\
             ENV GREETING hello   big world\n\
             ENV PATH=$PATH:/app/bin\n",
        );
        let raw = pairs(&[
            ("K1", "V1"),
            ("K2", "\"v 2\""),
            ("K3", "v\\ 3"),
            ("K4", "'a \"b\"'"),
            ("K5", ""),
        ]);
        assert_eq!(kinds[1], Kind::Env(raw.clone()));
        assert_eq!(
            kinds[2],
            Kind::Env(pairs(&[("GREETING", "hello   big world")]))
        );
        assert_eq!(kinds[3], Kind::Env(pairs(&[("PATH", "$PATH:/app/bin")])));
        // What the builder stores, once each word is expanded.
        let values: Vec<String> = raw.iter().map(|(_, v)| expand(v, &[]).unwrap()).collect();
        assert_eq!(values, ["V1", "v 2", "v 3", "a \"b\"", ""]);
    }

    #[test]
    fn label_workdir_user() {
        let kinds = kinds(
            "FROM base\n\
             LABEL version=1.0 description=\"a small app\"\n\
             WORKDIR /app\n\
             USER app:staff\n",
        );
        assert_eq!(
            kinds[1..],
            [
                Kind::Label(pairs(&[
                    ("version", "1.0"),
                    ("description", "\"a small app\"")
                ])),
                Kind::Workdir("/app".into()),
                Kind::User("app:staff".into()),
            ]
        );
    }

    #[test]
    fn which_instructions_make_layers() {
        let layers: Vec<bool> = kinds(
            "FROM base\nRUN true\nCOPY a /\nADD a /\nENV A=1\nWORKDIR /\nCMD x\nENTRYPOINT y\nLABEL a=b\nUSER u\n",
        )
        .iter()
        .map(Kind::makes_layer)
        .collect();
        assert_eq!(
            layers,
            [false, true, true, true, false, false, false, false, false, false]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            error("FROM base\n\n# comment\nFOO bar\n"),
            "line 4: unknown instruction `FOO`"
        );
        assert_eq!(
            error("FROM base\nrUn2 x\n"),
            "line 2: unknown instruction `rUn2`"
        );
        assert_eq!(
            error("# hi\nRUN make\nFROM base\n"),
            "line 2: the first instruction must be FROM, found RUN"
        );
        assert_eq!(
            error("FROM base\nRUN make\nfrom other\n"),
            "line 3: multi-stage builds (a second FROM / AS) are not supported"
        );
        assert_eq!(
            error("FROM golang AS build\n"),
            "line 1: multi-stage builds (a second FROM / AS) are not supported"
        );
        assert_eq!(
            error("FROM --platform=linux/arm64 base\n"),
            "line 1: FROM --platform is not supported"
        );
        assert_eq!(
            error("FROM\n"),
            "line 1: FROM needs an image, e.g. FROM ubuntu:24.04"
        );
        assert_eq!(
            error("FROM a b\n"),
            "line 1: FROM takes a single image, found `a b`"
        );
        assert_eq!(error(""), "the Dockerfile has no FROM");
        assert_eq!(error("# only\n\n  \n"), "the Dockerfile has no FROM");
    }

    #[test]
    fn errors_of_copy_and_run() {
        for flag in ["chown=1000:1000", "chmod=644", "from=build", "link"] {
            let name = flag.split('=').next().unwrap();
            assert_eq!(
                error(&format!("FROM base\nCOPY --{flag} a /b\n")),
                format!("line 2: COPY --{name} is not supported")
            );
        }
        assert_eq!(
            error("FROM base\nADD --chown=app a /b\n"),
            "line 2: ADD --chown is not supported"
        );
        for args in ["", " a", " [\"a\"]", " []"] {
            assert_eq!(
                error(&format!("FROM base\nCOPY{args}\n")),
                "line 2: COPY needs at least one source and a destination"
            );
        }
        assert_eq!(
            error("FROM base\nRUN --mount=type=cache,target=/root/.cache make\n"),
            "line 2: RUN --mount is not supported"
        );
        assert_eq!(
            error("FROM base\nRUN --network=none make\n"),
            "line 2: RUN --network is not supported"
        );
        assert_eq!(error("FROM base\nRUN\n"), "line 2: RUN needs a command");
        assert_eq!(error("FROM base\nRUN []\n"), "line 2: RUN needs a command");
        assert_eq!(error("FROM base\nCMD\n"), "line 2: CMD needs a command");
        assert_eq!(
            error("FROM base\nCMD [\"sleep\", 10]\n"),
            "line 2: CMD: a JSON array must hold strings only, e.g. [\"sleep\", \"10\"]"
        );
        assert_eq!(
            error("FROM base\nRUN <<EOF\necho hi\nEOF\n"),
            "line 2: heredocs (<<EOF) are not supported"
        );
        assert_eq!(
            error("FROM base\nCOPY <<-\"EOF\" /hello\nhi\nEOF\n"),
            "line 2: heredocs (<<EOF) are not supported"
        );
        // Not heredocs: a here-string, and a shift.
        kinds("FROM base\nRUN cat <<< hi\nRUN echo $((1<<2))\n");
    }

    #[test]
    fn errors_of_the_other_instructions() {
        assert_eq!(error("FROM base\nENV\n"), "line 2: ENV needs KEY=VALUE");
        assert_eq!(
            error("FROM base\nENV NAME\n"),
            "line 2: ENV `NAME` has no value (write ENV NAME=VALUE)"
        );
        assert_eq!(
            error("FROM base\nENV A=1 =2\n"),
            "line 2: ENV `=2` has an empty key"
        );
        assert_eq!(
            error("FROM base\nLABEL a=1 b\n"),
            "line 2: LABEL `b` is not of the form KEY=VALUE"
        );
        assert_eq!(
            error("FROM base\nWORKDIR\n"),
            "line 2: WORKDIR needs a path"
        );
        assert_eq!(
            error("FROM base\nUSER  \n"),
            "line 2: USER needs a user name (USER NAME or USER NAME:GROUP)"
        );
    }

    #[test]
    fn known_instructions_minibox_leaves_out() {
        for keyword in [
            "EXPOSE 80",
            "VOLUME /data",
            "STOPSIGNAL SIGTERM",
            "SHELL [\"/bin/bash\", \"-c\"]",
            "ARG VERSION=1",
            "ONBUILD RUN make",
            "HEALTHCHECK CMD true",
            "MAINTAINER me",
        ] {
            let upper = keyword.split(' ').next().unwrap();
            assert_eq!(
                error(&format!("FROM base\n{}\n", keyword.to_lowercase())),
                format!("line 2: {upper} is not supported by minibox")
            );
        }
        // Even before a FROM: the reason is the instruction, not its place.
        assert_eq!(
            error("ARG BASE=ubuntu\nFROM $BASE\n"),
            "line 1: ARG is not supported by minibox"
        );
    }

    #[test]
    fn expand_variables() {
        let env = pairs(&[
            ("HOME", "/root"),
            ("EMPTY", ""),
            ("APP", "old"),
            ("APP", "/app"),
        ]);
        let cases = [
            ("$HOME/.cache", "/root/.cache"),
            ("${HOME}x", "/rootx"),
            ("$HOMEx", ""),
            ("${APP}", "/app"),
            ("$UNSET", ""),
            ("a${UNSET}b", "ab"),
            ("${UNSET:-/default}", "/default"),
            ("${EMPTY:-$HOME/d}", "/root/d"),
            ("${HOME:-/default}", "/root"),
            ("${HOME:+set}", "set"),
            ("${EMPTY:+set}", ""),
            ("${UNSET:+set}", ""),
            ("${UNSET:-a\\}b}", "a}b"),
            ("${UNSET:-\"a b\"}", "a b"),
            ("\\$HOME", "$HOME"),
            ("'$HOME'", "$HOME"),
            ("\"$HOME\"", "/root"),
            ("\"\\$HOME \\\"q\\\" \\n\"", "$HOME \"q\" \\n"),
            ("a\\ b", "a b"),
            ("plain", "plain"),
            ("$", "$"),
            ("a$ b", "a$ b"),
            ("$5", "$5"),
            ("trailing\\", "trailing"),
            ("", ""),
        ];
        for (word, value) in cases {
            assert_eq!(expand(word, &env).unwrap(), value, "expand({word:?})");
        }
    }

    #[test]
    fn expand_errors() {
        let cases = [
            ("${HOME", "`${HOME`: `${` is not closed by `}`"),
            ("${HOME:-x", "`${HOME:-x`: `${` is not closed by `}`"),
            ("${", "`${`: bad substitution: `${` must be followed by a variable name"),
            ("${}", "`${}`: bad substitution: `${` must be followed by a variable name"),
            (
                "${HOME?}",
                "`${HOME?}`: bad substitution: only ${VAR}, ${VAR:-default} and ${VAR:+alt} are supported",
            ),
            (
                "${HOME:?msg}",
                "`${HOME:?msg}`: bad substitution: only ${VAR}, ${VAR:-default} and ${VAR:+alt} are supported",
            ),
            ("'abc", "`'abc`: a single quote is not closed"),
            ("\"abc", "`\"abc`: a double quote is not closed"),
        ];
        for (word, message) in cases {
            assert_eq!(expand(word, &[]).unwrap_err().to_string(), message);
        }
    }
}
