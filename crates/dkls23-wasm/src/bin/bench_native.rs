//! Native counterpart of bench/core.ts: times the same per-party operations
//! with the same crate compiled for x86_64, on the same inputs.
//!
//! stdin: a message list (wire::encode_list) of the 5 key shares of a 3-of-5
//! wallet, as produced by the wasm run; when stdin is empty, the shares of
//! the last timed DKG are used. Digests are SHA-256("bench" || run).
//! stdout: JSON { op: [per-party milliseconds, ...], ... }, where op is
//! `{dkg,sign,refresh}_phase{1..4}` and the per-party totals `dkg`, `sign_total`
//! and `refresh`.
//! Built with `--features upstream` it runs upstream dkls23-secp256k1 instead
//! of the fork.

use dkls23_wasm::dkg::Dkg;
use dkls23_wasm::refresh::Refresh;
use dkls23_wasm::share::KeyShare;
use dkls23_wasm::sign::Sign;
use dkls23_wasm::wire::{decode_list, route};
use dkls23_wasm::Phases;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;
use std::time::Instant;

type Samples = BTreeMap<String, Vec<f64>>;

/// CPU time of the whole process (all threads) in ms: a party's phase runs
/// alone in this process, so the difference around it is that party's CPU
/// time, worker threads of the fork's parallel DKG included.
#[cfg(target_os = "linux")]
fn process_cpu_ms() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec (two i64 on 64-bit Linux) to ts.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

#[cfg(not(target_os = "linux"))]
fn process_cpu_ms() -> f64 {
    f64::NAN
}

fn sid(tag: &str, run: usize) -> [u8; 32] {
    Sha256::digest(format!("{tag}{run}").as_bytes()).into()
}

/// Runs all parties (`ids[k]` is party k's index), recording each party's
/// compute per phase as `{name}_phase{n}` and its sum as `total` (wall
/// time), and its CPU time as `{total}_cpu`; returns the parties' results.
fn time_ceremony<P: Phases>(
    name: &str,
    total: &str,
    ids: &[u8],
    parties: &mut [P],
    out: &mut Samples,
) -> Vec<P::Output> {
    let mut sums = vec![0f64; parties.len()];
    let mut cpu = vec![0f64; parties.len()];
    let mut outs: Vec<(u8, Vec<Vec<u8>>)> = Vec::new();
    let mut results = Vec::new();
    for phase in 1..=4u8 {
        let mut next = Vec::new();
        for (k, p) in parties.iter_mut().enumerate() {
            let ib = route(&outs, ids[k]).expect("own messages decode");
            let c = process_cpu_ms();
            let t = Instant::now();
            if phase < 4 {
                next.push((ids[k], p.step(phase, &ib).unwrap()));
            } else {
                results.push(p.phase4(&ib).unwrap());
            }
            let ms = t.elapsed().as_secs_f64() * 1e3;
            cpu[k] += process_cpu_ms() - c;
            sums[k] += ms;
            out.entry(format!("{name}_phase{phase}")).or_default().push(ms);
        }
        outs = next;
    }
    out.entry(total.to_string()).or_default().extend(sums);
    out.entry(format!("{total}_cpu")).or_default().extend(cpu);
    results
}

fn bench_dkg(runs: usize, out: &mut Samples) -> Vec<Rc<KeyShare>> {
    let ids = [1u8, 2, 3, 4, 5];
    let mut shares = Vec::new();
    for run in 0..runs {
        let s = sid("dkg", run);
        let mut parties: Vec<Dkg> = ids.iter().map(|&i| Dkg::new(3, 5, i, &s).unwrap()).collect();
        shares = time_ceremony("dkg", "dkg", &ids, &mut parties, out);
    }
    shares.into_iter().map(Rc::new).collect()
}

fn bench_sign(shares: &[Rc<KeyShare>], runs: usize, out: &mut Samples) {
    let signers = [1u8, 2, 3];
    for run in 0..runs {
        let s = sid("sign", run);
        let digest: [u8; 32] = Sha256::digest(format!("bench{run}").as_bytes()).into();
        let mut parties: Vec<Sign> = signers
            .iter()
            .map(|&i| Sign::new(shares[(i - 1) as usize].clone(), None, &s, &signers, &digest))
            .collect::<Result<_, _>>()
            .unwrap();
        time_ceremony("sign", "sign_total", &signers, &mut parties, out);
    }
}

fn bench_refresh(shares: &[Rc<KeyShare>], runs: usize, out: &mut Samples) {
    let ids: Vec<u8> = shares.iter().map(|s| s.index()).collect();
    for run in 0..runs {
        let s = sid("refresh", run);
        let mut parties: Vec<Refresh> =
            shares.iter().map(|x| Refresh::new(x.clone(), &s).unwrap()).collect();
        time_ceremony("refresh", "refresh", &ids, &mut parties, out);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("number"))
            .unwrap_or(default)
    };
    if args.iter().any(|a| a == "--help") {
        println!(
            "bench-native [--sign-runs N] [--dkg-runs N] [--refresh-runs N] [--threads N] [< shares.list]"
        );
        return;
    }
    // Threads for the fork's per-counterparty DKG/refresh set-up (1 =
    // sequential, as in the wasm enclave; 0 = one per CPU, the default).
    #[cfg(not(feature = "upstream"))]
    dkls23_core_fork::utilities::par::set_max_threads(get("--threads", 0));
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).expect("read stdin");
    let mut out = Samples::new();
    let dkg_shares = bench_dkg(get("--dkg-runs", 4), &mut out);
    let shares: Vec<Rc<KeyShare>> = if input.is_empty() {
        dkg_shares
    } else {
        decode_list(&input)
            .expect("share list")
            .iter()
            .map(|b| Rc::new(KeyShare::from_bytes(b).expect("share")))
            .collect()
    };
    bench_sign(&shares, get("--sign-runs", 20), &mut out);
    bench_refresh(&shares, get("--refresh-runs", 4), &mut out);
    let body: Vec<String> = out
        .iter()
        .map(|(k, v)| {
            format!(
                "\"{k}\":[{}]",
                v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    println!("{{{}}}", body.join(","));
}
