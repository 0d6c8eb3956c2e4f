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
    // BEGIN SOLUTION
    use anyhow::{bail, Context};
    use sha2::{Digest as _, Sha256};
    let want = crate::blobs::digest_of(expected)?;
    let size = expected.size();
    let mut hasher = Sha256::new();
    // One byte more than promised: enough to see a longer stream.
    let mut limited = from.take(size + 1);
    let mut buf = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("blob {want}: reading")),
        };
        copied += n as u64;
        if copied > size {
            bail!("blob {want}: more than the {size} bytes its descriptor promised");
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])
            .with_context(|| format!("blob {want}: writing"))?;
    }
    if copied < size {
        bail!("blob {want}: it ended after {copied} of its {size} bytes");
    }
    let seen = step04::digest::Digest::from_sha256(&hasher.finalize());
    if seen != want {
        bail!("blob {want}: its bytes hash to {seen}: refused");
    }
    Ok(copied)
    // END SOLUTION
}
// ANCHOR_END: copy_verified
