//! `wedge run`: run an app in-process with the granted capabilities and limits.

use super::source::Source;
use crate::cli::{LaunchArgs, RunArgs};
use crate::root;
use std::path::Path;
use wedge_runtime::{
    App, BusLimits, CodeCache, EngineKind, EngineOptions, HostServices, KvStore, MessageBus,
    NnModels, Outcome, Policy, Prepared, Stdio,
};

/// Runs the app and returns the exit code: the guest's status, or 124 / 134 when a
/// limit or a trap ended it.
pub fn execute(root: &Path, args: RunArgs) -> anyhow::Result<i32> {
    if args.launch.body_timeout.is_some() {
        anyhow::bail!("`--body-timeout` is for HTTP apps: `wedge serve`, or `-d` with `-p`");
    }
    let (app, policy) = load(root, args.launch, args.no_cache, None)?;
    let prepared = Prepared::new(&app)?;
    if prepared.is_push_handler() {
        anyhow::bail!(
            "`{}` is a push handler (it exports `wedge:edge/handler`): it receives messages \
             from other apps, so run it in the daemon with `wedge run -d --allow-subscribe \
             FILTER`",
            prepared.path().display()
        );
    }
    let outcome = prepared.run_before_exit(&policy, Stdio::Inherit)?;
    Ok(report(outcome))
}

/// Opens the app a foreground command (`run`, `serve`) names and resolves what it is
/// granted: manifest or image requests, overlaid by the operator's flags. `pooling`
/// sizes the engine's instance pool for a server.
pub(crate) fn load(
    root: &Path,
    args: LaunchArgs,
    no_cache: bool,
    pooling: Option<u32>,
) -> anyhow::Result<(App, Policy)> {
    if args.name.is_some() {
        anyhow::bail!("`--name` needs `-d`: only containers of the daemon have names");
    }
    if args.restart.is_some() {
        anyhow::bail!("`--restart` needs `-d`: only the daemon restarts containers");
    }
    if args.port.is_some() {
        anyhow::bail!(
            "`-p` needs `-d`: in the foreground, serve an HTTP app with `wedge serve --listen`"
        );
    }
    let source = Source::open_or_image(&args.app, root)?;
    let flags = args.grants.grants();
    let launch = source.app.launch(flags, args.grant_requested, args.args);
    // Without a daemon, an app's messages reach only its own subscriptions.
    let host = HostServices {
        keyvalue: &|| KvStore::open(&root::keyvalue_db(root)),
        bus: &|| MessageBus::new(BusLimits::default()),
        nn_models: &NnModels::default(),
    };
    let policy = Policy::grant(&launch.grants, launch.argv, &launch.kv_namespace, &host)?;

    let cache = (!no_cache).then(|| CodeCache::new(root::code_cache_dir(root)));
    let options = EngineOptions {
        kind: args.engine,
        fuel: policy.fuel.is_some(),
        target: None,
        pooling,
    };
    // An image pulled just now was compiled with default settings: reuse that.
    let wasm = &source.app.wasm;
    let app = match (source.pulled, &source.app.image) {
        (Some(app), _) if options == EngineOptions::default() => app,
        (_, Some(image)) => {
            App::open_layer(options.clone(), wasm, image.layer.hex(), cache.as_ref())?
        }
        _ => App::open(options.clone(), wasm, cache.as_ref())?,
    };
    note_if_on_pulley(&app, options.kind);
    Ok((app, policy))
}

/// Says so when `app` runs on Pulley because the `asked` compiler crashed on it.
pub(super) fn note_if_on_pulley(app: &App, asked: EngineKind) {
    if app.engine().options().kind != asked {
        eprintln!(
            "wedge: note: the {asked} compiler failed on this app (a wasmtime bug on this \
             machine); it runs on the Pulley interpreter"
        );
    }
}

/// Prints what ended the run and picks the exit code.
fn report(outcome: Outcome) -> i32 {
    if let Some(text) = outcome.diagnostic() {
        eprintln!("{text}");
    }
    outcome.exit_code()
}
