//! `small_enum!`: enums stored as SMALLINT with a stable number and a name,
//! declared once with their documentation. Used by the data model and the
//! exchange model; the numbers are part of the database format.

macro_rules! small_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[doc = $doc:literal])* $variant:ident = $num:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The number stored in the database.
            pub const fn to_i16(self) -> i16 {
                match self { $($name::$variant => $num,)* }
            }

            /// The value for a stored number, if it is one of ours.
            pub fn from_i16(n: i16) -> Option<$name> {
                match n { $($num => Some($name::$variant),)* _ => None }
            }

            /// The name used in files, APIs and the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses the name used in files, APIs and the CLI (case-insensitive).
            pub fn parse(text: &str) -> Option<$name> {
                $( if text.eq_ignore_ascii_case($text) { return Some($name::$variant); } )*
                None
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    let names: &[&str] = &[$($text),*];
                    serde::de::Error::custom(format!("{text:?} is not one of {}", names.join(", ")))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use small_enum;
