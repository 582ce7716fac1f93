//! Allocates memory 1 MiB at a time, touching every page, until told to stop
//! (`memhog MIB`, default: forever) or the allocation fails.
fn main() {
    let limit: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(usize::MAX);
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    while chunks.len() < limit {
        chunks.push(vec![1u8; 1 << 20]);
        if chunks.len() % 16 == 0 {
            println!("allocated {} MiB", chunks.len());
        }
    }
    println!("done: {} MiB", chunks.len());
}
