//! `minibox` as it stands after step 03: `run --rootfs DIR` with a root
//! filesystem of its own.

fn main() {
    std::process::exit(step03::cli::main());
}
