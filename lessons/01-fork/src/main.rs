//! `minibox` as it stands after step 01: `run [-e K=V]... [-w DIR] -- CMD [ARGS...]`.
//! All the work is in the library; this file only hands over the exit code.

fn main() {
    std::process::exit(step01::cli::main());
}
