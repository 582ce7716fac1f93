//! Prints a greeting: the smallest real app.
fn main() {
    println!("hello from wedge");
}
