//! `POST /v1/receipts/redeem`: an executor's last step before a tool runs. The receipt is
//! checked (signature against the published keys, expiry, the caller's agent, the tool, the
//! arguments about to run) and its first use recorded ([`super::used`]); a second use of the
//! same action's receipt is refused, whichever replica is asked.

use super::api::{self, Problem};
use super::used::Use;
use super::web::{caller, read_body, App};
use crate::trust::receipt::{self, Expected};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeem {
    /// The receipt (the verdict's `receipt`).
    receipt: String,
    /// The arguments about to run: a JSON object (or its text).
    #[serde(default)]
    arguments: Option<serde_json::Value>,
    /// The tool about to run.
    #[serde(default)]
    tool_name: Option<String>,
}

/// The answer: what may run now.
#[derive(Debug, Serialize)]
struct Redeemed<'a> {
    action_id: &'a str,
    receipt_id: &'a str,
    outcome: &'a str,
    tool_name: Option<&'a str>,
    approvers: &'a [receipt::Approver],
    used_at_ms: i64,
}

/// The redemption route, for [`super::web::router`].
pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new().route("/v1/receipts/redeem", axum::routing::post(redeem))
}

/// `POST /v1/receipts/redeem`.
pub async fn redeem(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    match redeem_once(&app, &headers, body).await {
        Ok(r) => r,
        Err(p) => p.into_response(),
    }
}

async fn redeem_once(app: &App, headers: &HeaderMap, body: Body) -> Result<Response, Problem> {
    let who = caller(app, headers)?;
    let bytes = read_body(app, body).await?;
    let r: Redeem = serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("not a redemption ({{\"receipt\", \"arguments\", \"tool_name\"}}): {e}"),
        )
    })?;
    let arguments = r.arguments.as_ref().map(|a| match a {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    let now_ms = crate::clock::SystemClock::now();
    let expected = Expected {
        arguments: arguments.as_deref(),
        tool_name: r.tool_name.as_deref(),
        now_s: now_ms.div_euclid(1000),
        ..Expected::default()
    };
    let claims = receipt::check(&r.receipt, &app.receipt_keys, &expected).map_err(refused)?;
    if !who.may_act_as(&claims.aud) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden_agent",
            format!(
                "the receipt is for agent {:?}: this key may not run its actions",
                claims.aud
            ),
        ));
    }
    if claims.tool_name.is_some() && r.tool_name.is_none() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tool_required",
            "field `tool_name` is missing: this receipt approves one tool; send the one about to run",
        ));
    }
    if claims.arguments_sha256.is_some() && arguments.is_none() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "arguments_required",
            "field `arguments` is missing: this receipt approves a call with these exact \
             arguments; send the ones about to run",
        ));
    }
    let used_at_ms = first_use(app, &claims, now_ms).await?;
    let answer = Redeemed {
        action_id: &claims.action_id,
        receipt_id: &claims.jti,
        outcome: &claims.outcome,
        tool_name: claims.tool_name.as_deref(),
        approvers: &claims.approvers,
        used_at_ms,
    };
    Ok(api::json(StatusCode::OK, &answer))
}

/// Records this use of `claims`' receipt, or why it is refused: used before (here or by
/// another replica), being used now, or not recorded.
async fn first_use(app: &App, claims: &receipt::Claims, now_ms: i64) -> Result<i64, Problem> {
    let rd = &app.redemptions;
    if !rd.ready.load(Ordering::Acquire) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the gateway is still reading the receipts used so far",
        ));
    }
    let id = &claims.action_id;
    {
        let mut ledger = rd.ledger.lock().expect("not poisoned");
        if let Some(u) = ledger.used(id) {
            return Err(used(u));
        }
        if !ledger.begin(id) {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "receipt_used",
                format!("the receipt of action {id:?} is being used now"),
            ));
        }
    }
    let mine = Use {
        action_id: id.clone(),
        jti: claims.jti.clone(),
        agent_id: claims.aud.clone(),
        used_at_ms: now_ms,
        nonce: nonce(),
    };
    let outcome = write_and_read_back(app, &mine).await;
    rd.ledger.lock().expect("not poisoned").end(id);
    match outcome? {
        first if first == mine => Ok(now_ms),
        other => Err(used(&other)),
    }
}

/// Writes `mine`, then waits until the ledger has read it back: the first use of the action
/// it then holds is the one that counts.
async fn write_and_read_back(app: &App, mine: &Use) -> Result<Use, Problem> {
    let rd = &app.redemptions;
    let at = rd.uses.write(mine).await.map_err(|e| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_recorded",
            e.to_string(),
        )
    })?;
    let until = Instant::now() + app.body_timeout;
    loop {
        {
            let ledger = rd.ledger.lock().expect("not poisoned");
            if ledger.has_read(at) {
                return Ok(ledger.used(&mine.action_id).expect("read back").clone());
            }
        }
        if Instant::now() > until {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_recorded",
                "the use was written but not read back in time: the receipt may count as used",
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn used(u: &Use) -> Problem {
    let mut p = Problem::new(
        StatusCode::CONFLICT,
        "receipt_used",
        format!(
            "the receipt of action {:?} was used at {} by agent {:?}: a receipt runs its action once",
            u.action_id,
            receipt::rfc3339(u.used_at_ms, true),
            u.agent_id
        ),
    );
    p.reasons = Box::new(["already_used"]);
    p
}

fn refused(reasons: Vec<receipt::Refusal>) -> Problem {
    let message = reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "receipt_refused", message);
    p.reasons = reasons.iter().map(receipt::Refusal::reason).collect();
    p
}

fn nonce() -> String {
    let mut bytes = [0u8; 12];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}
