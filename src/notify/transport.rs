//! One HTTP POST, blocking (the engine runs it on a blocking thread): [`Http`] with `ureq`,
//! one agent per receiver with its timeout. Redirects are not followed (a signed body goes
//! where it was sent or nowhere), and no error carries the URL.

use std::time::Duration;

/// One attempt's request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Where (a secret: never logged).
    pub url: &'a str,
    /// Headers besides `Content-Type: application/json`.
    pub headers: &'a [(&'static str, String)],
    /// The JSON body.
    pub body: &'a [u8],
}

/// The receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Its `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The start of the body of an answer that is not 2xx (one line, for the ledger).
    pub detail: String,
}

/// Sends requests.
pub trait Transport: Send + Sync + 'static {
    /// POSTs `req`; an error says why no answer came (no URL in it).
    fn post(&self, req: Request<'_>) -> Result<Answer, String>;
}

/// Longest part of an error answer's body kept.
const DETAIL: usize = 120;

/// HTTP with `ureq`.
pub struct Http {
    agent: ureq::Agent,
}

/// TLS as handoff's HTTP clients speak it: the platform's TLS and its trusted roots (ureq's
/// default provider, rustls, is not built in: a client without this cannot reach `https://`).
pub fn native_tls() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build()
}

impl Http {
    /// An agent whose every request ends within `timeout` (connecting included).
    pub fn new(timeout: Duration) -> Http {
        let tls = native_tls();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(timeout))
            .tls_config(tls)
            .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http { agent }
    }
}

impl Transport for Http {
    fn post(&self, req: Request<'_>) -> Result<Answer, String> {
        let mut r = self
            .agent
            .post(req.url)
            .header("Content-Type", "application/json");
        for (k, v) in req.headers {
            r = r.header(*k, v);
        }
        let mut response = r.send(req.body).map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .body_mut()
            .with_config()
            .limit(16 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let detail = if (200..300).contains(&status) {
            String::new()
        } else {
            one_line(&body, DETAIL)
        };
        Ok(Answer {
            status,
            retry_after,
            detail,
        })
    }
}

/// `text` on one line, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

/// Why no answer came, without the URL (ureq's own messages may carry it).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timeout".into(),
        ureq::Error::Io(io) => format!("connection: {io}"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Tls(why) => format!("TLS: {why}"),
        ureq::Error::Protocol(p) => format!("HTTP protocol: {p}"),
        ureq::Error::BadUri(_) => "not a usable URL".into(),
        _ => "request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_one_bounded_line() {
        assert_eq!(one_line("  no_service\n", 120), "no_service");
        assert_eq!(one_line("a\r\nb", 120), "a  b");
        assert_eq!(one_line(&"x".repeat(500), 120).len(), 120);
    }

    #[test]
    fn a_refused_connection_is_an_error_without_the_url() {
        let port = crate::sim::broker::free_port();
        let url = format!("http://127.0.0.1:{port}/secret-token-path");
        let e = Http::new(Duration::from_secs(2))
            .post(Request {
                url: &url,
                headers: &[],
                body: b"{}",
            })
            .unwrap_err();
        assert!(!e.contains("secret-token-path"), "{e}");
        assert!(
            e.starts_with("connection") || e.contains("connection"),
            "{e}"
        );
    }
}
