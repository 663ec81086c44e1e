//! The HTTP side of the registry: the few endpoints of Confluent's REST API handoff uses, each
//! answer mapped to a [`RegistryError`] whose class says what to do. Blocking (ureq): it is
//! called from worker threads, and at start-up.

use super::RegistryError;
use crate::config::registry::{resolve_password, RegistrySettings};
use serde::Deserialize;
use std::time::Duration;

/// The registry's content type for requests.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Largest answer read (a schema with every version's docs fits easily).
const MAX_BODY: u64 = 8 * 1024 * 1024;

/// A schema as the registry returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredSchema {
    /// The schema text.
    pub schema: String,
    /// `AVRO` when absent.
    #[serde(default)]
    pub schema_type: Option<String>,
    /// Other subjects' schemas this one refers to (not supported by handoff).
    #[serde(default)]
    pub references: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Id {
    id: u32,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
}

/// An answer: status and body text.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The registry's `error_code` and message, else the status and the body's start.
    fn error(&self) -> (i64, String) {
        match serde_json::from_str::<ErrorBody>(&self.body) {
            Ok(e) => (e.error_code, e.message),
            Err(_) => (
                0,
                format!(
                    "HTTP {}: {}",
                    self.status,
                    self.body.chars().take(200).collect::<String>()
                ),
            ),
        }
    }
}

/// A connection to one registry.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Client {
    /// A client for `settings`: the password resolved, the CA file read. No request yet.
    pub fn new(settings: &RegistrySettings) -> Result<Client, RegistryError> {
        let authorization = match (&settings.username, &settings.password) {
            (Some(user), Some(spec)) => {
                let password =
                    resolve_password(spec).map_err(|e| RegistryError::Setup(e.to_string()))?;
                Some(format!(
                    "Basic {}",
                    base64(format!("{user}:{password}").as_bytes())
                ))
            }
            _ => None,
        };
        let roots = match &settings.ca_file {
            None => ureq::tls::RootCerts::PlatformVerifier,
            Some(path) => ca_roots(path)?,
        };
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(roots)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .tls_config(tls)
            .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            agent,
            base: settings.url.trim_end_matches('/').to_string(),
            authorization,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /schemas/ids/{id}`: the writer schema of `id`.
    pub fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, RegistryError> {
        let answer = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        match answer.status {
            200 => self.parse(&answer),
            404 => {
                let (code, message) = answer.error();
                Err(RegistryError::NotFound {
                    id,
                    message: format!("error {code}: {message}"),
                })
            }
            _ => Err(self.unavailable(&answer)),
        }
    }

    /// `POST /subjects/{subject}`: the id of `schema` under `subject`, or `None` when the
    /// subject or the schema is not registered there.
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<Option<u32>, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let path = format!("/subjects/{}", crate::escape::url_component(subject));
        let answer = self.call("POST", &path, Some(&body))?;
        match answer.status {
            200 => self.parse::<Id>(&answer).map(|i| Some(i.id)),
            404 => Ok(None),
            _ => Err(self.refused(&answer, subject)),
        }
    }

    /// `POST /subjects/{subject}/versions`: registers `schema` (or finds it) and returns its id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let path = format!(
            "/subjects/{}/versions",
            crate::escape::url_component(subject)
        );
        let answer = self.call("POST", &path, Some(&body))?;
        match answer.status {
            200 => self.parse::<Id>(&answer).map(|i| i.id),
            _ => Err(self.refused(&answer, subject)),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<Answer, RegistryError> {
        let url = format!("{}{path}", self.base);
        let transport = |e: ureq::Error| RegistryError::Unavailable {
            url: self.base.clone(),
            message: e.to_string(),
        };
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url).header("Accept", CONTENT_TYPE);
                if let Some(a) = &self.authorization {
                    r = r.header("Authorization", a);
                }
                r.call().map_err(transport)?
            }
            (_, body) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("Accept", CONTENT_TYPE)
                    .header("Content-Type", CONTENT_TYPE);
                if let Some(a) = &self.authorization {
                    r = r.header("Authorization", a);
                }
                r.send(body.unwrap_or("")).map_err(transport)?
            }
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(transport)?;
        Ok(Answer { status, body })
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, a: &Answer) -> Result<T, RegistryError> {
        serde_json::from_str(&a.body).map_err(|e| RegistryError::Unavailable {
            url: self.base.clone(),
            message: format!("unreadable answer ({e})"),
        })
    }

    /// 5xx, 401/403, 429 and anything else unexpected while reading: the registry, not the
    /// record, is at fault.
    fn unavailable(&self, a: &Answer) -> RegistryError {
        let (code, message) = a.error();
        let what = match a.status {
            401 | 403 => "the credentials were refused: ",
            _ => "",
        };
        RegistryError::Unavailable {
            url: self.base.clone(),
            message: format!("HTTP {} (error {code}): {what}{message}", a.status),
        }
    }

    /// An answer refusing a lookup or a registration.
    fn refused(&self, a: &Answer, subject: &str) -> RegistryError {
        if a.status >= 500 || matches!(a.status, 401 | 403 | 408 | 429) {
            return self.unavailable(a);
        }
        let (code, message) = a.error();
        RegistryError::Rejected {
            subject: subject.to_string(),
            status: a.status,
            message: format!("error {code}: {message}"),
        }
    }
}

/// The certificates of a PEM file, as the only roots trusted.
fn ca_roots(path: &std::path::Path) -> Result<ureq::tls::RootCerts, RegistryError> {
    let setup = |m: String| RegistryError::Setup(format!("ca_file {}: {m}", path.display()));
    let pem = std::fs::read(path).map_err(|e| setup(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| setup(e.to_string()))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => continue,
        }
    }
    if certs.is_empty() {
        return Err(setup("holds no PEM certificate".into()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// Standard base64 with padding (RFC 4648), for the basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The wait before attempt `attempt` (0 for the first retry): doubling from `initial`, at
/// most `max`.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    initial.saturating_mul(1u32 << attempt.min(20)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("handoff:s3cr3t", "aGFuZG9mZjpzM2NyM3Q="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn subjects_are_percent_encoded() {
        assert_eq!(
            crate::escape::url_component("agent.verdicts-value"),
            "agent.verdicts-value"
        );
        assert_eq!(crate::escape::url_component("a b/c%"), "a%20b%2Fc%25");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let ms = |n| Duration::from_millis(n);
        let waits: Vec<_> = (0..8).map(|a| backoff(ms(100), ms(1000), a)).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1000, 1000, 1000, 1000]
                .map(ms)
                .to_vec()
        );
        assert_eq!(backoff(ms(100), ms(1000), u32::MAX), ms(1000));
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let mut s = RegistrySettings::new("https://h:1");
        s.ca_file = Some("/nonexistent/ca.pem".into());
        let e = Client::new(&s).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let f = std::env::temp_dir().join(format!("handoff-empty-ca-{}", std::process::id()));
        std::fs::write(&f, "not a pem").unwrap();
        s.ca_file = Some(f.clone());
        let e = Client::new(&s).unwrap_err().to_string();
        std::fs::remove_file(&f).unwrap();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
