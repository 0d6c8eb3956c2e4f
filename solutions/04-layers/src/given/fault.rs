//! Crash points, for the reliability tests: in a debug build, the runtime
//! kills itself with SIGKILL at the stage named by `MINIBOX_FAULT`, as a
//! power cut or an OOM kill would, so the tests can check that the next
//! command finds the state consistent. `MINIBOX_FAULT=panic:STAGE` panics
//! there instead, as an unwritten part left in the code would. A release build
//! has no crash point.

/// Die here if `MINIBOX_FAULT` names this stage (debug builds only).
pub fn point(stage: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Ok(wanted) = std::env::var("MINIBOX_FAULT") else {
        return;
    };
    if wanted == stage {
        // raise(SIGKILL): no handler, no unwinding, no cleanup: a crash.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    } else if wanted.strip_prefix("panic:") == Some(stage) {
        panic!("fault injected at {stage}");
    }
}
