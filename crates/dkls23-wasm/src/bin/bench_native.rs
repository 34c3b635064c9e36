//! Native counterpart of bench/core.ts: times the same per-party operations
//! with the same crate compiled for x86_64, on the same inputs.
//!
//! stdin: a message list (wire::encode_list) of the 5 key shares of a 3-of-5
//! wallet, as produced by the wasm run. Digests are SHA-256("bench" || run).
//! stdout: JSON { op: [per-party milliseconds, ...], ... }.

use dkls23_wasm::dkg::Dkg;
use dkls23_wasm::refresh::Refresh;
use dkls23_wasm::share::KeyShare;
use dkls23_wasm::sign::Sign;
use dkls23_wasm::wire::{decode_list, route};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;
use std::time::Instant;

type Samples = BTreeMap<&'static str, Vec<f64>>;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn inbox(outs: &[(u8, Vec<Vec<u8>>)], me: u8) -> Vec<u8> {
    route(outs, me).expect("own messages decode")
}

fn sid(tag: &str, run: usize) -> [u8; 32] {
    Sha256::digest(format!("{tag}{run}").as_bytes()).into()
}

/// DKG and refresh share one shape: four phases, a key share at the end.
trait FourPhases {
    fn phase(&mut self, phase: u8, input: &[u8]) -> dkls23_wasm::Result<Vec<Vec<u8>>>;
}

impl FourPhases for Dkg {
    fn phase(&mut self, phase: u8, input: &[u8]) -> dkls23_wasm::Result<Vec<Vec<u8>>> {
        match phase {
            1 => self.phase1(),
            2 => self.phase2(input),
            3 => self.phase3(input),
            _ => self.phase4(input).map(|_| vec![]),
        }
    }
}

impl FourPhases for Refresh {
    fn phase(&mut self, phase: u8, input: &[u8]) -> dkls23_wasm::Result<Vec<Vec<u8>>> {
        match phase {
            1 => self.phase1(),
            2 => self.phase2(input),
            3 => self.phase3(input),
            _ => self.phase4(input).map(|_| vec![]),
        }
    }
}

/// Runs all parties (party k has index k + 1); returns each party's total compute.
fn time_ceremony<P: FourPhases>(parties: &mut [P]) -> Vec<f64> {
    let mut total = vec![0f64; parties.len()];
    let mut outs: Vec<(u8, Vec<Vec<u8>>)> = Vec::new();
    for phase in 1..=4u8 {
        let mut next = Vec::new();
        for (k, p) in parties.iter_mut().enumerate() {
            let me = k as u8 + 1;
            let ib = if phase == 1 { Vec::new() } else { inbox(&outs, me) };
            let t = Instant::now();
            let o = p.phase(phase, &ib).unwrap();
            total[k] += ms(t);
            next.push((me, o));
        }
        outs = next;
    }
    total
}

fn bench_dkg(runs: usize, out: &mut Samples) {
    for run in 0..runs {
        let s = sid("dkg", run);
        let mut parties: Vec<Dkg> = (1..=5).map(|i| Dkg::new(3, 5, i, &s).unwrap()).collect();
        out.entry("dkg").or_default().extend(time_ceremony(&mut parties));
    }
}

fn bench_sign(shares: &[Rc<KeyShare>], runs: usize, out: &mut Samples) {
    let signers = [1u8, 2, 3];
    for run in 0..runs {
        let s = sid("sign", run);
        let digest: [u8; 32] = Sha256::digest(format!("bench{run}").as_bytes()).into();
        let mut parties: Vec<Sign> = signers
            .iter()
            .map(|&i| Sign::new(shares[(i - 1) as usize].clone(), None, &s, &signers, &digest).unwrap())
            .collect();
        let mut outs = Vec::new();
        for (k, p) in parties.iter_mut().enumerate() {
            let t = Instant::now();
            outs.push((signers[k], p.phase1().unwrap()));
            out.entry("sign_phase1").or_default().push(ms(t));
        }
        for (phase, name) in [(2, "sign_phase2"), (3, "sign_phase3")] {
            let mut next = Vec::new();
            for (k, p) in parties.iter_mut().enumerate() {
                let ib = inbox(&outs, signers[k]);
                let t = Instant::now();
                let o = if phase == 2 { p.phase2(&ib) } else { p.phase3(&ib) }.unwrap();
                out.entry(name).or_default().push(ms(t));
                next.push((signers[k], o));
            }
            outs = next;
        }
        for (k, p) in parties.iter_mut().enumerate() {
            let ib = inbox(&outs, signers[k]);
            let t = Instant::now();
            p.phase4(&ib).unwrap();
            out.entry("sign_phase4").or_default().push(ms(t));
        }
    }
}

fn bench_refresh(shares: &[Rc<KeyShare>], runs: usize, out: &mut Samples) {
    for run in 0..runs {
        let s = sid("refresh", run);
        let mut parties: Vec<Refresh> = shares.iter().map(|x| Refresh::new(x.clone(), &s).unwrap()).collect();
        out.entry("refresh").or_default().extend(time_ceremony(&mut parties));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str, default: usize| -> usize {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(|v| v.parse().expect("number")).unwrap_or(default)
    };
    if args.iter().any(|a| a == "--help") {
        println!("bench-native [--sign-runs N] [--dkg-runs N] [--refresh-runs N] < shares.list");
        return;
    }
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).expect("read stdin");
    let shares: Vec<Rc<KeyShare>> =
        decode_list(&input).expect("share list").iter().map(|b| Rc::new(KeyShare::from_bytes(b).expect("share"))).collect();
    let mut out = Samples::new();
    bench_sign(&shares, get("--sign-runs", 20), &mut out);
    bench_dkg(get("--dkg-runs", 4), &mut out);
    bench_refresh(&shares, get("--refresh-runs", 4), &mut out);
    let body: Vec<String> = out
        .iter()
        .map(|(k, v)| format!("\"{k}\":[{}]", v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(",")))
        .collect();
    println!("{{{}}}", body.join(","));
}
