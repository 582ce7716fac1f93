//! One module per command, each with an `execute` that returns the process exit code.

mod compile;
mod image;
mod inspect;
mod registry;
mod run;
mod source;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn execute(cli: Cli) -> anyhow::Result<i32> {
    let root = crate::root::data_root(cli.root);
    match cli.command {
        Command::Run(args) => run::execute(&root, args),
        Command::Inspect(args) => inspect::execute(args),
        Command::Compile(args) => compile::execute(args),
        Command::Build(args) => image::build(&root, args),
        Command::Images(args) => image::list(&root, args),
        Command::Image(command) => image::image(&root, command),
        Command::Tag(args) => image::tag(&root, args),
        Command::Rmi(args) => image::rmi(&root, args),
        Command::Push(args) => registry::push(&root, args),
        Command::Pull(args) => registry::pull(&root, args),
        Command::Login(args) => registry::login(&root, args),
        Command::Logout(args) => registry::logout(&root, args),
        Command::Save(args) => image::save(&root, args),
        Command::Load(args) => image::load(&root, args),
    }
}
