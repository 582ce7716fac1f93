//! Turning a [`Policy`] into a WASI context: only what is granted is reachable.

use crate::{Policy, RuntimeError, Stdio};
use std::net::SocketAddr;
use std::sync::Arc;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wedge_manifest::{NetRule, VolumeMode};

/// A WASI context builder holding the policy's args, env, volumes and network rules.
pub(crate) fn builder(policy: &Policy, stdio: Stdio) -> Result<WasiCtxBuilder, RuntimeError> {
    let mut b = WasiCtxBuilder::new();
    match stdio {
        Stdio::Inherit => {
            b.inherit_stdio();
        }
        Stdio::Null => {
            b.stdout(wasmtime_wasi::p2::pipe::SinkOutputStream);
            b.stderr(wasmtime_wasi::p2::pipe::SinkOutputStream);
        }
        Stdio::Streams {
            stdin,
            stdout,
            stderr,
        } => {
            b.stdin(stdin);
            b.stdout(stdout);
            b.stderr(stderr);
        }
    }
    b.args(&policy.args);
    b.envs(&policy.env);
    for (host, guest, mode) in &policy.volumes {
        let perms = match mode {
            VolumeMode::Ro => FsPerms::ReadOnly,
            VolumeMode::Rw => FsPerms::ReadWrite,
        };
        b.preopened_dir(host, guest, perms).map_err(|e| {
            RuntimeError::Grant(format!("cannot open volume `{}`: {e}", host.display()))
        })?;
    }
    let any_net = !policy.connect.is_empty() || !policy.listen.is_empty();
    b.allow_tcp(any_net)
        .allow_udp(any_net)
        .allow_ip_name_lookup(policy.dns);
    let rules = Arc::new((policy.connect.clone(), policy.listen.clone()));
    b.socket_addr_check(move |addr, usage| {
        let allowed = socket_allowed(&rules.0, &rules.1, addr, usage);
        Box::pin(async move { allowed })
    });
    Ok(b)
}

/// The network check: connections and datagrams must match a connect rule, binds and
/// listens a listen rule. The implicit wildcard bind that precedes a connect is allowed
/// whenever any network grant exists (the destination is checked at connect time).
fn socket_allowed(
    connect: &[NetRule],
    listen: &[NetRule],
    addr: SocketAddr,
    usage: SocketAddrUse,
) -> bool {
    let matches = |rules: &[NetRule]| rules.iter().any(|r| r.matches(&addr));
    match usage {
        SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
            matches(connect)
        }
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
            if addr.ip().is_unspecified() && addr.port() == 0 =>
        {
            !connect.is_empty() || !listen.is_empty()
        }
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::TcpListen => {
            matches(listen)
        }
        SocketAddrUse::TcpAccept => !listen.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<NetRule> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn connect_needs_a_matching_rule() {
        let connect = rules(&["127.0.0.1:8080"]);
        let ok: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:9090".parse().unwrap();
        assert!(socket_allowed(&connect, &[], ok, SocketAddrUse::TcpConnect));
        assert!(!socket_allowed(
            &connect,
            &[],
            other,
            SocketAddrUse::TcpConnect
        ));
        assert!(socket_allowed(
            &connect,
            &[],
            "0.0.0.0:0".parse().unwrap(),
            SocketAddrUse::TcpBind
        ));
        assert!(!socket_allowed(
            &connect,
            &[],
            "0.0.0.0:8080".parse().unwrap(),
            SocketAddrUse::TcpListen
        ));
        assert!(!socket_allowed(
            &[],
            &[],
            "0.0.0.0:0".parse().unwrap(),
            SocketAddrUse::TcpBind
        ));
    }

    #[test]
    fn listen_needs_a_matching_rule() {
        let listen = rules(&["127.0.0.1:9000"]);
        assert!(socket_allowed(
            &[],
            &listen,
            "127.0.0.1:9000".parse().unwrap(),
            SocketAddrUse::TcpBind
        ));
        assert!(socket_allowed(
            &[],
            &listen,
            "127.0.0.1:9000".parse().unwrap(),
            SocketAddrUse::TcpListen
        ));
        assert!(!socket_allowed(
            &[],
            &listen,
            "127.0.0.1:9001".parse().unwrap(),
            SocketAddrUse::TcpListen
        ));
        assert!(!socket_allowed(
            &[],
            &listen,
            "127.0.0.1:9000".parse().unwrap(),
            SocketAddrUse::TcpConnect
        ));
    }
}
