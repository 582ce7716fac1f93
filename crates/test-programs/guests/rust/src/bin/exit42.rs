//! Exits with status 42.
fn main() {
    println!("exiting with 42");
    std::process::exit(42);
}
