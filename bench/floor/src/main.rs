//! `otp-bench-floor <app|lane> <bind>`: answers every request with the
//! forward-auth body nginx answers in bench/load.py, through
//! - `app`: an actix-web `App` with one route (the layer otp-server's
//!   routes run in), or
//! - `lane`: an actix-http service function (the layer of
//!   `otp_http::fast_lane`),
//!
//! on one worker, so that bench/floor.py can show what the framework alone
//! costs per request.

use actix_http::{HttpMessage, HttpService, Request, Response, StatusCode};
use actix_web::dev::fn_service;
use actix_web::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

const BODY: &str = r#"{"active":true,"claims":{"sub":"load-user"}}"#;

async fn app_route(req: HttpRequest) -> HttpResponse {
    let _ = req.headers().get(AUTHORIZATION);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(bind)) = (args.next(), args.next()) else {
        eprintln!("usage: otp-bench-floor <app|lane> <bind>");
        std::process::exit(2);
    };
    actix_web::rt::System::new().block_on(async move {
        match mode.as_str() {
            "app" => {
                HttpServer::new(|| App::new().default_service(web::to(app_route)))
                    .workers(1)
                    .bind(bind)?
                    .run()
                    .await
            }
            "lane" => {
                actix_server::Server::build()
                    .workers(1)
                    .bind("floor", bind, || {
                        HttpService::build()
                            .finish(fn_service(|req: Request| async move {
                                let _ = req.headers().get(AUTHORIZATION);
                                let mut res = Response::with_body(StatusCode::OK, BODY);
                                res.headers_mut().insert(
                                    CONTENT_TYPE,
                                    HeaderValue::from_static("application/json"),
                                );
                                Ok::<_, std::convert::Infallible>(res)
                            }))
                            .tcp()
                    })?
                    .run()
                    .await
            }
            other => {
                eprintln!("otp-bench-floor: unknown mode {other:?} (app or lane)");
                std::process::exit(2);
            }
        }
    })
}
