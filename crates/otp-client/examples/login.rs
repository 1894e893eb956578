//! A complete login with otp-client: request a code, let the user type it,
//! verify it (the client keeps the token), then call the server with it.
//!
//! Run: `cargo run -p otp-client --example login -- http://127.0.0.1:8000 alice@example.com`
//! (the README shows this file verbatim; the end-to-end tests run `login`).
use std::future::Future;

use otp_client::OtpClient;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Signs `identity` in: `read_code` is asked for the code the user received.
pub async fn login<F, Fut>(
    base_url: &str,
    identity: &str,
    read_code: F,
) -> Result<OtpClient, BoxError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<String, BoxError>>,
{
    let client = OtpClient::new(base_url)?;
    let sent = client.request_otp(identity).await?;
    println!("A code was sent; it is valid for {} s.", sent.ttl_seconds);

    let code = read_code(identity.to_owned()).await?;
    match client.verify_otp(identity, &code).await {
        Ok(_) => {}
        Err(otp_client::Error::InvalidOtp { .. }) => return Err("wrong or expired code".into()),
        Err(otp_client::Error::RateLimited { retry_after, .. }) => {
            return Err(format!("too many attempts; retry in {retry_after:?}").into())
        }
        Err(other) => return Err(other.into()),
    }

    // The token is stored: any call that needs it uses it.
    let me = client.verify_bearer().await?;
    let sub = me
        .claims
        .as_ref()
        .and_then(|c| c.get("sub"))
        .and_then(|s| s.as_str());
    println!("Hello, {}!", sub.unwrap_or("?"));
    Ok(client)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let base_url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let identity = args.next().unwrap_or_else(|| "alice@example.com".into());
    login(&base_url, &identity, |who| async move {
        println!("Enter the code sent to {who}:");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim().to_owned())
    })
    .await?;
    Ok(())
}
