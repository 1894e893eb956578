//! The OpenAPI 3.1 document (utoipa) and Swagger UI served from the binary:
//! the UI's assets come from the `otp-swagger-ui` crate (`vendor/swagger-ui/`:
//! swagger-ui-dist from npm, unmodified, with its Apache-2.0 `LICENSE`,
//! `NOTICE` and `VERSION`, kept apart from the project's own code) and are
//! compiled in, so `/docs` works offline and loads nothing from a CDN.

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use otp_swagger_ui::{BUNDLE_JS, CSS};

use crate::routes;

/// The API description; `ApiDoc::openapi()` builds the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "stateless-otp",
        description = "One-time-code authentication without a database of codes: request a code for an identity, verify it, receive a short-lived signed JWT.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        routes::request_otp,
        routes::verify_otp,
        routes::refresh,
        routes::logout,
        routes::revoke,
        routes::introspect,
        routes::verify_bearer,
        crate::gate::forward::forward,
        routes::health,
        routes::healthz,
        routes::readyz,
        routes::jwks,
        routes::metrics,
        openapi_json,
        index,
    ),
    components(schemas(
        otp_core::wire::OtpRequest,
        otp_core::wire::OtpRequestResponse,
        otp_core::wire::OtpVerifyRequest,
        otp_core::wire::OtpVerifyResponse,
        otp_core::wire::IntrospectRequest,
        otp_core::wire::RefreshRequest,
        otp_core::wire::RefreshResponse,
        otp_core::wire::LogoutRequest,
        otp_core::wire::LogoutResponse,
        otp_core::wire::RevokeRequest,
        otp_core::wire::TokenStatus,
        otp_core::wire::HealthResponse,
        crate::ErrorResponse,
        crate::error::Detail,
        otp_core::wire::ErrorCode,
        otp_core::wire::FieldError,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "otp", description = "Request and verify one-time codes"),
        (name = "token", description = "Verify and introspect access tokens"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        // The web gate's session cookie (SPEC §11), read by
        // `/api/v1/token/verify` when no bearer token is sent.
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::routes::SESSION_COOKIE,
                "The access token in the `otp_session` cookie set by the web gate; \
                 read only when no `Authorization: Bearer` token is sent.",
            ))),
        );
    }
}

/// The Swagger UI page. Asset URLs are relative (`{base}` is `docs/` when
/// served at `/docs` and empty at `/docs/`), so the page works under any
/// mount prefix (e.g. `web::scope("/auth")`) and never names another origin.
fn index_html(base: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>stateless-otp API</title>
  <link rel="stylesheet" href="{base}swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{base}swagger-ui-bundle.js"></script>
  <script src="{base}init.js"></script>
</body>
</html>
"#
    )
}

/// Finds the document relative to this script's own URL (`<mount>/docs/init.js`
/// → `<mount>/openapi.json`), so a mount prefix needs no configuration.
const INIT_JS: &str = r#"(function () {
  var spec = new URL('../openapi.json', document.currentScript.src).href;
  window.addEventListener('load', function () {
    window.ui = SwaggerUIBundle({ url: spec, dom_id: '#swagger-ui', validatorUrl: null, deepLinking: true });
  });
})();
"#;

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'";

/// `GET /docs` and `GET /docs/`: the Swagger UI page.
#[utoipa::path(get, path = "/docs", tag = "ops",
    responses((status = 200, description = "Swagger UI (HTML); its assets are served from `/docs/*`, no CDN", content_type = "text/html")))]
pub async fn index(req: HttpRequest) -> HttpResponse {
    let base = if req.path().ends_with('/') {
        ""
    } else {
        "docs/"
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .body(index_html(base))
}

/// `GET /docs/{file}`: the vendored assets.
pub async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, ctype): (&'static [u8], &str) = match file.as_str() {
        "swagger-ui-bundle.js" => (BUNDLE_JS, "application/javascript; charset=utf-8"),
        "swagger-ui.css" => (CSS, "text/css; charset=utf-8"),
        "init.js" => (INIT_JS.as_bytes(), "application/javascript; charset=utf-8"),
        _ => return actix_web::ResponseError::error_response(&crate::ApiError::NotFound),
    };
    HttpResponse::Ok()
        .content_type(ctype)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(body)
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
pub async fn openapi_json(doc: web::Data<crate::HttpState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.openapi_json.clone())
}
