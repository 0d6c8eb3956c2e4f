//! `minibox`, the finished runtime: images, containers and networks.

fn main() {
    std::process::exit(step05::cli::main());
}
