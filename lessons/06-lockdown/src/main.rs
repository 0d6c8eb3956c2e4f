//! `minibox`, the finished runtime: images, containers and networks, locked
//! down.

fn main() {
    std::process::exit(step06::cli::main());
}
