//! `wedge serve`: serve a `wasi:http` component in the foreground until SIGTERM or
//! Ctrl-C, then drain.

use crate::cli::ServeArgs;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use wedge_runtime::{
    Control, DEFAULT_BODY_TIMEOUT, HttpApp, RequestLimits, RuntimeError, SharedOutput,
};
use wedge_serve::{AccessLog, HttpMetrics, ServeConfig, Server};

/// Instances kept beyond `--max-concurrency` in the pool: requests whose response was
/// sent but whose instance is still finishing.
const POOL_SLACK: u32 = 16;

/// Serves the app; returns 0 after a clean shutdown.
pub fn execute(root: &Path, args: ServeArgs) -> anyhow::Result<i32> {
    let body_timeout = args.launch.body_timeout;
    let config = ServeConfig {
        listen: args.listen,
        max_concurrency: args.max_concurrency as usize,
        queue: args.queue as usize,
        queue_timeout: args.queue_timeout.0,
        max_header_size: usize::try_from(args.max_header_size.0).unwrap_or(usize::MAX),
        max_connections: args.max_connections as usize,
        tls: args.tls_cert.zip(args.tls_key),
        grace: args.grace.0,
        reuse_port: args.reuse_port,
    };
    config.validate()?;
    let access_log = access_log(&args.access_log)?;
    let pool = args.max_concurrency.saturating_add(POOL_SLACK);
    let (app, policy) =
        super::run::load(root, args.launch, args.no_cache, Some(pool)).map_err(|e| {
            match e.downcast_ref::<RuntimeError>() {
                Some(RuntimeError::Engine(_)) => e.context(format!(
                    "cannot reserve an instance pool for `--max-concurrency {}` (lower it)",
                    args.max_concurrency
                )),
                _ => e,
            }
        })?;
    let app = HttpApp::new(
        &app,
        policy,
        SharedOutput::Inherit,
        RequestLimits {
            body_timeout: body_timeout.map_or(DEFAULT_BODY_TIMEOUT, |t| t.0),
            ..RequestLimits::new(args.max_body.0)
        },
    )?;
    let runtime = match args.threads {
        0 => anyhow::bail!("`--threads` must be at least 1"),
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n as usize)
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let metrics = Arc::new(HttpMetrics::default());
        let server = Server::bind(
            Arc::new(app),
            config.clone(),
            access_log,
            metrics.clone(),
            Control::new(),
        )
        .await?;
        let metrics_listener = match args.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on `{addr}` for metrics"))?,
            ),
            None => None,
        };
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!("wedge: serving on {scheme}://{}/", server.local_addr());
        if let Some(listener) = metrics_listener {
            if let Ok(addr) = listener.local_addr() {
                eprintln!("wedge: metrics on http://{addr}/metrics");
            }
            tokio::spawn(wedge_serve::serve_metrics(listener, move || {
                HttpMetrics::render_all(&[(String::new(), &metrics)])
            }));
        }
        server
            .run(async {
                shutdown_signal().await;
                eprintln!(
                    "wedge: shutting down; in-flight requests have {} to finish",
                    wedge_manifest::DurationSpec(config.grace)
                );
            })
            .await?;
        anyhow::Ok(0)
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The access log `--access-log` names.
fn access_log(dest: &str) -> anyhow::Result<AccessLog> {
    Ok(match dest {
        "off" => AccessLog::off(),
        "stderr" | "-" => AccessLog::to(std::io::stderr()),
        "stdout" => AccessLog::to(std::io::stdout()),
        path => AccessLog::to(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open access log `{path}`"))?,
        ),
    })
}
