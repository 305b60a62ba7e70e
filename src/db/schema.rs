// Hand-written, identical for SQLite and PostgreSQL: ids are BigInt on both (SQLite's
// `INTEGER PRIMARY KEY` holds 64-bit values), times are UTC `Timestamp`.
// The test `both_backends_migrate_and_agree_with_schema_rs` compares this file with
// what each backend's migrations create.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        totp_secret -> Nullable<Text>,
        totp_enabled -> Bool,
        totp_last_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        source_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    channels (id) {
        id -> BigInt,
        name -> Text,
        key_limit -> Nullable<BigInt>,
        key_count -> BigInt,
        is_system -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        channel_id -> BigInt,
        key_id -> Text,
        key_hash -> Text,
        last_four -> Text,
        prefix -> Text,
        name -> Text,
        name_lower -> Text,
        description -> Nullable<Text>,
        scopes -> Text,
        allowed_cidrs -> Text,
        postback_url -> Nullable<Text>,
        off_the_record -> Bool,
        enabled -> Bool,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        last_used_ip -> Nullable<Text>,
        last_used_order -> BigInt,
        roll_ends_at -> Nullable<Timestamp>,
        rolled_to_key_id -> Nullable<Text>,
        expiry_notice_sent_at -> Nullable<Timestamp>,
        deactivated_by_person -> Bool,
        holds_slot -> Bool,
        postback_gone_at -> Nullable<Timestamp>,
        uses_24h -> BigInt,
        uses_30d -> BigInt,
        imported_as -> Nullable<Text>,
        leaked_at -> Nullable<Timestamp>,
        rate_limits -> Text,
        metadata -> Nullable<Text>,
        credits -> Nullable<BigInt>,
        credit_epoch -> BigInt,
        refill_period -> Nullable<Text>,
        refill_amount -> Nullable<BigInt>,
        refilled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        actor -> Text,
        actor_user_id -> Nullable<BigInt>,
        action -> Text,
        source_ip -> Nullable<Text>,
        channel_id -> Nullable<BigInt>,
        channel_name -> Nullable<Text>,
        key_id -> Nullable<Text>,
        key_name -> Nullable<Text>,
        details -> Text,
        repeat_count -> BigInt,
    }
}

diesel::table! {
    request_log (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        api_key_id -> BigInt,
        channel_id -> BigInt,
        method -> Text,
        route -> Text,
        status -> Integer,
        source_ip -> Nullable<Text>,
        kind -> Text,
        code -> Nullable<Text>,
    }
}

diesel::table! {
    usage_rollups (api_key_id, period, bucket_start, outcome) {
        api_key_id -> BigInt,
        period -> Text,
        bucket_start -> Timestamp,
        outcome -> Text,
        count -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        api_key_id -> Nullable<BigInt>,
        event_type -> Text,
        url -> Text,
        payload -> Text,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        attempts -> Integer,
        delivered_at -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_outcome -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        msg_id -> Text,
        host -> Text,
    }
}

diesel::table! {
    postback_secrets (id) {
        id -> BigInt,
        api_key_id -> BigInt,
        sealed -> Text,
        created_at -> Timestamp,
        retires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    key_changes (id) {
        id -> BigInt,
        key_hash -> Text,
        changed_at -> Timestamp,
        origin -> Text,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        username -> Text,
        source_ip -> Text,
        success -> Bool,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    settings (id) {
        id -> BigInt,
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    leak_reports (id) {
        id -> BigInt,
        body_hash -> Text,
        received_at -> Timestamp,
        tokens -> BigInt,
    }
}

diesel::table! {
    expiry_reminders (api_key_id, lead_days) {
        api_key_id -> BigInt,
        lead_days -> BigInt,
        expires_at -> Timestamp,
        sent_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(api_keys -> channels (channel_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    channels,
    api_keys,
    audit_events,
    request_log,
    usage_rollups,
    outbox,
    postback_secrets,
    key_changes,
    login_attempts,
    recovery_codes,
    settings,
    leak_reports,
    expiry_reminders,
);
