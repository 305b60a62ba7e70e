//! What an API key may do (SECURITY.md, "What an API key may do"). A person's role
//! bounds the dashboard; a key's own settings bound the API:
//!
//! | rule (error code) | what it refuses |
//! |---|---|
//! | `SCOPE_ESCALATION` | a key with scopes the caller does not hold |
//! | `NETWORK_ESCALATION` | a key usable from addresses outside the caller's networks |
//! | `EXPIRY_ESCALATION` | a key that outlives the caller (or never expires when it does) |
//! | `TARGET_MORE_POWERFUL` | changing a key that may do more than the caller |
//! | `ADMIN_SCOPE_REQUIRED` | Off the Record or POSTback changes, rolling or re-activating another key, without `keys:admin` |
//! | `PERSON_DEACTIVATED` | re-activating a key a person deactivated in the dashboard |
//! | `LIMIT_ESCALATION` | a key changing its own rate limits, credits or refill |
//!
//! Together they mean a key can never create or change a key more powerful than
//! itself, never widen its own limits, and never undo a person's deactivation.

use ipnetwork::IpNetwork;
use time::PrimitiveDateTime;

use super::error::Refusal;
use crate::db::keys::ApiKey;
use crate::domain::key_settings::KeySettings;
use crate::verification::CachedKey;

pub const SCOPE_READ: &str = "keys:read";
pub const SCOPE_WRITE: &str = "keys:write";
pub const SCOPE_ADMIN: &str = "keys:admin";
pub const SCOPE_VERIFY: &str = "verify";

fn refuse(code: &'static str, message: &str) -> Result<(), Refusal> {
    Err(Refusal::new(code, message))
}

/// What a key may do: its scopes, where it may be used from, and until when.
#[derive(Debug, Clone)]
pub struct Powers {
    pub scopes: Vec<String>,
    /// Empty: any address.
    pub cidrs: Vec<IpNetwork>,
    /// `None`: never ends.
    pub ends_at: Option<PrimitiveDateTime>,
}

impl Powers {
    pub fn of_caller(k: &CachedKey) -> Self {
        Powers {
            scopes: k.scopes.clone(),
            cidrs: k.cidrs.clone(),
            ends_at: k.lifecycle.ends_at(),
        }
    }

    pub fn of_key(k: &ApiKey) -> Self {
        Powers {
            scopes: k.scope_list().into_iter().map(str::to_owned).collect(),
            cidrs: k
                .cidr_list()
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            ends_at: k.lifecycle().ends_at(),
        }
    }

    /// The powers a key with these settings would have (a rolled key's grace is kept).
    pub fn of_settings(s: &KeySettings, roll_ends_at: Option<PrimitiveDateTime>) -> Self {
        Powers {
            scopes: s.scopes.clone(),
            cidrs: s.cidrs.clone(),
            ends_at: match (s.expires_at, roll_ends_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// Refuses `other` where it exceeds these powers, naming the first rule it breaks.
    pub fn covers(&self, other: &Powers) -> Result<(), Refusal> {
        if let Some(s) = other.scopes.iter().find(|s| !self.scopes.contains(s)) {
            return refuse(
                "SCOPE_ESCALATION",
                &format!("A key can only grant scopes it holds itself; this key lacks `{s}`."),
            );
        }
        if !self.cidrs.is_empty() {
            let inside = |n: &IpNetwork| {
                self.cidrs
                    .iter()
                    .any(|own| own.contains(n.network()) && own.prefix() <= n.prefix())
            };
            if other.cidrs.is_empty() || !other.cidrs.iter().all(inside) {
                return refuse(
                    "NETWORK_ESCALATION",
                    "A key limited to networks can only grant networks inside its own.",
                );
            }
        }
        if let Some(own) = self.ends_at {
            if other.ends_at.is_none_or(|t| t > own) {
                return refuse(
                    "EXPIRY_ESCALATION",
                    "A key that expires can only grant an expiry no later than its own.",
                );
            }
        }
        Ok(())
    }
}

fn require_admin(caller: &CachedKey, what: &str) -> Result<(), Refusal> {
    if caller.has_scope(SCOPE_ADMIN) {
        Ok(())
    } else {
        refuse(
            "ADMIN_SCOPE_REQUIRED",
            &format!("{what} needs the dashboard or the `{SCOPE_ADMIN}` scope."),
        )
    }
}

/// Creating a key with `settings`.
pub fn may_create(caller: &CachedKey, settings: &KeySettings) -> Result<(), Refusal> {
    Powers::of_caller(caller).covers(&Powers::of_settings(settings, None))?;
    if settings.off_the_record {
        require_admin(caller, "Creating an Off the Record key")?;
    }
    if settings.postback_url.is_some() {
        require_admin(caller, "Setting a POSTback URL")?;
    }
    Ok(())
}

/// Changing `target` at all (deactivate, delete, and the start of every other change):
/// the target may not do more than the caller.
pub fn may_change(caller: &CachedKey, target: &ApiKey) -> Result<(), Refusal> {
    if caller.key_id == target.key_id {
        return Ok(());
    }
    Powers::of_caller(caller)
        .covers(&Powers::of_key(target))
        .map_err(|_| {
            Refusal::new(
                "TARGET_MORE_POWERFUL",
                "This key may not change a key with more scopes, wider networks or a later expiry than its own.",
            )
        })
}

/// Re-activating `target`.
pub fn may_activate(caller: &CachedKey, target: &ApiKey) -> Result<(), Refusal> {
    may_change(caller, target)?;
    if target.deactivated_by_person {
        return refuse(
            "PERSON_DEACTIVATED",
            "A person deactivated this key in the dashboard; only the dashboard can activate it again.",
        );
    }
    if caller.key_id != target.key_id {
        require_admin(caller, "Activating another key")?;
    }
    Ok(())
}

/// Replacing the settings of `target` with `new`.
pub fn may_update(caller: &CachedKey, target: &ApiKey, new: &KeySettings) -> Result<(), Refusal> {
    may_change(caller, target)?;
    Powers::of_caller(caller).covers(&Powers::of_settings(new, target.roll_ends_at))?;
    if new.off_the_record != target.off_the_record {
        require_admin(caller, "Changing Off the Record")?;
    }
    if new.postback_url != target.postback_url {
        require_admin(caller, "Changing the POSTback URL")?;
    }
    if new.enabled && !target.enabled {
        may_activate(caller, target)?;
    }
    if caller.key_id == target.key_id
        && (new.rate_limits != target.limits()
            || new.refill != target.refill()
            || new.credits != crate::domain::key_settings::CreditsChange::Keep)
    {
        may_change_credits(caller, target)?;
    }
    Ok(())
}

/// Setting, adding or subtracting credits of `target`: never a key's own.
pub fn may_change_credits(caller: &CachedKey, target: &ApiKey) -> Result<(), Refusal> {
    if caller.key_id == target.key_id {
        return refuse(
            "LIMIT_ESCALATION",
            "A key may not change its own rate limits, credits or refill.",
        );
    }
    may_change(caller, target)
}

/// Rolling the POSTback signing secret of `target`, or sending or resending its events:
/// POSTback management, like changing the URL, needs `keys:admin`.
pub fn may_manage_postback(caller: &CachedKey, target: &ApiKey) -> Result<(), Refusal> {
    may_change(caller, target)?;
    require_admin(caller, "Managing POSTbacks")
}

/// Rolling `target` (its successor is shown to the caller: a takeover if allowed freely).
pub fn may_roll(caller: &CachedKey, target: &ApiKey) -> Result<(), Refusal> {
    may_change(caller, target)?;
    if caller.key_id != target.key_id {
        require_admin(caller, "Rolling another key")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn caller(scopes: &[&str], cidrs: &[&str], ends: Option<PrimitiveDateTime>) -> CachedKey {
        let mut key = CachedKey {
            key_id: "CALLER000001".into(),
            name: "caller".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            ..CachedKey::sample(1)
        };
        key.lifecycle.expires_at = ends;
        key
    }

    fn settings(scopes: &[&str], cidrs: &[&str], ends: Option<PrimitiveDateTime>) -> KeySettings {
        KeySettings {
            name: "k".into(),
            description: None,
            expires_at: ends,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            postback_url: None,
            off_the_record: false,
            enabled: true,
            ..KeySettings::default()
        }
    }

    fn code(r: Result<(), Refusal>) -> &'static str {
        r.err().map_or("OK", |r| r.code)
    }

    const T: PrimitiveDateTime = datetime!(2027-01-01 00:00);

    #[test]
    fn a_key_grants_only_what_it_holds() {
        let c = caller(&["keys:write"], &[], None);
        assert_eq!(
            code(may_create(&c, &settings(&["keys:write"], &[], None))),
            "OK"
        );
        assert_eq!(
            code(may_create(
                &c,
                &settings(&["keys:read", "keys:write"], &[], None)
            )),
            "SCOPE_ESCALATION"
        );
    }

    #[test]
    fn networks_must_lie_inside_the_callers_own() {
        let c = caller(&["keys:write"], &["10.0.0.0/8"], None);
        let ok = settings(&[], &["10.1.0.0/16"], None);
        assert_eq!(code(may_create(&c, &ok)), "OK");
        for bad in [
            &[][..],
            &["0.0.0.0/0"][..],
            &["11.0.0.0/16"][..],
            &["10.0.0.0/7"][..],
        ] {
            assert_eq!(
                code(may_create(&c, &settings(&[], bad, None))),
                "NETWORK_ESCALATION",
                "{bad:?}"
            );
        }
        let any = caller(&["keys:write"], &[], None);
        assert_eq!(code(may_create(&any, &settings(&[], &[], None))), "OK");
    }

    #[test]
    fn expiry_must_not_outlive_the_caller() {
        let c = caller(&["keys:write"], &[], Some(T));
        assert_eq!(code(may_create(&c, &settings(&[], &[], Some(T)))), "OK");
        assert_eq!(
            code(may_create(&c, &settings(&[], &[], None))),
            "EXPIRY_ESCALATION"
        );
        assert_eq!(
            code(may_create(
                &c,
                &settings(&[], &[], Some(datetime!(2027-01-02 00:00)))
            )),
            "EXPIRY_ESCALATION"
        );
    }

    #[test]
    fn off_the_record_and_postback_need_the_admin_scope() {
        let c = caller(&["keys:write"], &[], None);
        let mut s = settings(&[], &[], None);
        s.off_the_record = true;
        assert_eq!(code(may_create(&c, &s)), "ADMIN_SCOPE_REQUIRED");
        let admin = caller(&["keys:write", "keys:admin"], &[], None);
        assert_eq!(code(may_create(&admin, &s)), "OK");
    }
}
