//! The command line: `minibox run [-e K=V]... [-w DIR] -- CMD [ARGS...]`.
//!
//! Flags mirror `docker run`, so what you type here transfers. Later steps
//! add to [`RunArgs`] by flattening it into theirs.

use crate::status::{self, RUNTIME_ERROR};
use crate::RunSpec;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "minibox",
    version,
    about = "A container runtime built step by step (step 01: a container is a process)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command as a supervised child process.
    Run(RunArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Set an environment variable (KEY=VALUE), or copy KEY from your own
    /// environment (KEY). Nothing else of your environment is passed.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Working directory of the command.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl RunArgs {
    /// Turn the flags into a [`RunSpec`], reading `-e KEY` from the runtime's
    /// own environment.
    pub fn spec(&self) -> anyhow::Result<RunSpec> {
        Ok(RunSpec {
            command: self.command.clone(),
            env: crate::env::build(&self.env, |key| std::env::var(key).ok())?,
            workdir: self.workdir.clone(),
        })
    }
}

/// Parse the command line like `Parser::parse`, but with docker's exit code
/// for bad usage (125) and a one-line message instead of clap's block.
/// `--help` and `--version` print as usual and exit 0.
pub fn parse<P: Parser>() -> Result<P, i32> {
    P::try_parse().map_err(|err| {
        use clap::error::ErrorKind;
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            let _ = err.print();
            return 0;
        }
        if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            report("no command given: try `minibox run -- echo hello` (see `minibox --help`)");
            return RUNTIME_ERROR;
        }
        // clap writes a block (error, usage, tip); keep its first sentence,
        // with the argument it names when that sits on the next line.
        let text = err.render().to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let mut first = lines
            .next()
            .unwrap_or("invalid arguments")
            .trim_start_matches("error: ")
            .to_string();
        if first.ends_with(':') {
            if let Some(next) = lines.next() {
                first = format!("{first} {next}");
            }
        } else if let Some(values) = lines.next().filter(|l| l.starts_with("[possible values:")) {
            first = format!("{first} {values}");
        }
        report(&format!("{first} (see `minibox --help`)"));
        RUNTIME_ERROR
    })
}

/// Print an error the one way minibox prints errors: one line on stderr.
/// Not `eprintln!`: it panics when stderr is a closed pipe (`... 2>&1 | head
/// -0`), and a runtime must exit with its own code, not a panic's 101.
pub fn report(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "minibox: {message}");
}

/// Print `error` (with its whole context chain, on one line) and return the
/// exit code it stands for.
pub fn fail(error: &anyhow::Error) -> i32 {
    report(&format!("{error:#}"));
    status::error_code(error)
}

/// The runtime's entry point for this step.
pub fn main() -> i32 {
    let cli: Cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Run(args) => args.spec().and_then(|spec| crate::run(&spec)),
    };
    result.unwrap_or_else(|error| fail(&error))
}
