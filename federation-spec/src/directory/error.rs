//! Why a directory record, log entry, checkpoint, snapshot or proof was
//! refused: one variant per reason, each with a stable snake_case code (used
//! in HTTP error bodies and logs) and a sentence that names what and where.

/// A refusal. `code()` is stable; the text is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// A record, entry, checkpoint or snapshot exceeds its size limit.
    #[error("{what} is {size} bytes, above the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A record's JSON is malformed or breaks a field rule.
    #[error("record{}: {message}", party_suffix(.party))]
    MalformedRecord {
        /// The Party, when known.
        party: Option<String>,
        /// What is wrong, with the field's JSON pointer.
        message: String,
    },
    /// A code pattern does not compile or is too costly.
    #[error("record of {party}: code pattern {index} ({pattern:?}): {message}")]
    BadPattern {
        /// The Party.
        party: String,
        /// Position in `code_patterns`.
        index: usize,
        /// The pattern, cut to 80 characters.
        pattern: String,
        /// Why.
        message: String,
    },
    /// A binary structure (entry, checkpoint, snapshot statement) is malformed.
    #[error("{what}: {message}")]
    Malformed {
        /// Which structure (and where).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A signature does not verify.
    #[error("{what}: the signature does not verify")]
    BadSignature {
        /// Which signature, of what.
        what: String,
    },
    /// A record is signed by a root key other than the Party's registered one.
    #[error(
        "record of {party} is signed by root key {got}, but the registered root key is {registered}: a later record must be signed by the current root key (a root-key change needs the old key's signature or an out-of-band re-registration)"
    )]
    WrongRootKey {
        /// The Party.
        party: String,
        /// Fingerprint of the key that signed.
        got: String,
        /// Fingerprint of the registered key.
        registered: String,
    },
    /// A record is not newer than the one already accepted.
    #[error(
        "record of {party} was issued at {issued}, not after the current record's {current}: refused as stale or replayed"
    )]
    Stale {
        /// The Party.
        party: String,
        /// Its `issued`.
        issued: u64,
        /// The current record's `issued`.
        current: u64,
    },
    /// A proof is wrong.
    #[error("{what}: {source}")]
    Proof {
        /// Which proof.
        what: String,
        /// Why.
        source: crate::log::ProofError,
    },
    /// The log is smaller than one already accepted, or a Party's entry went back.
    #[error("rollback: {0}")]
    Rollback(String),
    /// The log is not an extension of the one already accepted.
    #[error("fork: {0}")]
    Fork(String),
    /// A Party's root key changed without a record signed by the old key or a
    /// Secretariat re-registration.
    #[error(
        "root key of {party} changed from {from} to {to} without a record signed by the old root key or a logged re-registration"
    )]
    RootKeyChanged {
        /// The Party.
        party: String,
        /// Fingerprint of the key held before.
        from: String,
        /// Fingerprint of the key now claimed.
        to: String,
    },
    /// The snapshot's validity period is over (or has not begun).
    #[error(
        "the directory snapshot is valid from {issued} to {valid_until} (Unix ms); it is now {now}"
    )]
    Expired {
        /// Start.
        issued: u64,
        /// End.
        valid_until: u64,
        /// Now.
        now: u64,
    },
}

fn party_suffix(p: &Option<String>) -> String {
    p.as_ref().map(|p| format!(" of {p}")).unwrap_or_default()
}

impl DirectoryError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::TooLarge { .. } => "too_large",
            DirectoryError::MalformedRecord { .. } => "malformed_record",
            DirectoryError::BadPattern { .. } => "bad_pattern",
            DirectoryError::Malformed { .. } => "malformed",
            DirectoryError::BadSignature { .. } => "bad_signature",
            DirectoryError::WrongRootKey { .. } => "wrong_root_key",
            DirectoryError::Stale { .. } => "stale_record",
            DirectoryError::Proof { .. } => "bad_proof",
            DirectoryError::Rollback(_) => "rollback",
            DirectoryError::Fork(_) => "fork",
            DirectoryError::RootKeyChanged { .. } => "root_key_changed",
            DirectoryError::Expired { .. } => "snapshot_expired",
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, message: impl Into<String>) -> Self {
        DirectoryError::Malformed {
            what: what.into(),
            message: message.into(),
        }
    }

    pub(crate) fn record(party: Option<&str>, message: impl Into<String>) -> Self {
        DirectoryError::MalformedRecord {
            party: party.map(str::to_owned),
            message: message.into(),
        }
    }
}
