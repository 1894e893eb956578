//! Criterion benchmarks of the OTP engine (SPEC §9: `generate` within 1.3×
//! the single HMAC it needs; `verify` with drift 1 within 1.3× the HMACs it
//! needs), all in one run so the ratios compare like with like.
//!
//! Group `engine`:
//! - `hmac_sha256_raw` — one HMAC-SHA256 of the derivation message
//!   (`identity || u64_be(window)`), keyed from the raw key bytes each time,
//!   as a from-scratch implementation would compute it;
//! - `hmac_sha256_prekeyed` — the same HMAC from a pre-keyed state (what the
//!   engine does: one state clone per code);
//! - `hmac_sha256_raw_x2` / `_x3` — two and three raw HMACs in a row (the
//!   work of a drift-1 verify: windows `w-1`, `w`, plus `w+1` near a window
//!   edge);
//! - `generate` — `OtpEngine::generate` (one HMAC + truncation + formatting);
//! - `verify_2_candidates` / `verify_3_candidates` — `OtpEngine::verify`
//!   with drift 1 of a wrong code (every candidate is computed whatever the
//!   code, so right and wrong codes cost the same), mid-window and within
//!   the clock skew of the next window.
//!
//! Run: `cargo bench -p otp-core --bench engine`

use criterion::{black_box, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use otp_core::{Identity, OtpCode, OtpEngine, OtpKeyRing, OtpPolicy, SecretBytes};
use sha2::Sha256;

const KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const ID: &str = "alice@example.com";
/// Mid-window: 100 s into a 300 s window (1_800_000_000 is a multiple of
/// 300), so drift 1 gives 2 candidates.
const MID: u64 = 1_800_000_100;
/// 10 s before the next window: within the 30 s skew (3 candidates).
const EDGE: u64 = MID + 190;

fn raw_hmac(window: u64) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(black_box(&KEY)).expect("any key length");
    mac.update(ID.as_bytes());
    mac.update(&window.to_be_bytes());
    mac.finalize().into_bytes().into()
}

fn engine(c: &mut Criterion) {
    let engine = OtpEngine::new(
        OtpPolicy::default(),
        OtpKeyRing::new(SecretBytes::new(KEY.to_vec()), vec![]).expect("32-byte key"),
    );
    let identity = Identity::parse(ID).expect("valid identity");
    let w = engine.window_at(MID);
    assert_eq!(engine.candidate_windows(MID).len(), 2);
    assert_eq!(engine.candidate_windows(EDGE).len(), 3);
    // A wrong code: the right one plus one (mod 10^6).
    let right: u32 = engine
        .generate(&identity, MID, 0)
        .as_str()
        .parse()
        .expect("digits");
    let wrong = OtpCode::parse(&format!("{:06}", (right + 1) % 1_000_000)).expect("six digits");

    let mut g = c.benchmark_group("engine");
    g.bench_function("hmac_sha256_raw", |b| b.iter(|| raw_hmac(black_box(w))));
    let prekeyed = Hmac::<Sha256>::new_from_slice(&KEY).expect("any key length");
    g.bench_function("hmac_sha256_prekeyed", |b| {
        b.iter(|| {
            let mut mac = prekeyed.clone();
            mac.update(black_box(ID).as_bytes());
            mac.update(&black_box(w).to_be_bytes());
            mac.finalize().into_bytes()
        })
    });
    g.bench_function("hmac_sha256_raw_x2", |b| {
        b.iter(|| (raw_hmac(black_box(w - 1)), raw_hmac(black_box(w))))
    });
    g.bench_function("hmac_sha256_raw_x3", |b| {
        b.iter(|| {
            (
                raw_hmac(black_box(w - 1)),
                raw_hmac(black_box(w)),
                raw_hmac(black_box(w + 1)),
            )
        })
    });
    g.bench_function("generate", |b| {
        b.iter(|| engine.generate(black_box(&identity), black_box(MID), 0))
    });
    g.bench_function("verify_2_candidates", |b| {
        b.iter(|| {
            engine
                .verify(
                    black_box(&identity),
                    black_box(&wrong),
                    black_box(MID),
                    &[0, 0],
                )
                .is_err()
        })
    });
    g.bench_function("verify_3_candidates", |b| {
        b.iter(|| {
            engine
                .verify(
                    black_box(&identity),
                    black_box(&wrong),
                    black_box(EDGE),
                    &[0, 0, 0],
                )
                .is_err()
        })
    });
    g.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::engine);
}
criterion_main!(group::benches);
