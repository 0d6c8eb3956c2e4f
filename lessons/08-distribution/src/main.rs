//! `minibox`, the finished runtime: images, containers, networks across
//! hosts, locked down, and images that leave and enter the store.

fn main() {
    std::process::exit(step08::cli::main());
}
