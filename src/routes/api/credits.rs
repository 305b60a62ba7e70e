//! Credits over the API (`POST /api/v1/keys/{key_id}/credits`).

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use serde::Deserialize;

use super::caller::ApiCaller;
use super::json_body::ApiJson;
use super::keys::KeyJson;
use crate::app::credits::CreditOp;
use crate::domain::limits::CREDITS_MAX;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditsBody {
    /// `set`, `add` or `subtract`.
    op: String,
    /// Credits; with `set`, `null` removes the credit limit.
    amount: Option<i64>,
}

impl CreditsBody {
    fn op(&self) -> Result<CreditOp, ApiError> {
        let amount = |n: Option<i64>| match n {
            Some(n) if (0..=CREDITS_MAX).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "amount",
                &format!("Use a whole number from 0 to {CREDITS_MAX}."),
            )),
        };
        match self.op.as_str() {
            "set" if self.amount.is_none() => Ok(CreditOp::Unlimited),
            "set" => Ok(CreditOp::Set(amount(self.amount)?)),
            "add" => Ok(CreditOp::Add(amount(self.amount)?)),
            "subtract" => Ok(CreditOp::Subtract(amount(self.amount)?)),
            _ => Err(ApiError::invalid("op", "Use set, add or subtract.")),
        }
    }
}

/// Sets, adds or subtracts a key's credits (audited); answers the key.
pub async fn change_credits(
    state: Data<AppState>,
    caller: ApiCaller,
    path: Path<String>,
    body: ApiJson<CreditsBody>,
) -> Result<HttpResponse, ApiError> {
    let op = body.op()?;
    let key = crate::app::credits::change(&state, &caller.actor(), path.into_inner(), op).await?;
    Ok(HttpResponse::Ok().json(KeyJson::of(&key)))
}
