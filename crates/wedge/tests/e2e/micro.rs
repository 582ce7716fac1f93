//! wedge-micro on a microcontroller: `wedge micro bundle` makes bundles of the C guests
//! in `guests/micro`, and the reference firmware (`firmware/mps2-an386`) runs them on a
//! Cortex-M4 that QEMU emulates (`qemu-system-arm -M mps2-an386`, 1 MiB of RAM), its
//! console on the UART, its exit status through semihosting.
//!
//! The C firmware (`firmware/c-mps2-an386`), linked with the C API's static library,
//! runs bundles through the API too.
//!
//! Ignored in a plain `cargo test`: `scripts/test.sh` builds both firmwares
//! (`scripts/micro.sh`) and runs these with `WEDGE_MICRO_FIRMWARE` and
//! `WEDGE_MICRO_C_FIRMWARE` pointing at them and `--ignored`.

use crate::common::{Env, write_file};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wedge_test_programs::micro;

/// How long a boot may take before the test gives up on it (QEMU on a loaded machine).
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// What a boot of the firmware printed, and how it ended.
struct Boot {
    /// The semihosting exit status: 0 when the bundle ran, 1 when it was refused.
    status: i32,
    console: String,
}

impl Boot {
    #[track_caller]
    fn expect(&self, status: i32, needles: &[&str]) -> &Boot {
        assert_eq!(
            self.status, status,
            "exit status; console:\n{}",
            self.console
        );
        for needle in needles {
            assert!(
                self.console.contains(needle),
                "`{needle}` not on the console:\n{}",
                self.console
            );
        }
        self
    }

    /// The console lines that start with `prefix`, in order.
    fn lines(&self, prefix: &str) -> Vec<&str> {
        self.console
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
}

/// The firmware the variable `var` names (built by scripts/micro.sh).
fn firmware(var: &str) -> PathBuf {
    PathBuf::from(
        std::env::var_os(var)
            .unwrap_or_else(|| panic!("{var}: the firmware built by scripts/micro.sh")),
    )
}

/// Boots the reference firmware with `bundle` loaded where it looks for one.
fn boot(bundle: &Path) -> Boot {
    boot_on(&firmware("WEDGE_MICRO_FIRMWARE"), bundle)
}

/// Boots the C firmware on the C API (`firmware/c-mps2-an386`) with `bundle`.
fn boot_c(bundle: &Path) -> Boot {
    boot_on(&firmware("WEDGE_MICRO_C_FIRMWARE"), bundle)
}

/// Boots `firmware` with `bundle` loaded where it looks for one.
fn boot_on(firmware: &Path, bundle: &Path) -> Boot {
    let mut child = Command::new("qemu-system-arm")
        .args(["-M", "mps2-an386", "-nographic", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(firmware)
        .arg("-device")
        .arg(format!("loader,file={},addr=0x00200000", bundle.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-arm (scripts/micro.sh installs it)");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            child.kill().unwrap();
            panic!("the firmware did not end within {BOOT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Boot {
        status: status.code().unwrap_or(-1),
        console: reader.join().unwrap(),
    }
}

/// Bundles the apps of `toml` (a bundle file written in `env`) with `wedge micro bundle`.
fn bundle(env: &Env, toml: &str) -> PathBuf {
    let file = write_file(&env.path(""), "bundle.toml", toml.as_bytes());
    let out = env.path("bundle.bin");
    env.wedge(&["micro", "bundle", "-f", &file, "-o", out.to_str().unwrap()])
        .expect_code(0);
    out
}

/// A copy of the bundle at `good` with one bit flipped: the bit 0 of byte `at`, counted
/// from the start, or from the end when negative.
fn flipped(env: &Env, good: &Path, at: isize) -> PathBuf {
    let mut bytes = std::fs::read(good).unwrap();
    let at = if at < 0 {
        bytes.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    bytes[at] ^= 1;
    PathBuf::from(write_file(
        &env.path(""),
        &format!("flipped-{at}.bin"),
        &bytes,
    ))
}

/// `hello` compiled by `wedge compile --target pulley32`: Pulley code for wedge on
/// 32-bit Linux, with another engine's settings than the device's.
fn other_engines_code(env: &Env) -> String {
    let cwasm = env.path("hello.cwasm");
    env.wedge(&[
        "compile",
        "--target",
        "pulley32",
        micro::HELLO,
        "-o",
        cwasm.to_str().unwrap(),
    ])
    .expect_code(0);
    cwasm.to_str().unwrap().to_owned()
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn the_same_module_greets_on_linux_and_on_the_microcontroller() {
    let env = Env::new();
    let linux = env.wedge(&["run", micro::HELLO, "little", "board"]);
    linux.expect_code(0);
    assert!(
        linux.stdout.ends_with(" little board\n"),
        "{}",
        linux.stdout
    );

    let bundle = bundle(
        &env,
        &format!(
            "[[app]]\nname = \"hello\"\nsource = {:?}\nargs = [\"little\", \"board\"]\n",
            micro::HELLO
        ),
    );
    let boot = boot(&bundle);
    boot.expect(
        0,
        &[
            "wedge-micro: bundle checked: 1 apps",
            "hello from hello little board\n",
            "wedge-micro: app `hello` exited with 0",
            "wedge-micro: RAM static",
        ],
    );
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn two_apps_take_turns_on_one_core() {
    let env = Env::new();
    let apps = ["left", "right"]
        .map(|name| {
            format!(
                "[[app]]\nname = {name:?}\nsource = {:?}\nargs = [\"4\"]\n",
                micro::TICKER
            )
        })
        .join("");
    let boot = boot(&bundle(&env, &apps));
    boot.expect(
        0,
        &[
            "wedge-micro: app `left` exited with 0",
            "wedge-micro: app `right` exited with 0",
        ],
    );
    let ticks = boot.lines("left tick").len() + boot.lines("right tick").len();
    assert_eq!(ticks, 8, "{}", boot.console);
    // Each sleeps between ticks, and the other runs meanwhile: the ticks interleave.
    let order: Vec<&str> = boot
        .console
        .lines()
        .filter(|l| l.contains(" tick "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 4, "the apps did not take turns: {order:?}");
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn a_trapping_and_a_looping_app_stop_alone() {
    let env = Env::new();
    let apps = format!(
        "[[app]]\nname = \"crash\"\nsource = {:?}\nrestart = 1\n\
         [[app]]\nname = \"spin\"\nsource = {:?}\nfuel = 300000\n\
         [[app]]\nname = \"ticker\"\nsource = {:?}\nargs = [\"20\"]\n",
        micro::CRASH,
        micro::SPIN,
        micro::TICKER
    );
    let boot = boot(&bundle(&env, &apps));
    boot.expect(
        0,
        &[
            "wedge-micro: app `crash` failed:",
            "wedge-micro: restarting `crash` (1 of 1)",
            "wedge-micro: app `spin` ran out of fuel",
            "wedge-micro: app `ticker` exited with 0",
        ],
    );
    assert_eq!(
        boot.lines("crash: about to trap").len(),
        2,
        "{}",
        boot.console
    );
    assert_eq!(boot.lines("wedge-micro: app `crash` failed").len(), 2);
    assert!(boot.console.contains("unreachable"), "{}", boot.console);
    // The ticker went on to its last tick after the others had stopped.
    let last_tick = boot
        .console
        .find("ticker tick 19")
        .expect("the ticker's last tick");
    let out_of_fuel = boot.console.find("`spin` ran out of fuel").unwrap();
    assert!(out_of_fuel < last_tick, "{}", boot.console);
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn memory_caps_hold() {
    let env = Env::new();
    let apps = format!(
        "[[app]]\nname = \"hog\"\nsource = {:?}\nmemory = \"256KiB\"\n\
         [[app]]\nname = \"too-big\"\nsource = {:?}\nmemory = \"32KiB\"\n",
        micro::HOG,
        micro::HELLO
    );
    let boot = boot(&bundle(&env, &apps));
    boot.expect(
        0,
        &[
            "wedge-micro: app `hog` exited with 0",
            "wedge-micro: app `too-big` failed:",
        ],
    );
    // hog starts with one 64 KiB page: it got what the cap left, and no more.
    let got = boot.lines("hog: got ");
    assert_eq!(got.len(), 1, "{}", boot.console);
    let kib: u32 = got[0]["hog: got ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Its stack, data and malloc's headers take some of the cap too.
    assert!(
        (192..256).contains(&kib),
        "hog got {kib} KiB under a 256 KiB cap"
    );
    assert!(!boot.console.contains("hello from"), "{}", boot.console);
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn addresses_outside_an_apps_memory_are_refused_and_it_stops_alone() {
    let env = Env::new();
    let apps = format!(
        "[[app]]\nname = \"wild\"\nsource = {:?}\nenv = {{ A = \"1\" }}\n\
         [[app]]\nname = \"ticker\"\nsource = {:?}\nargs = [\"3\"]\n",
        micro::WILD,
        micro::TICKER
    );
    let boot = boot(&bundle(&env, &apps));
    boot.expect(
        0,
        &[
            "wild: publishing from outside memory",
            "wedge-micro: app `wild` failed: 64 bytes at 4294967280 are out of the app's memory",
            "ticker tick 2",
            "wedge-micro: app `ticker` exited with 0",
        ],
    );
    // Every WASI call given such an address answered EFAULT, and the app went on.
    let calls: Vec<&str> = boot
        .lines("wild: ")
        .into_iter()
        .filter(|line| !line.starts_with("wild: publishing"))
        .collect();
    assert_eq!(calls.len(), 12, "{}", boot.console);
    for call in calls {
        assert!(
            call.ends_with(" 21"),
            "{call}, not EFAULT:\n{}",
            boot.console
        );
    }
    assert!(!boot.console.contains("still running"), "{}", boot.console);
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn a_tampered_bundle_is_refused_whole() {
    let env = Env::new();
    let good = bundle(
        &env,
        &format!(
            "[[app]]\nname = \"hello\"\nsource = {:?}\n[[app]]\nname = \"other\"\nsource = {:?}\n",
            micro::HELLO,
            micro::HELLO
        ),
    );
    // One bit of the last app's code.
    boot(&flipped(&env, &good, -100)).expect(
        1,
        &["wedge-micro: bad bundle: other: its code does not match its digest"],
    );
    // One bit of the header: the first app's fuel budget.
    let fuel_at = 8 + 4 + 4 + 2 + "hello".len() + 4;
    let boot = boot(&flipped(&env, &good, fuel_at as isize));
    boot.expect(
        1,
        &["wedge-micro: bad bundle: the header's digest does not match"],
    );
    assert!(!boot.console.contains("hello from"), "{}", boot.console);
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn code_compiled_for_another_engine_is_refused() {
    let env = Env::new();
    let cwasm = other_engines_code(&env);
    let bundle = bundle(&env, &format!("[[app]]\nsource = {cwasm:?}\n"));
    let boot = boot(&bundle);
    boot.expect(1, &["wedge-micro: refused the app's code: hello:"]);
    assert!(!boot.console.contains("hello from"), "{}", boot.console);
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn the_same_messaging_module_runs_on_linux_and_two_apps_exchange_messages_on_the_board() {
    let env = Env::new();
    // Under `wedge run`, the `wit-bindgen c` module is made a component; it talks to
    // itself.
    let linux = env.wedge(&[
        "run",
        "--allow-publish",
        "chat/#",
        "--allow-subscribe",
        "chat/#",
        micro::CHAT,
        "self",
        "self",
        "2",
    ]);
    linux.expect_code(0);
    assert_eq!(
        linux.stdout,
        "self got: self 1 on chat/self\nself got: self 2 on chat/self\nself: done\n"
    );

    // The same module twice on the microcontroller: `ping` sends, `pong` answers.
    let apps = format!(
        "[[app]]\nname = \"ping\"\nsource = {chat:?}\nargs = [\"ping\", \"pong\", \"3\"]\n\
         messaging = {{ publish = [\"chat/pong\"], subscribe = [\"chat/ping\"] }}\n\
         [[app]]\nname = \"pong\"\nsource = {chat:?}\nargs = [\"pong\", \"ping\", \"3\", \"echo\"]\n\
         messaging = {{ publish = [\"chat/ping\"], subscribe = [\"chat/+\"] }}\n",
        chat = micro::CHAT
    );
    let boot = boot(&bundle(&env, &apps));
    boot.expect(
        0,
        &[
            "pong got: ping 1 on chat/pong",
            "ping got: pong 1 on chat/ping",
            "pong got: ping 3 on chat/pong",
            "ping got: pong 3 on chat/ping",
            "ping: done",
            "pong: done",
            "wedge-micro: app `ping` exited with 0",
            "wedge-micro: app `pong` exited with 0",
        ],
    );
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn messaging_grants_hold_on_the_board() {
    let env = Env::new();
    // `spy` may subscribe to its own inbox only, and asks for every inbox; `liar` may
    // subscribe but publishes where it may not; `quiet` has no grant at all. (The
    // topic rules, `$` topics included, are wedge-topic's, tested there.)
    let apps = format!(
        "[[app]]\nname = \"spy\"\nsource = {chat:?}\nargs = [\"+\", \"x\", \"1\"]\n\
         messaging = {{ subscribe = [\"chat/spy\"] }}\n\
         [[app]]\nname = \"liar\"\nsource = {chat:?}\nargs = [\"liar\", \"ping\", \"1\"]\n\
         messaging = {{ publish = [\"chat/liar\"], subscribe = [\"chat/liar\"] }}\n\
         [[app]]\nname = \"quiet\"\nsource = {chat:?}\nargs = [\"quiet\", \"quiet\", \"1\"]\n",
        chat = micro::CHAT
    );
    let boot = boot(&bundle(&env, &apps));
    boot.expect(
        0,
        &[
            "subscribe failed: permission denied: no grant lets this app subscribe to `chat/+`",
            "publish failed: permission denied: no grant lets this app publish to `chat/ping`",
            "subscribe failed: permission denied: no grant lets this app subscribe to `chat/quiet`",
            "wedge-micro: app `spy` exited with 1",
            "wedge-micro: app `liar` exited with 1",
            "wedge-micro: app `quiet` exited with 1",
        ],
    );
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn a_c_firmware_runs_apps_through_the_c_api() {
    let env = Env::new();
    // hog's cap is over what the whole heap holds: the C heap refuses it memory first,
    // and the device goes on.
    let apps = format!(
        "[[app]]\nname = \"ticker\"\nsource = {:?}\nargs = [\"2\"]\n\
         [[app]]\nname = \"hog\"\nsource = {:?}\nmemory = \"4MiB\"\n\
         [[app]]\nname = \"crash\"\nsource = {:?}\n",
        micro::TICKER,
        micro::HOG,
        micro::CRASH
    );
    let boot = boot_c(&bundle(&env, &apps));
    boot.expect(
        0,
        &[
            "c-firmware: loaded 3 apps",
            "ticker tick 1",
            "c-firmware: `ticker` exited with 0",
            "c-firmware: `hog` exited with 0",
            "c-firmware: `crash` failed: wasm trap: wasm `unreachable` instruction executed",
            // A second load is refused whole: its names are taken.
            "c-firmware: loading it again: -3 (cannot link the app: two apps are named `ticker`), 3 apps",
            "c-firmware: starting `ticker` again: 0",
            "c-firmware: `ticker` is running",
            "c-firmware: stopping `ticker`: 0",
            "c-firmware: `ticker` was stopped",
            "c-firmware: starting `no-such-app`: -6 (no app is named `no-such-app`)",
        ],
    );
    let got = boot.lines("hog: got ");
    assert_eq!(got.len(), 1, "{}", boot.console);
    assert!(got[0].ends_with("then was refused"), "{}", boot.console);
    // Freeing the runtime gives its heap back, but for wasmtime's registry of code,
    // made once.
    let heap = boot.lines("c-firmware: heap in use: ");
    assert_eq!(heap.len(), 1, "{}", boot.console);
    let bytes: Vec<usize> = heap[0]
        .split(' ')
        .filter_map(|word| word.parse().ok())
        .collect();
    let [before, after, second] = bytes[..] else {
        panic!("{}", heap[0]);
    };
    assert!(after - before < 1024, "{}", heap[0]);
    assert_eq!(after, second, "{}", heap[0]);
}

#[test]
#[ignore = "needs the firmware (scripts/test.sh)"]
fn the_c_api_refuses_a_bad_bundle_whole() {
    let env = Env::new();
    let good = bundle(
        &env,
        &format!("[[app]]\nname = \"hello\"\nsource = {:?}\n", micro::HELLO),
    );
    boot_c(&flipped(&env, &good, -100)).expect(
        1,
        &["c-firmware: cannot load the bundle (-5): bad bundle: hello: its code does not match its digest"],
    );

    // A good app, then code of another engine: neither is kept.
    let cwasm = other_engines_code(&env);
    let mixed = bundle(
        &env,
        &format!(
            "[[app]]\nname = \"hello\"\nsource = {:?}\n[[app]]\nname = \"other\"\nsource = {:?}\n",
            micro::HELLO,
            cwasm
        ),
    );
    let boot = boot_c(&mixed);
    boot.expect(
        1,
        &[
            "c-firmware: cannot load the bundle (-2): refused the app's code: other:",
            "; 0 apps",
        ],
    );
    assert!(!boot.console.contains("hello from"), "{}", boot.console);
}
