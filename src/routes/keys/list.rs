//! One channel's keys (page, dialog, fragments), All keys and the risk overview.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::app;
use crate::db::channels::Channel;
use crate::domain::list::{ListParams, ListQuery, Risk, Within};
use crate::domain::role::Action;
use crate::error::{AppError, render};
use crate::htmx::{HxRequest, HxResponse};
use crate::session::{self as sess, CurrentUser};
use crate::state::AppState;
use crate::views::keys::{
    AllKeysPage, KeysDialog, KeysPage, KeysResults, KeysStats, KeysView, RiskItem, RisksPage,
};

use super::common::{keys_url, permissions};

async fn load_results(
    state: &AppState,
    user: &CurrentUser,
    channel: &Channel,
    query: &ListQuery,
) -> Result<KeysResults, AppError> {
    let page = app::keys::list_page(
        state,
        &user.actor(),
        Within::Channel(channel.id),
        query,
        channel.key_count,
    )
    .await?;
    let at_limit =
        channel.key_count >= channel.effective_limit(state.settings.max_keys_per_channel);
    Ok(KeysResults::new(
        channel.id,
        &page,
        query,
        crate::db::now(),
        permissions(user),
        at_limit,
        keys_url(channel.id),
    ))
}

fn stats(state: &AppState, user: &CurrentUser, channel: &Channel) -> KeysStats {
    KeysStats::new(
        channel,
        state.settings.max_keys_per_channel,
        user.may(Action::CreateKey),
    )
}

/// The results fragment of a filter, sort or page change, with the canonical URL in
/// the history (never what was typed: a pasted full key becomes its key id). A refresh
/// the results ask for themselves (after a key changed) does not add a history entry.
fn results_fragment(
    hx: &HxRequest,
    results: &KeysResults,
    canonical: &str,
) -> Result<HttpResponse, AppError> {
    let res = HxResponse::ok().html(&askama::Template::render(results)?);
    let self_refresh = hx.trigger.as_deref() == Some("keys-results");
    Ok(if self_refresh {
        res
    } else {
        res.push_url(canonical)
    }
    .finish())
}

pub async fn list_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    path: web::Path<i64>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let channel = app::keys::channel(&state, &user.actor(), path.into_inner()).await?;
    if hx.targets("keys-stats") {
        return render(StatusCode::OK, &stats(&state, &user, &channel));
    }
    let query = ListQuery::parse(&params);
    let results = load_results(&state, &user, &channel, &query).await?;
    if hx.targets("keys-results") {
        return results_fragment(&hx, &results, &results.self_href);
    }
    let view = KeysView {
        channel_id: channel.id,
        channel_name: channel.name.clone(),
        is_system: channel.is_system,
        stats: stats(&state, &user, &channel),
        results,
        query,
        in_dialog: hx.targets("modal"),
        csrf: user.csrf.clone(),
    };
    if hx.targets("modal") {
        return render(StatusCode::OK, &KeysDialog { view });
    }
    let shell = user
        .shell("/channels")
        .with_flash(sess::take_flash(&session));
    render(StatusCode::OK, &KeysPage { shell, view })
}

/// The results of the All keys page: every channel the person may see.
async fn all_keys_results(
    state: &AppState,
    user: &CurrentUser,
    query: &ListQuery,
) -> Result<KeysResults, AppError> {
    let actor = user.actor();
    let all = app::channels::list(state, &actor).await?;
    // People who may not see the system channel do not find its keys here either.
    let hidden = if user.may(Action::UseSystemChannel) {
        None
    } else {
        all.iter().find(|c| c.is_system).map(|c| c.id)
    };
    let known: i64 = all
        .iter()
        .filter(|c| Some(c.id) != hidden)
        .map(|c| c.key_count)
        .sum();
    let page = app::keys::list_page(state, &actor, Within::AllExcept(hidden), query, known).await?;
    let mut perms = permissions(user);
    perms.create = false;
    let mut results = KeysResults::new(
        0,
        &page,
        query,
        crate::db::now(),
        perms,
        false,
        "/keys".into(),
    );
    results.show_channel = true;
    for (row, key) in results.rows.iter_mut().zip(&page.rows) {
        if let Some(c) = all.iter().find(|c| c.id == key.channel_id) {
            row.channel = Some((c.id, c.name.clone()));
        }
    }
    Ok(results)
}

/// All keys: one search across channels, for admins and support.
pub async fn all_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    hx: HxRequest,
    session: Session,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, AppError> {
    let query = ListQuery::parse(&params);
    let results = all_keys_results(&state, &user, &query).await?;
    if hx.targets("keys-results") {
        return results_fragment(&hx, &results, &results.self_href);
    }
    let shell = user.shell("/keys").with_flash(sess::take_flash(&session));
    render(
        StatusCode::OK,
        &AllKeysPage {
            shell,
            results,
            query,
        },
    )
}

/// The risk overview: counts of keys that never expire, are idle, have no network
/// limit, or expire within a week, each linking to the matching keys.
pub async fn risks(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let counts = app::keys::risk_counts(&state, &user.actor()).await?;
    let items = counts
        .into_iter()
        .map(|(risk, count)| RiskItem {
            label: risk.label(),
            hint: match risk {
                Risk::NeverExpires => "Give long-lived keys an expiry, or roll them regularly.",
                Risk::Idle => "Unused keys are pure risk: deactivate or delete them.",
                Risk::NoNetworkLimit => "Limit keys to the networks their callers use.",
                Risk::NoRateLimit => {
                    "Give keys a rate limit, so a leaked one cannot be used at any speed."
                }
                Risk::ExpiringSoon => "Roll these before they stop working.",
                Risk::PostbackOff => {
                    "Their receivers answered 410 Gone; set a URL to turn them back on."
                }
            },
            count,
            href: format!("/keys?risk={}", risk.as_str()),
        })
        .collect();
    render(
        StatusCode::OK,
        &RisksPage {
            shell: user.shell("/risks"),
            items,
        },
    )
}

/// Where the filter form posts without JavaScript: a pasted full key travels in the
/// body, never in a URL (proxies log URLs), and the answer redirects to the canonical
/// address, which names the key by its key id only. (With JavaScript the page strips a
/// pasted key down to its key id before it sends anything.)
fn search_redirect(base: &str, params: &ListParams) -> HttpResponse {
    let query = ListQuery::parse(params);
    crate::routes::auth::see_other(&format!("{base}{}", query.href(None, 0)))
}

pub async fn search_channel_keys(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<i64>,
    form: web::Form<ListParams>,
) -> Result<HttpResponse, AppError> {
    let channel = app::keys::channel(&state, &user.actor(), path.into_inner()).await?;
    Ok(search_redirect(&keys_url(channel.id), &form))
}

pub async fn search_all_keys(
    user: CurrentUser,
    form: web::Form<ListParams>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::SearchAllKeys)?;
    Ok(search_redirect("/keys", &form))
}
