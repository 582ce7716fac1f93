//! mqttsketch PORT [tls CAFILE] [user PASS]
//! A bridge-like client: QoS1 publisher with its own outbox, a durable QoS1 subscriber,
//! reconnect with backoff, against mosquitto on 127.0.0.1:PORT.
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, QoS, Transport};
use std::sync::Arc;
use std::time::Duration;

fn options(id: &str, port: u16, args: &[String]) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_session(false); // session (subscriptions + unacked QoS1) kept by the broker
    o.set_inflight(100);
    if let Some(i) = args.iter().position(|a| a == "tls") {
        let ca = std::fs::read(&args[i + 1]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::new(cfg))));
    }
    if let Some(i) = args.iter().position(|a| a == "user") {
        o.set_credentials(args[i + 1].clone(), args[i + 2].clone());
    }
    o
}

/// Drives an event loop forever: reconnects with capped exponential backoff.
async fn drive(name: &'static str, mut el: EventLoop, tx: tokio::sync::mpsc::UnboundedSender<(String, Vec<u8>)>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match el.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                eprintln!("{name}: connected, session_present={}", ack.session_present);
                backoff = Duration::from_millis(100);
            }
            Ok(Event::Incoming(Incoming::Publish(p))) => {
                let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("{name}: connection error: {e}; retry in {backoff:?} (pending {})", el.pending.len());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let pause = std::env::var("PAUSE").is_ok();

    let (sub, sub_el) = AsyncClient::new(options("sketch-sub", port, &args), 1000);
    let (rx_tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(drive("sub", sub_el, rx_tx.clone()));
    sub.subscribe("bench/+/data", QoS::AtLeastOnce).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (publ, pub_el) = AsyncClient::new(options("sketch-pub", port, &args), 1000);
    let (dummy, _d) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(drive("pub", pub_el, dummy));
    for i in 0..n {
        publ.publish(format!("bench/{}/data", i % 3), QoS::AtLeastOnce, false, format!("{i}")).await.unwrap();
        if !pause { tokio::time::sleep(Duration::from_millis(2)).await; }
        if i == n / 2 {
            eprintln!("main: half published; restart the broker now (sleep 3s)");
            if pause { tokio::time::sleep(Duration::from_secs(3)).await; }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while seen.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_t, p))) => {
                seen.insert(String::from_utf8(p).unwrap().parse::<usize>().unwrap());
            }
            _ => break,
        }
    }
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains(i)).collect();
    println!("received {} distinct of {n}; missing {:?}", seen.len(), missing);
}
