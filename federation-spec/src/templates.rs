//! Message templates: names, versions, parts and JSON Schema validation.
//! (Schemas are added in the next step.)

/// Which half of an exchange a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// and `-`, version at least 1.
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

/// Validates a message body against its template, when it has one and the
/// content type is JSON.
pub fn validate_body(
    _template: Option<&TemplateRef>,
    _content_type: &str,
    _body: &[u8],
) -> Result<(), String> {
    Ok(())
}
