//! The command's environment.
//!
//! The rule, as docker's: a container does **not** inherit the environment of
//! the shell that started it. It starts from a small, fixed base and gets
//! exactly what you pass with `-e`:
//!
//! - `PATH` is docker's default, and `HOME=/root` (docker's for a root
//!   container), unless `-e` overrides them;
//! - `-e KEY=VALUE` sets KEY;
//! - `-e KEY` (no `=`) copies KEY from the runtime's own environment, and
//!   leaves it unset if the runtime doesn't have it.
//!
//! Why: a container should run the same on every machine, so nothing of the
//! host's session (`SSH_AUTH_SOCK`, tokens, `LD_PRELOAD`) leaks in unasked.

use anyhow::bail;

/// docker's default `PATH` for a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build the environment from `-e` arguments. `host` looks a name up in the
/// runtime's environment (`std::env::var` in the real runtime).
pub fn build(
    args: &[String],
    host: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let mut vars: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), "/root".into()),
    ];
    for arg in args {
        let (key, value) = match arg.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (arg.as_str(), host(arg)),
        };
        if key.is_empty() || arg.contains('\0') {
            bail!("invalid environment variable {arg:?}: expected KEY=VALUE or KEY");
        }
        vars.retain(|(existing, _)| existing != key);
        if let Some(value) = value {
            vars.push((key.to_string(), value));
        }
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// The value of `key` in an environment built by [`build`].
pub fn lookup<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .filter_map(|var| var.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}
