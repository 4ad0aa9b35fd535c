//! Message templates: names, versions, parts, and validation of bodies against
//! their JSON Schemas.
//!
//! The schemas (JSON Schema draft 2020-12) live in `federation-spec/templates/`
//! and are compiled into this crate, so validation never touches the network
//! or the file system. A body that names a template must be
//! `application/json` and must validate against that template's request or
//! answer schema; `seal` and `open` enforce this (SPEC.md §10). What a node
//! does with a valid body (answer policy, storage) is not this module's
//! business.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Which half of an exchange a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The question.
    Request,
    /// The reply.
    Answer,
}

impl Part {
    /// The wire value (SPEC.md §5): 1 for a request, 2 for an answer.
    pub fn wire_value(self) -> u8 {
        match self {
            Part::Request => 1,
            Part::Answer => 2,
        }
    }

    /// Parses the wire value.
    pub fn from_wire(v: u8) -> Option<Self> {
        match v {
            1 => Some(Part::Request),
            2 => Some(Part::Answer),
            _ => None,
        }
    }

    /// `request` or `answer`, as in the schema file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Request => "request",
            Part::Answer => "answer",
        }
    }
}

/// The template a message body follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateRef {
    /// Template name, for example `uid-verification`.
    pub name: String,
    /// Template version, 1 or more.
    pub version: u16,
    /// Request or answer.
    pub part: Part,
}

impl TemplateRef {
    /// Checks the syntax rules (SPEC.md §5.2): 1 to 64 bytes of `a-z`, `0-9`
    /// and `-`, version at least 1. Whether the template exists is checked by
    /// [`validate`].
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > crate::header::MAX_TEMPLATE_NAME {
            return Err("template name must be 1 to 64 bytes".into());
        }
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("template name may only hold a-z, 0-9 and -".into());
        }
        if self.version == 0 {
            return Err("template version must be at least 1".into());
        }
        Ok(())
    }
}

/// The content type every templated body has.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// `federation-spec/templates/index.json`: names, versions, Protocol articles
/// and default answer policies.
pub const INDEX_JSON: &str = include_str!("../templates/index.json");

const COMMON_ID: &str = "https://schemas.gsp.invalid/templates/common/v1.schema.json";
const COMMON: &str = include_str!("../templates/common/v1.schema.json");

/// Every (name, version, part, schema text) this crate knows.
const SCHEMAS: &[(&str, u16, Part, &str)] = &[
    (
        "uid-verification",
        1,
        Part::Request,
        include_str!("../templates/uid-verification/v1/request.schema.json"),
    ),
    (
        "uid-verification",
        1,
        Part::Answer,
        include_str!("../templates/uid-verification/v1/answer.schema.json"),
    ),
    (
        "supply-chain-trace",
        1,
        Part::Request,
        include_str!("../templates/supply-chain-trace/v1/request.schema.json"),
    ),
    (
        "supply-chain-trace",
        1,
        Part::Answer,
        include_str!("../templates/supply-chain-trace/v1/answer.schema.json"),
    ),
    (
        "seizure",
        1,
        Part::Request,
        include_str!("../templates/seizure/v1/request.schema.json"),
    ),
    (
        "seizure",
        1,
        Part::Answer,
        include_str!("../templates/seizure/v1/answer.schema.json"),
    ),
    (
        "operator-licence",
        1,
        Part::Request,
        include_str!("../templates/operator-licence/v1/request.schema.json"),
    ),
    (
        "operator-licence",
        1,
        Part::Answer,
        include_str!("../templates/operator-licence/v1/answer.schema.json"),
    ),
    (
        "free-text",
        1,
        Part::Request,
        include_str!("../templates/free-text/v1/request.schema.json"),
    ),
    (
        "free-text",
        1,
        Part::Answer,
        include_str!("../templates/free-text/v1/answer.schema.json"),
    ),
];

/// Why a body was refused by its template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// No such template and version.
    #[error("unknown template {name} version {version}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The version asked for.
        version: u16,
    },
    /// A templated body must be `application/json`.
    #[error("a templated body must be application/json, not {0}")]
    NotJsonContentType(String),
    /// The body is not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// The body breaks the schema; `pointer` is the JSON pointer of the
    /// offending value (empty for the whole document).
    #[error("at `{pointer}`: {message}")]
    Invalid {
        /// JSON pointer (RFC 6901) into the body.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// The embedded schemas failed to compile (a bug in this crate).
    #[error("template schemas failed to compile: {0}")]
    Schema(String),
}

type Compiled = HashMap<(&'static str, u16, Part), jsonschema::Validator>;

fn compiled() -> Result<&'static Compiled, TemplateError> {
    static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();
    COMPILED
        .get_or_init(compile_all)
        .as_ref()
        .map_err(|e| TemplateError::Schema(e.clone()))
}

fn compile_all() -> Result<Compiled, String> {
    let common: Value = serde_json::from_str(COMMON).map_err(|e| format!("common: {e}"))?;
    let registry = jsonschema::Registry::new()
        .add(COMMON_ID, common)
        .map_err(|e| e.to_string())?
        .prepare()
        .map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for (name, version, part, text) in SCHEMAS {
        let schema: Value = serde_json::from_str(text)
            .map_err(|e| format!("{name} v{version} {}: {e}", part.as_str()))?;
        let validator = jsonschema::options()
            .offline()
            .with_registry(&registry)
            .build(&schema)
            .map_err(|e| format!("{name} v{version} {}: {e}", part.as_str()))?;
        out.insert((*name, *version, *part), validator);
    }
    Ok(out)
}

/// Validates a JSON value against a template part. The error names the JSON
/// pointer of the first offending value.
pub fn validate(name: &str, version: u16, part: Part, value: &Value) -> Result<(), TemplateError> {
    let all = compiled()?;
    let validator = SCHEMAS
        .iter()
        .find(|(n, v, p, _)| *n == name && *v == version && *p == part)
        .and_then(|(n, v, p, _)| all.get(&(*n, *v, *p)))
        .ok_or_else(|| TemplateError::Unknown {
            name: name.to_owned(),
            version,
        })?;
    // The common case first: `is_valid` stops at the first failure and
    // builds no error values; only an invalid body is walked again for the
    // error that names where it fails.
    if validator.is_valid(value) {
        return Ok(());
    }
    // Never accepted on the second walk's word alone.
    Err(match validator.iter_errors(value).next() {
        Some(e) => TemplateError::Invalid {
            pointer: e.instance_path().as_str().to_owned(),
            message: e.to_string(),
        },
        None => TemplateError::Invalid {
            pointer: String::new(),
            message: "the body does not match the template's schema".to_owned(),
        },
    })
}

/// A JSON body validated against its template by this crate and serialized by
/// it: [`crate::envelope::seal_validated`] seals these bytes without parsing
/// and validating them a second time. Only [`ValidatedBody::new`] makes one,
/// so the bytes are always those of a body that passed.
#[derive(Debug, Clone)]
pub struct ValidatedBody {
    template: TemplateRef,
    bytes: Vec<u8>,
}

impl ValidatedBody {
    /// Validates `body` against `template` and serializes it.
    pub fn new(template: TemplateRef, body: &Value) -> Result<ValidatedBody, TemplateError> {
        validate(&template.name, template.version, template.part, body)?;
        let bytes = serde_json::to_vec(body).map_err(|e| TemplateError::NotJson(e.to_string()))?;
        Ok(ValidatedBody { template, bytes })
    }

    /// The template it was validated against.
    pub fn template(&self) -> &TemplateRef {
        &self.template
    }

    /// The serialized body.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The serialized body, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Whether a template name and version is known to this crate.
pub fn is_known(name: &str, version: u16) -> bool {
    SCHEMAS
        .iter()
        .any(|(n, v, _, _)| *n == name && *v == version)
}

/// Validates a message body against its template: bodies without a template
/// pass; templated bodies must be `application/json` and match the schema.
pub fn validate_body(
    template: Option<&TemplateRef>,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let Some(t) = template else {
        return Ok(());
    };
    if content_type != JSON_CONTENT_TYPE {
        return Err(TemplateError::NotJsonContentType(content_type.to_owned()).to_string());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| TemplateError::NotJson(e.to_string()).to_string())?;
    validate(&t.name, t.version, t.part, &value).map_err(|e| e.to_string())
}
