//! The `Host` allow-list. A page on an attacker's site can make its own name resolve to
//! 127.0.0.1 (DNS rebinding) and then talk to a server on the victim's machine as a "same
//! origin"; the one thing it cannot change is the `Host` its browser sends, which names the
//! attacker's site. So a surface answers only requests whose `Host` is an address (what
//! probes, scrapers and port-forwards send), `localhost`, the host of its public URL, or a
//! name listed in its `allowed_hosts`; any other gets 421 Misdirected Request.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The names a surface answers to, beside addresses and `localhost`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    names: Vec<String>,
}

impl Allowed {
    /// `public_urls`' hosts and the `names` listed (either may be empty).
    pub fn new<'a>(
        public_urls: impl IntoIterator<Item = &'a str>,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Allowed {
        let mut all: Vec<String> = public_urls
            .into_iter()
            .filter_map(url_host)
            .chain(names.into_iter().map(|n| host_of(n).to_string()))
            .map(|h| normal(&h))
            .filter(|h| !h.is_empty())
            .collect();
        all.sort();
        all.dedup();
        Allowed { names: all }
    }

    /// Whether a `Host` value (with or without a port) is one this surface answers to.
    pub fn allows(&self, host: &str) -> bool {
        let h = normal(host_of(host));
        h == "localhost" || h.parse::<std::net::IpAddr>().is_ok() || self.names.contains(&h)
    }

    /// `Ok` for a request whose `Host` (or HTTP/2 authority) is allowed, or that names none;
    /// else the 421 answer.
    #[allow(clippy::result_large_err)] // the error is the answer itself
    pub fn check(&self, req: &Request) -> Result<(), Response> {
        let host = match req.headers().get(header::HOST) {
            Some(v) => v.to_str().unwrap_or("\u{fffd}"),
            None => match req.uri().authority() {
                Some(a) => a.as_str(),
                None => return Ok(()),
            },
        };
        if self.allows(host) {
            return Ok(());
        }
        Err((
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to the host {:?}: add it to the surface's \
                 public_url or allowed_hosts\n",
                host.chars().take(100).collect::<String>()
            ),
        )
            .into_response())
    }
}

/// The host of `http(s)://[user@]host[:port]/…`.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    Some(host_of(authority).to_string())
}

/// A `host[:port]` without its port; `[v6]` without brackets.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        // One colon: a port. More: a bare IPv6 address.
        Some((h, _)) if !h.contains(':') => h,
        _ => authority,
    }
}

fn normal(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str) -> Request {
        Request::builder()
            .uri("/")
            .header(header::HOST, host)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn addresses_localhost_and_the_configured_names_are_answered_and_nothing_else() {
        let a = Allowed::new(
            ["https://inbox.example.com/base"],
            ["handoff-gateway.handoff.svc"],
        );
        for ok in [
            "127.0.0.1:9870",
            "10.1.2.3",
            "[::1]:9870",
            "::1",
            "localhost:9870",
            "LOCALHOST",
            "inbox.example.com",
            "Inbox.Example.com.:443",
            "handoff-gateway.handoff.svc:8080",
        ] {
            assert!(a.allows(ok), "{ok}");
            assert!(a.check(&req(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "attacker.example",
            "inbox.example.com.attacker.example",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!a.allows(refused), "{refused}");
            let r = a.check(&req(refused)).unwrap_err();
            assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{refused}");
        }
    }

    #[test]
    fn a_request_naming_no_host_is_answered() {
        let r = Request::builder()
            .uri("/")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(Allowed::default().check(&r).is_ok());
    }

    #[test]
    fn url_hosts_are_read_without_scheme_user_port_or_path() {
        assert_eq!(
            url_host("https://a@b.example:8443/x?y").as_deref(),
            Some("b.example")
        );
        assert_eq!(url_host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(url_host("not a url"), None);
    }
}
