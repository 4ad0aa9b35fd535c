//! Database URLs: `sqlite://PATH`, `sqlite:PATH`, `postgres://…`, `postgresql://…`.

use super::{Backend, StorageError};
use std::path::{Path, PathBuf};

/// A parsed database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (libpq URL).
    Postgres(String),
}

impl DatabaseUrl {
    /// The embedded default: `gsp.db` in the data directory.
    pub fn default_in(data_dir: &Path) -> DatabaseUrl {
        DatabaseUrl::Sqlite(data_dir.join("gsp.db"))
    }

    /// Parses a URL; the scheme picks the backend.
    pub fn parse(url: &str) -> Result<DatabaseUrl, StorageError> {
        let fail = |message: &str| StorageError::Url {
            url: redact(url),
            message: message.to_owned(),
        };
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            if rest.is_empty() {
                return Err(fail("no host or database after the scheme"));
            }
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                return Err(fail("no file path after the scheme"));
            }
            if rest.contains('?') {
                return Err(fail(
                    "SQLite options in the URL are not supported; use the [database] settings",
                ));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(rest)));
        }
        Err(fail(
            "unsupported scheme: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
        ))
    }

    /// Which backend the URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => redact(u),
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Hides the password of `scheme://user:password@host…`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://gsp-data/gsp.db").unwrap(),
            DatabaseUrl::Sqlite("gsp-data/gsp.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/gsp/gsp.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/gsp/gsp.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/test")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        for bad in [
            "mysql://x",
            "gsp.db",
            "sqlite://",
            "postgres://",
            "sqlite://a.db?mode=ro",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_reach_logs() {
        let url = DatabaseUrl::parse("postgres://gsp:s3cret@db.example:5432/gsp").unwrap();
        assert_eq!(url.redacted(), "postgres://gsp:***@db.example:5432/gsp");
        let err = DatabaseUrl::parse("mysql://gsp:s3cret@db/gsp").unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
    }
}
