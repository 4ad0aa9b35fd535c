//! The database schema as diesel sees it, shared by both backends.
//!
//! Written to match `node/migrations/{sqlite,postgres}`; the test
//! `storage::migrations::tests::schema_rs_matches_the_migrated_database` fails
//! when a migration and this file disagree.
#![allow(missing_docs)]

diesel::table! {
    operators (id) {
        id -> BigInt,
        ext_id -> Text,
        name -> Text,
        country -> Nullable<Text>,
        address -> Nullable<Text>,
        roles -> Nullable<Text>,
        licence -> Nullable<Text>,
        tax_id -> Nullable<Text>,
        extra -> Nullable<Text>,
    }
}

diesel::table! {
    facilities (id) {
        id -> BigInt,
        ext_id -> Text,
        operator_id -> Nullable<BigInt>,
        name -> Text,
        kind -> Nullable<Text>,
        country -> Nullable<Text>,
        address -> Nullable<Text>,
        extra -> Nullable<Text>,
    }
}

diesel::table! {
    machines (id) {
        id -> BigInt,
        ext_id -> Text,
        facility_id -> Nullable<BigInt>,
        model -> Nullable<Text>,
        capacity_per_min -> Nullable<BigInt>,
        extra -> Nullable<Text>,
    }
}

diesel::table! {
    products (id) {
        id -> BigInt,
        ext_id -> Text,
        operator_id -> Nullable<BigInt>,
        description -> Text,
        brand -> Nullable<Text>,
        gtin -> Nullable<Text>,
        intended_market -> Nullable<Text>,
        category -> Nullable<Text>,
        extra -> Nullable<Text>,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        event_key -> Text,
        kind -> SmallInt,
        epcis_type -> SmallInt,
        action -> Nullable<SmallInt>,
        event_time -> BigInt,
        tz_offset -> Text,
        biz_step -> Nullable<Text>,
        disposition -> Nullable<Text>,
        read_point -> Nullable<Text>,
        biz_location -> Nullable<Text>,
        facility_id -> Nullable<BigInt>,
        machine_id -> Nullable<BigInt>,
        parent_code_id -> Nullable<BigInt>,
        product_id -> Nullable<BigInt>,
        import_id -> Nullable<BigInt>,
        doc -> Text,
    }
}

diesel::table! {
    codes (id) {
        id -> BigInt,
        product_id -> Nullable<BigInt>,
        applied_by -> Nullable<BigInt>,
        parent_id -> Nullable<BigInt>,
        aggregated_by -> Nullable<BigInt>,
        level -> SmallInt,
        status -> SmallInt,
        code -> Text,
    }
}

diesel::table! {
    event_codes (code_id, event_id, role) {
        code_id -> BigInt,
        event_id -> BigInt,
        role -> SmallInt,
    }
}

diesel::table! {
    aggregation_history (child_id, ended_by) {
        child_id -> BigInt,
        ended_by -> BigInt,
        parent_id -> BigInt,
        aggregated_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    imports (id) {
        id -> BigInt,
        sha256 -> Text,
        file_name -> Text,
        format -> Text,
        imported_at -> BigInt,
        codes -> BigInt,
        events -> BigInt,
        records -> BigInt,
        context -> Nullable<Text>,
    }
}

// ---- exchange: officers, cases, messages, outbox, audit -------------------

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        display_name -> Text,
        password_hash -> Text,
        roles -> Text,
        disabled -> SmallInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        role -> SmallInt,
        counterpart -> Text,
        template -> Text,
        template_version -> Integer,
        state -> SmallInt,
        priority -> Text,
        due_date -> Nullable<Text>,
        subject -> Text,
        policy -> SmallInt,
        outcome -> Nullable<Text>,
        failure -> Nullable<Text>,
        created_by -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    messages (seq) {
        seq -> BigInt,
        message_id -> Text,
        from_party -> Text,
        to_party -> Text,
        case_id -> Text,
        direction -> SmallInt,
        kind -> SmallInt,
        template -> Nullable<Text>,
        content_type -> Text,
        body -> Binary,
        body_sha256 -> Text,
        envelope -> Nullable<Binary>,
        envelope_sha256 -> Nullable<Text>,
        receipt -> Nullable<Binary>,
        state -> SmallInt,
        in_reply_to -> Nullable<Text>,
        author -> Nullable<BigInt>,
        approved_by -> Nullable<BigInt>,
        created_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (message_seq) {
        message_seq -> BigInt,
        peer -> Text,
        state -> SmallInt,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        expires_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    audit (id) {
        id -> BigInt,
        case_id -> Text,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        detail -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(messages -> cases (case_id));
diesel::joinable!(outbox -> messages (message_seq));

diesel::allow_tables_to_appear_in_same_query!(users, sessions, cases, messages, outbox, audit,);

diesel::joinable!(facilities -> operators (operator_id));
diesel::joinable!(machines -> facilities (facility_id));
diesel::joinable!(products -> operators (operator_id));
diesel::joinable!(codes -> products (product_id));

diesel::allow_tables_to_appear_in_same_query!(
    operators,
    facilities,
    machines,
    products,
    events,
    codes,
    event_codes,
    aggregation_history,
    imports,
);

// The Secretariat directory and a node's alarms (migration 000002_directory).

diesel::table! {
    directory_log (leaf_index) {
        leaf_index -> BigInt,
        party -> Text,
        kind -> SmallInt,
        entry -> Binary,
        leaf_hash -> Binary,
        logged_at -> BigInt,
    }
}

diesel::table! {
    directory_pending (id) {
        id -> BigInt,
        party -> Text,
        submission -> Binary,
        root_fingerprint -> Text,
        issued -> BigInt,
        received_at -> BigInt,
        state -> SmallInt,
    }
}

diesel::table! {
    node_alarms (id) {
        id -> BigInt,
        kind -> Text,
        message -> Text,
        raised_at -> BigInt,
        last_seen -> BigInt,
        occurrences -> BigInt,
        acknowledged_at -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(directory_log, directory_pending, node_alarms,);
