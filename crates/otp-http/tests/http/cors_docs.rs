//! CORS (SPEC §5: off unless configured, `*` never with credentials), the
//! OpenAPI 3.1 document (structure, and `openapi-spec-validator` when
//! Python has it), the offline Swagger UI at `/docs`, and mounting the API
//! under a prefix next to an application's own routes.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::support::*;
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, HttpResponse};
use otp_http::HttpConfig;
use otp_testkit::skip;
use serde_json::Value;

const APP_ORIGIN: &str = "https://app.example.com";

fn with_origins(origins: &[&str]) -> Harness {
    Setup {
        http: HttpConfig {
            cors_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            ..HttpConfig::default()
        },
        ..Setup::default()
    }
    .build()
}

fn preflight(origin: &str) -> TestRequest {
    TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/otp/request")
        .insert_header(("Origin", origin.to_owned()))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .insert_header(("Access-Control-Request-Headers", "content-type"))
}

// ------------------------------------------------------------------ CORS

#[actix_web::test]
async fn cors_is_off_without_configured_origins() {
    let h = harness();
    let app = h.app().await;
    let r = send(
        &app,
        request_otp("a@example.com").insert_header(("Origin", APP_ORIGIN)),
    )
    .await;
    assert_eq!(r.status, 200);
    for (name, _) in r.headers.iter() {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "unexpected CORS header {name}"
        );
    }
    let r = send(&app, preflight(APP_ORIGIN)).await;
    assert!(r.header("access-control-allow-origin").is_none());
    r.assert_error(405, "method_not_allowed", None);
}

#[actix_web::test]
async fn an_allowed_origin_gets_allow_origin_with_credentials() {
    let h = with_origins(&[APP_ORIGIN, "https://admin.example.com"]);
    let app = h.app().await;
    let r = send(
        &app,
        request_otp("a@example.com").insert_header(("Origin", APP_ORIGIN)),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP_ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in ["x-ratelimit-remaining", "retry-after"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    assert!(r
        .header("vary")
        .unwrap()
        .to_ascii_lowercase()
        .contains("origin"));
    // error responses carry CORS headers too, so a browser can read them
    let r = send(&app, request_otp("").insert_header(("Origin", APP_ORIGIN))).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP_ORIGIN));
}

#[actix_web::test]
async fn preflight_from_an_allowed_origin_succeeds() {
    let h = with_origins(&[APP_ORIGIN]);
    let app = h.app().await;
    let r = send(&app, preflight(APP_ORIGIN)).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP_ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let methods = r.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(headers.contains("content-type"), "{headers}");
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    // the bearer route's preflight allows Authorization
    let r = send(
        &app,
        TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/api/v1/token/verify")
            .insert_header(("Origin", APP_ORIGIN))
            .insert_header(("Access-Control-Request-Method", "GET"))
            .insert_header(("Access-Control-Request-Headers", "authorization")),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("authorization"));
}

#[actix_web::test]
async fn wildcard_never_sends_credentials() {
    for origins in [&["*"][..], &[APP_ORIGIN, "*"][..]] {
        let h = with_origins(origins);
        let app = h.app().await;
        let r = send(
            &app,
            request_otp("a@example.com").insert_header(("Origin", "https://anyone.test")),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "{origins:?}"
        );
        assert_ne!(r.header("access-control-allow-credentials"), Some("true"));
        let r = send(&app, preflight("https://anyone.test")).await;
        assert!(r.status.is_success());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_ne!(r.header("access-control-allow-credentials"), Some("true"));
    }
}

#[actix_web::test]
async fn a_disallowed_origin_gets_no_allow_origin() {
    let h = with_origins(&[APP_ORIGIN]);
    let app = h.app().await;
    let r = send(
        &app,
        request_otp("a@example.com").insert_header(("Origin", "https://evil.test")),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "the request itself is served; the browser hides it"
    );
    assert!(r.header("access-control-allow-origin").is_none());
    // (actix-cors still sends `Access-Control-Allow-Credentials: true` here;
    // without an allow-origin a browser ignores it.)
    let r = send(&app, preflight("https://evil.test")).await;
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(!r.status.is_success(), "{}", r.status);
    // a look-alike of an allowed origin is not allowed
    let r = send(&app, preflight("https://app.example.com.evil.test")).await;
    assert!(r.header("access-control-allow-origin").is_none());
}

// --------------------------------------------------------------- OpenAPI

/// Every route of the SPEC §5 table with the statuses it documents.
fn documented() -> BTreeMap<(&'static str, &'static str), &'static [&'static str]> {
    BTreeMap::from([
        (
            ("/api/v1/otp/request", "post"),
            &["200", "408", "413", "415", "422", "429", "502", "503"][..],
        ),
        (
            ("/api/v1/otp/verify", "post"),
            &["200", "400", "408", "413", "415", "422", "429", "503"][..],
        ),
        (
            ("/api/v1/token/introspect", "post"),
            &["200", "408", "413", "415", "422"][..],
        ),
        (("/api/v1/token/verify", "get"), &["200", "401"][..]),
        (("/api/v1/auth/forward", "get"), &["200", "302", "401"][..]),
        (
            ("/api/v1/token/refresh", "post"),
            &["200", "401", "408", "413", "415", "422", "503"][..],
        ),
        (
            ("/api/v1/logout", "post"),
            &["200", "401", "408", "413", "415", "422", "503"][..],
        ),
        (
            ("/api/v1/token/revoke", "post"),
            &["200", "408", "413", "415", "422", "503"][..],
        ),
        (("/health", "get"), &["200"][..]),
        (("/healthz", "get"), &["200"][..]),
        (("/readyz", "get"), &["200", "503"][..]),
        (("/metrics", "get"), &["200"][..]),
        (("/docs", "get"), &["200"][..]),
        (("/openapi.json", "get"), &["200"][..]),
        (("/.well-known/jwks.json", "get"), &["200"][..]),
    ])
}

async fn openapi_document() -> (Value, web::Bytes) {
    let h = harness();
    let app = h.app().await;
    let r = send(&app, TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    (r.json(), r.body)
}

#[actix_web::test]
async fn openapi_is_3_1_and_documents_every_route_and_response() {
    let (doc, _) = openapi_document().await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "stateless-otp");
    let paths = doc["paths"].as_object().unwrap();
    for ((path, method), statuses) in documented() {
        let op = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"))[method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let responses: BTreeSet<&str> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let want: BTreeSet<&str> = statuses.iter().copied().collect();
        assert_eq!(responses, want, "{method} {path}");
        for (status, resp) in op["responses"].as_object().unwrap() {
            assert!(resp["description"].is_string(), "{method} {path} {status}");
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
            // The headers the responses really carry (issue 13 item 12):
            // Retry-After on 429 and 503, the rate-limit headers on every
            // answer of an OTP route that passed a limit check.
            if status == "429" || status == "503" {
                assert!(
                    resp["headers"]["Retry-After"].is_object(),
                    "{method} {path} {status}"
                );
            }
            let limited = path.starts_with("/api/v1/otp/");
            if limited && ["200", "400", "429"].contains(&status.as_str()) {
                for h in [
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Window",
                ] {
                    assert!(
                        resp["headers"][h]["schema"]["type"] == "integer",
                        "{method} {path} {status} {h}: {}",
                        resp["headers"]
                    );
                }
            }
        }
    }
    let undocumented: Vec<&String> = paths
        .keys()
        .filter(|p| !documented().keys().any(|(d, _)| d == p))
        .collect();
    assert!(undocumented.is_empty(), "{undocumented:?}");
    // request bodies point at the shared wire schemas
    assert_eq!(
        paths["/api/v1/otp/verify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/OtpVerifyRequest"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "ErrorBody",
        "ErrorCode",
        "FieldError",
        "OtpRequestResponse",
        "TokenStatus",
    ] {
        assert!(schemas.contains_key(s), "schema {s}");
    }
    // FastAPI's `detail` is part of every error body (issue 13 item 8)
    assert!(
        schemas["ErrorBody"]["required"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("detail")),
        "{}",
        schemas["ErrorBody"]
    );
    assert_eq!(schemas["Detail"]["oneOf"][0]["type"], "string");
    assert_eq!(schemas["Detail"]["oneOf"][1]["type"], "array");
    let codes: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for c in [
        "otp_invalid",
        "rate_limit_exceeded",
        "token_missing",
        "backend_unavailable",
    ] {
        assert!(codes.contains(&c), "{codes:?}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(
        paths["/api/v1/token/verify"]["get"]["responses"]["401"]["headers"]["WWW-Authenticate"]
            .is_object()
    );
}

#[actix_web::test]
async fn openapi_passes_openapi_spec_validator() {
    const TEST: &str = "openapi_passes_openapi_spec_validator";
    let (_, body) = openapi_document().await;
    let probe = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(_) => {
            skip(
                TEST,
                "python3 has no openapi_spec_validator (pip install openapi-spec-validator)",
            );
            return;
        }
        Err(e) => {
            skip(TEST, &format!("python3 is not runnable: {e}"));
            return;
        }
    }
    let path = std::env::temp_dir().join(format!("otp-http-openapi-{}.json", std::process::id()));
    std::fs::write(&path, &body).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys\n\
             from openapi_spec_validator import OpenAPIV31SpecValidator, validate\n\
             doc = json.load(open(sys.argv[1]))\n\
             validate(doc, cls=OpenAPIV31SpecValidator)\n\
             print('valid', doc['openapi'])",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected /openapi.json:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("valid 3.1"));
}

// ------------------------------------------------------------------ /docs

/// The values of every `attr="…"` in `html`.
fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// Resolves a relative reference against a page path, as a browser does.
fn resolve(page: &str, reference: &str) -> String {
    let dir = &page[..=page.rfind('/').unwrap()];
    let mut parts: Vec<&str> = dir.split('/').collect();
    parts.pop(); // the empty segment after the last '/'
    for seg in reference.split('/') {
        match seg {
            ".." => {
                parts.pop();
            }
            "." => {}
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[test]
fn resolve_behaves_like_a_browser() {
    assert_eq!(resolve("/docs", "docs/a.js"), "/docs/a.js");
    assert_eq!(resolve("/docs/", "a.js"), "/docs/a.js");
    assert_eq!(resolve("/auth/docs", "docs/a.js"), "/auth/docs/a.js");
    assert_eq!(
        resolve("/auth/docs/init.js", "../openapi.json"),
        "/auth/openapi.json"
    );
}

static VENDORED_BUNDLE: &[u8] = otp_swagger_ui::BUNDLE_JS;

/// Loads the docs page at `page` like a browser: every script and style
/// sheet, and the document `init.js` points Swagger UI at.
async fn check_docs_page<S, B>(app: &S, page: &str, openapi_path: &str)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let r = send(app, TestRequest::get().uri(page)).await;
    assert_eq!(r.status, 200, "{page}");
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = r.text();
    let refs: Vec<&str> = attr_values(&html, "src")
        .into_iter()
        .chain(attr_values(&html, "href"))
        .collect();
    assert!(refs.len() >= 3, "{html}");
    assert!(html.contains("<script src="), "{html}");
    assert!(html.contains("<link rel=\"stylesheet\" href="), "{html}");
    for reference in &refs {
        assert!(
            !reference.starts_with("http://")
                && !reference.starts_with("https://")
                && !reference.starts_with("//"),
            "{page} loads {reference} from another origin"
        );
        let url = resolve(page, reference);
        let asset = send(app, TestRequest::get().uri(&url)).await;
        assert_eq!(asset.status, 200, "{page} -> {url}");
        if url.ends_with(".js") {
            assert!(asset
                .header("content-type")
                .unwrap()
                .starts_with("application/javascript"));
        }
        if url.ends_with("swagger-ui-bundle.js") {
            assert_eq!(&asset.body[..], VENDORED_BUNDLE, "the vendored bundle");
        }
        if url.ends_with("init.js") {
            let js = asset.text();
            assert!(!js.contains("http://") && !js.contains("https://"), "{js}");
            assert!(js.contains("'../openapi.json'"), "{js}");
            let spec = resolve(&url, "../openapi.json");
            assert_eq!(spec, openapi_path);
            let doc = send(app, TestRequest::get().uri(&spec)).await;
            assert_eq!(doc.status, 200, "{spec}");
            assert!(doc.json()["openapi"].as_str().unwrap().starts_with("3.1"));
        }
    }
}

#[actix_web::test]
async fn docs_serve_swagger_ui_from_the_binary_only() {
    let h = harness();
    let app = h.app().await;
    check_docs_page(&app, "/docs", "/openapi.json").await;
    check_docs_page(&app, "/docs/", "/openapi.json").await;
    let r = send(&app, TestRequest::get().uri("/docs/swagger-ui-bundle.js")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.len() > 1_000_000);
    assert!(r.text().contains("SwaggerUIBundle"));
    let r = send(&app, TestRequest::get().uri("/docs/swagger-ui.css")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/css"));
}

// --------------------------------------------------------------- mounting

#[actix_web::test]
async fn the_api_mounts_under_a_scope_next_to_application_routes() {
    let h = harness();
    let app = test::init_service(
        App::new()
            .route(
                "/",
                web::get().to(|| async { HttpResponse::Ok().body("my app") }),
            )
            .service(web::scope("/auth").configure(otp_http::configure(h.state.clone())))
            .default_service(web::to(otp_http::routes::not_found)),
    )
    .await;
    let r = send(&app, TestRequest::get().uri("/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "my app");

    let r = send(
        &app,
        TestRequest::post()
            .uri("/auth/api/v1/otp/request")
            .set_json(serde_json::json!({"identity": "m@example.com"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let code = h.outbox.last_code("m@example.com");
    let r = send(
        &app,
        TestRequest::post()
            .uri("/auth/api/v1/otp/verify")
            .set_json(serde_json::json!({"identity": "m@example.com", "otp": code})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = send(
        &app,
        TestRequest::get()
            .uri("/auth/api/v1/token/verify")
            .insert_header(("Authorization", format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(r.header("x-auth-subject"), Some("m@example.com"));
    // JSON errors of the mounted routes keep their shape
    let r = send(
        &app,
        TestRequest::post()
            .uri("/auth/api/v1/otp/request")
            .insert_header(("content-type", "text/plain"))
            .set_payload("x"),
    )
    .await;
    r.assert_error(415, "unsupported_media_type", None);
    assert_eq!(
        send(&app, TestRequest::get().uri("/auth/health"))
            .await
            .text(),
        r#"{"status":"ok","service":"stateless-otp"}"#
    );
    // not mounted at the root
    let r = send(&app, TestRequest::get().uri("/health")).await;
    r.assert_error(404, "not_found", None);
    // the docs page finds its assets and document under the prefix
    check_docs_page(&app, "/auth/docs", "/auth/openapi.json").await;
    check_docs_page(&app, "/auth/docs/", "/auth/openapi.json").await;
    // metrics label mounted routes by their template
    let m = send(&app, TestRequest::get().uri("/auth/metrics"))
        .await
        .text();
    assert_eq!(
        metric_with(
            &m,
            "http_requests_total",
            r#"route="/api/v1/otp/verify",status="200""#
        ),
        1.0,
        "{m}"
    );
}
