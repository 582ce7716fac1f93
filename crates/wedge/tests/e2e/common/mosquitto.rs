//! Debian's `mosquitto`, the real MQTT broker of the bridge tests.

use crate::common::{Env, TestDaemon};
use std::time::{Duration, Instant};

/// Debian's `mosquitto` on a free loopback port with a temp persistence folder; killed
/// on drop.
pub struct Mosquitto {
    child: std::process::Child,
    pub port: u16,
    conf: std::path::PathBuf,
    /// How `mosquitto_pub` and `mosquitto_sub` reach it.
    pub client: Vec<String>,
}

/// A broker's TLS listener with a password: its certificate and the one user.
pub struct Secured {
    pub cert: std::path::PathBuf,
    pub user: &'static str,
    pub password: &'static str,
}

impl Mosquitto {
    pub fn start(env: &Env) -> Mosquitto {
        Mosquitto::start_with(env, None)
    }

    pub fn start_with(env: &Env, secured: Option<&Secured>) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = env.path("mosquitto");
        std::fs::create_dir_all(&dir).unwrap();
        // As root, mosquitto drops to its own user unless told to stay.
        let root = std::process::Command::new("id").arg("-u").output().unwrap();
        let user = if String::from_utf8_lossy(&root.stdout).trim() == "0" {
            "user root\n"
        } else {
            ""
        };
        let mut client = vec!["-h".to_string(), "127.0.0.1".into()];
        let mut conf_text = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\n{user}",
            dir.display()
        );
        match secured {
            None => conf_text.push_str("allow_anonymous true\n"),
            Some(s) => {
                let passwd = dir.join("passwd");
                let status = std::process::Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&passwd)
                    .args([s.user, s.password])
                    .status()
                    .unwrap();
                assert!(status.success());
                let cert = s.cert.display();
                let key = s.cert.with_file_name("key.pem");
                conf_text.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\ncertfile {cert}\nkeyfile {}\n",
                    passwd.display(),
                    key.display()
                ));
                client = ["-h", "localhost", "--cafile", &cert.to_string()]
                    .into_iter()
                    .chain(["-u", s.user, "-P", s.password])
                    .map(String::from)
                    .collect();
            }
        }
        client.extend(["-p".to_string(), port.to_string()]);
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, conf_text).unwrap();
        let child = Mosquitto::spawn(&conf, port);
        Mosquitto {
            child,
            port,
            conf,
            client,
        }
    }

    fn spawn(conf: &std::path::Path, port: u16) -> std::process::Child {
        let child = std::process::Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto (scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// Stops the broker with SIGTERM (it saves its sessions) and starts it again.
    pub fn restart(&mut self) {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap();
        self.child = Mosquitto::spawn(&self.conf, self.port);
    }

    /// Publishes `payload` to `topic` through the broker, again every 300 ms (the
    /// bridge may not have mirrored the subscription yet), until container `name`'s
    /// log shows `topic payload` (a minute at most).
    #[track_caller]
    pub fn publish_until_received(
        &self,
        d: &TestDaemon,
        env: &Env,
        name: &str,
        topic: &str,
        payload: &str,
    ) {
        let line = format!("{topic} {payload}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.wedge(env, &["logs", name]).stdout.contains(&line) {
            assert!(
                Instant::now() < deadline,
                "`{name}` never got `{line}` from the broker: {}",
                d.log_text()
            );
            self.publish(topic, payload);
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        let status = std::process::Command::new("mosquitto_pub")
            .args(&self.client)
            .args(["-q", "1", "-t", topic, "-m", payload])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
