//! Graded checks for step 04: images made of shared, content-addressed layers.
//!
//! Compiled into `lesson-04` and `solution-04`. Every check has a store of
//! its own (`--root`, a fresh temp dir) and runs the runtime in a lab (see
//! step 02's checks). The checks believe nothing the runtime prints about
//! digests: they hash the stored tars themselves, list the tars' entries,
//! and walk the unpacked layer dirs.

use grader::lab::write;
use grader::todo::call;
use grader::{ensure, expect_eq, Check, Ctx, Fail, Lab, Needs, Outcome, Requires};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn main() {
    if let Ok(spec) = std::env::var(MOUNT_HELPER) {
        overlay_mount_helper(&spec);
    }
    grader::main(
        grader::step!("04-layers", Needs::Root),
        vec![
            Check {
                name: "diff_id_hashes_every_byte",
                points: 1,
                section: "naming-layers-by-their-content",
                hint: "A layer's diff_id is the sha256 of every byte of its tar, read to the end in pieces; the byte count returned is all of them; a read error is an error.",
                more: "digest::diff_id: std::io::Read::read into a buffer, sha2::Sha256 (Digest::new, update, finalize), Digest::from_sha256; io::ErrorKind::Interrupted means try again.",
                shape: "1. hasher = new sha256; total = 0. 2. loop: n = read(buffer); 0 -> stop; EINTR -> again; error -> return it. 3. hash buffer[..n]; total += n. 4. return (digest of hasher, total).",
                requires: Requires::Nothing,
                run: diff_id_hashes_every_byte,
            },
            Check {
                name: "chain_ids_follow_the_oci_spec",
                points: 1,
                section: "naming-layers-by-their-content",
                hint: "A chain_id names a layer on top of exactly the layers below it: the first is the bottom diff_id, each next the sha256 of the text \"<chain_id below> <diff_id>\".",
                more: "digest::chain_ids; digest::of_bytes; Digest implements Display as sha256:<hex>. The OCI image spec, config.md, \"Layer ChainID\".",
                shape: "1. chain = []. 2. for each diff_id: the first is its own chain_id; each next is the digest of the text the spec makes of the chain_id below and this diff_id. 3. return chain.",
                requires: Requires::Nothing,
                run: chain_ids_follow_the_oci_spec,
            },
            Check {
                name: "a_whiteout_is_a_char_device_0_0",
                points: 1,
                section: "whiteouts-deleting-what-a-lower-layer-has",
                hint: "overlayfs marks a deleted lower file with a character device numbered 0/0 in the upper dir, with no permission bits; unpacking a .wh. marker must leave exactly that.",
                more: "whiteout::make_overlay_whiteout: mknod(2) through nix::sys::stat::mknod; nix::sys::stat::SFlag, Mode and makedev.",
                shape: "1. make a device node at path: the file type, permission bits and device numbers of the kernel's own whiteouts. 2. return the kernel's result as it is.",
                requires: Requires::Nothing,
                run: a_whiteout_is_a_char_device_0_0,
            },
            Check {
                name: "only_0_0_is_a_whiteout",
                points: 1,
                section: "whiteouts-deleting-what-a-lower-layer-has",
                hint: "Only a character device numbered 0/0 is a whiteout; /dev/null (1/3), a block device, a file, a dir or a FIFO are not, and must not become deletions in a layer.",
                more: "whiteout::is_overlay_whiteout: std::os::unix::fs::FileTypeExt::is_char_device and MetadataExt::rdev on the lstat metadata.",
                shape: "1. is it a character device? 2. is its rdev 0? 3. whiteout = both.",
                requires: Requires::Nothing,
                run: only_0_0_is_a_whiteout,
            },
            Check {
                name: "layer_tars_are_sorted_and_plain",
                points: 3,
                section: "reproducible-layers",
                hint: "Same tree, same tar bytes: each dir's entries sorted by name as bytes, a dir right before its content, one GNU header format, numeric owners, no user names, atime or ctime, mtimes clamped to the epoch.",
                more: "layer_tar: sorted_children (fs::read_dir, fs::symlink_metadata, sort by OsStr bytes), LayerWriter::entry and ::directory (FileType is_dir/is_file/is_symlink/is_fifo/is_socket), LayerWriter::header (tar::Header::new_gnu, set_entry_type, set_mode, set_uid, set_gid, set_mtime, set_size).",
                shape: "sorted_children: 1. for each readdir entry: lstat; layer name = .wh.NAME for a whiteout, refuse a real .wh. name, else NAME. 2. sort by layer name bytes.\nheader: 1. a GNU header of the kind. 2. the permission bits (setuid, setgid and sticky too), numeric uid and gid, the mtime clamped to the epoch, size 0.\nentry: dir -> directory; file -> file; symlink -> symlink; FIFO -> an empty entry; whiteout -> marker; socket -> skip; else error.\ndirectory: 1. append REL/. 2. if opaque, marker REL/.wh..wh..opq. 3. children.",
                requires: Requires::Nothing,
                run: layer_tars_are_sorted_and_plain,
            },
            Check {
                name: "deletions_become_oci_markers",
                points: 2,
                section: "whiteouts-deleting-what-a-lower-layer-has",
                hint: "In the layer tar, an upper dir's whiteout (c 0 0) is an empty file .wh.NAME and an opaque dir gets DIR/.wh..wh..opq right after DIR/; a real device and a real file named .wh.* are refused.",
                more: "layer_tar: whiteout::is_overlay_whiteout, whiteout::oci_whiteout_name, whiteout::is_opaque_dir (lgetxattr trusted.overlay.opaque), whiteout::OPAQUE_MARKER, WHITEOUT_PREFIX; LayerWriter::marker writes an empty file owned by root.",
                shape: "1. naming: a whiteout gets .wh.NAME; a name starting with .wh. is an error. 2. entry: whiteout -> marker; other char or block device -> error. 3. directory: after DIR/ and before its children, if opaque, a marker DIR/.wh..wh..opq.",
                requires: Requires::Nothing,
                run: deletions_become_oci_markers,
            },
            Check {
                name: "unpacking_stays_inside",
                points: 3,
                section: "unpacking-a-layer-you-dont-trust",
                hint: "Unpacking a layer must never write outside its dir: refuse absolute paths and `..`, never go through a symlink (not even one the tar made), replace what stands where a file goes instead of opening it, and allow hard links only to regular files already in the layer.",
                more: "unpack: layer_path (std::path::Component: RootDir, ParentDir, Normal), enter_parents (fs::symlink_metadata, is_symlink), unpack_file (OpenOptions create_new + custom_flags O_NOFOLLOW, fchown then set_permissions, set_times), unpack_hard_link (fs::hard_link after checking the target); remove_existing is given.",
                shape: "layer_path: 1. NUL -> error. 2. for each component: root or prefix -> error; .. -> error; . -> skip; name -> keep. 3. none left -> None.\nenter_parents: for each parent: lstat; symlink -> error; dir -> go on; missing -> mkdir 0755 root if create, else error; else error.\nunpack_file: 1. remove what is there. 2. create it exclusively, following no link, readable by nobody else yet. 3. copy the data. 4. owner, then mode, then mtime.\nunpack_hard_link: 1. check the target like a path. 2. not the entry itself. 3. its parents via enter_parents without create. 4. lstat: a regular file? 5. remove what is at the path; link.",
                requires: Requires::Nothing,
                run: unpacking_stays_inside,
            },
            Check {
                name: "unpacking_restores_whiteouts",
                points: 2,
                section: "whiteouts-deleting-what-a-lower-layer-has",
                hint: "Unpacking turns .wh.NAME back into an overlayfs whiteout (c 0 0) that replaces whatever NAME the layer had, and .wh..wh..opq into the opaque xattr; a marker naming the dir itself or its parent is refused.",
                more: "unpack::unpack_whiteout: remove_existing (given), whiteout::make_overlay_whiteout; unpack_entry (given) dispatches on the .wh. prefix.",
                shape: "1. NAME empty, . or .. -> error. 2. path = parent/NAME. 3. remove what is at path. 4. make the whiteout at path.",
                requires: Requires::Nothing,
                run: unpacking_restores_whiteouts,
            },
            Check {
                name: "a_step_is_committed_once",
                points: 3,
                section: "naming-layers-by-their-content",
                hint: "A RUN or COPY becomes a layer: the tree's deterministic tar, named by its sha256, unpacked beside it, stored under layers/sha256/<hex>/ exactly once, whole or not at all, even when two builds store the same layer at once.",
                more: "commit::commit_layer: Store::temp_dir (a Staging, removed when dropped unless keep()), layer_tar::write_layer, digest::diff_id, Store::has_layer, unpack::unpack_layer, Store::lock (flock), Store::layer_dir, fs::rename.",
                shape: "1. staging = a temp dir of the store. 2. write the tar of dir into staging/layer.tar (flush, fsync). 3. diff_id of that file. 4. store has it -> return it. 5. unpack into staging/diff. 6. under the store lock: still missing -> rename staging to the layer's dir. 7. return diff_id.",
                requires: Requires::Nothing,
                run: a_step_is_committed_once,
            },
            Check {
                name: "the_config_records_each_step",
                points: 1,
                section: "an-image-is-a-stack-of-layers",
                hint: "Every step adds one history entry (created, created_by, empty_layer when it made no layer); a layer step also appends its diff_id to rootfs.diff_ids, so history and diff_ids stay in step.",
                more: "commit::record_step: image::ImageConfig (rootfs.diff_ids, history), image::History, image::rfc3339.",
                shape: "1. if a layer: push it to rootfs.diff_ids. 2. push a History { created: rfc3339(epoch), created_by, empty_layer: no layer }.",
                requires: Requires::Nothing,
                run: the_config_records_each_step,
            },
            Check {
                name: "cache_keys_cover_their_inputs",
                points: 2,
                section: "the-build-cache",
                hint: "A step's cache key is a digest of everything that can change its layer: the parent's key, the instruction, the files copied, the epoch; change any one and the key changes, keep them and it stays.",
                more: "cache_key::cache_key; digest::of_bytes; Digest's Display text.",
                shape: "1. lay the four inputs out in one text so that no two different inputs give the same text (mind where one part ends and the next begins, and what stands for no files copied). 2. return the digest of that text.",
                requires: Requires::Nothing,
                run: cache_keys_cover_their_inputs,
            },
            Check {
                name: "overlay_options_describe_the_stack",
                points: 1,
                section: "overlayfs-many-layers-one-tree",
                hint: "The overlay's options list the layers top first in lowerdir (colon-separated), the container's upperdir and workdir, redirect_dir=off, and volatile only for a container removed when it ends.",
                more: "overlay::Overlay::options; Documentation/filesystems/overlayfs.rst: lowerdir, upperdir, workdir, redirect_dir, volatile.",
                shape: "1. lower = the lower paths joined by ':'. 2. text = lowerdir=..., upperdir=..., workdir=..., redirect_dir=off, joined by ','. 3. volatile -> add ,volatile.",
                requires: Requires::Nothing,
                run: overlay_options_describe_the_stack,
            },
            Check {
                name: "the_overlay_mount_is_the_kernels",
                points: 2,
                section: "overlayfs-many-layers-one-tree",
                hint: "Overlay::mount must leave an overlayfs on the target, as /proc/self/mountinfo shows: the top layer's file wins, lower files show through, writes and deletions land in the upper dir.",
                more: "overlay::Overlay::mount: mount(2) through nix::mount::mount, nix::mount::MsFlags; Overlay::options.",
                shape: "1. one mount(2) of an overlayfs on target, described by options(). 2. return the kernel's result.",
                requires: Requires::Nothing,
                run: the_overlay_mount_is_the_kernels,
            },
            Check {
                name: "store_dirs_are_made_private",
                points: 2,
                section: "the-store",
                hint: "private_dirs makes the store (and its missing parents) and each of its dirs, and leaves each dir its owner's alone, 0700, however it was found; a dir that is really a symlink, a file, or another user's root is an error, and nothing is changed through it.",
                more: "fs::DirBuilder with DirBuilderExt::mode, fs::create_dir_all for the parents, fs::symlink_metadata (lstat(2)), MetadataExt::uid and mode, nix::unistd::geteuid, fs::set_permissions with PermissionsExt::from_mode.",
                shape: "1. make root's parents; mkdir root 0700, EEXIST is fine. 2. lstat root (follow it if the user made it a link): a dir of yours, else error. 3. for each dir: mkdir 0700 (EEXIST fine); lstat: a real dir of yours, else error; chmod 0700.",
                requires: Requires::Nothing,
                run: store_dirs_are_made_private,
            },
            Check {
                name: "layer_digests_are_honest",
                points: 3,
                section: "naming-layers-by-their-content",
                hint: "A diff_id is sha256 of the whole uncompressed layer tar, written `sha256:<64 hex>`; the store keeps it under layers/sha256/<hex>; chain_id(n) = sha256(\"<chain_id(n-1)> <diff_id(n)>\").",
                more: "digest::diff_id, digest::chain_ids, commit::commit_layer and commit::record_step; Store::layer_dir; inspect shows RootFS.Layers and ChainIDs; sha256sum of layers/sha256/<hex>/layer.tar.",
                shape: "1. each RUN/COPY: tar the tree, diff_id = sha256 of the tar, store it under its hex. 2. record the diff_id in rootfs.diff_ids, bottom first. 3. chain_ids: the first diff_id, then sha256 of \"<below> <diff_id>\".",
                requires: Requires::Nothing,
                run: layer_digests_are_honest,
            },
            Check {
                name: "the_layering_experiment",
                points: 4,
                section: "the-layering-experiment",
                hint: "Each RUN, COPY and ADD adds exactly one layer on top of FROM's: seven RUN lines give 8 layers, two give 3. Identical steps on an identical parent give an identical tar, hence the same diff_id. A file several layers changed reads as the topmost copy: lowerdir lists the layers top first.",
                more: "commit::commit_layer (one layer per RUN), layer_tar::write_layer (same tree, same bytes), overlay::Overlay::options (lowerdir top first).",
                shape: "1. every RUN commits its upper dir as one layer. 2. identical trees give identical tars, so identical diff_ids. 3. lowerdir lists the image's layers from the top one down.",
                requires: Requires::Nothing,
                run: the_layering_experiment,
            },
            Check {
                name: "only_run_copy_add_make_layers",
                points: 2,
                section: "an-image-is-a-stack-of-layers",
                hint: "LABEL, ENV, WORKDIR, CMD, ENTRYPOINT and USER only change the config (history entry with empty_layer: true); RUN, COPY and ADD each add one diff_id. A container of the image then starts in WORKDIR with ENV set and runs CMD.",
                more: "commit::record_step: ImageConfig.rootfs.diff_ids, History.empty_layer; the builder calls it for every step.",
                shape: "1. config-only step: a history entry with empty_layer, no diff_id. 2. RUN/COPY/ADD: commit the layer, push its diff_id, a history entry without empty_layer.",
                requires: Requires::Nothing,
                run: only_run_copy_add_make_layers,
            },
            Check {
                name: "the_build_cache",
                points: 3,
                section: "the-build-cache",
                hint: "A step's cache key covers its parent's key, its instruction, and for COPY/ADD the digest of the files copied; a change at step k changes every key from k on.",
                more: "cache_key::cache_key (digest::of_bytes); Store::cached and Store::remember keep cache/<key hex> -> diff_id.",
                shape: "1. key = digest of parent key, instruction text, copied files' digest (or none), epoch. 2. the builder looks the key up before running the step.",
                requires: Requires::Nothing,
                run: the_build_cache,
            },
            Check {
                name: "builds_are_reproducible",
                points: 2,
                section: "reproducible-layers",
                hint: "Same tree, same tar bytes: entries sorted, numeric owners, mtimes clamped to the epoch, no atime/ctime, one header format. Then the same Dockerfile gives the same diff_ids and image id in any empty store.",
                more: "layer_tar: sorted_children, LayerWriter::header (tar::Header::new_gnu, set_mtime with the epoch); SOURCE_DATE_EPOCH sets the epoch.",
                shape: "1. sort each dir's entries by name bytes. 2. headers: GNU, numeric ids, no names, mtime = min(mtime, epoch). 3. the same tree then gives the same tar, diff_id and image id.",
                requires: Requires::Nothing,
                run: builds_are_reproducible,
            },
            Check {
                name: "copy_on_write",
                points: 3,
                section: "overlayfs-many-layers-one-tree",
                hint: "Mount overlay with lowerdir = the image's layers, top first, and upperdir/workdir of the container's own: writes and deletions land in the upper dir, never in a layer. A container removed when it ends adds volatile.",
                more: "overlay::Overlay::options and ::mount: mount(2) type overlay, lowerdir/upperdir/workdir, volatile; /proc/self/mountinfo shows it.",
                shape: "1. options: the lower dirs top first, the upper and work dirs, no redirects, volatile for a --rm container. 2. one mount(2) of an overlayfs on the merged dir, described by those options.",
                requires: Requires::Nothing,
                run: copy_on_write,
            },
            Check {
                name: "deletions_become_whiteouts",
                points: 3,
                section: "whiteouts-deleting-what-a-lower-layer-has",
                hint: "In the upper dir a deleted file is a char device 0/0 and a re-created dir has trusted.overlay.opaque=y; in the layer tar they are `.wh.NAME` and `DIR/.wh..wh..opq`. Unpacking turns them back.",
                more: "whiteout::is_overlay_whiteout, whiteout::is_opaque_dir, layer_tar's entry/directory/sorted_children, unpack::unpack_whiteout, whiteout::make_overlay_whiteout.",
                shape: "1. writing: a c 0 0 in the upper dir -> an empty .wh.NAME; an opaque dir -> DIR/ then DIR/.wh..wh..opq. 2. unpacking: .wh.NAME -> remove NAME, mknod c 0 0; .wh..wh..opq -> the opaque xattr.",
                requires: Requires::Nothing,
                run: deletions_become_whiteouts,
            },
            Check {
                name: "layers_are_stored_once",
                points: 2,
                section: "naming-layers-by-their-content",
                hint: "Name each layer by its diff_id and add it only when that name is not in the store yet; rmi removes only the layers no image uses any more.",
                more: "commit::commit_layer: Store::has_layer, Store::lock, fs::rename of a staging dir to Store::layer_dir.",
                shape: "1. diff_id of the tar. 2. store has it -> done. 3. else unpack into staging, then under the lock rename staging into place if still missing.",
                requires: Requires::Nothing,
                run: layers_are_stored_once,
            },
            Check {
                name: "outputs_match_the_snapshots",
                points: 1,
                section: "the-exercise",
                hint: "images, history and inspect of a FROM scratch image are the same on every machine (its digests too): compare with tests/snapshots/.",
                more: "commit::record_step (history entries, created from the epoch via image::rfc3339), digest::chain_ids; tests/snapshots/04-layers-*.snap.",
                shape: "1. FROM scratch plus steps: every history entry and digest depends only on the Dockerfile and the epoch. 2. diff against the .snap.new the check leaves.",
                requires: Requires::Nothing,
                run: outputs_match_the_snapshots,
            },
            Check {
                name: "copy_stays_in_the_layer",
                points: 2,
                section: "copy-safely",
                hint: "COPY stages files in an empty dir: check every parent with lstat, remove what stands where an entry goes, create files with O_EXCL|O_NOFOLLOW, set modes on the open fd; resolve the destination's links inside the image, not on the host. A layer that appears twice in a stack goes in lowerdir once, at its topmost place.",
                more: "unpack: enter_parents (lstat each parent), unpack_file (create_new + O_NOFOLLOW); commit::commit_layer stores the staged COPY tree.",
                shape: "1. never go through a symlink while writing. 2. replace what stands at a path, never open it. 3. commit the staged tree as the layer.",
                requires: Requires::Nothing,
                run: copy_stays_in_the_layer,
            },
            Check {
                name: "copy_cannot_be_raced_out_of_the_context",
                points: 3,
                section: "copy-safely",
                hint: "A path checked, then opened, can be renamed in between: open each COPY source from a descriptor of the context dir, in one openat2(2) whose lookup the kernel keeps beneath that dir, so that links are followed only while they stay beneath it (EXDEV otherwise), and read what you opened, not the path again.",
                more: "beneath::open_beneath: openat2(2) via nix::fcntl::openat2, nix::fcntl::OpenHow (flags, resolve) and nix::fcntl::ResolveFlag; the open flags crate::context reads with; openat2(2)'s man page lists the resolve flags.",
                shape: "1. a leading / means the context's top; nothing left means the context itself. 2. one openat2 from the context's fd, with the builder's open flags and the resolve flags that keep the whole lookup beneath it, /proc's magic links refused. 3. return the kernel's result.",
                requires: Requires::Nothing,
                run: copy_cannot_be_raced_out_of_the_context,
            },
            Check {
                name: "exec_joins_the_namespaces",
                points: 3,
                section: "exec-joining-a-running-container",
                hint: "Open /proc/PID/ns/{user,ipc,uts,net,pid,cgroup,mnt} of the container's init first, then setns each (user first, mnt last, skipping those you already share), then fork: only children enter a PID namespace.",
                more: "exec::join_namespaces: File::open /proc/PID/ns/KIND, MetadataExt::ino against /proc/self/ns/KIND, nix::sched::setns with the CloneFlags of ORDER.",
                shape: "1. for each kind of ORDER: open the init's ns file; keep it if its inode differs from ours. 2. then setns each kept file, in ORDER. 3. any failure -> an error naming the kind.",
                requires: Requires::Nothing,
                run: exec_joins_the_namespaces,
            },
            Check {
                name: "the_callers_terminal_is_out_of_reach",
                points: 3,
                section: "pipes-never-your-terminal",
                hint: "Without -t the container's fds 0, 1 and 2 must be pipes whose other ends the runtime holds and copies, never the runtime's own fds: from a shell those are your terminal, and a process holding a terminal can type into it (TIOCSTI). run, run -i, exec, exec -i and a build's RUN are tried.",
                more: "pipes::Inside::in_child: dup2(2) (libc::dup2), close(2) (nix::unistd::close); Errno::result for the error.",
                shape: "1. close this process's copies of the runtime's ends. 2. dup2 each container end onto 0, 1, 2. 3. a failure -> (what failed, errno).",
                requires: Requires::Nothing,
                run: the_callers_terminal_is_out_of_reach,
            },
            Check {
                name: "the_store_is_roots_alone",
                points: 3,
                section: "the-store",
                hint: "The store's layers, containers, images, cache and tmp dirs must be 0700 (their owner's alone): under them are setuid-root files in layers and writable layers, and records with the -e environment. A store made open before is closed again when opened; a root of another user's is refused. The log is the runtime's file, written from a pipe: the container never holds it.",
                more: "private_dirs::private_dirs: fs::DirBuilder with DirBuilderExt::mode, fs::symlink_metadata, MetadataExt::uid and mode, nix::unistd::geteuid, fs::set_permissions.",
                shape: "1. make root (0700) if missing; it must be a dir of yours. 2. for each dir: mkdir 0700 or find it; lstat: a real dir of yours, else error. 3. chmod 0700, whatever it was.",
                requires: Requires::Nothing,
                run: the_store_is_roots_alone,
            },
            Check {
                name: "bad_input_is_one_line",
                points: 2,
                section: "the-exercise",
                hint: "Each bad input gives one line and exit 125 before anything is stored: an unknown instruction (with its line number), COPY from outside the context, a missing base image, tars with absolute paths, `..`, or a file written through a symlink that points outside.",
                more: "unpack::layer_path, enter_parents, unpack_hard_link refuse what `import` must not unpack; beneath::open_beneath refuses COPY ../outside (EXDEV).",
                shape: "1. every hostile tar entry is an error before anything is written outside. 2. the CLI turns the error into one line and exit 125.",
                requires: Requires::Nothing,
                run: bad_input_is_one_line,
            },
        ],
    );
}

// ---- a store of one's own ----

fn sha256_of_file(path: &Path) -> Result<String, Fail> {
    let bytes = std::fs::read(path)
        .map_err(|e| Fail::new(format!("cannot read {}", path.display())).seen(e))?;
    Ok(format!("sha256:{:x}", Sha256::digest(&bytes)))
}

fn sha256_text(text: &str) -> String {
    format!("sha256:{:x}", Sha256::digest(text.as_bytes()))
}

/// The entries of a tar: name -> (type letter, size).
fn tar_entries(path: &Path) -> Result<BTreeMap<String, (char, u64)>, Fail> {
    let file = std::fs::File::open(path)
        .map_err(|e| Fail::new(format!("cannot open {}", path.display())).seen(e))?;
    let mut archive = tar::Archive::new(file);
    let mut out = BTreeMap::new();
    let bad =
        |e: std::io::Error| Fail::new(format!("{} is not a readable tar", path.display())).seen(e);
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type().as_byte() as char;
        out.insert(name, (kind, entry.header().size().unwrap_or(0)));
    }
    Ok(out)
}

/// The entry names of a tar, in the order they are written.
fn tar_names(path: &Path) -> Result<Vec<(String, tar::Header)>, Fail> {
    let file = std::fs::File::open(path)
        .map_err(|e| Fail::new(format!("cannot open {}", path.display())).seen(e))?;
    let mut archive = tar::Archive::new(file);
    let bad =
        |e: std::io::Error| Fail::new(format!("{} is not a readable tar", path.display())).seen(e);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        out.push((
            String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            entry.header().clone(),
        ));
    }
    Ok(out)
}

/// Every path under `dir` with what it is and a hash of its content: a
/// fingerprint that changes if any byte, mode or owner changes.
fn fingerprint(dir: &Path) -> Result<BTreeMap<String, String>, Fail> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| Fail::new(format!("cannot stat {}", path.display())).seen(e))?;
        let what = if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| Fail::new("readdir").seen(e))? {
                stack.push(entry.map_err(|e| Fail::new("readdir").seen(e))?.path());
            }
            "dir".to_string()
        } else if meta.is_file() {
            sha256_of_file(&path)?
        } else if meta.file_type().is_symlink() {
            format!(
                "-> {}",
                std::fs::read_link(&path).unwrap_or_default().display()
            )
        } else if meta.file_type().is_char_device() {
            format!("char {}", meta.rdev())
        } else {
            "other".to_string()
        };
        let name = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.insert(
            name,
            format!("{what} {:o} {}:{}", meta.mode(), meta.uid(), meta.gid()),
        );
    }
    Ok(out)
}

/// Lines that say `--> CACHED` in a build's output, by step number.
fn cached_steps(output: &str) -> Vec<usize> {
    let mut step = 0;
    let mut cached = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("STEP ") {
            step = rest
                .split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if line.starts_with("--> CACHED") {
            cached.push(step);
        }
    }
    cached
}

// ---- the checks ----

fn layer_digests_are_honest(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "honest",
        "FROM base\nCOPY hello.txt /hello.txt\nRUN echo built > /built && ln /built /built-link\n",
        &[("hello.txt", "hello\n")],
    )?;
    lab.build("honest", &context)?;
    let layers = lab.layers("honest")?;
    expect_eq(
        "FROM base + COPY + RUN: the number of layers",
        3,
        layers.len(),
    )?;
    for diff_id in &layers {
        let tar = lab.layer_dir(diff_id).join("layer.tar");
        ensure(tar.is_file(), || {
            Fail::new("each layer's tar should be in the store under layers/sha256/<hex of its diff_id>/layer.tar")
                .seen(format!("no {}", tar.display()))
        })?;
        expect_eq(
            "the diff_id should be the sha256 of the layer tar (recomputed here)",
            diff_id.clone(),
            sha256_of_file(&tar)?,
        )?;
    }
    // The image id is the digest of the config file, which lists the layers.
    let id = lab.image_id("honest")?;
    let config_path = lab
        .root()
        .join("images/sha256")
        .join(format!("{}.json", id.trim_start_matches("sha256:")));
    expect_eq(
        "the image id should be the sha256 of its config file",
        id.clone(),
        sha256_of_file(&config_path)?,
    )?;
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap_or_default())
        .map_err(|e| Fail::new("the image config should be JSON").seen(e))?;
    expect_eq(
        "the config's rootfs.diff_ids should be the layers, bottom first",
        serde_json::json!(layers),
        config["rootfs"]["diff_ids"].clone(),
    )?;
    // chain_id, recomputed from the spec's definition.
    let mut chain: Vec<String> = Vec::new();
    for diff_id in &layers {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(below) => sha256_text(&format!("{below} {diff_id}")),
        };
        chain.push(next);
    }
    let shown = lab.inspect("honest")?;
    expect_eq(
        "inspect's ChainIDs should follow the OCI definition",
        serde_json::json!(chain),
        shown["ChainIDs"].clone(),
    )?;
    // What the COPY layer holds, seen in its tar.
    let entries = tar_entries(&lab.layer_dir(&layers[1]).join("layer.tar"))?;
    expect_eq(
        "the COPY layer's tar should hold exactly the copied file",
        vec!["hello.txt".to_string()],
        entries.keys().cloned().collect::<Vec<_>>(),
    )?;
    let base = tar_entries(&lab.layer_dir(&layers[0]).join("layer.tar"))?;
    expect_eq(
        "the base layer keeps /bin as what it is on disk: a symlink (tar type 2), not a copy of its target",
        Some('2'),
        base.get("bin").map(|(kind, _)| *kind),
    )?;
    let run = tar_entries(&lab.layer_dir(&layers[2]).join("layer.tar"))?;
    let mut kinds: Vec<char> = ["built", "built-link"]
        .iter()
        .filter_map(|name| run.get(*name).map(|(kind, _)| *kind))
        .collect();
    kinds.sort();
    expect_eq(
        "`ln /built /built-link`: the layer holds one file and one hard link to it (tar types 0 and 1)",
        vec!['0', '1'],
        kinds,
    )?;
    expect_eq(
        "in a container, /built and /built-link are one inode (2 links)",
        "2\n",
        lab.run("honest", &["stat", "-c", "%h", "/built-link"])?
            .as_str(),
    )
}

// The blog post's two Dockerfiles, as written (`cargo xtask bench` builds
// them too).
const ORIGIN: &str = include_str!("fixtures/blog/origin.Dockerfile");

const OPTIMIZED: &str = include_str!("fixtures/blog/optimized.Dockerfile");

fn image_size(lab: &Lab, layers: &[String]) -> Result<u64, Fail> {
    let mut total = 0;
    for layer in layers {
        for (_, (kind, size)) in tar_entries(&lab.layer_dir(layer).join("layer.tar"))? {
            if kind == '0' {
                total += size;
            }
        }
    }
    Ok(total)
}

fn the_layering_experiment(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let origin = lab.context("origin", ORIGIN, &[])?;
    let optimized = lab.context("optimized", OPTIMIZED, &[])?;
    lab.build("origin", &origin)?;
    lab.build("optimized", &optimized)?;
    let a = lab.layers("origin")?;
    let b = lab.layers("optimized")?;
    expect_eq("FROM + seven RUN lines: layers", 8, a.len())?;
    expect_eq("FROM + two RUN lines: layers", 3, b.len())?;
    expect_eq(
        "both images start with the same two layers (base, then the same RUN on the same parent)",
        &a[..2],
        &b[..2],
    )?;
    let base = lab.layers("base")?;
    expect_eq("the first layer is the base image's", &base[..], &a[..1])?;
    ensure(a[2..].iter().all(|l| !b.contains(l)), || {
        Fail::new("the install layers differ between the two images")
            .seen(format!("{a:?} vs {b:?}"))
    })?;
    // Each apt install rewrote dpkg's status file: seven copies weigh more.
    let (big, small) = (image_size(&lab, &a)?, image_size(&lab, &b)?);
    ensure(big > small, || {
        Fail::new("the seven-layer image holds more bytes (a copy of /var/lib/dpkg/status in every layer)")
            .expected(format!("more than {small} bytes"))
            .seen(format!("{big} bytes"))
    })?;
    let out = lab.run(
        "origin",
        &[
            "sh",
            "-c",
            "ls /usr/share/cmake /usr/share/vim; grep -c '^Package:' /var/lib/dpkg/status",
        ],
    )?;
    expect_eq(
        "a container of the result sees every layer's files, and of a file several layers changed, the topmost copy (dpkg's status after all seven installs: lowerdir lists the layers top first)",
        "/usr/share/cmake:\ncmake.data\n\n/usr/share/vim:\nvim.data\n12\n",
        out.as_str(),
    )
}

fn only_run_copy_add_make_layers(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    // A tar for ADD to extract.
    let dir = lab.dir.path().join("config");
    std::fs::create_dir_all(&dir).map_err(|e| Fail::new("setup").seen(e))?;
    let tar_path = dir.join("bundle.tar");
    {
        let file = std::fs::File::create(&tar_path).map_err(|e| Fail::new("setup").seen(e))?;
        let mut builder = tar::Builder::new(file);
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        header.set_uid(1234);
        header.set_gid(5678);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, "from-tar.txt", &b"untar\n"[..])
            .and_then(|_| builder.finish())
            .map_err(|e| Fail::new("setup: tar").seen(e))?;
    }
    let steps = [
        (
            "LABEL org.opencontainers.image.authors=\"org@example.com\"",
            false,
        ),
        ("ENV GREETING=hello", false),
        ("WORKDIR /app", false),
        (
            "CMD [\"sh\", \"-c\", \"pwd; echo $GREETING; cat /app/note.txt /app/from-tar.txt /app/ran.txt\"]",
            false,
        ),
        ("COPY note.txt note.txt", true),
        ("ADD bundle.tar /app/", true),
        ("RUN pwd > ran.txt && echo $GREETING >> ran.txt", true),
    ];
    let dockerfile: String = std::iter::once("FROM base".to_string())
        .chain(steps.iter().map(|(s, _)| s.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let context = lab.context("config", &dockerfile, &[("note.txt", "noted\n")])?;
    lab.build("configured", &context)?;
    let layers = lab.layers("configured")?;
    expect_eq(
        "layers: base + COPY + ADD + RUN (LABEL, ENV, WORKDIR and CMD add none)",
        4,
        layers.len(),
    )?;
    let value = lab.inspect("configured")?;
    let config_path = lab.root().join("images/sha256").join(format!(
        "{}.json",
        value["Id"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
    ));
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap_or_default())
        .map_err(|e| Fail::new("the image config should be JSON").seen(e))?;
    let history = config["history"].as_array().cloned().unwrap_or_default();
    let mine = &history[history.len().saturating_sub(steps.len())..];
    expect_eq(
        "one history entry per instruction after FROM",
        steps.len(),
        mine.len(),
    )?;
    for ((text, makes_layer), entry) in steps.iter().zip(mine) {
        let empty = entry["empty_layer"].as_bool().unwrap_or(false);
        expect_eq(
            &format!("history of `{text}`: empty_layer"),
            !makes_layer,
            empty,
        )?;
    }
    expect_eq(
        "LABEL sets Config.Labels",
        "org@example.com",
        value["Config"]["Labels"]["org.opencontainers.image.authors"]
            .as_str()
            .unwrap_or("(none)"),
    )?;
    let out = lab.run("configured", &[])?;
    expect_eq(
        "a container runs CMD, in WORKDIR, with ENV set, and sees COPY's and ADD's files (COPY's relative dest and RUN in WORKDIR with ENV)",
        "/app\nhello\nnoted\nuntar\n/app\nhello\n",
        out.as_str(),
    )?;
    expect_eq(
        "ADD keeps the numeric owner of a tar's entry (uid 1234, gid 5678) through every layer tar",
        "1234:5678\n",
        lab.run("configured", &["stat", "-c", "%u:%g", "/app/from-tar.txt"])?
            .as_str(),
    )
}

fn the_build_cache(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let dockerfile = "FROM base\nRUN echo one > /one\nCOPY data.txt /data.txt\nRUN echo three > /three\nCMD [\"cat\", \"/data.txt\"]\n";
    let context = lab.context("cache", dockerfile, &[("data.txt", "v1\n")])?;
    let first = lab.build("cached", &context)?;
    expect_eq(
        "a first build uses no cache",
        Vec::<usize>::new(),
        cached_steps(&first),
    )?;
    let id = lab.image_id("cached")?;
    let again = lab.build("cached", &context)?;
    expect_eq(
        "an unchanged rebuild: every RUN/COPY step prints `--> CACHED`",
        vec![2, 3, 4],
        cached_steps(&again),
    )?;
    expect_eq(
        "an unchanged rebuild gives the same image id",
        id.clone(),
        lab.image_id("cached")?,
    )?;
    // Change step 4: steps 2 and 3 stay cached.
    write(
        &context.join("Dockerfile"),
        &dockerfile.replace("echo three", "echo THREE"),
    )?;
    let changed = lab.build("cached", &context)?;
    expect_eq(
        "after changing step 4, steps before it are cached and step 4 runs again",
        vec![2, 3],
        cached_steps(&changed),
    )?;
    ensure(lab.image_id("cached")? != id, || {
        Fail::new("a changed step gives a new image id")
    })?;
    // Change the COPY source: step 3 and everything after it rebuild.
    write(&context.join("data.txt"), "v2\n")?;
    let copied = lab.build("cached", &context)?;
    expect_eq(
        "after changing the file COPY reads, only step 2 is cached",
        vec![2],
        cached_steps(&copied),
    )?;
    expect_eq(
        "the new file is in the image",
        "v2\n",
        lab.run("cached", &[])?.as_str(),
    )?;
    // Config steps are part of the key too: a RUN after a changed ENV runs again.
    let env_file = "FROM base\nENV V=1\nRUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n";
    let env_context = lab.context("cache-env", env_file, &[])?;
    lab.build("env", &env_context)?;
    write(
        &env_context.join("Dockerfile"),
        &env_file.replace("V=1", "V=2"),
    )?;
    let rebuilt = lab.build("env", &env_context)?;
    expect_eq(
        "after changing ENV, the RUN below it is not cached",
        Vec::<usize>::new(),
        cached_steps(&rebuilt),
    )?;
    expect_eq(
        "the RUN saw the new ENV",
        "2\n",
        lab.run("env", &[])?.as_str(),
    )
}

fn builds_are_reproducible(ctx: &Ctx) -> Outcome {
    let dockerfile = "FROM base\nRUN mkdir -p /srv/app && echo made > /srv/app/made && rm /etc/os-release\nCOPY src /srv/app/src\nENV MODE=prod\n";
    let mut seen = Vec::new();
    for name in ["first", "second"] {
        let lab = Lab::apart(ctx);
        let context = lab.context(
            name,
            dockerfile,
            &[
                ("src/main.txt", "fn main\n"),
                ("src/lib/util.txt", "util\n"),
            ],
        )?;
        lab.build("repro", &context)?;
        seen.push((lab.layers("repro")?, lab.image_id("repro")?));
    }
    expect_eq(
        "the same Dockerfile in two empty stores: the same diff_ids",
        &seen[0].0,
        &seen[1].0,
    )?;
    expect_eq(
        "the same Dockerfile in two empty stores: the same image id",
        &seen[0].1,
        &seen[1].1,
    )?;
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "third",
        dockerfile,
        &[
            ("src/main.txt", "fn main\n"),
            ("src/lib/util.txt", "util\n"),
        ],
    )?;
    lab.build("repro", &context)?;
    for layer in lab.layers("repro")? {
        let entries = tar_names(&lab.layer_dir(&layer).join("layer.tar"))?;
        for (name, header) in &entries {
            ensure(
                header.username_bytes().unwrap_or_default().is_empty()
                    && header.groupname_bytes().unwrap_or_default().is_empty(),
                || {
                    Fail::new("layer tars carry numeric owners only: no user or group names")
                        .seen(name)
                },
            )?;
        }
        let names: Vec<String> = entries.into_iter().map(|(n, _)| n).collect();
        if names.iter().any(|n| n.contains(".wh.")) {
            continue;
        }
        let mut sorted = names.clone();
        sorted.sort_by(|a, b| {
            a.trim_end_matches('/')
                .split('/')
                .cmp(b.trim_end_matches('/').split('/'))
        });
        expect_eq(
            &format!("layer {layer}: entries sorted by path, each dir before what it holds"),
            &sorted,
            &names,
        )?;
    }
    Ok(())
}

fn copy_on_write(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context("cow", "FROM base\nRUN echo original > /etc/motd\n", &[])?;
    lab.build("cow", &context)?;
    let layers = lab.layers("cow")?;
    let mut before = Vec::new();
    for layer in &layers {
        let dir = lab.layer_dir(layer);
        before.push((
            sha256_of_file(&dir.join("layer.tar"))?,
            fingerprint(&dir.join("diff"))?,
        ));
    }
    let script = "echo changed >> /etc/motd; rm /usr/bin/apt; echo new > /new-file; \
                  cat /etc/motd; ls /usr/bin/apt 2>/dev/null || echo apt-gone; \
                  grep ' / / ' /proc/self/mountinfo";
    let out = lab.run("--rm", &["cow", "sh", "-c", script])?;
    let lines: Vec<&str> = out.lines().collect();
    expect_eq(
        "inside, the container sees its own writes and deletions",
        vec!["original", "changed", "apt-gone"],
        lines.iter().take(3).copied().collect::<Vec<_>>(),
    )?;
    let root_line = lines.get(3).copied().unwrap_or("(no / in mountinfo)");
    ensure(root_line.contains(" - overlay "), || {
        Fail::new("the container's / should be an overlay mount (filesystem type overlay in /proc/self/mountinfo)")
            .seen(root_line)
    })?;
    // The kernel shows `volatile` (5.10) or `fsync=volatile` (6.x).
    ensure(root_line.contains("volatile"), || {
        Fail::new("a `run --rm` container is removed when it ends: its overlay should be mounted with volatile (no sync of its writes)")
            .seen(root_line)
    })?;
    for (layer, (tar, tree)) in layers.iter().zip(&before) {
        let dir = lab.layer_dir(layer);
        expect_eq(
            &format!("layer {layer}: its tar is byte-identical after a container wrote"),
            tar.clone(),
            sha256_of_file(&dir.join("layer.tar"))?,
        )?;
        expect_eq(
            &format!("layer {layer}: its unpacked dir is unchanged after a container wrote"),
            tree,
            &fingerprint(&dir.join("diff"))?,
        )?;
    }
    let second = lab.run(
        "--rm",
        &[
            "cow",
            "sh",
            "-c",
            "cat /etc/motd; ls /usr/bin/apt; ls /new-file 2>/dev/null || echo no-new-file",
        ],
    )?;
    expect_eq(
        "a second container of the image sees none of the first one's changes",
        "original\n/usr/bin/apt\nno-new-file\n",
        second.as_str(),
    )?;
    let left: Vec<String> = std::fs::read_dir(lab.root().join("containers"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    ensure(left.is_empty(), || {
        Fail::new("after `run --rm` ends, its writable layer is removed (containers/ is empty)")
            .seen(left.join(", "))
    })?;
    // A container that is kept: its writes are synced like any others.
    let kept = lab.run("cow", &["sh", "-c", "grep ' / / ' /proc/self/mountinfo"])?;
    ensure(!kept.contains("volatile"), || {
        Fail::new("a container run without --rm is kept, with its writable layer: its overlay must not be volatile")
            .seen(kept.trim())
    })
}

fn deletions_become_whiteouts(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "whiteouts",
        "FROM base\nRUN rm /usr/bin/apt\nRUN rm -r /etc && mkdir /etc && echo only > /etc/only\n",
        &[],
    )?;
    lab.build("deleted", &context)?;
    let layers = lab.layers("deleted")?;
    expect_eq("FROM + two RUN lines: layers", 3, layers.len())?;
    let removed = tar_entries(&lab.layer_dir(&layers[1]).join("layer.tar"))?;
    ensure(removed.contains_key("usr/bin/.wh.apt"), || {
        Fail::new("`RUN rm /usr/bin/apt` should make a layer holding the whiteout usr/bin/.wh.apt")
            .seen(format!("entries: {:?}", removed.keys().collect::<Vec<_>>()))
    })?;
    ensure(!removed.contains_key("usr/bin/apt"), || {
        Fail::new("the layer must not hold the deleted file itself (a char device 0/0 is overlayfs's, not the tar's)")
            .seen(format!("entries: {:?}", removed.keys().collect::<Vec<_>>()))
    })?;
    let unpacked = lab.layer_dir(&layers[1]).join("diff/usr/bin/apt");
    let meta = std::fs::symlink_metadata(&unpacked).ok();
    ensure(
        meta.as_ref().is_some_and(|m| {
            m.file_type().is_char_device() && m.rdev() == 0 && m.mode() & 0o7777 == 0
        }),
        || {
            Fail::new("unpacked for overlayfs, the whiteout .wh.apt should be a char device 0/0, mode 0000, named apt")
                .seen(match &meta {
                    Some(m) => format!(
                        "{}: {} {}/{} mode {:04o}",
                        unpacked.display(),
                        if m.file_type().is_char_device() { "char device" } else if m.is_file() { "regular file" } else { "not a char device" },
                        nix::sys::stat::major(m.rdev()),
                        nix::sys::stat::minor(m.rdev()),
                        m.mode() & 0o7777
                    ),
                    None => format!("{}: missing", unpacked.display()),
                })
        },
    )?;
    let opaque = tar_entries(&lab.layer_dir(&layers[2]).join("layer.tar"))?;
    for needed in ["etc/", "etc/.wh..wh..opq", "etc/only"] {
        ensure(opaque.contains_key(needed), || {
            Fail::new("`rm -r /etc && mkdir /etc` should make an opaque dir: etc/, etc/.wh..wh..opq, then the new file")
                .expected(needed)
                .seen(format!("entries: {:?}", opaque.keys().collect::<Vec<_>>()))
        })?;
    }
    let out = lab.run(
        "deleted",
        &[
            "sh",
            "-c",
            "ls /etc; ls /usr/bin/apt 2>/dev/null || echo apt-gone",
        ],
    )?;
    expect_eq(
        "a container of the image: /etc holds only the new file, apt is gone",
        "only\napt-gone\n",
        out.as_str(),
    )?;
    // A real char device (1/3) is no whiteout: refused, or kept as a device.
    let dev = lab.context("device", "FROM base\nRUN cp -a /dev/null /devnull\n", &[])?;
    let out = lab
        .minibox(&["build", "-t", "device", &dev.to_string_lossy()])
        .output()?;
    if out.code() == Some(0) {
        let layers = lab.layers("device")?;
        let entries = tar_entries(&lab.layer_dir(&layers[1]).join("layer.tar"))?;
        ensure(!entries.contains_key(".wh.devnull"), || {
            Fail::new("a copy of /dev/null (char 1/3) is a device, not a deletion: no .wh.devnull")
                .seen(format!("{:?}", entries.keys().collect::<Vec<_>>()))
        })?;
    }
    // With redirect_dir on, a renamed lower dir is only an xattr in the upper dir: its files would be lost.
    let moved = lab.context(
        "moved",
        "FROM base\nRUN mv /var/lib/dpkg /var/lib/dpkg-moved\n",
        &[],
    )?;
    lab.build("moved", &moved)?;
    expect_eq(
        "a dir renamed by RUN keeps its files in the image (overlay mounted with redirect_dir=off)",
        "/var/lib/dpkg-moved/status\n",
        lab.run("moved", &["ls", "/var/lib/dpkg-moved/status"])?
            .as_str(),
    )
}

fn layer_tars(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("layers/sha256"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join("layer.tar").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn layers_are_stored_once(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let one = lab.context("one", "FROM base\nRUN echo one > /one\n", &[])?;
    let two = lab.context("two", "FROM base\nRUN echo two > /two\n", &[])?;
    lab.build("one", &one)?;
    lab.build("two", &two)?;
    let (a, b) = (lab.layers("one")?, lab.layers("two")?);
    expect_eq("both images start with the base layer", &a[0], &b[0])?;
    let mut stored = layer_tars(&lab.root());
    stored.sort();
    let mut expected: Vec<String> = [&a[0], &a[1], &b[1]]
        .iter()
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    expected.sort();
    expect_eq(
        "the store holds each layer once: base, one, two (counted in layers/sha256)",
        expected,
        stored,
    )?;
    let out = lab.minibox(&["rmi", "one"]).output()?;
    out.expect_code(0, "rmi should remove the image")?;
    let mut left = layer_tars(&lab.root());
    left.sort();
    let mut expected: Vec<String> = [&b[0], &b[1]]
        .iter()
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    expected.sort();
    expect_eq(
        "after `rmi one`: its own layer is gone, the shared base layer stays",
        expected,
        left,
    )?;
    expect_eq(
        "the other image still runs",
        "two\n",
        lab.run("two", &["cat", "/two"])?.as_str(),
    )?;
    // Another instruction that makes the same bytes: the same layer, not written again.
    let tar = lab.layer_dir(&b[1]).join("layer.tar");
    let inode = std::fs::metadata(&tar).map(|m| m.ino()).ok();
    let twin = lab.context("twin", "FROM base\nRUN echo two >/two\n", &[])?;
    lab.build("twin", &twin)?;
    expect_eq(
        "a different RUN that writes the same file gives the same diff_id",
        &b,
        &lab.layers("twin")?,
    )?;
    expect_eq(
        "a layer already in the store is kept as it is (same inode of its layer.tar)",
        inode,
        std::fs::metadata(&tar).map(|m| m.ino()).ok(),
    )?;
    // The cache never points at a layer rmi removed.
    lab.build("one", &one)?;
    expect_eq(
        "`one`, built again after rmi",
        "one\n",
        lab.run("one", &["cat", "/one"])?.as_str(),
    )
}

/// Replace what differs between runs and machines: the store's path, and
/// the architecture (in the config, so in the image id too).
fn redact(text: &str, lab: &Lab, id: &str) -> String {
    let root = lab.root().canonicalize().unwrap_or_else(|_| lab.root());
    let arch = format!(
        "\"{}\"",
        std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64")
    );
    text.replace(&root.to_string_lossy().into_owned(), "[ROOT]")
        .replace(id, "[IMAGE ID]")
        .replace(&id[7..19], "[IMAGE ID]")
        .replace(&arch, "\"[ARCH]\"")
}

fn outputs_match_the_snapshots(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let context = lab.context(
        "snap",
        "FROM scratch\nLABEL org.opencontainers.image.title=\"hello\"\nCOPY hello.txt /srv/\nENV GREETING=hi\nCOPY conf /etc/hello\nCMD [\"/srv/hello.txt\"]\n",
        &[("hello.txt", "hello, layers\n"), ("conf/a.conf", "a=1\n"), ("conf/b.conf", "b=2\n")],
    )?;
    let conf = context.join("conf");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Fail::new("setup").seen(e))?;
    lab.build("hello:1.0", &context)?;
    let id = lab.image_id("hello:1.0")?;
    ensure(id.len() == 71, || {
        Fail::new("inspect should show a sha256 image id").seen(&id)
    })?;
    let mut shown = Vec::new();
    for (name, args) in [
        ("images", vec!["images"]),
        ("history", vec!["history", "hello:1.0"]),
        ("inspect", vec!["inspect", "hello:1.0"]),
    ] {
        let out = lab.minibox(&args).output()?;
        out.expect_code(0, &format!("`{name}` should work"))?;
        shown.push((name, redact(&out.stdout_text(), &lab, &id)));
    }
    let mut differ = Vec::new();
    for (name, text) in &shown {
        // insta panics on a difference (and writes a .snap.new beside the
        // snapshot): catch it, so that every output is compared.
        let compared = std::panic::catch_unwind(|| {
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/snapshots"
            ));
            settings.set_prepend_module_to_snapshot(false);
            settings.bind(|| insta::assert_snapshot!(format!("04-layers-{name}"), text));
        });
        if compared.is_err() {
            differ.push(format!("`{name}`:\n{text}"));
        }
    }
    ensure(differ.is_empty(), || {
        Fail::new("images / history / inspect differ from tests/snapshots/04-layers-*.snap: `diff tests/snapshots/04-layers-inspect.snap{,.new}` (and -images, -history) shows what differs")
            .seen(differ.join("\n"))
    })
}

/// What the store holds, to prove bad input changed nothing.
fn store_state(root: &Path) -> Result<BTreeMap<String, String>, Fail> {
    let mut state = BTreeMap::new();
    for dir in ["layers/sha256", "images/sha256", "cache"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for entry in entries.flatten() {
                state.insert(
                    format!("{dir}/{}", entry.file_name().to_string_lossy()),
                    String::new(),
                );
            }
        }
    }
    let repos = std::fs::read_to_string(root.join("repositories.json")).unwrap_or_default();
    state.insert("repositories.json".to_string(), repos);
    Ok(state)
}

/// A tar entry written raw: name, type, and the data or link target.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str);

/// A tar whose entry names are written raw (the tar crate refuses to
/// write `..` or absolute names, which is the point of these).
fn hostile_tar(path: &Path, entries: &[RawEntry]) -> Result<(), Fail> {
    let mut bytes = Vec::new();
    for (name, kind, target_or_data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            target_or_data.as_bytes()
        } else {
            header.as_old_mut().linkname[..target_or_data.len()]
                .copy_from_slice(target_or_data.as_bytes());
            b""
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    }
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(path, bytes).map_err(|e| Fail::new("setup: write a tar").seen(e))
}

fn bad_input_is_one_line(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let good = lab.context("good", "FROM base\nRUN echo fine > /fine\n", &[])?;
    lab.build("good", &good)?;
    let outside = lab.dir.path().join("outside");
    std::fs::create_dir_all(&outside).map_err(|e| Fail::new("setup").seen(e))?;
    let before = store_state(&lab.root())?;
    let unknown = lab.context("unknown", "FROM base\nRUN true\nFROBNICATE now\n", &[])?;
    let escape = lab.context("escape", "FROM base\nCOPY ../outside /x\n", &[])?;
    let missing = lab.context("missing", "FROM no-such-image:1\nRUN true\n", &[])?;
    let reserved = lab.context("reserved", "FROM base\nRUN touch /.wh.evil\n", &[])?;
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                unknown.display().to_string(),
            ],
            "line 3",
        ),
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                escape.display().to_string(),
            ],
            "outside",
        ),
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                missing.display().to_string(),
            ],
            "no-such-image",
        ),
        (
            vec![
                "build".into(),
                "-t".into(),
                "bad".into(),
                reserved.display().to_string(),
            ],
            ".wh.",
        ),
    ];
    let victim = outside.join("pwned");
    let link_target = outside.display().to_string();
    let tars: [(&str, Vec<RawEntry>, &str); 4] = [
        (
            "absolute.tar",
            vec![("/etc/minibox-pwned", tar::EntryType::Regular, "x")],
            "absolute",
        ),
        (
            "dotdot.tar",
            vec![("a/../../pwned", tar::EntryType::Regular, "x")],
            "..",
        ),
        (
            "symlink.tar",
            vec![
                ("evil", tar::EntryType::Symlink, link_target.as_str()),
                ("evil/pwned", tar::EntryType::Regular, "x"),
            ],
            "evil",
        ),
        (
            "hardlink.tar",
            vec![("passwd", tar::EntryType::Link, "../../../../etc/passwd")],
            "passwd",
        ),
    ];
    for (name, entries, mentions) in &tars {
        let path = lab.dir.path().join(name);
        hostile_tar(&path, entries)?;
        cases.push((
            vec![
                "import".into(),
                path.display().to_string(),
                "hostile".into(),
            ],
            mentions,
        ));
    }
    for (args, mentions) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lab.minibox(&args).output()?;
        out.expect_code(125, "bad input is a runtime error (125)")?;
        out.expect_one_error_line(mentions)?;
    }
    ensure(
        !victim.exists() && !Path::new("/etc/minibox-pwned").exists(),
        || Fail::new("a hostile tar wrote outside the store").seen(victim.display()),
    )?;
    expect_eq(
        "bad input leaves the store as it was (layers, images, cache, names)",
        before,
        store_state(&lab.root())?,
    )
}

// ---- containers with a life of their own ----

fn exec_joins_the_namespaces(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    let id = lab.run_detached(&[
        "--name",
        "target",
        "--hostname",
        "inside",
        "base",
        "sleep",
        "1000",
    ])?;
    let _cleanup = lab.removed(&id);
    let pid = lab.field("target", "State.Pid")?.as_i64().unwrap_or(0) as i32;
    ctx.track(pid);
    // One file per readlink: busybox's takes only one (GNU's takes many).
    let script =
        "hostname; for ns in mnt net uts pid; do readlink /proc/self/ns/$ns; done; ps -o comm=";
    let out = lab
        .minibox(&["exec", "target", "sh", "-c", script])
        .output()?;
    out.expect_code(0, "exec should run the command in the container")?;
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    expect_eq(
        "exec: the container's host name",
        Some("inside"),
        lines.first().copied(),
    )?;
    for (i, kind) in ["mnt", "net", "uts", "pid"].iter().enumerate() {
        let expected = grader::procfs::namespace(pid, kind);
        expect_eq(
            &format!("exec: the same {kind} namespace as the container's init (inode)"),
            expected.as_deref(),
            lines.get(i + 1).copied(),
        )?;
    }
    let processes: Vec<&str> = lines.iter().skip(5).copied().collect();
    ensure(
        processes.contains(&"sleep") && processes.contains(&"minibox-init"),
        || {
            Fail::new(
                "exec: ps sees the container's processes (its init and the sleep), and only those",
            )
            .seen(processes.join(", "))
        },
    )?;
    ensure(processes.len() <= 5, || {
        Fail::new("exec: ps inside must not see the host's processes").seen(processes.join(", "))
    })
}

fn copy_stays_in_the_layer(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    // A hostile context: d1 holds links to files outside; later sources
    // would be written through them if COPY followed links in its stage.
    let victim = lab.dir.path().join("victim");
    write(&victim.join("file"), "SAFE\n")?;
    std::fs::set_permissions(victim.join("file"), std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Fail::new("setup: chmod").seen(e))?;
    let context = lab.context(
        "hostile",
        "FROM base\nCOPY d1 s/evil d2 /x/\nCOPY s/evil /bin/\nRUN true\nRUN true\nWORKDIR /bin\n",
        &[("s/evil", "PWNED\n"), ("d2/sub/new", "PWNED2\n")],
    )?;
    std::fs::create_dir_all(context.join("d1")).map_err(|e| Fail::new("setup").seen(e))?;
    std::os::unix::fs::symlink(victim.join("file"), context.join("d1/evil"))
        .and_then(|_| std::os::unix::fs::symlink(&victim, context.join("d1/sub")))
        .map_err(|e| Fail::new("setup: symlink").seen(e))?;
    lab.build("hostile", &context)?;
    expect_eq(
        "a file outside the context, behind a link in it, is never written by COPY",
        "SAFE\n",
        std::fs::read_to_string(victim.join("file"))
            .unwrap_or_default()
            .as_str(),
    )?;
    let mode = std::fs::metadata(victim.join("file"))
        .map(|m| m.mode() & 0o777)
        .unwrap_or(0);
    expect_eq(
        "nor are its permissions changed (0600)",
        "600".to_string(),
        format!("{mode:o}"),
    )?;
    ensure(!victim.join("new").exists(), || {
        Fail::new("COPY must not create files through a link to a dir outside")
            .seen(victim.join("new").display())
    })?;
    let out = lab.run(
        "--rm",
        &[
            "hostile",
            "sh",
            "-c",
            "readlink /bin; cat /x/evil /usr/bin/evil /x/sub/new; pwd",
        ],
    )?;
    expect_eq(
        "in the image: later sources replace earlier links; COPY into /bin/ follows the image's link to /usr/bin; two empty RUN layers stack; WORKDIR /bin is /usr/bin",
        "usr/bin\nPWNED\nPWNED\nPWNED2\n/usr/bin\n",
        out.as_str(),
    )
}

fn the_callers_terminal_is_out_of_reach(ctx: &Ctx) -> Outcome {
    use grader::terminal::{self, Terminal, Wired, MARKER};
    let lab = Lab::apart(ctx);
    lab.import_probe()?;
    let probe = ["grader-probe", "--probe", "tiocsti", MARKER];
    let _cleanup = lab.removed("typist");
    lab.run_detached(&["--name", "typist", "probe", "sleep", "1000"])?;
    let context = lab.context(
        "typist",
        &format!("FROM probe\nRUN {}\n", serde_json::json!(probe)),
        &[],
    )?;
    let context = context.to_string_lossy().into_owned();
    let tries: [(&str, Vec<&str>); 5] = [
        ("run", [&["run", "--rm", "probe"][..], &probe].concat()),
        (
            "run -i",
            [&["run", "-i", "--rm", "probe"][..], &probe].concat(),
        ),
        ("exec", [&["exec", "typist"][..], &probe].concat()),
        ("exec -i", [&["exec", "-i", "typist"][..], &probe].concat()),
        ("a build's RUN", vec!["build", "-t", "typed", &context]),
    ];
    for (what, args) in tries {
        // The caller's terminal: the runtime's controlling terminal, its
        // stdin and its stdout, as an interactive shell starts it.
        let terminal = Terminal::new()?;
        let command = lab.minibox(&args).into_command();
        let (status, said) =
            terminal.run(command, Wired::StdinAndStdout, Duration::from_secs(20))?;
        ensure(status.success(), || {
            Fail::new(format!("{what}: the probe should run and exit 0"))
                .seen(format!("{status}: {}", said.trim()))
        })?;
        terminal::expect_blocked(&terminal, what, &said)?;
        let found = terminal::answers(&said);
        for fd in 0..3 {
            let seen = found.get(&format!("fd {fd}")).cloned().unwrap_or_default();
            ensure(seen == "not a terminal", || {
                Fail::new(format!(
                    "{what}: the container's fd {fd} should be a pipe, not the caller's terminal"
                ))
                .expected(format!("fd {fd}: not a terminal"))
                .seen(said.trim())
            })?;
        }
    }
    // `echo hi | minibox run -i --rm base cat`: cat reads to the end of its
    // stdin, which comes only once no process holds a write end of it.
    let shown = "echo hi | minibox run -i --rm base cat";
    let out = lab
        .minibox(&["run", "-i", "--rm", "base", "cat"])
        .stdin(b"hi\n")
        .output()
        .map_err(|fail| {
            Fail::new(format!(
                "`{shown}` should print hi and end once its input ends"
            ))
            .expected("hi, then exit 0")
            .seen(fail.what)
        })?;
    ensure(out.status.success() && out.stdout_text() == "hi\n", || {
        Fail::new(format!(
            "`{shown}` should copy its input to cat's and cat's output to its own"
        ))
        .expected("hi, then exit 0")
        .seen(out.summary())
    })?;
    terminal::control(Duration::from_secs(20))
}

/// Run `argv` on the host as uid and gid 65534 (nobody), no groups: another
/// local user of the machine. Its stdout, or why it could not start.
fn as_nobody(argv: &[&str]) -> String {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(argv[0]);
    command.args(&argv[1..]).stdin(std::process::Stdio::null());
    // SAFETY: between fork and exec only setgroups, setgid and setuid:
    // plain system calls, nothing allocated.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(65534))?;
            Ok(())
        });
    }
    match command.output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("{}: {e}", argv[0]),
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).map_or(0, |m| m.mode() & 0o7777)
}

fn the_store_is_roots_alone(ctx: &Ctx) -> Outcome {
    let lab = Lab::apart(ctx);
    lab.import_probe()?;
    let secret = format!("grader-password-{}", std::process::id());
    let _left = lab.removed("leaver");
    let _logged = lab.removed("logger");
    // A container's root leaves a setuid-root program in its writable
    // layer (on the host's disk), and its record keeps its -e.
    lab.minibox(&[
        "run",
        "--name",
        "leaver",
        "-e",
        &format!("DB_PASSWORD={secret}"),
        "probe",
        "grader-probe",
        "--probe",
        "setuid-copy",
        "/usr/bin/grader-probe",
        "/x",
    ])
    .output()?
    .expect_code(0, "the container should run")?;
    let id = lab
        .field("leaver", "Id")?
        .as_str()
        .unwrap_or_default()
        .to_string();
    let dir = lab.root().join("containers").join(&id);
    let (record, planted) = (dir.join("config.v1.json"), dir.join("upper/x"));
    ensure(mode_of(&planted) == 0o4755, || {
        Fail::new("setup: the container should have left a setuid copy in its writable layer")
            .seen(format!("{:o} at {}", mode_of(&planted), planted.display()))
    })?;
    // A detached container chmods its stdout, 4755, through /proc/self/fd/1.
    let logger = lab.run_detached(&[
        "--name",
        "logger",
        "probe",
        "grader-probe",
        "--probe",
        "chmod-stdout",
    ])?;
    lab.wait_status("logger", "exited")?;
    let log = lab
        .root()
        .join("containers")
        .join(&logger)
        .join("container.log");
    // What the kernel says: modes.
    let octal = |path: &Path| format!("{:o}", mode_of(path) & 0o777);
    expect_eq(
        "the mode of --root (its owner's alone)",
        "700".to_string(),
        octal(&lab.root()),
    )?;
    expect_eq(
        "the mode of a container's record",
        "600".to_string(),
        octal(&record),
    )?;
    ensure(mode_of(&log) & 0o7111 == 0, || {
        Fail::new("the container made its log a setuid program (chmod 4755 /proc/self/fd/1): it held the log itself")
            .expected("the log written by the runtime, from a pipe: mode 0600")
            .seen(format!("mode {:o}", mode_of(&log)))
    })?;
    let record_path = record.to_string_lossy().into_owned();
    let planted_path = planted.to_string_lossy().into_owned();
    let try_all = || {
        (
            as_nobody(&["cat", &record_path]),
            as_nobody(&[&planted_path, "--probe", "euid"]),
        )
    };
    let (read, ran) = try_all();
    ensure(!read.contains(&secret), || {
        Fail::new("another user (nobody) read a container's record, with its -e DB_PASSWORD")
            .seen(read.trim())
    })?;
    ensure(!ran.contains("euid: 0"), || {
        Fail::new("another user (nobody) ran the setuid-root program a container left in its writable layer: root on the host")
            .seen(ran.trim())
    })?;
    // The control: the store opened to everyone (as a store made 0755
    // was), the same two doors open...
    let opened = std::process::Command::new("chmod")
        .args(["-R", "go+rX"])
        .arg(lab.root())
        .status()
        .is_ok_and(|s| s.success());
    ensure(opened, || {
        Fail::new("the grader could not chmod the store for the control")
    })?;
    let (read, ran) = try_all();
    ensure(read.contains(&secret), || {
        Fail::new("the control: with the store open to all, nobody should read the record (the probe works)")
            .seen(read.trim())
    })?;
    let nosuid = nix::sys::statvfs::statvfs(&lab.root())
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID));
    ensure(nosuid || ran.contains("euid: 0"), || {
        Fail::new("the control: with the store open to all, nobody running the planted setuid program should get euid 0")
            .seen(ran.trim())
    })?;
    // ... and the next command closes it again.
    lab.minibox(&["ps", "-a"])
        .output()?
        .expect_code(0, "ps on the opened store")?;
    expect_eq(
        "the mode of the store's containers after the next command (a store open to others is closed again)",
        "700".to_string(),
        octal(&lab.root().join("containers")),
    )?;
    // The log's control: the same probe, its stdout a file of the grader's,
    // does turn that file into a setuid program.
    let file = lab.dir.path().join("a-log");
    let me = std::env::current_exe().map_err(|e| Fail::new("cannot find the grader").seen(e))?;
    let out = std::fs::File::create(&file).map_err(|e| Fail::new("setup").seen(e))?;
    let _ = std::process::Command::new(me)
        .args(["--probe", "chmod-stdout"])
        .stdout(out)
        .status();
    ensure(mode_of(&file) & 0o4000 != 0, || {
        Fail::new("the control: chmod through /proc/self/fd/1 should reach a file held as stdout")
            .seen(format!("mode {:o}", mode_of(&file)))
    })?;
    // A store of another user's is refused.
    let theirs = lab.dir.path().join("theirs");
    std::fs::create_dir(&theirs).map_err(|e| Fail::new("setup").seen(e))?;
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534))
        .map_err(|e| Fail::new("setup").seen(e))?;
    let out = ctx
        .minibox(&["--root", &theirs.to_string_lossy(), "images"])
        .in_lab()
        .output()?;
    out.expect_code(
        125,
        "a --root that belongs to another user should be refused",
    )?;
    out.expect_one_error_line("uid 65534")
}

/// The race below runs builds until this many succeeded (each one a
/// chance for a leak) and one failed; it gives up after `RACE_GIVE_UP`
/// builds if none failed (the swap was never seen), or after `RACE_MAX`.
const RACE_SUCCESSES: usize = 30;
const RACE_GIVE_UP: usize = 60;
const RACE_MAX: usize = 150;

/// Every layer tar in the store not read yet: does one hold `secrets`?
/// Returns the first that does, and the secret found.
fn leaked_layer(
    root: &Path,
    read: &mut std::collections::BTreeSet<String>,
    secrets: &[&str],
) -> Result<Option<(String, String)>, Fail> {
    for hex in layer_tars(root) {
        if !read.insert(hex.clone()) {
            continue; // a layer's name is its content's hash: read once
        }
        let tar = root.join("layers/sha256").join(&hex).join("layer.tar");
        let bytes = std::fs::read(&tar)
            .map_err(|e| Fail::new(format!("cannot read {}", tar.display())).seen(e))?;
        for secret in secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                return Ok(Some((hex, secret.to_string())));
            }
        }
    }
    Ok(None)
}

fn copy_cannot_be_raced_out_of_the_context(ctx: &Ctx) -> Outcome {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let lab = Lab::apart(ctx);
    // The host's side: a dir outside the context, with a secret in it.
    let host = lab.dir.path().join("host");
    let secret = format!("HOST-SECRET-{}", std::process::id());
    write(&host.join("host-secret.txt"), &secret)?;
    let context = lab.context(
        "raced",
        "FROM base\nCOPY sub /x/\n",
        &[
            ("sub/a", "A\n"),
            ("sub/b", "B\n"),
            ("Dockerfile.in", "FROM base\nCOPY in/a /y/\n"),
            ("Dockerfile.out", "FROM base\nCOPY sublink /y/\n"),
            ("Dockerfile.slash", "FROM base\nCOPY /sub/a /srv/\n"),
        ],
    )?;
    // `in` stays inside the context; `sublink` leads out of it.
    std::os::unix::fs::symlink("sub", context.join("in"))
        .and_then(|_| std::os::unix::fs::symlink(&host, context.join("sublink")))
        .map_err(|e| Fail::new("setup: symlink").seen(e))?;
    let secrets = [secret.as_str(), "host-secret.txt"];
    let mut read = std::collections::BTreeSet::new();
    let context_arg = context.to_string_lossy().into_owned();
    let build_with = |file: &str| {
        let file = context.join(file).to_string_lossy().into_owned();
        lab.minibox(&["build", "-t", "raced", "-f", &file, &context_arg])
            .output()
    };

    // Still: a link that stays inside is followed, one that leaves is refused.
    build_with("Dockerfile.in")?.expect_code(
        0,
        "COPY in/a, through a link to sub inside the context, should work",
    )?;
    let layers = lab.layers("raced")?;
    let copied = layers.last().map(|l| lab.layer_dir(l).join("layer.tar"));
    let entries = tar_entries(&copied.unwrap_or_default())?;
    expect_eq(
        "COPY in/a /y/ (in -> sub): the layer holds sub/a as y/a",
        Some(&('0', 2)),
        entries.get("y/a"),
    )?;
    // A leading `/` is the context's top, as in docker.
    build_with("Dockerfile.slash")?.expect_code(
        0,
        "COPY /sub/a /srv/ (a leading / means the context's top) should work",
    )?;
    let layers = lab.layers("raced")?;
    let copied = layers.last().map(|l| lab.layer_dir(l).join("layer.tar"));
    let entries = tar_entries(&copied.unwrap_or_default())?;
    expect_eq(
        "COPY /sub/a /srv/: the layer holds the context's sub/a as srv/a",
        Some(&('0', 2)),
        entries.get("srv/a"),
    )?;
    let out = build_with("Dockerfile.out")?;
    out.expect_code(
        125,
        "COPY sublink (a link to a dir outside the context) is refused",
    )?;
    out.expect_one_error_line("outside")?;

    // The race: `sub` and `sublink` swap places over and over while COPY
    // reads `sub`.
    let stop = AtomicBool::new(false);
    let exchanges = AtomicUsize::new(0);
    let (sub, sublink) = (context.join("sub"), context.join("sublink"));
    std::thread::scope(|scope| {
        // The swapper stops when this scope is left, however it is left.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stop_swapper = StopOnDrop(&stop);
        let swapper = scope.spawn(|| {
            use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
            while !stop.load(Ordering::SeqCst) {
                // renameat2(RENAME_EXCHANGE): both names stay, their
                // inodes trade places in one step.
                renameat2(
                    AT_FDCWD,
                    &sub,
                    AT_FDCWD,
                    &sublink,
                    RenameFlags::RENAME_EXCHANGE,
                )?;
                exchanges.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), nix::Error>(())
        });
        let (mut builds, mut failed) = (0, 0);
        loop {
            let done = failed >= 1 && builds - failed >= RACE_SUCCESSES;
            let no_swap_seen = failed == 0 && builds >= RACE_GIVE_UP;
            if done || no_swap_seen || builds >= RACE_MAX || swapper.is_finished() {
                break;
            }
            let out = build_with("Dockerfile")?;
            builds += 1;
            if let Some((layer, found)) = leaked_layer(&lab.root(), &mut read, &secrets)? {
                return Err(Fail::new(format!(
                    "build {builds} of `COPY sub /x/`, `sub` being swapped with a link to a dir outside the context: no layer may hold a file from outside"
                ))
                .expected("COPY reads only what is beneath the context")
                .seen(format!(
                    "layers/sha256/{layer}/layer.tar holds `{found}` ({failed} of the {builds} builds failed, `{}`)",
                    out.summary()
                )));
            }
            if out.code() == Some(125) {
                out.expect_one_error_line("sub")?;
                failed += 1;
                continue;
            }
            out.expect_code(0, "COPY sub, while sub is swapped with a link out: the build succeeds with sub's own files, or fails with one line")?;
            let layers = lab.layers("raced")?;
            let copied = layers.last().map(|l| lab.layer_dir(l).join("layer.tar"));
            let entries: Vec<String> = tar_entries(&copied.unwrap_or_default())?
                .into_iter()
                .filter(|(_, (kind, _))| *kind != '5')
                .map(|(name, (kind, size))| match kind {
                    '0' => format!("{name}: a file of {size} bytes"),
                    '2' => format!("{name}: a symlink"),
                    other => format!("{name}: tar type {other}"),
                })
                .collect();
            expect_eq(
                &format!("build {builds}, `sub` being swapped, succeeded: then it copied sub's own files"),
                vec![
                    "x/a: a file of 2 bytes".to_string(),
                    "x/b: a file of 2 bytes".to_string(),
                ],
                entries,
            )?;
        }
        drop(stop_swapper);
        let swapped = match swapper.join() {
            Ok(Ok(())) => exchanges.load(Ordering::Relaxed),
            Ok(Err(e)) => {
                return Err(
                    Fail::new("setup: renameat2(RENAME_EXCHANGE) of sub and sublink").seen(e),
                )
            }
            Err(_) => return Err(Fail::new("setup: the swapper thread panicked")),
        };
        ensure(swapped > 0 && failed > 0, || {
            Fail::new(
                "the swapper never hit the window: the race proves nothing unless some builds met the link (and failed)",
            )
            .expected("at least one of the builds fails with one line saying sub is outside the context")
            .seen(format!("{builds} builds, {failed} failed; the swapper exchanged sub and sublink {swapped} times"))
        })?;
        ensure(builds - failed >= RACE_SUCCESSES, || {
            Fail::new("COPY of a real dir must still work while the context changes")
                .expected(format!("{RACE_SUCCESSES} builds succeed with sub's own files, the link met by about half of them"))
                .seen(format!("{failed} of the {builds} builds failed"))
        })
    })
}

// ---- library checks: the learner's functions, called on fixture trees ----
//
// Each calls one function of the step's library directly, so that it
// grades that function and as few others as the concept allows, then
// looks at the files, the tar bytes and the digests itself.

const EPOCH: u64 = 1_700_000_000;

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Fail + '_ {
    move |e| Fail::new(format!("setup: {what}")).seen(e)
}

fn mknod_char(path: &Path, major: u64, minor: u64) -> Result<(), Fail> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(major, minor)).map_err(setup("mknod"))
}

fn set_opaque(dir: &Path) -> Result<(), Fail> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated strings that live across the call.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    ensure(rc == 0, || {
        Fail::new("setup: setfattr -n trusted.overlay.opaque -v y")
            .seen(std::io::Error::last_os_error())
    })
}

fn opaque_value(dir: &Path) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut value = [0u8; 16];
    // SAFETY: NUL-terminated strings; the kernel writes at most 16 bytes.
    let len = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    (len >= 0).then(|| value[..len as usize].to_vec())
}

fn set_mtime(path: &Path, mtime: u64) -> Result<(), Fail> {
    let time = nix::sys::time::TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(setup("utimensat"))
}

fn is_whiteout_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

/// A reader that gives its bytes in odd-sized pieces, and is interrupted
/// by a signal once (EINTR: no error, try again).
struct Dribble {
    data: Vec<u8>,
    at: usize,
    calls: usize,
    fail_at: Option<usize>,
}

impl std::io::Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls == 2 {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        if self.fail_at.is_some_and(|at| self.at >= at) {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = buf.len().min(4093).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn diff_id_hashes_every_byte(_ctx: &Ctx) -> Outcome {
    let data: Vec<u8> = (0..300_007u32).map(|i| (i * 31 % 251) as u8).collect();
    let expected = format!("sha256:{:x}", Sha256::digest(&data));
    let reader = Dribble {
        data: data.clone(),
        at: 0,
        calls: 0,
        fail_at: None,
    };
    let result = call("diff_id", || step04::digest::diff_id(reader))?;
    let (digest, bytes) = result
        .map_err(|e| Fail::new("diff_id of a readable tar should be Ok").seen(format!("{e:#}")))?;
    expect_eq(
        "diff_id of 300,007 bytes given in pieces (once interrupted by a signal): the sha256 of them all",
        expected,
        digest.to_string(),
    )?;
    expect_eq("the number of bytes diff_id read", data.len() as u64, bytes)?;
    let (empty, none) = call("diff_id", || step04::digest::diff_id(std::io::empty()))?
        .map_err(|e| Fail::new("diff_id of an empty tar should be Ok").seen(format!("{e:#}")))?;
    expect_eq("diff_id of nothing", sha256_text(""), empty.to_string())?;
    expect_eq("bytes read of nothing", 0, none)?;
    let broken = Dribble {
        data,
        at: 0,
        calls: 0,
        fail_at: Some(100_000),
    };
    let result = call("diff_id", || step04::digest::diff_id(broken))?;
    ensure(result.is_err(), || {
        Fail::new("a read error in the middle of the tar should be an error, not a digest of half a layer")
            .seen(format!("{:?}", result.map(|(d, n)| (d.to_string(), n))))
    })
}

fn chain_ids_follow_the_oci_spec(_ctx: &Ctx) -> Outcome {
    use step04::digest::of_bytes;
    let layers = vec![of_bytes(b"a"), of_bytes(b"b"), of_bytes(b"c")];
    let mut expected: Vec<String> = Vec::new();
    for layer in &layers {
        let next = match expected.last() {
            None => layer.to_string(),
            Some(below) => sha256_text(&format!("{below} {layer}")),
        };
        expected.push(next);
    }
    let seen = call("chain_ids", || step04::digest::chain_ids(&layers))?;
    expect_eq(
        "chain_ids of three layers: the first diff_id, then sha256(\"<chain_id below> <diff_id>\")",
        expected,
        seen.iter().map(|d| d.to_string()).collect(),
    )?;
    let none = call("chain_ids", || step04::digest::chain_ids(&[]))?;
    expect_eq("chain_ids of no layer", 0, none.len())
}

fn a_whiteout_is_a_char_device_0_0(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let path = dir.path().join("gone");
    call("make_overlay_whiteout", || {
        step04::whiteout::make_overlay_whiteout(&path)
    })?
    .map_err(|e| Fail::new("make_overlay_whiteout on a free path should be Ok").seen(e))?;
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| Fail::new("make_overlay_whiteout should create the path").seen(e))?;
    let (major, minor) = (
        nix::sys::stat::major(meta.rdev()),
        nix::sys::stat::minor(meta.rdev()),
    );
    expect_eq(
        "what lstat says of the whiteout made: (char device, major, minor, permission bits in octal)",
        (true, 0, 0, "0".to_string()),
        (
            meta.file_type().is_char_device(),
            major,
            minor,
            format!("{:o}", meta.mode() & 0o7777),
        ),
    )
}

fn only_0_0_is_a_whiteout(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let d = dir.path();
    mknod_char(&d.join("whiteout"), 0, 0)?;
    mknod_char(&d.join("null"), 1, 3)?;
    mknod_char(&d.join("minor"), 0, 5)?;
    nix::sys::stat::mknod(
        &d.join("block"),
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .map_err(setup("mknod b 0 0"))?;
    write(&d.join("file"), "")?;
    std::fs::create_dir(d.join("dir")).map_err(setup("mkdir"))?;
    nix::unistd::mkfifo(
        &d.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(setup("mkfifo"))?;
    let mut seen = BTreeMap::new();
    for name in ["whiteout", "null", "minor", "block", "file", "dir", "fifo"] {
        let meta = std::fs::symlink_metadata(d.join(name)).map_err(setup("lstat"))?;
        let answer = call("is_overlay_whiteout", || {
            step04::whiteout::is_overlay_whiteout(&meta)
        })?;
        seen.insert(name, answer);
    }
    let expected: BTreeMap<_, _> = [
        ("whiteout", true),
        ("null", false),
        ("minor", false),
        ("block", false),
        ("file", false),
        ("dir", false),
        ("fifo", false),
    ]
    .into_iter()
    .collect();
    expect_eq(
        "is_overlay_whiteout of: c 0 0, c 1 3 (/dev/null), c 0 5, b 0 0, a file, a dir, a FIFO",
        expected,
        seen,
    )
}

/// write_layer of `dir` into memory.
fn layer_of(dir: &Path) -> Result<anyhow::Result<Vec<u8>>, Fail> {
    call("write_layer", || {
        let mut out = Vec::new();
        step04::layer_tar::write_layer(dir, &mut out, EPOCH).map(|()| out)
    })
}

fn headers_of(tar: &[u8]) -> Result<Vec<(String, tar::Header)>, Fail> {
    let mut archive = tar::Archive::new(tar);
    let bad = |e: std::io::Error| Fail::new("the layer should be a readable tar").seen(e);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        out.push((
            String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            entry.header().clone(),
        ));
    }
    Ok(out)
}

/// The same tree, made in the order `names` gives, with build-time mtimes
/// `late` (later than EPOCH).
fn sample_tree(root: &Path, reverse: bool, late: u64) -> Result<(), Fail> {
    let mut steps: Vec<&str> = vec!["z", "a", "a/b", "B", "a-b", "fifo"];
    if reverse {
        steps.reverse();
    }
    std::fs::create_dir_all(root).map_err(setup("mkdir"))?;
    std::fs::create_dir_all(root.join("a")).map_err(setup("mkdir"))?;
    for step in steps {
        let path = root.join(step);
        match step {
            "a" => {}
            "a-b" => std::os::unix::fs::symlink("a/b", &path).map_err(setup("symlink"))?,
            "fifo" => nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o640))
                .map_err(setup("mkfifo"))?,
            _ => write(&path, &format!("{step}\n"))?,
        }
    }
    std::fs::set_permissions(root.join("a/b"), std::fs::Permissions::from_mode(0o4755))
        .map_err(setup("chmod"))?;
    std::os::unix::fs::lchown(root.join("z"), Some(1234), Some(5678)).map_err(setup("chown"))?;
    for step in ["z", "a/b", "a-b", "fifo", "a"] {
        set_mtime(&root.join(step), late)?;
    }
    set_mtime(&root.join("B"), EPOCH - 1000)?;
    Ok(())
}

fn layer_tars_are_sorted_and_plain(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    sample_tree(&one, false, EPOCH + 1000)?;
    sample_tree(&two, true, EPOCH + 99_999)?;
    let first = layer_of(&one)?.map_err(|e| {
        Fail::new("write_layer of a plain tree should be Ok").seen(format!("{e:#}"))
    })?;
    let headers = headers_of(&first)?;
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    expect_eq(
        "the entries, in tar order (each dir's entries sorted by name as bytes, a dir right before what is in it, dirs named with a trailing /)",
        vec!["B", "a/", "a/b", "a-b", "fifo", "z"],
        names,
    )?;
    for (name, header) in &headers {
        let what = |fact: &str| format!("{name}: {fact}");
        ensure(header.as_gnu().is_some(), || {
            Fail::new(what(
                "every header in one format, GNU's (magic \"ustar  \")",
            ))
            .seen(String::from_utf8_lossy(&header.as_bytes()[257..265]))
        })?;
        expect_eq(
            &what("user and group names (machine-local: none)"),
            (String::new(), String::new()),
            (
                String::from_utf8_lossy(header.username_bytes().unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(header.groupname_bytes().unwrap_or_default()).into_owned(),
            ),
        )?;
        let gnu = header.as_gnu().unwrap();
        let unset = |field: &[u8]| field.iter().all(|b| matches!(b, 0 | b'0' | b' '));
        expect_eq(
            &what("atime and ctime (they change when the tree is only read: none)"),
            (true, true),
            (unset(&gnu.atime), unset(&gnu.ctime)),
        )?;
        let (mtime, mode, ids) = match name.as_str() {
            "B" => (EPOCH - 1000, 0o644, (0, 0)),
            "z" => (EPOCH, 0o644, (1234, 5678)),
            "a/b" => (EPOCH, 0o4755, (0, 0)),
            "fifo" => (EPOCH, 0o640, (0, 0)),
            _ => (EPOCH, header.mode().unwrap_or(0), (0, 0)),
        };
        // Permission bits in octal, as ls and chmod write them.
        expect_eq(
            &what("mtime (clamped to the epoch), permission bits (octal), numeric uid:gid"),
            (mtime, format!("{mode:o}"), ids),
            (
                header.mtime().unwrap_or(0),
                format!("{:o}", header.mode().unwrap_or(0)),
                (header.uid().unwrap_or(9), header.gid().unwrap_or(9)),
            ),
        )?;
    }
    let kinds: Vec<char> = headers
        .iter()
        .map(|(_, h)| h.entry_type().as_byte() as char)
        .collect();
    expect_eq(
        "the entry types (5 dir, 0 file, 2 symlink, 6 FIFO)",
        vec!['0', '5', '0', '2', '6', '0'],
        kinds,
    )?;
    let second = layer_of(&two)?.map_err(|e| {
        Fail::new("write_layer of a plain tree should be Ok").seen(format!("{e:#}"))
    })?;
    ensure(first == second, || {
        Fail::new(
            "the same tree, made in another order at another time, should give the same tar bytes",
        )
        .expected(format!(
            "{} bytes, {}",
            first.len(),
            sha256_text_bytes(&first)
        ))
        .seen(format!(
            "{} bytes, {}",
            second.len(),
            sha256_text_bytes(&second)
        ))
    })
}

fn sha256_text_bytes(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn deletions_become_oci_markers(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let upper = dir.path().join("upper");
    std::fs::create_dir_all(upper.join("d")).map_err(setup("mkdir"))?;
    mknod_char(&upper.join("gone"), 0, 0)?;
    write(&upper.join("d/new"), "new\n")?;
    write(&upper.join("keep"), "keep\n")?;
    set_opaque(&upper.join("d"))?;
    let tar = layer_of(&upper)?.map_err(|e| {
        Fail::new("write_layer of an upper dir with a whiteout and an opaque dir should be Ok")
            .seen(format!("{e:#}"))
    })?;
    let headers = headers_of(&tar)?;
    let seen: Vec<(String, char, u64)> = headers
        .iter()
        .map(|(n, h)| {
            (
                n.clone(),
                h.entry_type().as_byte() as char,
                h.size().unwrap_or(9),
            )
        })
        .collect();
    let expected: Vec<(String, char, u64)> = [
        (".wh.gone", '0', 0),
        ("d/", '5', 0),
        ("d/.wh..wh..opq", '0', 0),
        ("d/new", '0', 4),
        ("keep", '0', 5),
    ]
    .into_iter()
    .map(|(n, k, s)| (n.to_string(), k, s))
    .collect();
    expect_eq(
        "the layer of: gone (c 0 0), d/ (opaque) with d/new, keep: (name, type, size), in order",
        expected,
        seen,
    )?;
    // A real device is no deletion: it must not slip into a layer.
    let devices = dir.path().join("devices");
    std::fs::create_dir_all(&devices).map_err(setup("mkdir"))?;
    mknod_char(&devices.join("null"), 1, 3)?;
    let result = layer_of(&devices)?;
    ensure(result.is_err(), || {
        Fail::new("write_layer of a tree holding a real device (c 1 3) should be an error").seen(
            format!(
                "Ok, with entries {:?}",
                headers_of(result.as_ref().unwrap())
                    .unwrap_or_default()
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>()
            ),
        )
    })?;
    let reserved = dir.path().join("reserved");
    write(&reserved.join(".wh.sneaky"), "a file, not a deletion\n")?;
    let result = layer_of(&reserved)?;
    ensure(result.is_err(), || {
        Fail::new("write_layer of a tree holding a real file named .wh.sneaky should be an error (unpacking would take it for a deletion)")
            .seen("Ok")
    })
}

/// A raw tar entry: (name, type, link target, data).
type RawTarEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a str);

/// A tar of raw entries, names as they are.
fn raw_tar(entries: &[RawTarEntry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1000);
        header.set_cksum();
        tar.append(&header, data.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap()
}

fn unpack(tar: &[u8], dest: &Path) -> Result<anyhow::Result<()>, Fail> {
    std::fs::create_dir_all(dest).map_err(setup("mkdir"))?;
    call("unpack_layer", || step04::unpack::unpack_layer(tar, dest))
}

fn unpacking_stays_inside(ctx: &Ctx) -> Outcome {
    use tar::EntryType::{Directory as DIR, Link as HARD, Regular as FILE, Symlink as SYM};
    let dir = ctx.temp_dir();
    let outside = dir.path().join("outside");
    write(&outside.join("victim"), "the host's\n")?;
    let out = outside.to_string_lossy().into_owned();
    let before = fingerprint(&outside)?;
    let victim = format!("{out}/victim");
    let abs_evil = format!("{out}/evil-absolute");
    let hostile: Vec<(&str, Vec<RawTarEntry>)> = vec![
        (
            "`../outside/evil`",
            vec![("../outside/evil", FILE, "", "pwned\n")],
        ),
        (
            "an absolute path into outside/",
            vec![(&abs_evil, FILE, "", "pwned\n")],
        ),
        (
            "a symlink `link` -> outside/, then `link/evil`",
            vec![("link", SYM, &out, ""), ("link/evil", FILE, "", "pwned\n")],
        ),
        (
            "a hard link to `../outside/victim`",
            vec![("h", HARD, "../outside/victim", "")],
        ),
        (
            "a hard link to outside/victim's absolute path",
            vec![("h", HARD, &victim, "")],
        ),
        (
            "a symlink `ld` -> outside/, then a hard link to `ld/victim`",
            vec![("ld", SYM, &out, ""), ("h", HARD, "ld/victim", "")],
        ),
    ];
    for (n, (what, entries)) in hostile.iter().enumerate() {
        let dest = dir.path().join(format!("dest{n}"));
        let result = unpack(&raw_tar(entries), &dest)?;
        expect_eq(
            &format!("nothing outside the layer changed by a tar with {what}"),
            &before,
            &fingerprint(&outside)?,
        )?;
        ensure(result.is_err(), || {
            Fail::new(format!("unpacking a tar with {what} should be an error")).seen("Ok")
        })?;
    }
    // A `..` anywhere is refused, even one that would stay inside.
    let dest = dir.path().join("middle");
    let result = unpack(
        &raw_tar(&[("a/", DIR, "", ""), ("a/../b", FILE, "", "b\n")]),
        &dest,
    )?;
    let made = std::fs::symlink_metadata(dest.join("b")).is_ok();
    ensure(result.is_err() && !made, || {
        Fail::new(
            "a tar entry `a/../b`: an error (a `..` anywhere in a layer path), and no `b` made",
        )
        .expected("an error; no b")
        .seen(format!(
            "{}; b {}",
            if result.is_ok() { "Ok" } else { "an error" },
            if made { "made" } else { "not made" }
        ))
    })?;
    // Setuid and setgid files keep those bits (chown(2) clears them).
    let dest = dir.path().join("setuid");
    let mut tar = tar::Builder::new(Vec::new());
    for (name, mode) in [("su", 0o4755), ("wall", 0o2755)] {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).map_err(setup("tar path"))?;
        header.set_entry_type(FILE);
        header.set_size(0);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1000);
        header.set_cksum();
        tar.append(&header, &[][..]).map_err(setup("tar append"))?;
    }
    let tar = tar.into_inner().map_err(setup("tar finish"))?;
    unpack(&tar, &dest)?.map_err(|e| {
        Fail::new("unpacking a setuid and a setgid file owned by root should be Ok")
            .seen(format!("{e:#}"))
    })?;
    for (name, mode) in [("su", 0o4755), ("wall", 0o2755)] {
        let seen = std::fs::symlink_metadata(dest.join(name)).map_or(0, |m| m.mode() & 0o7777);
        ensure(seen == mode, || {
            Fail::new(format!(
                "`{name}`, a file of mode {mode:o} owned by root in the tar: unpacked with that mode"
            ))
            .expected(format!("{mode:o}"))
            .seen(format!("{seen:o}"))
        })?;
    }
    // What may stand where a file goes is replaced, never written through.
    let dest = dir.path().join("replace");
    let fine = raw_tar(&[
        ("s", SYM, &victim, ""),
        ("s", FILE, "", "mine\n"),
        ("a/", DIR, "", ""),
        ("a/f", FILE, "", "f\n"),
        ("a/g", HARD, "a/f", ""),
        ("x/y/z", FILE, "", "deep\n"),
    ]);
    unpack(&fine, &dest)?.map_err(|e| {
        Fail::new("unpacking a symlink then a file of the same name, a hard link inside, a file with missing parents should be Ok")
            .seen(format!("{e:#}"))
    })?;
    expect_eq(
        "outside/ after a symlink to outside/victim was replaced by a file",
        &before,
        &fingerprint(&outside)?,
    )?;
    let s = std::fs::symlink_metadata(dest.join("s"))
        .map_err(|e| Fail::new("s should exist").seen(e))?;
    expect_eq(
        "`s` (a symlink, then a file): a regular file with the file's data",
        (true, "mine\n".to_string()),
        (
            s.is_file(),
            std::fs::read_to_string(dest.join("s")).unwrap_or_default(),
        ),
    )?;
    let (f, g) = (
        std::fs::metadata(dest.join("a/f")).map_err(|e| Fail::new("a/f should exist").seen(e))?,
        std::fs::metadata(dest.join("a/g")).map_err(|e| Fail::new("a/g should exist").seen(e))?,
    );
    expect_eq("a/g, a hard link to a/f: the same inode", f.ino(), g.ino())?;
    expect_eq(
        "x/y/z, whose parents the tar never named",
        "deep\n".to_string(),
        std::fs::read_to_string(dest.join("x/y/z")).unwrap_or_default(),
    )?;
    // A hard link names a file the layer already has: its target's
    // directories are looked up, never made.
    let dest = dir.path().join("dangling");
    let result = unpack(&raw_tar(&[("h", HARD, "nothere/x", "")]), &dest)?;
    let made = dest.join("nothere").exists();
    ensure(result.is_err() && !made, || {
        Fail::new(
            "a hard link to `nothere/x`, which the layer lacks: an error, and no `nothere` made",
        )
        .seen(format!(
            "{}; nothere {}",
            if result.is_ok() { "Ok" } else { "an error" },
            if made { "made" } else { "not made" }
        ))
    })?;
    // A hard link's target must be a regular file: not a symlink (even one
    // inside), not a directory.
    for (what, entries) in [
        (
            "a symlink `s` -> f, then a hard link to `s`",
            vec![
                ("f", FILE, "", "f\n"),
                ("s", SYM, "f", ""),
                ("h", HARD, "s", ""),
            ],
        ),
        (
            "a dir `d/`, then a hard link to `d`",
            vec![("d/", DIR, "", ""), ("h", HARD, "d", "")],
        ),
    ] {
        let dest = dir.path().join("linked");
        let _ = std::fs::remove_dir_all(&dest);
        let result = unpack(&raw_tar(&entries), &dest)?;
        ensure(result.is_err(), || {
            Fail::new(format!(
                "{what}: an error (a hard link names a regular file of the layer)"
            ))
            .seen("Ok")
        })?;
    }
    // A file where a directory should be.
    let dest = dir.path().join("filed");
    let result = unpack(
        &raw_tar(&[
            ("p", FILE, "", "a file\n"),
            ("p/q", FILE, "", "below a file\n"),
        ]),
        &dest,
    )?;
    ensure(result.is_err(), || {
        Fail::new("a file `p`, then `p/q`: an error (p is no directory)").seen("Ok")
    })
}

fn unpacking_restores_whiteouts(ctx: &Ctx) -> Outcome {
    use tar::EntryType::{Directory as DIR, Regular as FILE};
    let dir = ctx.temp_dir();
    let dest = dir.path().join("box/dest");
    let tar = raw_tar(&[
        ("gone", FILE, "", "soon gone\n"),
        ("d/", DIR, "", ""),
        ("d/old", FILE, "", "old\n"),
        (".wh.gone", FILE, "", ""),
        ("d/.wh..wh..opq", FILE, "", ""),
        ("e/", DIR, "", ""),
        ("e/.wh.x", FILE, "", ""),
    ]);
    unpack(&tar, &dest)?.map_err(|e| {
        Fail::new("unpacking a layer with OCI whiteouts should be Ok").seen(format!("{e:#}"))
    })?;
    expect_eq(
        "gone (a file, then .wh.gone) and e/x (.wh.x): overlayfs whiteouts (c 0 0)",
        (true, true),
        (
            is_whiteout_file(&dest.join("gone")),
            is_whiteout_file(&dest.join("e/x")),
        ),
    )?;
    expect_eq(
        "d (with d/.wh..wh..opq): xattr trusted.overlay.opaque",
        Some(b"y".to_vec()),
        opaque_value(&dest.join("d")),
    )?;
    ensure(
        !dest.join(".wh.gone").exists() && !dest.join("e/.wh.x").exists(),
        || {
            Fail::new("the .wh. markers themselves should not be unpacked as files")
                .seen("a .wh. file in the layer dir")
        },
    )?;
    for bad in [".wh..", ".wh.", ".wh..."] {
        let target = dir.path().join(format!("box/bad{}", bad.len()));
        let result = unpack(
            &raw_tar(&[("keep", FILE, "", "k\n"), (bad, FILE, "", "")]),
            &target,
        )?;
        ensure(result.is_err() && target.join("keep").is_file(), || {
            Fail::new(format!("a marker `{bad}` (a whiteout of the layer dir itself or its parent) should be refused, the rest kept"))
                .seen(format!("{}, keep {}", if result.is_ok() { "Ok" } else { "an error" }, if target.join("keep").is_file() { "still there" } else { "gone" }))
        })?;
    }
    Ok(())
}

fn a_step_is_committed_once(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let root = dir.path().join("root");
    let store = call("Store::open (it makes the store's private dirs)", || {
        step04::store::Store::open(&root)
    })?
    .map_err(|e| Fail::new("the store should open").seen(format!("{e:#}")))?;
    let make = |name: &str, text: &str| -> Result<PathBuf, Fail> {
        let tree = dir.path().join(name);
        write(&tree.join("etc/conf"), text)?;
        write(&tree.join("hello"), "hello\n")?;
        mknod_char(&tree.join("gone"), 0, 0)?;
        Ok(tree)
    };
    let tree = make("upper", "a=1\n")?;
    let commit = |tree: &Path| {
        call("commit_layer", || {
            step04::commit::commit_layer(&store, tree, EPOCH)
        })?
        .map_err(|e| Fail::new("commit_layer of an upper dir should be Ok").seen(format!("{e:#}")))
    };
    let diff_id = commit(&tree)?.to_string();
    let layer = root
        .join("layers/sha256")
        .join(diff_id.trim_start_matches("sha256:"));
    expect_eq(
        "the diff_id returned: the sha256 of layers/sha256/<hex>/layer.tar (recomputed here)",
        diff_id.clone(),
        sha256_of_file(&layer.join("layer.tar"))?,
    )?;
    let names: Vec<String> = tar_names(&layer.join("layer.tar"))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    expect_eq(
        "the entries of layer.tar: the tree committed, the whiteout as .wh.gone",
        vec![".wh.gone", "etc/", "etc/conf", "hello"],
        names.iter().map(String::as_str).collect(),
    )?;
    expect_eq(
        "diff/: the layer unpacked (hello, etc/conf, gone as c 0 0)",
        ("hello\n".to_string(), "a=1\n".to_string(), true),
        (
            std::fs::read_to_string(layer.join("diff/hello")).unwrap_or_default(),
            std::fs::read_to_string(layer.join("diff/etc/conf")).unwrap_or_default(),
            is_whiteout_file(&layer.join("diff/gone")),
        ),
    )?;
    let again = commit(&make("again", "a=1\n")?)?.to_string();
    expect_eq(
        "the diff_id of the same tree committed again",
        diff_id.clone(),
        again,
    )?;
    // Two builds at once, the same new layer.
    let other = make("other", "a=2\n")?;
    let both: Vec<Result<String, Fail>> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| commit(&other).map(|d| d.to_string())))
            .collect();
        runs.into_iter()
            .map(|r| {
                r.join().unwrap_or_else(|_| {
                    Err(Fail::new("commit_layer should return").seen("it panicked"))
                })
            })
            .collect()
    });
    let both: Vec<String> = both.into_iter().collect::<Result<_, _>>()?;
    ensure(both[0] == both[1], || {
        Fail::new("two commits of one tree at once: one diff_id").seen(format!("{both:?}"))
    })?;
    let stored = std::fs::read_dir(root.join("layers/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    expect_eq(
        "layers in the store after four commits of two trees",
        2,
        stored,
    )?;
    let left: Vec<String> = std::fs::read_dir(root.join("tmp"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    expect_eq(
        "what the commits left in tmp/ (staging)",
        Vec::<String>::new(),
        left,
    )
}

fn the_config_records_each_step(_ctx: &Ctx) -> Outcome {
    use step04::digest::of_bytes;
    let mut image = step04::image::ImageConfig::default();
    let (one, two) = (of_bytes(b"one"), of_bytes(b"two"));
    call("record_step", || {
        step04::commit::record_step(&mut image, "ENV A=1", None, EPOCH);
        step04::commit::record_step(&mut image, "RUN make", Some(one.clone()), EPOCH);
        step04::commit::record_step(&mut image, "CMD [\"sh\"]", None, EPOCH);
        step04::commit::record_step(&mut image, "COPY . /app", Some(two.clone()), EPOCH);
    })?;
    expect_eq(
        "rootfs.diff_ids after ENV, RUN (layer one), CMD, COPY (layer two)",
        vec![one.to_string(), two.to_string()],
        image
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.to_string())
            .collect(),
    )?;
    let created = step04::image::rfc3339(EPOCH);
    let expected: Vec<(String, String, bool)> = [
        ("ENV A=1", true),
        ("RUN make", false),
        ("CMD [\"sh\"]", true),
        ("COPY . /app", false),
    ]
    .into_iter()
    .map(|(by, empty)| (created.clone(), by.to_string(), empty))
    .collect();
    expect_eq(
        "history: (created, created_by, empty_layer) per step",
        expected,
        image
            .history
            .iter()
            .map(|h| (h.created.clone(), h.created_by.clone(), h.empty_layer))
            .collect(),
    )
}

fn cache_keys_cover_their_inputs(_ctx: &Ctx) -> Outcome {
    use step04::cache_key::cache_key;
    use step04::digest::of_bytes;
    let (parent, files) = (of_bytes(b"parent"), of_bytes(b"files"));
    let key = |parent: &step04::digest::Digest,
               text: &str,
               copied: Option<&step04::digest::Digest>,
               epoch: u64| {
        call("cache_key", || cache_key(parent, text, copied, epoch)).map(|k| k.to_string())
    };
    let base = key(&parent, "COPY a /a", Some(&files), 0)?;
    expect_eq(
        "the key of the same step, asked twice",
        base.clone(),
        key(&parent, "COPY a /a", Some(&files), 0)?,
    )?;
    ensure(base.starts_with("sha256:") && base.len() == 71, || {
        Fail::new("a key should be a sha256 digest").seen(&base)
    })?;
    let variants = [
        (
            "another parent",
            key(&of_bytes(b"other"), "COPY a /a", Some(&files), 0)?,
        ),
        (
            "another instruction",
            key(&parent, "COPY a /b", Some(&files), 0)?,
        ),
        (
            "other files copied",
            key(&parent, "COPY a /a", Some(&of_bytes(b"changed")), 0)?,
        ),
        ("no files copied", key(&parent, "COPY a /a", None, 0)?),
        ("another epoch", key(&parent, "COPY a /a", Some(&files), 1)?),
    ];
    for (what, other) in variants {
        ensure(other != base, || {
            Fail::new(format!("the key of a step with {what} should differ"))
                .seen(format!("both {base}"))
        })?;
    }
    // Pairs of inputs whose parts, laid end to end in some order, give the
    // same text: each pair is two different steps.
    let glued = format!("COPY a /a{files}");
    let glued_first = format!("{files}COPY a /a");
    let pairs = [
        (
            "(instruction \"0 COPY a /a\", epoch 1) and (instruction \" COPY a /a\", epoch 10)",
            key(&parent, "0 COPY a /a", Some(&files), 1)?,
            key(&parent, " COPY a /a", Some(&files), 10)?,
        ),
        (
            "(instruction \"COPY a /a1\", epoch 0) and (instruction \"COPY a /a\", epoch 10)",
            key(&parent, "COPY a /a1", Some(&files), 0)?,
            key(&parent, "COPY a /a", Some(&files), 10)?,
        ),
        (
            "(instruction \"COPY a /a\", files F) and (instruction \"COPY a /aF\", no files), F the files' digest",
            key(&parent, "COPY a /a", Some(&files), 0)?,
            key(&parent, &glued, None, 0)?,
        ),
        (
            "(instruction \"COPY a /a\", files F) and (instruction \"FCOPY a /a\", no files), F the files' digest",
            key(&parent, "COPY a /a", Some(&files), 0)?,
            key(&parent, &glued_first, None, 0)?,
        ),
    ];
    for (what, one, other) in pairs {
        ensure(one != other, || {
            Fail::new(format!("the keys of the steps {what} should differ"))
                .expected("two different keys")
                .seen(format!("both {one}"))
        })?;
    }
    Ok(())
}

fn overlay_options_describe_the_stack(_ctx: &Ctx) -> Outcome {
    let overlay = |volatile| step04::overlay::Overlay {
        lower: vec![
            PathBuf::from("/l/top"),
            PathBuf::from("/l/mid"),
            PathBuf::from("/l/bottom"),
        ],
        upper: PathBuf::from("/c/upper"),
        work: PathBuf::from("/c/work"),
        volatile,
    };
    for volatile in [false, true] {
        let text = call("Overlay::options", || overlay(volatile).options())?;
        let mut seen: Vec<&str> = text.split(',').collect();
        seen.sort();
        let mut expected = vec![
            "lowerdir=/l/top:/l/mid:/l/bottom",
            "redirect_dir=off",
            "upperdir=/c/upper",
            "workdir=/c/work",
        ];
        if volatile {
            expected.push("volatile");
        }
        expected.sort();
        expect_eq(
            &format!("the options of three layers (top first), volatile {volatile}, in any order"),
            expected,
            seen,
        )?;
    }
    Ok(())
}

const MOUNT_HELPER: &str = "GRADE04_OVERLAY_MOUNT";

/// In a child of the grader (single-threaded, at the start of main): a
/// mount namespace of its own, the learner's overlay mount, what it shows.
fn overlay_mount_helper(spec: &str) -> ! {
    use nix::mount::{mount, MsFlags};
    let parts: Vec<&str> = spec.split('\n').collect();
    let [top, bottom, upper, work, merged] = parts[..] else {
        std::process::exit(2)
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        println!("error={what}: {e}");
        std::process::exit(1)
    };
    // unshare(2): the mount vanishes with this process; / made private
    // first so nothing propagates to the host.
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
        fail("unshare", &e)
    }
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        fail("make / private", &e)
    }
    let overlay = step04::overlay::Overlay {
        lower: vec![PathBuf::from(top), PathBuf::from(bottom)],
        upper: PathBuf::from(upper),
        work: PathBuf::from(work),
        volatile: false,
    };
    if let Err(e) = overlay.mount(Path::new(merged)) {
        fail("mount", &e)
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.get(4) == Some(&merged) {
            let after = line.split(" - ").nth(1).unwrap_or("");
            println!("fstype={}", after.split(' ').next().unwrap_or(""));
        }
    }
    let merged = Path::new(merged);
    println!(
        "f={}",
        std::fs::read_to_string(merged.join("f"))
            .unwrap_or_default()
            .trim()
    );
    println!(
        "only1={}",
        std::fs::read_to_string(merged.join("only1"))
            .unwrap_or_default()
            .trim()
    );
    let _ = std::fs::write(merged.join("new"), "new\n");
    let _ = std::fs::remove_file(merged.join("only1"));
    std::process::exit(0)
}

fn store_dirs_are_made_private(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let d = dir.path();
    let private = |what: &str, root: &Path, dirs: &[&str]| -> Result<Result<(), String>, Fail> {
        let (root, dirs) = (root.to_path_buf(), dirs.to_vec());
        Ok(call(what, move || {
            step04::private_dirs::private_dirs(&root, &dirs)
        })?
        .map_err(|e| format!("{e:#}")))
    };
    // A store under parents that don't exist yet.
    let root = d.join("missing/parents/store");
    private("private_dirs", &root, &["layers", "containers"])?.map_err(|e| {
        Fail::new("private_dirs of a store whose parents don't exist yet should be Ok (mkdir -p)")
            .seen(e)
    })?;
    let seen = |path: &Path| match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => format!("dir {:o}", m.mode() & 0o7777),
        Ok(m) if m.file_type().is_symlink() => "a symlink".to_string(),
        Ok(_) => "not a dir".to_string(),
        Err(_) => "missing".to_string(),
    };
    expect_eq(
        "after private_dirs(.../store, [layers, containers]): store, store/layers, store/containers",
        ("dir 700".to_string(), "dir 700".to_string(), "dir 700".to_string()),
        (seen(&root), seen(&root.join("layers")), seen(&root.join("containers"))),
    )?;
    // A store made open before (chmod -R go+rX) is closed again.
    let old = d.join("old");
    std::fs::create_dir_all(old.join("layers/sha256")).map_err(setup("mkdir"))?;
    for path in [old.join("layers"), old.join("layers/sha256")] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(setup("chmod"))?;
    }
    private("private_dirs", &old, &["layers", "tmp"])?
        .map_err(|e| Fail::new("private_dirs of a store made open before should be Ok").seen(e))?;
    expect_eq(
        "an open store opened again: layers (found 0755), tmp (missing), and the store itself (a dir of yours: its mode left be)",
        ("dir 700".to_string(), "dir 700".to_string(), "dir 755".to_string()),
        (seen(&old.join("layers")), seen(&old.join("tmp")), seen(&old)),
    )?;
    // A store dir that is a symlink, to a dir of ours outside: refused,
    // and nothing done to where it points.
    let linked = d.join("linked");
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir_all(&linked).map_err(setup("mkdir"))?;
    std::fs::create_dir(&elsewhere).map_err(setup("mkdir"))?;
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755))
        .map_err(setup("chmod"))?;
    std::os::unix::fs::symlink(&elsewhere, linked.join("layers")).map_err(setup("symlink"))?;
    let result = private("private_dirs", &linked, &["layers"])?;
    ensure(result.is_err() && mode_of(&elsewhere) == 0o755, || {
        Fail::new("a store dir that is a symlink (layers -> a dir outside) is an error, and where it points is left as it was")
            .expected("an error; the dir outside still 755")
            .seen(format!("{result:?}; the dir outside {:o}", mode_of(&elsewhere)))
    })?;
    // A store dir that is a file.
    let filed = d.join("filed");
    std::fs::create_dir(&filed).map_err(setup("mkdir"))?;
    write(&filed.join("layers"), "")?;
    let result = private("private_dirs", &filed, &["layers"])?;
    ensure(result.is_err(), || {
        Fail::new("a store dir that is a file is an error").seen(format!("{result:?}"))
    })?;
    // A store, or one of its dirs, of another user's.
    let theirs = d.join("theirs");
    std::fs::create_dir(&theirs).map_err(setup("mkdir"))?;
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).map_err(setup("chown"))?;
    let result = private("private_dirs", &theirs, &["layers"])?;
    ensure(result.is_err(), || {
        Fail::new("a store root of another user's (uid 65534) is refused: its owner could swap what is in it")
            .seen(format!("{result:?}"))
    })?;
    let inner = d.join("inner");
    std::fs::create_dir_all(inner.join("layers")).map_err(setup("mkdir"))?;
    std::os::unix::fs::chown(inner.join("layers"), Some(65534), Some(65534))
        .map_err(setup("chown"))?;
    let result = private("private_dirs", &inner, &["layers"])?;
    ensure(result.is_err(), || {
        Fail::new("a store dir of another user's (uid 65534) is refused")
            .seen(format!("{result:?}"))
    })
}

fn the_overlay_mount_is_the_kernels(ctx: &Ctx) -> Outcome {
    let dir = ctx.temp_dir();
    let d = dir.path();
    write(&d.join("bottom/f"), "bottom\n")?;
    write(&d.join("bottom/only1"), "only in the bottom layer\n")?;
    write(&d.join("top/f"), "top\n")?;
    for sub in ["upper", "work", "merged"] {
        std::fs::create_dir_all(d.join(sub)).map_err(setup("mkdir"))?;
    }
    let spec = ["top", "bottom", "upper", "work", "merged"]
        .map(|s| d.join(s).to_string_lossy().into_owned())
        .join("\n");
    let me = std::env::current_exe().map_err(setup("current_exe"))?;
    let out = std::process::Command::new(me)
        .env(MOUNT_HELPER, spec)
        .output()
        .map_err(setup("run the mount helper"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let panic = String::from_utf8_lossy(&out.stderr);
    if let Some(todo) = panic
        .lines()
        .find_map(|l| l.strip_prefix("not yet implemented: "))
    {
        return Err(
            Fail::new("Overlay::mount should return").seen(format!("not written yet: {todo}"))
        );
    }
    expect_eq(
        "in a mount namespace of the grader's: the mount's type in mountinfo, then merged/f (top layer wins) and merged/only1 (from below)",
        "fstype=overlay\nf=top\nonly1=only in the bottom layer\n".to_string(),
        text.clone(),
    )?;
    expect_eq(
        "after writing merged/new and removing merged/only1: upper/new, upper/only1 a whiteout, bottom/only1 still there",
        (true, true, true),
        (
            d.join("upper/new").is_file(),
            is_whiteout_file(&d.join("upper/only1")),
            d.join("bottom/only1").is_file(),
        ),
    )
}
