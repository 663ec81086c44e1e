//! Who is signed in: a personal token exchanged for a signed session cookie, or a trusted
//! reverse proxy naming the person in a header; and the form tokens that protect every
//! state-changing request (CSRF). Tokens are configured only as SHA-256 and compared in
//! constant time.

use crate::config::{InboxAuth, InboxSettings};
use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use std::net::IpAddr;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The session cookie's name over plain http.
pub const COOKIE: &str = "handoff_session";
/// Its name when cookies are `Secure`: the `__Host-` prefix makes browsers refuse it unless it
/// was set over https by this host for every path, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE: &str = "__Host-handoff_session";

type HmacSha256 = Hmac<Sha256>;

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Their name (`decided_by`).
    pub name: String,
    /// Their roles.
    pub roles: Vec<String>,
    /// What their form tokens are bound to: their session, or their name behind a proxy.
    binding: String,
}

/// The people and how they sign in.
#[derive(Clone)]
pub struct Auth {
    mode: InboxAuth,
    people: Vec<(String, Vec<String>, Option<[u8; 32]>)>,
    /// The cookie key and the form-token key of `cookie_key`, then of each
    /// `previous_cookie_keys` (still accepted, never used to sign).
    keys: Vec<(Key, [u8; 32])>,
    /// When each person last signed out (unix seconds): their sessions opened before are
    /// refused. One entry per person, however often they sign in and out.
    signed_out: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    ttl: Duration,
    secure: bool,
    proxy_header: String,
    trusted: Vec<IpAddr>,
    /// SHA-256 of the proxy's shared secret, and the header carrying it.
    proxy_secret: Option<([u8; 32], String)>,
    origin: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a token, in hex (what `[[inbox.people]] token_sha256` holds).
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token (32 bytes, hex).
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Auth {
    /// From checked settings (secrets resolved). Without `cookie_key` a random key is made.
    pub fn new(s: &InboxSettings) -> Auth {
        let current: Vec<u8> = match &s.cookie_key {
            Some(k) => k.as_bytes().to_vec(),
            None => rand::random::<[u8; 64]>().to_vec(),
        };
        let keys = std::iter::once(current.as_slice())
            .chain(s.previous_cookie_keys.iter().map(String::as_bytes))
            .map(keys_of)
            .collect();
        let people = s
            .people
            .iter()
            .map(|p| {
                let hash = p
                    .token_sha256
                    .as_deref()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|v| <[u8; 32]>::try_from(v).ok());
                (p.name.clone(), p.roles.clone(), hash)
            })
            .collect();
        let origin = s.base_url();
        Auth {
            mode: s.auth,
            people,
            keys,
            signed_out: Default::default(),
            ttl: s.session_ttl,
            secure: s.secure(),
            proxy_header: s.proxy_header.to_ascii_lowercase(),
            trusted: s
                .trusted_proxies
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            proxy_secret: s.proxy_secret.as_deref().map(|p| {
                let h: [u8; 32] = Sha256::digest(p.as_bytes()).into();
                (h, s.proxy_secret_header.to_ascii_lowercase())
            }),
            origin,
        }
    }

    /// How people sign in.
    pub fn mode(&self) -> InboxAuth {
        self.mode
    }

    /// The person named `name`, as a viewer bound to `binding`.
    fn viewer(&self, name: &str, binding: String) -> Option<Viewer> {
        let (n, roles, _) = self.people.iter().find(|(n, _, _)| n == name)?;
        Some(Viewer {
            name: n.clone(),
            roles: roles.clone(),
            binding,
        })
    }

    /// The person named `name`, answering from elsewhere (Slack): no form token applies.
    pub fn person(&self, name: &str, via: &str) -> Option<Viewer> {
        self.viewer(name, format!("{via}:{name}"))
    }

    /// The person a token belongs to (SHA-256 compared in constant time with every person's).
    pub fn person_with_token(&self, token: &str) -> Option<&str> {
        let h: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let mut found = None;
        for (name, _, hash) in &self.people {
            if let Some(hash) = hash {
                if bool::from(hash.ct_eq(&h)) {
                    found = Some(name.as_str());
                }
            }
        }
        found
    }

    /// What a session remembers of the token it was opened with, so a new token ends the old
    /// one's sessions: 8 bytes of a hash of the token's hash (nothing of the hash itself).
    fn token_tag(&self, name: &str) -> String {
        let hash = self
            .people
            .iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, _, h)| *h);
        hash.map_or_else(
            || "-".into(),
            |h| {
                let tag = Sha256::new()
                    .chain_update(b"handoff inbox session tag\0")
                    .chain_update(h)
                    .finalize();
                hex::encode(&tag[..8])
            },
        )
    }

    /// The session cookie's name: `__Host-` prefixed when cookies are `Secure`.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }

    /// A session cookie for `name`, valid for the configured time from `now_s` (unix seconds).
    pub fn sign_in(&self, jar: SignedCookieJar, name: &str, now_s: u64) -> SignedCookieJar {
        let sid = hex::encode(rand::random::<[u8; 16]>());
        // Opened after the person's last sign-out, even within the same second.
        let out = self
            .signed_out
            .lock()
            .expect("not poisoned")
            .get(name)
            .copied();
        let opened = out.map_or(now_s, |at| now_s.max(at + 1));
        let expires = opened + self.ttl.as_secs();
        let tag = self.token_tag(name);
        let value = format!("{sid}.{expires}.{}.{tag}", hex::encode(name.as_bytes()));
        let cookie = Cookie::build((self.cookie_name(), value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .build();
        jar.add(cookie)
    }

    /// Signs `v` out: every session of theirs opened before now is refused from now on by this
    /// process, even from a copy of the cookie; the jar without the session cookie.
    pub fn sign_out(&self, jar: SignedCookieJar, v: &Viewer, now_s: u64) -> SignedCookieJar {
        if v.binding.starts_with("session:") {
            let mut out = self.signed_out.lock().expect("not poisoned");
            out.insert(v.name.clone(), now_s);
        }
        let cookie = Cookie::build(self.cookie_name())
            .path("/")
            .secure(self.secure)
            .build();
        jar.remove(cookie)
    }

    /// The signed cookie jar of a request, for setting the session cookie (current key).
    pub fn jar(&self, headers: &HeaderMap) -> SignedCookieJar {
        SignedCookieJar::from_headers(headers, self.keys[0].0.clone())
    }

    /// Whether the request carries a session cookie at all (valid or not).
    pub fn has_session_cookie(&self, headers: &HeaderMap) -> bool {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|c| c.trim().split('=').next() == Some(name))
    }

    /// The session cookie's value, verified with the current key or a previous one.
    fn session_value(&self, headers: &HeaderMap) -> Option<String> {
        self.keys.iter().find_map(|(key, _)| {
            let jar = SignedCookieJar::from_headers(headers, key.clone());
            jar.get(self.cookie_name()).map(|c| c.value().to_string())
        })
    }

    /// Who sent a request: by session cookie, or by the proxy's header when the peer is a
    /// trusted proxy. A person no longer configured is nobody.
    pub fn who(&self, headers: &HeaderMap, peer: IpAddr, now_s: u64) -> Option<Viewer> {
        match self.mode {
            InboxAuth::Token => {
                let value = self.session_value(headers)?;
                let mut parts = value.splitn(4, '.');
                let (sid, expires, name, tag) =
                    (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
                let expires = expires.parse::<u64>().ok()?;
                if expires <= now_s {
                    return None;
                }
                let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
                // Opened before the person's last sign-out here: revoked.
                let opened = expires.saturating_sub(self.ttl.as_secs());
                let out = self
                    .signed_out
                    .lock()
                    .expect("not poisoned")
                    .get(&name)
                    .copied();
                if out.is_some_and(|at| opened <= at) {
                    return None;
                }
                // A new token for the person ends the sessions of the old one.
                if tag != self.token_tag(&name) {
                    return None;
                }
                self.viewer(&name, format!("session:{sid}"))
            }
            InboxAuth::Proxy => {
                if !self.trusted.contains(&peer.to_canonical()) || !self.sent_by_the_proxy(headers)
                {
                    return None;
                }
                // Exactly one value: a proxy that appends rather than replaces must not let a
                // client's own header through.
                let mut values = headers.get_all(&self.proxy_header).iter();
                let (Some(value), None) = (values.next(), values.next()) else {
                    return None;
                };
                let name = value.to_str().ok()?.trim();
                self.viewer(name, format!("proxy:{name}"))
            }
        }
    }

    /// Whether the request carries the proxy's shared secret (SHA-256 compared in constant
    /// time). No secret configured (refused at start-up) lets nothing through.
    fn sent_by_the_proxy(&self, headers: &HeaderMap) -> bool {
        let Some((want, header)) = &self.proxy_secret else {
            return false;
        };
        let mut values = headers.get_all(header.as_str()).iter();
        let (Some(given), None) = (values.next(), values.next()) else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(given.ct_eq(want))
    }

    /// The form token of a viewer: HMAC of their binding (with the current key).
    pub fn form_token(&self, v: &Viewer) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.keys[0].1).expect("any key length");
        mac.update(v.binding.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a state-changing request: the form token matches the viewer's, and the browser
    /// says it comes from this site (`Sec-Fetch-Site`, else `Origin` when sent).
    pub fn check_form(
        &self,
        v: &Viewer,
        token: &str,
        headers: &HeaderMap,
    ) -> Result<(), &'static str> {
        let Ok(given) = hex::decode(token) else {
            return Err("the form token is missing or malformed");
        };
        let matches = |(_, csrf): &(Key, [u8; 32])| {
            let mut mac = HmacSha256::new_from_slice(csrf).expect("any key length");
            mac.update(v.binding.as_bytes());
            mac.verify_slice(&given).is_ok()
        };
        if !self.keys.iter().any(matches) {
            return Err("the form token does not match your session");
        }
        self.same_site(headers)
    }

    /// Whether a page was reached from another site (a link or a script there): what the
    /// browser says in `Sec-Fetch-Site`, else a `Referer` of another origin. Typed addresses,
    /// bookmarks and links opened from apps (`none`) are direct.
    pub fn followed_from_elsewhere(&self, headers: &HeaderMap) -> bool {
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            return !matches!(site, "same-origin" | "none");
        }
        let Some(r) = headers.get(header::REFERER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        // This site: the public URL, or the host the request was sent to (checked against the
        // allow-list before any page is served), over either scheme.
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let own = |base: &str| r == base || r.starts_with(&format!("{base}/"));
        let by_host =
            host.is_some_and(|h| own(&format!("http://{h}")) || own(&format!("https://{h}")));
        !(own(&self.origin) || by_host)
    }

    /// The request comes from this site, as far as the browser tells: `Sec-Fetch-Site` (set by
    /// browsers only) when sent, else `Origin` when sent.
    pub fn same_site(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            return match site {
                "same-origin" | "none" => Ok(()),
                _ => Err("the request comes from another site"),
            };
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let own = origin == self.origin
                || origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    == Some(host);
            if !own {
                return Err("the request comes from another origin");
            }
        }
        Ok(())
    }
}

/// The cookie-signing key and the form-token key made from one configured key.
fn keys_of(master: &[u8]) -> (Key, [u8; 32]) {
    let key = Key::from(&Sha512::digest(master));
    let mut mac = HmacSha256::new_from_slice(master).expect("any key length");
    mac.update(b"handoff inbox form tokens");
    (key, mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Person;

    fn settings(mode: InboxAuth) -> InboxSettings {
        let mut s = InboxSettings {
            auth: mode,
            ..InboxSettings::default()
        };
        s.people = vec![Person {
            name: "ana".into(),
            roles: vec!["support".into()],
            token_sha256: Some(token_sha256("tok-ana")),
            slack_user: None,
        }];
        s.trusted_proxies = vec!["127.0.0.1".into()];
        s.proxy_secret = Some("proxy-secret-0123456789".into());
        s
    }

    /// Headers as the proxy sends them: its secret and the person.
    fn from_proxy(person: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-user", person.parse().unwrap());
        h.insert(
            "x-handoff-proxy-secret",
            "proxy-secret-0123456789".parse().unwrap(),
        );
        h
    }

    #[test]
    fn behind_a_proxy_only_a_trusted_address_with_the_shared_secret_names_a_person() {
        let a = Auth::new(&settings(InboxAuth::Proxy));
        let local = "127.0.0.1".parse().unwrap();
        assert_eq!(a.who(&from_proxy("ana"), local, 0).unwrap().name, "ana");
        assert!(a
            .who(&from_proxy("ana"), "10.0.0.9".parse().unwrap(), 0)
            .is_none());
        // Another process on the host: the right address, but no secret or a wrong one.
        let mut h = from_proxy("ana");
        h.remove("x-handoff-proxy-secret");
        assert!(a.who(&h, local, 0).is_none(), "no secret");
        h.insert(
            "x-handoff-proxy-secret",
            "proxy-secret-012345678".parse().unwrap(),
        );
        assert!(a.who(&h, local, 0).is_none(), "a wrong secret");
        let mut twice = from_proxy("ana");
        twice.append("x-handoff-proxy-secret", "other".parse().unwrap());
        assert!(a.who(&twice, local, 0).is_none(), "two secrets");
        // Without a configured secret (refused at start-up) nobody is named.
        let mut s = settings(InboxAuth::Proxy);
        s.proxy_secret = None;
        assert!(Auth::new(&s).who(&from_proxy("ana"), local, 0).is_none());
    }

    fn set_cookie(jar: SignedCookieJar) -> String {
        use axum::response::IntoResponse;
        let r = (jar, ()).into_response();
        let h = r.headers().get(header::SET_COOKIE).unwrap();
        h.to_str().unwrap().to_string()
    }

    #[test]
    fn a_token_signs_in_its_person_and_the_cookie_names_them_until_it_expires() {
        let a = Auth::new(&settings(InboxAuth::Token));
        assert_eq!(a.person_with_token("tok-ana"), Some("ana"));
        assert_eq!(
            a.person_with_token(" tok-ana\n"),
            Some("ana"),
            "pasted with spaces"
        );
        assert_eq!(a.person_with_token("tok-bob"), None);
        let jar = a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_000);
        let set = set_cookie(jar);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "{set}"
        );
        assert!(!set.contains("Secure"), "plain http: {set}");
        // What the browser sends back: the signed value.
        let pair = set.split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, pair.parse().unwrap());
        let v = a.who(&h, "127.0.0.1".parse().unwrap(), 1_001).unwrap();
        assert_eq!(v.name, "ana");
        assert!(
            a.who(&h, "127.0.0.1".parse().unwrap(), 1_000 + 12 * 3600)
                .is_none(),
            "expired"
        );
        // Tampered: another name with the same signature.
        let forged = pair.replace(&hex::encode(b"ana"), &hex::encode(b"bob"));
        assert_ne!(forged, pair);
        h.insert(header::COOKIE, forged.parse().unwrap());
        assert!(a.who(&h, "127.0.0.1".parse().unwrap(), 1_001).is_none());
    }

    #[test]
    fn a_new_token_ends_the_sessions_opened_with_the_old_one() {
        let s = settings(InboxAuth::Token);
        let a = Auth::new(&InboxSettings {
            cookie_key: Some("k".repeat(40)),
            ..s.clone()
        });
        let set = set_cookie(a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_000));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            set.split(';').next().unwrap().parse().unwrap(),
        );
        let peer = "127.0.0.1".parse().unwrap();
        assert!(a.who(&h, peer, 1_001).is_some());
        let mut renewed = s;
        renewed.cookie_key = Some("k".repeat(40));
        renewed.people[0].token_sha256 = Some(token_sha256("tok-ana-2"));
        let b = Auth::new(&renewed);
        assert!(
            b.who(&h, peer, 1_001).is_none(),
            "the old token's session is over"
        );
    }

    #[test]
    fn cookies_are_secure_when_served_over_tls() {
        let mut s = settings(InboxAuth::Token);
        s.public_url = Some("https://inbox.example".into());
        let a = Auth::new(&s);
        let set = set_cookie(a.sign_in(a.jar(&HeaderMap::new()), "ana", 0));
        assert!(set.contains("Secure"), "{set}");
    }

    #[test]
    fn form_tokens_bind_to_the_session_and_foreign_origins_are_refused() {
        let a = Auth::new(&settings(InboxAuth::Proxy));
        let mut h = from_proxy("ana");
        h.insert(header::HOST, "127.0.0.1:9870".parse().unwrap());
        assert!(
            a.who(&h, "10.0.0.9".parse().unwrap(), 0).is_none(),
            "untrusted peer"
        );
        let v = a.who(&h, "127.0.0.1".parse().unwrap(), 0).unwrap();
        assert!(
            a.who(&h, "::ffff:127.0.0.1".parse().unwrap(), 0).is_some(),
            "IPv4-mapped"
        );
        let mut twice = h.clone();
        twice.append("x-forwarded-user", "mallory".parse().unwrap());
        assert!(
            a.who(&twice, "127.0.0.1".parse().unwrap(), 0).is_none(),
            "two values"
        );
        let t = a.form_token(&v);
        assert_eq!(a.check_form(&v, &t, &h), Ok(()));
        assert!(a.check_form(&v, "00", &h).is_err());
        assert!(a.check_form(&v, "", &h).is_err());
        let table: &[(&str, &str, bool)] = &[
            ("sec-fetch-site", "same-origin", true),
            ("sec-fetch-site", "cross-site", false),
            ("sec-fetch-site", "same-site", false),
            ("origin", "http://127.0.0.1:9870", true),
            ("origin", "https://evil.example", false),
            ("origin", "null", false),
        ];
        for (name, value, ok) in table {
            let mut h2 = h.clone();
            h2.insert(*name, value.parse().unwrap());
            assert_eq!(a.check_form(&v, &t, &h2).is_ok(), *ok, "{name}: {value}");
        }
    }

    /// The request a browser sends back with the cookie `jar` set.
    fn cookie_of(jar: SignedCookieJar) -> HeaderMap {
        let set = set_cookie(jar);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            set.split(';').next().unwrap().parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_signed_out_session_is_refused_even_from_a_copied_cookie() {
        let a = Auth::new(&settings(InboxAuth::Token));
        let local = "127.0.0.1".parse().unwrap();
        let copied = cookie_of(a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_000));
        let other = cookie_of(a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_000));
        let v = a.who(&copied, local, 1_001).unwrap();
        let _ = a.sign_out(a.jar(&copied), &v, 1_002);
        assert!(a.who(&copied, local, 1_003).is_none(), "revoked");
        assert!(
            a.who(&other, local, 1_003).is_none(),
            "every earlier session"
        );
        let again = cookie_of(a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_002));
        assert!(
            a.who(&again, local, 1_003).is_some(),
            "signing in again works at once"
        );
    }

    #[test]
    fn a_rotated_cookie_key_keeps_sessions_and_forms_while_the_old_one_is_listed() {
        let mut old = settings(InboxAuth::Token);
        old.cookie_key = Some("old-key-0123456789abcdef0123456789".into());
        let before = Auth::new(&old);
        let h = cookie_of(before.sign_in(before.jar(&HeaderMap::new()), "ana", 1_000));
        let v = before.who(&h, "127.0.0.1".parse().unwrap(), 1_001).unwrap();
        let form = before.form_token(&v);
        let mut new = old.clone();
        new.cookie_key = Some("new-key-0123456789abcdef0123456789".into());
        let dropped = Auth::new(&new);
        assert!(dropped
            .who(&h, "127.0.0.1".parse().unwrap(), 1_001)
            .is_none());
        new.previous_cookie_keys = vec!["old-key-0123456789abcdef0123456789".into()];
        let after = Auth::new(&new);
        let v2 = after.who(&h, "127.0.0.1".parse().unwrap(), 1_001).unwrap();
        assert_eq!(v2, v);
        assert_eq!(after.check_form(&v2, &form, &HeaderMap::new()), Ok(()));
        assert_ne!(
            after.form_token(&v2),
            form,
            "new forms are signed with the new key"
        );
        // New sessions are signed with the new key only.
        let fresh = cookie_of(after.sign_in(after.jar(&HeaderMap::new()), "ana", 1_000));
        assert!(before
            .who(&fresh, "127.0.0.1".parse().unwrap(), 1_001)
            .is_none());
    }

    #[test]
    fn the_cookie_holds_nothing_of_the_token_hash_and_is_host_prefixed_over_https() {
        let a = Auth::new(&settings(InboxAuth::Token));
        let set = set_cookie(a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_000));
        let hash = token_sha256("tok-ana");
        for n in [4, 8, 16] {
            assert!(
                !set.contains(&hash[..n]),
                "{n} hex digits of the hash in {set}"
            );
        }
        assert!(set.starts_with("handoff_session="), "{set}");
        let mut s = settings(InboxAuth::Token);
        s.public_url = Some("https://inbox.example".into());
        let a = Auth::new(&s);
        let set = set_cookie(a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_000));
        assert!(set.starts_with("__Host-handoff_session="), "{set}");
        for part in ["Secure", "Path=/"] {
            assert!(set.contains(part), "{part}: {set}");
        }
        assert!(!set.contains("Domain"), "{set}");
        let v = a.who(
            &cookie_of(a.sign_in(a.jar(&HeaderMap::new()), "ana", 1_000)),
            "127.0.0.1".parse().unwrap(),
            1_001,
        );
        assert!(v.is_some());
    }
}
