//! Criterion benchmarks of the token API of otp-core (`TokenService`, `SigningKey`): issuing and verifying HS256
//! and EdDSA tokens (verify is the hot path of `GET /api/v1/token/verify`).
//!
//! Run: `cargo bench -p otp-core --bench tokens -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_main, Criterion};
use otp_core::{generate_ed25519_pkcs8, SigningKey, TokenConfig, TokenKeys, TokenService};
use serde_json::Map;

const NOW: u64 = 1_800_000_000;
const SUB: &str = "alice@example.com";

fn services() -> [(&'static str, TokenService); 2] {
    let hs = SigningKey::hs256("benchmark-secret-of-at-least-32-bytes!").unwrap();
    let ed_der = generate_ed25519_pkcs8().unwrap();
    let ed = SigningKey::ed25519_from_pkcs8(ed_der.expose()).unwrap();
    [
        (
            "hs256",
            TokenService::new(TokenKeys::single(hs), TokenConfig::default()).unwrap(),
        ),
        (
            "eddsa",
            TokenService::new(TokenKeys::single(ed), TokenConfig::default()).unwrap(),
        ),
    ]
}

fn tokens(c: &mut Criterion) {
    let mut group = c.benchmark_group("tokens");
    for (name, service) in services() {
        group.bench_function(format!("{name}_issue"), |b| {
            b.iter(|| {
                service
                    .issue(black_box(SUB), black_box(NOW), Map::new())
                    .unwrap()
            })
        });
        let token = service.issue(SUB, NOW, Map::new()).unwrap().token;
        group.bench_function(format!("{name}_verify"), |b| {
            b.iter(|| {
                service
                    .verify(black_box(&token), black_box(NOW + 1))
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// The bare cryptography of one verification, for comparison in the same
/// run: a pre-keyed HMAC-SHA256 over the signing input, and ring's Ed25519
/// verify. `*_verify` minus these is this module's own overhead (parsing,
/// base64, claim checks).
fn baselines(c: &mut Criterion) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use ring::signature::{UnparsedPublicKey, ED25519};

    let mut group = c.benchmark_group("tokens_baseline");
    let [(_, hs), (_, ed)] = services();

    let token = hs.issue(SUB, NOW, Map::new()).unwrap().token;
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let mac =
        Hmac::<sha2::Sha256>::new_from_slice(b"benchmark-secret-of-at-least-32-bytes!").unwrap();
    group.bench_function("hs256_hmac_only", |b| {
        b.iter(|| {
            mac.clone()
                .chain_update(black_box(input.as_bytes()))
                .verify_slice(black_box(&sig))
                .unwrap()
        })
    });

    let token = ed.issue(SUB, NOW, Map::new()).unwrap().token;
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let x = ed.jwks().keys[0].x.clone().unwrap();
    let public = URL_SAFE_NO_PAD.decode(x).unwrap();
    group.bench_function("eddsa_ring_verify_only", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ED25519, &public)
                .verify(black_box(input.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    group.finish();
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::tokens, super::baselines);
}
criterion_main!(group::benches);
