//! Echoes its arguments (`arg[i]=...`) and its environment (`env KEY=VALUE`, sorted).
fn main() {
    for (i, arg) in std::env::args().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let mut vars: Vec<_> = std::env::vars().collect();
    vars.sort();
    for (k, v) in vars {
        println!("env {k}={v}");
    }
}
