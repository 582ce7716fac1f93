//! One module per command, each with an `execute` that returns the process exit code.

#[cfg(feature = "compiler")]
mod build;
mod compile;
mod container;
mod daemon_client;
mod file;
mod image;
mod inspect;
#[cfg(feature = "compiler")]
mod micro;
mod output;
mod registry;
mod run;
#[cfg(feature = "serve")]
mod serve;
mod source;

#[cfg(feature = "compiler")]
use crate::cli::MicroCommand;
use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn execute(cli: Cli) -> anyhow::Result<i32> {
    let root = crate::root::data_root(cli.root);
    let host = cli.host.as_deref();
    daemon_client::set_tls_ca(cli.tls_ca);
    match cli.command {
        Command::Run(args) if args.detach => container::run_detached(host, args.launch),
        Command::Run(args) => run::execute(&root, args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::execute(&root, args),
        #[cfg(not(feature = "serve"))]
        Command::Serve(_) => anyhow::bail!(
            "this wedge is built without the HTTP server (Cargo feature `serve`, \
             docs/edge.md): `wedge serve` is not available"
        ),
        Command::Create(args) => container::create(host, args),
        Command::Start(args) => container::start(host, args),
        Command::Stop(args) => container::stop(host, args),
        Command::Kill(args) => container::kill(host, args),
        Command::Restart(args) => container::restart(host, args),
        Command::Rm(args) => container::rm(host, args),
        Command::Pause(args) => container::pause(host, args),
        Command::Unpause(args) => container::unpause(host, args),
        Command::Wait(args) => container::wait(host, args),
        Command::Ps(args) => container::ps(host, args),
        Command::Logs(args) => container::logs(host, args),
        Command::Stats(args) => container::stats(host, args),
        Command::Events(args) => container::events(host, args),
        Command::Inspect(args) => inspect::execute(&root, host, args),
        Command::Compile(args) => compile::execute(args),
        #[cfg(feature = "compiler")]
        Command::Build(args) => build::execute(&root, args),
        #[cfg(not(feature = "compiler"))]
        Command::Build(_) => anyhow::bail!(
            "this wedge was built without a compiler (a device build): `wedge build` \
             validates and componentizes, so build images on a build machine"
        ),
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
        #[cfg(feature = "compiler")]
        Command::Micro(MicroCommand::Bundle(args)) => micro::bundle(&root, args),
        #[cfg(not(feature = "compiler"))]
        Command::Micro(_) => anyhow::bail!(
            "this wedge was built without a compiler (a device build): make bundles for \
             microcontrollers on a build machine"
        ),
        Command::TierUp(args) => run::tier_up(&root, args),
    }
}
