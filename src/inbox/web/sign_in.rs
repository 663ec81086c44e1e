//! Signing in with a token, and out.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub(super) struct SignInQuery {
    #[serde(default)]
    token: String,
}

pub(super) async fn sign_in_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    // A sign-in link asks first: a GET signs nobody in (link previews, native apps and old
    // browsers open links on their own), the button's POST does, from this site only. A link
    // followed from another site is refused outright (someone else's token: a forged sign-in).
    if !q.token.is_empty() {
        if let Err(why) = app.auth.same_site(&headers) {
            return (StatusCode::FORBIDDEN, why).into_response();
        }
    }
    html(
        StatusCode::OK,
        SignInPage {
            who: None,
            form_token: "",
            error: "",
            link_token: q.token.trim(),
        }
        .render(),
    )
}

pub(super) async fn sign_in(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(q): Form<SignInQuery>,
) -> Response {
    if let Err(why) = app.auth.same_site(&headers) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    do_sign_in(&app, &headers, &q.token)
}

fn do_sign_in(app: &App, headers: &HeaderMap, token: &str) -> Response {
    match app.auth.person_with_token(token) {
        Some(name) => {
            tracing::info!(person = %name, "signed in");
            let jar = app.auth.sign_in(
                app.auth.jar(headers),
                name,
                (crate::clock::SystemClock::now() / 1000) as u64,
            );
            (jar, Redirect::to("/")).into_response()
        }
        None => {
            app.metrics
                .refused("sign_in", format_args!("a sign-in with a token of nobody"));
            html(
                StatusCode::UNAUTHORIZED,
                SignInPage {
                    who: None,
                    form_token: "",
                    error: "That token belongs to nobody here.",
                    link_token: "",
                }
                .render(),
            )
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    form_token: String,
}

pub(super) async fn sign_out(
    State(app): State<Arc<App>>,
    SignedIn(v): SignedIn,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Err(why) = app.auth.check_form(&v, &f.form_token, &headers) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let now_s = (crate::clock::SystemClock::now() / 1000) as u64;
    tracing::info!(person = %v.name, "signed out");
    (
        app.auth.sign_out(app.auth.jar(&headers), &v, now_s),
        Redirect::to("/sign-in"),
    )
        .into_response()
}
