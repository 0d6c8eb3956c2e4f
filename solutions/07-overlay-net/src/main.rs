//! `minibox` as step 07 leaves it: images, containers, networks across
//! hosts, locked down.

fn main() {
    std::process::exit(step07::cli::main());
}
