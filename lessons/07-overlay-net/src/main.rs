//! `minibox`, the finished runtime: images, containers, networks across
//! hosts, locked down.

fn main() {
    std::process::exit(step07::cli::main());
}
