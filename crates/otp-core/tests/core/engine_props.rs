//! Property tests of the OTP engine: round trips, single-digit changes and
//! the acceptance-window policy of SPEC §3.2.

use otp_core::{
    Digits, HashAlgorithm, Identity, OtpCode, OtpEngine, OtpKeyRing, OtpPolicy, SecretBytes,
    VerifyError,
};
use proptest::prelude::*;

fn engine(digits: u8, window: u64, alg: HashAlgorithm, key: Vec<u8>) -> OtpEngine {
    let policy = OtpPolicy::builder()
        .digits(Digits::try_from(digits).unwrap())
        .window_seconds(window)
        .algorithm(alg)
        .clock_skew_seconds(30.min(window - 1))
        .build()
        .unwrap();
    OtpEngine::new(
        policy,
        OtpKeyRing::new(SecretBytes::new(key), vec![]).unwrap(),
    )
}

fn alg() -> impl Strategy<Value = HashAlgorithm> {
    prop_oneof![
        Just(HashAlgorithm::Sha1),
        Just(HashAlgorithm::Sha256),
        Just(HashAlgorithm::Sha512)
    ]
}

fn identity() -> impl Strategy<Value = Identity> {
    "[A-Za-z0-9._-]{1,40}(@[a-z0-9.-]{1,20})?"
        .prop_filter_map("a valid identity", |s| Identity::parse(&s).ok())
}

proptest! {
    #[test]
    fn generate_then_verify_round_trips(
        who in identity(),
        digits in 4u8..=10,
        window in 30u64..=3600,
        time in 0u64..=4_000_000_000,
        counter in 0u32..5,
        alg in alg(),
        key in proptest::collection::vec(any::<u8>(), 16..64),
    ) {
        let e = engine(digits, window, alg, key);
        let code = e.generate(&who, time, counter);
        prop_assert_eq!(code.as_str().len(), usize::from(digits));
        let counters = vec![counter; e.candidate_windows(time).len()];
        let m = e.verify(&who, &code, time, &counters).unwrap();
        prop_assert_eq!(m.counter, counter);
        // the code of window w matched; it may equal another candidate's code
        // only by coincidence, in which case the oldest window is reported
        prop_assert!(m.window <= e.window_at(time));
    }

    #[test]
    fn any_changed_digit_fails(
        who in identity(),
        time in 1_000_000u64..=4_000_000_000,
        pos in 0usize..6,
        bump in 1u8..10,
        key in proptest::collection::vec(any::<u8>(), 16..32),
    ) {
        let e = engine(6, 300, HashAlgorithm::Sha256, key);
        let code = e.generate(&who, time, 0);
        let mut bytes = code.as_str().as_bytes().to_vec();
        bytes[pos] = b'0' + (bytes[pos] - b'0' + bump) % 10;
        let changed = String::from_utf8(bytes).unwrap();
        let counters = vec![0; e.candidate_windows(time).len()];
        // The changed code could, with probability ~3e-6, equal another
        // candidate window's code; exclude that coincidence explicitly.
        let collides = e.candidate_windows(time).iter().any(|w| e.generate_for_window(&who, *w, 0).as_str() == changed);
        prop_assume!(!collides);
        let changed = OtpCode::parse(&changed).unwrap();
        prop_assert_eq!(e.verify(&who, &changed, time, &counters), Err(VerifyError::NoMatch));
    }

    #[test]
    fn window_policy_holds_at_any_time(
        who in identity(),
        time in 1_000_000u64..=4_000_000_000,
        key in proptest::collection::vec(any::<u8>(), 16..32),
    ) {
        let e = engine(8, 300, HashAlgorithm::Sha256, key);
        let w = e.window_at(time);
        let counters = vec![0; e.candidate_windows(time).len()];
        let check = |window: u64| {
            let code = e.generate_for_window(&who, window, 0);
            e.verify(&who, &code, time, &counters).is_ok()
        };
        prop_assert!(check(w));
        prop_assert!(check(w - 1));
        // 8 digits make accidental collisions negligible (1e-8 per pair)
        prop_assert!(!check(w - 2));
        let near_next = (w + 1) * 300 - time <= 30;
        prop_assert_eq!(check(w + 1), near_next);
        prop_assert!(!check(w + 2));
    }
}
