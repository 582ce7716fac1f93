//! `wedge run`: run an app in-process with the granted capabilities and limits.

use super::source::Source;
use crate::cli::{LaunchArgs, RunArgs, TierUpArgs};
use crate::root;
use std::path::Path;
use wedge_runtime::{
    App, BACKGROUND_NICE, BusLimits, CodeCache, Engine, EngineKind, EngineOptions, HostServices,
    KvStore, MessageBus, NnModels, Outcome, Policy, Prepared, Stdio, Tiering,
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
    // Epoch checks only where something may interrupt a run: a time limit, a server's
    // per-request limits. Without them code compiles and runs faster.
    let options = EngineOptions {
        kind: args.engine.unwrap_or_default(),
        fuel: policy.fuel.is_some(),
        target: None,
        pooling,
        epochs: policy.timeout.is_some() || pooling.is_some(),
    };
    // A first run of a big app starts on the baseline compiler's code, unless a
    // compiler was named; a server (pooling) keeps its code, so it gets Cranelift's.
    let tiering = if args.engine.is_none() && pooling.is_none() {
        Tiering::BaselineFirst
    } else {
        Tiering::Off
    };
    // An image pulled just now was compiled with default settings: reuse that (its
    // epoch checks serve a run without), unless it is the baseline compiler's code and
    // a compiler was named.
    let wasm = &source.app.wasm;
    let layer = source.app.image.as_ref().map(|image| image.layer.hex());
    let defaults = EngineOptions {
        epochs: true,
        ..options.clone()
    } == EngineOptions::default();
    let app = match (source.pulled, layer) {
        (Some(app), _)
            if defaults && (tiering == Tiering::BaselineFirst || !app.tier_up_pending()) =>
        {
            app
        }
        (_, Some(layer)) => App::open_layer(options.clone(), wasm, layer, cache.as_ref(), tiering)?,
        _ => App::open(options.clone(), wasm, cache.as_ref(), tiering)?,
    };
    if app.tier_up_pending() {
        tier_up_in_background(root, &app.path, layer, app.engine());
    }
    note_if_on_pulley(&app, options.kind);
    Ok((app, policy))
}

/// Has Cranelift's code for the app at `path` (an image's `layer`), for an engine with
/// `engine`'s fuel and epoch settings, made for the code cache by a `wedge tier-up` in
/// the background, so that the runs after this one find it. This process does not
/// wait for it; if it cannot start, the next run starts on the baseline code again and
/// tries again.
pub(super) fn tier_up_in_background(
    root: &Path,
    path: &Path,
    layer: Option<&str>,
    engine: &Engine,
) {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let Ok(wedge) = std::env::current_exe() else {
        return;
    };
    let mut command = Command::new(wedge);
    command.arg("--root").arg(root).arg("tier-up");
    if engine.options().fuel {
        command.arg("--fuel");
    }
    if !engine.options().epochs {
        command.arg("--no-epochs");
    }
    if let Some(layer) = layer {
        command.args(["--layer", layer]);
    }
    command
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C meant for the app leaves it compiling.
        .process_group(0);
    if let Ok(mut child) = command.spawn() {
        // Reaped when it ends, should this process still run then.
        std::thread::spawn(move || child.wait());
    }
}

/// `wedge tier-up`: compiles an app with Cranelift into the code cache, at low priority.
/// One at a time per app: another started meanwhile (by a run before this one ends)
/// leaves at once.
pub fn tier_up(root: &Path, args: TierUpArgs) -> anyhow::Result<i32> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    use std::os::fd::AsRawFd;
    // SAFETY: lowers this process's own priority; no memory is involved.
    unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, BACKGROUND_NICE) };
    let dir = root::code_cache_dir(root);
    let locks = dir.with_file_name("tier-up");
    std::fs::create_dir_all(&locks)?;
    let mut app = DefaultHasher::new();
    (&args.app, &args.layer, args.fuel, args.no_epochs).hash(&mut app);
    let lock = locks.join(format!("{:016x}.lock", app.finish()));
    let file = std::fs::File::create(&lock)?;
    // SAFETY: flock on a descriptor this function owns, released when it is closed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(0);
    }
    let cache = CodeCache::new(dir);
    let options = EngineOptions {
        fuel: args.fuel,
        epochs: !args.no_epochs,
        ..EngineOptions::default()
    };
    match &args.layer {
        Some(layer) => App::open_layer(options, &args.app, layer, Some(&cache), Tiering::Off)?,
        None => App::open(options, &args.app, Some(&cache), Tiering::Off)?,
    };
    let _ = std::fs::remove_file(&lock);
    Ok(0)
}

/// Says so when `app` runs on Pulley because the `asked` compiler crashed on it.
pub(super) fn note_if_on_pulley(app: &App, asked: EngineKind) {
    if app.engine().options().kind == EngineKind::Pulley && asked != EngineKind::Pulley {
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
