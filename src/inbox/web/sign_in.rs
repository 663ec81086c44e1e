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
    if !q.token.is_empty() {
        // A sign-in link typed or opened from a terminal, never one followed from another
        // site (a forged sign-in).
        if let Err(why) = app.auth.same_site(&headers) {
            return (StatusCode::FORBIDDEN, why).into_response();
        }
        return do_sign_in(&app, &headers, &q.token);
    }
    html(
        StatusCode::OK,
        SignInPage {
            who: None,
            form_token: "",
            error: "",
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
        None => html(
            StatusCode::UNAUTHORIZED,
            SignInPage {
                who: None,
                form_token: "",
                error: "That token belongs to nobody here.",
            }
            .render(),
        ),
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
    (
        app.auth.sign_out(app.auth.jar(&headers)),
        Redirect::to("/sign-in"),
    )
        .into_response()
}
