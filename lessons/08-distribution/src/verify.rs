//! A blob is trusted by its digest, and only after the last byte.
//!
//! Whatever hands us a blob (a registry, an archive a stranger mailed) may
//! send other bytes than the descriptor promised: a tampered layer, a
//! truncated download, an endless stream. So the bytes are hashed as they
//! pass, counted against the promised size, and the blob counts as
//! received only if both match at the end. The caller writes into a
//! staging file and throws it away on an error: nothing half-made, nothing
//! unverified, ever reaches the store.
//!
//! ```text
//! curl -s http://10.77.0.1:5000/v2/app/blobs/sha256:3f2a... | tee blob | sha256sum
//! ```

use oci_spec::image::Descriptor;
use std::io::{Read, Write};

// ANCHOR: copy_verified
/// Copy the blob `from` yields into `to`, and make sure it is the blob
/// `expected` describes. Returns the bytes copied.
pub fn copy_verified(
    from: impl Read,
    to: &mut impl Write,
    expected: &Descriptor,
) -> anyhow::Result<u64> {
    // TODO(lesson-08): afterwards `to` holds exactly the bytes `from` gave, and Ok means they were exactly expected's size and hashed (sha256) to expected's digest; a longer stream is refused without being read to its end (a hostile sender may never stop), a shorter one or another digest is an error naming what was expected and what came
    // The hash runs over the stream as it passes, never over a second read
    // of the file (which another process could change in between). Shell:
    // `head -c $((SIZE+1)) | tee FILE | sha256sum`, then compare both.
    todo!(
        "lesson-08: afterwards `to` holds exactly the bytes `from` gave, and Ok means they were exactly expected's size and hashed (sha256) to expected's digest; a longer stream is refused without being read to its end (a hostile sender may never stop), a shorter one or another digest is an error naming what was expected and what came"
    );
}
// ANCHOR_END: copy_verified
