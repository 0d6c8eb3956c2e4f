//! The build cache: a step whose inputs were all seen before gives the
//! layer it gave then, without running.
//!
//! A step's inputs are its parent (everything the steps before it did),
//! its instruction, the files it copies and the build's epoch. Its cache
//! key is a digest of all of them; the store keeps `cache/<key hex>` ->
//! the layer's diff_id. Because each key covers the key before it, a change
//! at step k changes every key from k on: that is why docker's advice is
//! to put the instructions that change least first.

use crate::digest::{self, Digest};

// ANCHOR: cache_key
/// The cache key of one build step. `parent` is the key of the step before
/// (for the first step, the base image's id); `instruction` the step's
/// text as the Dockerfile has it; `copied` the digest of the files a COPY
/// or ADD copies (None for other steps); `epoch` the time every file time
/// of the build is clamped to.
pub fn cache_key(
    parent: &Digest,
    instruction: &str,
    copied: Option<&Digest>,
    epoch: u64,
) -> Digest {
    // TODO(lesson-04): return a digest that is the same for the same four inputs, in any build and any store, and differs as soon as any one of them differs: the parent's key (so a change at step k changes every key after it), the instruction's text, the digest of the files copied (a COPY of the same name with other content must miss; a step that copies nothing differs from one that copies), and the epoch (it is in every mtime of the layer); lay the parts out so that no two different inputs can give the same bytes to hash
    // Shell: `printf '%s\n' "$PARENT" "$INSTRUCTION" ... | sha256sum`.
    // The instruction is the user's text and can hold any character but a
    // newline (the parser joins continued lines).
    todo!(
        "lesson-04: return a digest that is the same for the same four inputs, in any build and any store, and differs as soon as any one of them differs: the parent's key (so a change at step k changes every key after it), the instruction's text, the digest of the files copied (a COPY of the same name with other content must miss; a step that copies nothing differs from one that copies), and the epoch (it is in every mtime of the layer); lay the parts out so that no two different inputs can give the same bytes to hash"
    );
}
// ANCHOR_END: cache_key
