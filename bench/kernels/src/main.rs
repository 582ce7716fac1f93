//! Compute kernels for bench/kernels.sh, each printing a checksum of its result so that
//! every runtime's output can be compared: `kernels sha256|json|regex|nbody`.

use sha2::{Digest, Sha256};
use std::fmt::Write;

/// A deterministic stream of pseudo-random numbers (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// SHA-256 over 256 MiB, in 64 KiB updates.
fn sha256() -> String {
    let mut rng = Rng(1);
    let block: Vec<u8> = (0..65536).map(|_| rng.next() as u8).collect();
    let mut hasher = Sha256::new();
    for _ in 0..4096 {
        hasher.update(&block);
    }
    format!("{:x}", hasher.finalize())
}

/// Builds a JSON document of 20,000 records, then parses and prints it again 20 times.
fn json() -> String {
    let mut rng = Rng(2);
    let mut text = String::from("[");
    for i in 0..20_000 {
        if i > 0 {
            text.push(',');
        }
        write!(
            text,
            r#"{{"id":{i},"name":"item-{}","price":{}.{:02},"tags":["a{}","b{}"],"ok":{}}}"#,
            rng.next() % 100_000,
            rng.next() % 1000,
            rng.next() % 100,
            rng.next() % 10,
            rng.next() % 10,
            rng.next() % 2 == 0
        )
        .unwrap();
    }
    text.push(']');
    let mut total = 0usize;
    for _ in 0..20 {
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        total += serde_json::to_string(&value).unwrap().len();
    }
    total.to_string()
}

/// Finds e-mail addresses and dates in 8 MiB of generated text with the regex crate, eight
/// times over.
fn regex() -> String {
    let mut rng = Rng(3);
    let words = [
        "lorem", "ipsum", "dolor", "sit", "amet", "wedge", "wasm", "edge",
    ];
    let mut text = String::new();
    while text.len() < 8 << 20 {
        match rng.next() % 16 {
            0 => write!(
                text,
                "user{}@example{}.org ",
                rng.next() % 997,
                rng.next() % 13
            ),
            1 => write!(
                text,
                "20{:02}-{:02}-{:02} ",
                rng.next() % 30,
                1 + rng.next() % 12,
                1 + rng.next() % 28
            ),
            _ => write!(text, "{} ", words[(rng.next() % 8) as usize]),
        }
        .unwrap();
    }
    let email = regex::Regex::new(r"[a-z0-9]+@[a-z0-9]+\.(org|com)").unwrap();
    let date = regex::Regex::new(r"\b(20\d\d)-(0[1-9]|1[0-2])-(\d\d)\b").unwrap();
    let (mut emails, mut days) = (0, 0u64);
    for _ in 0..8 {
        emails += email.find_iter(&text).count();
        days += date
            .captures_iter(&text)
            .map(|c| c[3].parse::<u64>().unwrap())
            .sum::<u64>();
    }
    format!("{emails} {days}")
}

/// The five-body simulation of the Computer Language Benchmarks Game, 20 million steps.
fn nbody() -> String {
    const PI: f64 = std::f64::consts::PI;
    const SOLAR_MASS: f64 = 4.0 * PI * PI;
    const DAYS: f64 = 365.24;
    let mut bodies: [[f64; 7]; 5] = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, SOLAR_MASS],
        [
            4.841_431_442_464_72,
            -1.160_320_044_027_428_4,
            -0.103_622_044_471_123_1,
            0.001_660_076_642_744_037 * DAYS,
            0.007_699_011_184_197_404 * DAYS,
            -0.000_069_046_000_691_577_46 * DAYS,
            0.000_954_791_938_424_326_6 * SOLAR_MASS,
        ],
        [
            8.343_366_718_244_58,
            4.124_798_564_124_305,
            -0.403_523_417_114_321_4,
            -0.002_767_425_107_268_624 * DAYS,
            0.004_998_528_012_349_172 * DAYS,
            0.000_023_041_729_757_376_393 * DAYS,
            0.000_285_885_980_666_130_8 * SOLAR_MASS,
        ],
        [
            12.894_369_562_139_131,
            -15.111_151_401_698_631,
            -0.223_307_578_892_655_7,
            0.002_964_601_375_647_616 * DAYS,
            0.002_378_471_739_594_809_5 * DAYS,
            -0.000_029_658_956_854_023_756 * DAYS,
            0.000_043_662_440_433_515_63 * SOLAR_MASS,
        ],
        [
            15.379_697_114_850_917,
            -25.919_314_609_987_964,
            0.179_258_772_950_371_18,
            0.002_680_677_724_903_893_2 * DAYS,
            0.001_628_241_700_382_423 * DAYS,
            -0.000_095_159_225_451_971_59 * DAYS,
            0.000_051_513_890_204_661_45 * SOLAR_MASS,
        ],
    ];
    let energy = |b: &[[f64; 7]; 5]| {
        let mut e = 0.0;
        for i in 0..5 {
            e += 0.5 * b[i][6] * (b[i][3] * b[i][3] + b[i][4] * b[i][4] + b[i][5] * b[i][5]);
            for j in i + 1..5 {
                let d = [b[i][0] - b[j][0], b[i][1] - b[j][1], b[i][2] - b[j][2]];
                e -= b[i][6] * b[j][6] / (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            }
        }
        e
    };
    let before = energy(&bodies);
    for _ in 0..20_000_000 {
        for i in 0..5 {
            for j in i + 1..5 {
                let d = [
                    bodies[i][0] - bodies[j][0],
                    bodies[i][1] - bodies[j][1],
                    bodies[i][2] - bodies[j][2],
                ];
                let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                let mag = 0.01 / (d2 * d2.sqrt());
                let (mi, mj) = (bodies[i][6], bodies[j][6]);
                for k in 0..3 {
                    bodies[i][3 + k] -= d[k] * mj * mag;
                    bodies[j][3 + k] += d[k] * mi * mag;
                }
            }
        }
        for body in &mut bodies {
            for k in 0..3 {
                body[k] += 0.01 * body[3 + k];
            }
        }
    }
    format!("{before:.9} {:.9}", energy(&bodies))
}

fn main() {
    let kernel = std::env::args().nth(1).unwrap_or_default();
    let result = match kernel.as_str() {
        "sha256" => sha256(),
        "json" => json(),
        "regex" => regex(),
        "nbody" => nbody(),
        other => {
            eprintln!("kernels: unknown kernel `{other}` (sha256, json, regex, nbody)");
            std::process::exit(2);
        }
    };
    println!("{kernel}: {result}");
}
