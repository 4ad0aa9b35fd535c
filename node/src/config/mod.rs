//! Node configuration: typed, validated once at start-up, then passed down.
//!
//! Sources, strongest first: command-line flags, `GSP_<SECTION>_<FIELD>`
//! environment variables, the TOML file (`--config`, default `gsp.toml` in the
//! data directory), the defaults declared here. `gsp config example` prints a
//! documented example generated from these declarations; `deploy/gsp.example.toml`
//! is that output, and a test fails when the two drift apart.
//!
//! Not for: secrets. Keys live in their own 0600 files (see `gsp-certs`).

mod sections;
pub(crate) mod settings;

pub use sections::*;
pub use settings::FieldDoc;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The whole configuration of a `gsp` process.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Who this node is.
    pub node: NodeSettings,
    /// Where the data lives.
    pub database: DatabaseSettings,
    /// The local HTTP API (officers' web application and scripts).
    pub api: ApiSettings,
    /// Logging.
    pub log: LogSettings,
    /// Data import.
    pub import: ImportSettings,
    /// The federation listener.
    pub federation: FederationSettings,
    /// Cases, answer policies and delivery.
    pub exchange: ExchangeSettings,
    /// The Secretariat directory, as a node uses it.
    pub directory: DirectorySettings,
    /// The Secretariat directory role.
    pub directory_server: DirectoryServerSettings,
}

/// A section of the config file with its documentation, for the example file.
struct SectionDoc {
    name: &'static str,
    doc: &'static str,
    fields: &'static [FieldDoc],
}

const SECTIONS: &[SectionDoc] = &[
    SectionDoc {
        name: "node",
        doc: "Who this node is.",
        fields: NodeSettings::FIELDS,
    },
    SectionDoc {
        name: "database",
        doc: "Where the data lives: SQLite (embedded default) or PostgreSQL.",
        fields: DatabaseSettings::FIELDS,
    },
    SectionDoc {
        name: "api",
        doc: "The local HTTP API used by officers' browsers and scripts.",
        fields: ApiSettings::FIELDS,
    },
    SectionDoc {
        name: "log",
        doc: "Logging.",
        fields: LogSettings::FIELDS,
    },
    SectionDoc {
        name: "import",
        doc: "Data import (`gsp import`).",
        fields: ImportSettings::FIELDS,
    },
    SectionDoc {
        name: "federation",
        doc: "The federation listener: other Parties' nodes deliver messages here (mutual TLS 1.3).",
        fields: FederationSettings::FIELDS,
    },
    SectionDoc {
        name: "exchange",
        doc: "Cases, answer policies and delivery.",
        fields: ExchangeSettings::FIELDS,
    },
    SectionDoc {
        name: "directory",
        doc: "The Secretariat directory: where this node fetches the signed list of Parties' nodes and keys.",
        fields: DirectorySettings::FIELDS,
    },
    SectionDoc {
        name: "directory_server",
        doc: "The Secretariat directory role (`gsp directory serve`; only on the directory host).",
        fields: DirectoryServerSettings::FIELDS,
    },
];

/// A configuration problem, naming the file, key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// An environment override could not be parsed.
    #[error("{0}")]
    Env(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// `section.field`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads the configuration.
    ///
    /// `file` is the config file; when `required` is false a missing file means
    /// "defaults" (the default path need not exist), when true it is an error.
    /// `env` reads environment variables (a parameter so tests need not mutate
    /// the process environment).
    pub fn load(
        file: &Path,
        required: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match std::fs::read_to_string(file) {
            Ok(text) => Self::parse(&text, file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Config::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: file.to_owned(),
                    source,
                });
            }
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })
    }

    /// Applies every `GSP_<SECTION>_<FIELD>` variable that is set.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        self.node.apply_env("node", env).map_err(ConfigError::Env)?;
        self.database
            .apply_env("database", env)
            .map_err(ConfigError::Env)?;
        self.api.apply_env("api", env).map_err(ConfigError::Env)?;
        self.log.apply_env("log", env).map_err(ConfigError::Env)?;
        self.import
            .apply_env("import", env)
            .map_err(ConfigError::Env)?;
        self.federation
            .apply_env("federation", env)
            .map_err(ConfigError::Env)?;
        self.exchange
            .apply_env("exchange", env)
            .map_err(ConfigError::Env)?;
        self.directory
            .apply_env("directory", env)
            .map_err(ConfigError::Env)?;
        self.directory_server
            .apply_env("directory_server", env)
            .map_err(ConfigError::Env)?;
        Ok(())
    }

    /// Checks values that are well-typed but unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(party) = &self.node.party
            && !is_party_code(party)
        {
            return Err(ConfigError::Invalid {
                key: "node.party",
                message: format!("{party:?} is not an ISO 3166-1 alpha-3 code (e.g. KEN) or EU"),
            });
        }
        for (key, n) in [
            ("api.blocking_threads", self.api.blocking_threads),
            (
                "federation.blocking_threads",
                self.federation.blocking_threads,
            ),
            (
                "federation.peer_max_in_flight",
                self.federation.peer_max_in_flight,
            ),
        ] {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "must be at least 1".into(),
                });
            }
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "database.pool_size",
                message: "must be at least 1".into(),
            });
        }
        if self.api.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "api.max_body_bytes",
                message: "must be at least 1024".into(),
            });
        }
        if let Some(h) = &self.api.metrics_token_sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ConfigError::Invalid {
                key: "api.metrics_token_sha256",
                message: "must be 64 hex digits (the SHA-256 of the token)".into(),
            });
        }
        if self.federation.clock_skew_secs > 3600 {
            return Err(ConfigError::Invalid {
                key: "federation.clock_skew_secs",
                message: "at most 3600".into(),
            });
        }
        if self.federation.max_envelope_bytes > gsp_federation::envelope::MAX_ENVELOPE {
            return Err(ConfigError::Invalid {
                key: "federation.max_envelope_bytes",
                message: format!("at most {}", gsp_federation::envelope::MAX_ENVELOPE),
            });
        }
        if self.exchange.in_flight_per_peer == 0 || self.exchange.in_flight_per_peer > 256 {
            return Err(ConfigError::Invalid {
                key: "exchange.in_flight_per_peer",
                message: "between 1 and 256".into(),
            });
        }
        if self.exchange.delivery_threads > 256 {
            return Err(ConfigError::Invalid {
                key: "exchange.delivery_threads",
                message: "at most 256 (0: one per CPU core)".into(),
            });
        }
        for name in self.exchange.policies.keys() {
            if !gsp_federation::templates::is_known(name, 1) {
                return Err(ConfigError::Invalid {
                    key: "exchange.policies",
                    message: format!(
                        "{name:?} is not a template (uid-verification, supply-chain-trace, seizure, operator-licence, free-text)"
                    ),
                });
            }
        }
        if self.import.batch_size == 0 || self.import.batch_size > 100_000 {
            return Err(ConfigError::Invalid {
                key: "import.batch_size",
                message: "must be between 1 and 100000".into(),
            });
        }
        Ok(())
    }

    /// The documented example config: every setting with its doc comment and
    /// default value, generated from the declarations in `sections.rs`.
    pub fn example_toml() -> String {
        let defaults = Config::default();
        let table = match toml::Table::try_from(&defaults) {
            Ok(t) => t,
            Err(e) => return format!("# cannot render defaults: {e}\n"),
        };
        let mut out = String::from(
            "# GSP node configuration (gsp.toml).\n\
             #\n\
             # Generated by `gsp config example` from the settings' declarations; every\n\
             # value shown is the default. Each setting can also be given as an environment\n\
             # variable GSP_<SECTION>_<KEY>, e.g. GSP_DATABASE_URL or GSP_API_LISTEN, which\n\
             # wins over this file; command-line flags win over both.\n",
        );
        for section in SECTIONS {
            let _ = write!(out, "\n# {}\n[{}]\n", section.doc, section.name);
            let values = table.get(section.name).and_then(|v| v.as_table());
            for field in section.fields {
                out.push('\n');
                for line in field.doc {
                    let _ = writeln!(out, "#{}", line.trim_end());
                }
                match values.and_then(|v| v.get(field.name)) {
                    Some(value) => {
                        let _ = writeln!(out, "{} = {}", field.name, value);
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "# {} = {}",
                            field.name,
                            field.example.unwrap_or("\"\"")
                        );
                    }
                }
            }
        }
        out
    }
}

/// True for an ISO 3166-1 alpha-3 shaped code (three upper-case letters) or `EU`.
pub fn is_party_code(code: &str) -> bool {
    code == "EU" || (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn example_config_in_deploy_matches_the_declarations() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/gsp.example.toml");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed,
            Config::example_toml(),
            "deploy/gsp.example.toml is out of date: run `gsp config example > deploy/gsp.example.toml`"
        );
    }

    #[test]
    fn example_config_parses_back_to_the_defaults() {
        let parsed = Config::parse(&Config::example_toml(), Path::new("example")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn environment_overrides_every_kind_of_value() {
        let mut config = Config::default();
        config
            .apply_env(&env_of(&[
                ("GSP_DATABASE_URL", "postgres://x@127.0.0.1/db"),
                ("GSP_DATABASE_POOL_SIZE", "3"),
                ("GSP_API_LISTEN", "127.0.0.1:9999"),
                ("GSP_NODE_NAME", "Kenya Revenue Authority"),
                ("GSP_LOG_FORMAT", "json"),
            ]))
            .unwrap();
        assert_eq!(
            config.database.url.as_deref(),
            Some("postgres://x@127.0.0.1/db")
        );
        assert_eq!(config.database.pool_size, 3);
        assert_eq!(config.api.listen.port(), 9999);
        assert_eq!(config.node.name, "Kenya Revenue Authority");
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let mut config = Config::default();
        let err = config
            .apply_env(&env_of(&[("GSP_DATABASE_POOL_SIZE", "many")]))
            .unwrap_err();
        assert!(err.to_string().contains("GSP_DATABASE_POOL_SIZE"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_in_the_file_are_located() {
        let err = Config::parse("[database]\npool_sise = 4\n", Path::new("gsp.toml")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("gsp.toml") && text.contains("pool_sise"),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gsp.toml");
        std::fs::write(&file, "[node]\nparty = \"Kenya\"\n").unwrap();
        let err = Config::load(&file, true, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("node.party"), "{err}");

        std::fs::write(&file, "[federation]\nblocking_threads = 0\n").unwrap();
        let err = Config::load(&file, true, &env_of(&[])).unwrap_err();
        assert!(
            err.to_string().contains("federation.blocking_threads"),
            "{err}"
        );

        std::fs::write(&file, "[exchange]\ndelivery_threads = 1000\n").unwrap();
        let err = Config::load(&file, true, &env_of(&[])).unwrap_err();
        assert!(
            err.to_string().contains("exchange.delivery_threads"),
            "{err}"
        );
        std::fs::write(&file, "[exchange]\ndelivery_threads = 3\n").unwrap();
        let config = Config::load(&file, true, &env_of(&[])).unwrap();
        assert_eq!(config.exchange.delivery_threads, 3);
    }

    #[test]
    fn a_missing_default_file_means_defaults_but_a_missing_given_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("absent.toml");
        assert_eq!(
            Config::load(&file, false, &env_of(&[])).unwrap(),
            Config::default()
        );
        assert!(Config::load(&file, true, &env_of(&[])).is_err());
    }

    #[test]
    fn party_codes() {
        for ok in ["KEN", "EU", "PAK", "SEN"] {
            assert!(is_party_code(ok), "{ok}");
        }
        for bad in ["ken", "KE", "KENY", "E U", "", "EUR1"] {
            assert!(!is_party_code(bad), "{bad}");
        }
    }
}
