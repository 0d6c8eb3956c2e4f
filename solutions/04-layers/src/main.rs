//! `minibox` as it stands after step 04: `run IMAGE`, `build`, `import`,
//! `images`, `inspect`, `history`, `rmi`.

fn main() {
    std::process::exit(step04::cli::main());
}
