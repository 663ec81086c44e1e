//! Reading: the list, the detail page (each view audited), an escalation's status.

use super::*;

/// First views remembered; beyond, those of escalations no longer open are forgotten.
const VIEWS_KEPT: usize = 100_000;

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    role: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    action_type: String,
    #[serde(default)]
    show: String,
    #[serde(default)]
    fragment: String,
    #[serde(default)]
    done: String,
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    SignedIn(v): SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    render_list(&app, &v, &q)
}

fn render_list(app: &App, v: &Viewer, q: &ListQuery) -> Response {
    let filter = Filter {
        role: (!q.role.is_empty()).then(|| q.role.clone()),
        tier: match q.tier.as_str() {
            "warm" => Some(Tier::Warm),
            "immediate" => Some(Tier::Immediate),
            _ => None,
        },
        action_type: (!q.action_type.is_empty()).then(|| q.action_type.clone()),
    };
    let now = crate::clock::SystemClock::now();
    let sent = app.recently_sent(now);
    let board = app.board.read().expect("not poisoned");
    let items: Vec<_> = board
        .list(&v.roles, &filter)
        .into_iter()
        .filter(|i| !sent.contains(&i.escalation_id))
        .collect();
    let total = items.len();
    let all = q.show == "all";
    let limit = if all {
        super::LIST_ALL_LIMIT
    } else {
        LIST_LIMIT
    };
    let reminded = app.reminded.lock().expect("not poisoned").clone();
    let rows: Vec<Row> = items
        .iter()
        .take(limit)
        .map(|i| Row::of(i, now).reminded(reminded.contains(&i.escalation_id)))
        .collect();
    // Past the bound of `show=all` there is no larger page: the filters narrow the list.
    let all_link = if all { String::new() } else { list_link(q) };
    if q.fragment == "1" {
        let shown = rows.len();
        return html(
            StatusCode::OK,
            ListItems {
                total,
                shown,
                all_link,
                rows,
            }
            .render(),
        );
    }
    let token = app.auth.form_token(v);
    let flash = match DecisionKind::ALL.iter().find(|k| k.as_str() == q.done) {
        Some(k) => format!("Your answer ({}) was sent.", k.as_str()),
        None => String::new(),
    };
    let page = ListPage {
        who: Some(&v.name),
        form_token: &token,
        flash: &flash,
        roles: &v.roles,
        action_types: board.action_types(&v.roles),
        filter_role: &q.role,
        filter_tier: &q.tier,
        filter_type: &q.action_type,
        total,
        shown: rows.len(),
        all_link,
        rows,
    };
    html(StatusCode::OK, page.render())
}

fn list_link(q: &ListQuery) -> String {
    let mut u = String::from("/?show=all");
    for (k, v) in [
        ("role", &q.role),
        ("tier", &q.tier),
        ("action_type", &q.action_type),
    ] {
        if !v.is_empty() {
            u.push_str(&format!("&{k}={}", crate::escape::url_component(v)));
        }
    }
    u
}

pub(super) async fn detail(
    State(app): State<Arc<App>>,
    SignedIn(v): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // Opened from another site (a link there, or its script opening a window): ask first, so
    // a view is counted only when the person opens it here: a forged "viewed" would make a
    // rubber-stamp approval look reviewed.
    if app.auth.followed_from_elsewhere(&headers) {
        return confirm_open(&app, &v, &id);
    }
    let now = crate::clock::SystemClock::now();
    let (page, entry) = {
        let board = app.board.read().expect("not poisoned");
        let item = match board.get(&id) {
            Lookup::Open(i) if v.roles.contains(&i.role) => i,
            Lookup::Gone(g) if v.roles.iter().any(|r| r == g.role()) => {
                return message(
                    &app,
                    Some(&v),
                    StatusCode::CONFLICT,
                    "No longer open",
                    &gone_text(g),
                );
            }
            _ => return not_found(&app, &v, &id),
        };
        let Some(p) = Detail::of(&app.matrix, item, now) else {
            return message(
                &app,
                Some(&v),
                StatusCode::CONFLICT,
                "Role no longer in the rules",
                "The matrix in force no longer has this escalation's role; it ends at its deadline.",
            );
        };
        let token = app.auth.form_token(&v);
        let page = DetailPage {
            who: Some(&v.name),
            form_token: &token,
            p,
        }
        .render();
        let entry = audit_entry(AuditKind::Viewed, &v.name, item, now, Via::Web);
        (page, entry)
    };
    {
        let mut views = app.views.lock().expect("not poisoned");
        views.entry((v.name.clone(), id)).or_insert(now);
        if views.len() > VIEWS_KEPT {
            let board = app.board.read().expect("not poisoned");
            views.retain(|(_, id), _| board.is_open(id));
        }
    }
    app.metrics.views.inc();
    spawn_audit(&app, entry);
    html(StatusCode::OK, page)
}

pub(super) fn audit_entry(
    kind: AuditKind,
    person: &str,
    item: &crate::inbox::board::Item,
    now: i64,
    via: Via,
) -> AuditEntry {
    AuditEntry {
        kind,
        person: person.to_string(),
        role: item.role.clone(),
        escalation_id: item.escalation_id.clone(),
        action_id: item.action_id().to_string(),
        session_id: item.session_id.clone(),
        at_ms: now,
        decision: None,
        first_viewed_at_ms: None,
        via,
        reason: None,
        rule_version: item.action.rule_version.clone(),
        tier: Some(item.tier),
        canary: item.action.canary.is_some(),
    }
}

/// Sends an audit entry; a failure is logged and counted (librdkafka has already retried).
pub(super) fn spawn_audit(app: &App, entry: AuditEntry) {
    let fut = app.publish.audit(&entry);
    let failures = app.metrics.audit_failures.clone();
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            failures.inc();
            tracing::error!(error = %e, escalation = %entry.escalation_id, "audit entry not delivered");
        }
    });
}

pub(super) fn gone_text(g: &Gone) -> String {
    match g {
        Gone::Closed { .. } => "It was answered or closed: its action has its verdict (or its \
            role's approval). Nothing more is needed from you."
            .into(),
        Gone::Moved {
            to, escalation_id, ..
        } => format!(
            "It moved on to {to} (escalation {escalation_id}) after a missed deadline or a \
             redirect."
        ),
    }
}

pub(super) async fn status(
    State(app): State<Arc<App>>,
    SignedIn(v): SignedIn,
    Path(id): Path<String>,
) -> Response {
    let board = app.board.read().expect("not poisoned");
    match board.get(&id) {
        Lookup::Open(i) if v.roles.contains(&i.role) => "open".into_response(),
        Lookup::Gone(g) if v.roles.iter().any(|r| r == g.role()) => gone_text(g).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The page a link from another site leads to: a link to the escalation from here.
fn confirm_open(app: &App, v: &Viewer, id: &str) -> Response {
    let token = app.auth.form_token(v);
    let href = format!("/e/{}", crate::escape::url_component(id));
    let page = MessagePage {
        who: Some(&v.name),
        form_token: &token,
        title: "Open this escalation?",
        text: "You followed a link from another site. Open it here to review it; \
               only then does it count as viewed.",
        class: "",
        next: Some((&href, "Open the escalation")),
    };
    html(StatusCode::OK, page.render())
}
