//! The code-pattern library: compiling a record's prefixes and regular
//! expressions safely, and asking which patterns a code matches.
//!
//! Regular expressions use the syntax of RE2 / Rust's `regex` crate (no
//! look-around, no back-references), always match the **whole** code, and
//! are compiled with size limits, so a hostile pattern cannot make matching
//! slow or memory-hungry: matching is linear in the code's length.

use super::record::{CodePattern, PatternKind, limits};
use regex::{Regex, RegexBuilder};

/// Largest compiled program of one pattern, in bytes.
pub const MAX_COMPILED: usize = 64 * 1024;
/// Deepest nesting of groups and repetitions.
pub const MAX_NEST: u32 = 32;

/// A compiled pattern, ready to match codes.
#[derive(Debug, Clone)]
pub enum CompiledPattern {
    /// The code starts with this.
    Prefix(String),
    /// The whole code matches this.
    Regex(Regex),
}

impl CompiledPattern {
    /// Whether `code` matches.
    pub fn matches(&self, code: &str) -> bool {
        match self {
            CompiledPattern::Prefix(p) => code.starts_with(p.as_str()),
            CompiledPattern::Regex(r) => r.is_match(code),
        }
    }
}

/// Compiles a pattern, or says why it is refused.
pub fn compile(p: &CodePattern) -> Result<CompiledPattern, String> {
    if p.pattern.is_empty() || p.pattern.len() > limits::PATTERN {
        return Err(format!("must be 1 to {} bytes", limits::PATTERN));
    }
    if !p.pattern.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("must be printable ASCII".into());
    }
    match p.kind {
        PatternKind::Prefix => {
            if p.pattern.contains(' ') {
                return Err("a prefix holds no space".into());
            }
            Ok(CompiledPattern::Prefix(p.pattern.clone()))
        }
        PatternKind::Regex => RegexBuilder::new(&format!("^(?:{})$", p.pattern))
            .size_limit(MAX_COMPILED)
            .dfa_size_limit(4 * MAX_COMPILED)
            .nest_limit(MAX_NEST)
            .build()
            .map(CompiledPattern::Regex)
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(limit) => {
                    format!("compiles to more than {limit} bytes: simplify it")
                }
                other => format!(
                    "not a valid regular expression: {}",
                    one_line(&other.to_string())
                ),
            }),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PartyCode;

    fn pat(kind: PatternKind, p: &str) -> CodePattern {
        CodePattern {
            kind,
            pattern: p.into(),
            issuer: PartyCode::parse("KEN").unwrap(),
            description: "test".into(),
        }
    }

    #[test]
    fn regex_matches_whole_codes_and_prefix_matches_starts() {
        let r = compile(&pat(PatternKind::Regex, "KEN[1-4][0-9A-HJKMNP-TV-Z]{12}")).unwrap();
        assert!(r.matches("KEN1ABCDEFGHJKMN"));
        assert!(!r.matches("xKEN1ABCDEFGHJKMN"));
        assert!(!r.matches("KEN1ABCDEFGHJKMNP"));
        let p = compile(&pat(PatternKind::Prefix, "FRA-")).unwrap();
        assert!(p.matches("FRA-123") && !p.matches("FR-123"));
    }

    #[test]
    fn malformed_and_costly_patterns_are_refused() {
        for bad in [
            "(",
            "[a-",
            "a{99999}",
            "(?<=x)y",
            "\\1",
            "((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))",
        ] {
            assert!(compile(&pat(PatternKind::Regex, bad)).is_err(), "{bad}");
        }
        let err = compile(&pat(PatternKind::Regex, "(\\w{50}){50}")).unwrap_err();
        assert!(err.contains("more than"), "{err}");
        assert!(compile(&pat(PatternKind::Regex, "")).is_err());
        assert!(compile(&pat(PatternKind::Prefix, "a b")).is_err());
        assert!(compile(&pat(PatternKind::Prefix, "é")).is_err());
        assert!(compile(&pat(PatternKind::Regex, &"a".repeat(300))).is_err());
    }
}
