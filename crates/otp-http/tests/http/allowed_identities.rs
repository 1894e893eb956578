//! `ALLOWED_IDENTITIES` over HTTP (SPEC §11): `POST /api/v1/otp/request`
//! answers a refused identity exactly as an allowed one (status, body,
//! rate-limit headers) and sends nothing; its verify is a wrong code.

use otp_service::IdentityAllowlist;

use crate::support::{request_otp, send, verify_otp, Reply, Setup};

fn rate_headers(r: &Reply) -> Vec<(String, Option<String>)> {
    [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Window",
    ]
    .into_iter()
    .map(|h| (h.to_owned(), r.header(h).map(str::to_owned)))
    .collect()
}

#[actix_web::test]
async fn a_refused_identity_gets_the_same_200_and_headers_and_no_code() {
    let h = Setup {
        allowed_identities: IdentityAllowlist::parse("*@example.com").unwrap(),
        ..Setup::default()
    }
    .build();
    let app = h.app().await;
    let allowed = send(&app, request_otp("ann@example.com")).await;
    let refused = send(&app, request_otp("eve@evil.test")).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(refused.status, 200, "{}", refused.text());
    assert!(rate_headers(&allowed).iter().all(|(_, v)| v.is_some()));
    assert_eq!(rate_headers(&refused), rate_headers(&allowed));
    assert_eq!(refused.json(), allowed.json(), "the same body");
    assert_eq!(h.outbox.count("ann@example.com"), 1);
    assert_eq!(h.outbox.count("eve@evil.test"), 0);

    // Its verify is the 400 otp_invalid of a wrong code, with the same headers.
    let refused = send(&app, verify_otp("eve@evil.test", "123456")).await;
    let wrong = send(&app, verify_otp("ann@example.com", "123456")).await;
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert_eq!(refused.status, wrong.status);
    assert_eq!(refused.json(), wrong.json());
    assert_eq!(rate_headers(&refused), rate_headers(&wrong));
}
