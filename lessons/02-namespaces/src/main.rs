//! `minibox` as it stands after step 02: `run` with namespaces.

fn main() {
    std::process::exit(step02::cli::main());
}
