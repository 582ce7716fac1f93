//! `wedged`: the wedge container manager daemon (its command line: `wedge_daemon::command`).

fn main() {
    wedge_daemon::command::main();
}
