//! Prints the wall-clock time, in nanoseconds since the Unix epoch, as its first act:
//! `bench/containerd.sh` measures from asking a runtime to start a container to the
//! app's first instruction with it.
fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    println!("{now}");
}
