//! The web gate's deploy files (SPEC §11, issue 15): `deploy/nginx/gate.conf`
//! and `deploy/caddy/Caddyfile` rendered to loopback ports exactly as the
//! end-to-end runs will use them (`nginx -t`, `caddy validate`), and the
//! Traefik files (no Debian package: parsed with Python's `yaml`) checked
//! for the middleware's address, headers and router rules.
//!
//! A missing nginx, caddy or python3 `yaml` skips with a message, and fails
//! under `OTP_E2E_REQUIRE_ALL=1`.

use std::process::Command;

use otp_testkit::{caddy, nginx};
use serde_json::{json, Value};

use crate::deploy::{must_replace, render_nginx_conf, repo_file, yaml_docs};
use crate::support::{free_port, skip_without, TempDir};

/// deploy/nginx/gate.conf on 127.0.0.1:`port` (no TLS: the certificate
/// lines go), otp-server and the application on their loopback ports.
fn render_nginx_gate(dir: &TempDir, port: u16, otp_port: u16, app_port: u16) -> Command {
    let site = repo_file("deploy/nginx/gate.conf");
    let site = must_replace(
        &site,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{port};"),
    );
    let site = must_replace(&site, "server_name app.example.com;", "server_name _;");
    let site = must_replace(
        &site,
        "    ssl_certificate /etc/ssl/app.example.com/fullchain.pem;\n",
        "",
    );
    let site = must_replace(
        &site,
        "    ssl_certificate_key /etc/ssl/app.example.com/privkey.pem;\n",
        "",
    );
    let site = must_replace(
        &site,
        "set $otp_upstream http://127.0.0.1:8000;",
        &format!("set $otp_upstream http://127.0.0.1:{otp_port};"),
    );
    let site = must_replace(
        &site,
        "set $app_upstream http://127.0.0.1:3000;",
        &format!("set $app_upstream http://127.0.0.1:{app_port};"),
    );
    let cmd = render_nginx_conf(dir, "gate.conf", &site);
    nginx::check(&cmd);
    cmd
}

/// deploy/caddy/Caddyfile on http://127.0.0.1:`port` (automatic HTTPS and
/// the admin API off, bound to loopback), otp-server and the application on
/// their loopback ports.
fn render_caddy_gate(dir: &TempDir, port: u16, otp_port: u16, app_port: u16) -> Command {
    let file = repo_file("deploy/caddy/Caddyfile");
    let file = must_replace(
        &file,
        "{$GATE_SITE:app.example.com} {\n",
        &format!("{{\n\tadmin off\n\tauto_https off\n}}\n\nhttp://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n"),
    );
    let file = must_replace(
        &file,
        "{$OTP_UPSTREAM:127.0.0.1:8000}",
        &format!("127.0.0.1:{otp_port}"),
    );
    let file = must_replace(
        &file,
        "{$APP_UPSTREAM:127.0.0.1:3000}",
        &format!("127.0.0.1:{app_port}"),
    );
    let conf = caddy::write_config(dir, &file);
    let cmd = caddy::command(dir, &conf);
    caddy::check(&cmd);
    cmd
}

/// The Traefik files as YAML.
fn traefik_dynamic() -> Option<Value> {
    yaml_docs("deploy/traefik/dynamic/gate.yml").map(|mut d| d.remove(0))
}

#[test]
fn the_traefik_configuration_protects_the_app_with_the_forward_route() {
    let Some(dynamic) = traefik_dynamic() else {
        return;
    };
    let Some(mut statics) = yaml_docs("deploy/traefik/traefik.yml") else {
        return;
    };
    let http = &dynamic["http"];
    let auth = &http["middlewares"]["otp-gate"]["forwardAuth"];
    let address = auth["address"].as_str().expect("address");
    assert!(address.starts_with("http://"), "{address}");
    assert!(address.ends_with("/api/v1/auth/forward"), "{address}");
    assert_eq!(auth["authResponseHeaders"], json!(["X-Auth-Subject"]));
    assert_eq!(
        auth["trustForwardHeader"],
        json!(false),
        "Traefik at the edge trusts no client's X-Forwarded-*"
    );

    let routers = &http["routers"];
    let pages = &routers["otp-gate-pages"];
    let app = &routers["app"];
    assert_eq!(
        pages["rule"],
        "Host(`app.example.com`) && PathPrefix(`/auth/`)"
    );
    assert!(
        pages.get("middlewares").is_none(),
        "the gate's pages are not behind the gate"
    );
    assert_eq!(app["rule"], "Host(`app.example.com`)");
    assert_eq!(app["middlewares"], json!(["otp-gate"]));
    assert!(
        pages["priority"].as_u64() > app["priority"].as_u64(),
        "the /auth/ router must win over the application's"
    );
    let services = &http["services"];
    for router in [pages, app] {
        let service = router["service"].as_str().expect("service");
        assert!(
            services[service]["loadBalancer"]["servers"][0]["url"].is_string(),
            "{service}"
        );
    }
    // The middleware and the pages router reach the same otp-server.
    let otp = services[pages["service"].as_str().expect("service")]["loadBalancer"]["servers"][0]
        ["url"]
        .as_str()
        .expect("url");
    assert!(address.starts_with(otp), "{address} vs {otp}");

    let statics = statics.remove(0);
    let entry = &statics["entryPoints"];
    for router in [pages, app] {
        for ep in router["entryPoints"].as_array().expect("entryPoints") {
            assert!(
                entry[ep.as_str().expect("name")].is_object(),
                "{ep} is not a static entry point"
            );
        }
    }
    assert_eq!(
        statics["providers"]["file"]["directory"],
        "/etc/traefik/dynamic"
    );
}

#[test]
fn the_shipped_gate_proxy_files_pass_nginx_t_and_caddy_validate() {
    if !skip_without("nginx") {
        let dir = TempDir::new("gate-nginx-t");
        render_nginx_gate(&dir, free_port(), free_port(), free_port());
    }
    if !skip_without("caddy") {
        let dir = TempDir::new("gate-caddy-validate");
        render_caddy_gate(&dir, free_port(), free_port(), free_port());
    }
}
