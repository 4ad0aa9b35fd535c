//! The `settings!` macro: one declaration gives a config section its struct, its
//! defaults, its field documentation (for the generated example config) and its
//! `GSP_<SECTION>_<FIELD>` environment overrides, so the four cannot drift apart.

use serde::de::DeserializeOwned;

/// Documentation of one setting, taken from its doc comment.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    /// The key in the TOML section.
    pub name: &'static str,
    /// The doc comment, one line per `///` line.
    pub doc: &'static [&'static str],
    /// A sample value shown commented out when the default is "unset".
    pub example: Option<&'static str>,
}

/// Parses one environment override for a field of type `T`.
///
/// The value is read as a TOML value first (`8080`, `true`, `["a", "b"]`) and,
/// if that does not give a `T`, as a plain string, so `GSP_NODE_NAME=Kenya` works
/// without quotes while `GSP_API_WORKERS=4` is a number.
pub fn parse_env_value<T: DeserializeOwned>(var: &str, raw: &str) -> Result<T, String> {
    #[derive(serde::Deserialize)]
    struct Wrap<T> {
        v: T,
    }
    if let Ok(w) = toml::from_str::<Wrap<T>>(&format!("v = {raw}")) {
        return Ok(w.v);
    }
    T::deserialize(toml::Value::String(raw.to_owned()))
        .map_err(|e| format!("environment variable {var}={raw:?}: {e}"))
}

/// Declares a config section. See the module documentation.
macro_rules! settings {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr $(, example = $example:literal)? ;
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $name {
            /// Documentation of every field, in declaration order.
            pub const FIELDS: &'static [$crate::config::settings::FieldDoc] = &[
                $(
                    $crate::config::settings::FieldDoc {
                        name: stringify!($field),
                        doc: &[$($doc),*],
                        example: settings!(@example $($example)?),
                    },
                )*
            ];

            /// Applies `GSP_<SECTION>_<FIELD>` overrides read through `env`.
            pub fn apply_env(
                &mut self,
                section: &str,
                env: &dyn Fn(&str) -> Option<String>,
            ) -> Result<(), String> {
                $(
                    let var = format!(
                        "GSP_{}_{}",
                        section.to_ascii_uppercase(),
                        stringify!($field).to_ascii_uppercase()
                    );
                    if let Some(raw) = env(&var) {
                        self.$field = $crate::config::settings::parse_env_value::<$ty>(&var, &raw)?;
                    }
                )*
                Ok(())
            }
        }
    };
    (@example $e:literal) => { Some($e) };
    (@example) => { None };
}

pub(crate) use settings;
