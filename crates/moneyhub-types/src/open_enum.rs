//! The `open_enum!` macro: string enums that keep unknown values instead of rejecting them.
//!
//! House style (as in twilight): every enum-like string field of the API is an *open* enum, i.e.
//! `enum X { Known..., Unknown(String) }`. Decoding never fails on a value this crate does not
//! know; the value is kept verbatim in `Unknown` and encoded back unchanged. A known variant may
//! list alias spellings (`Variant => "primary" | "alias"`): aliases decode to the variant, which
//! always encodes as the primary spelling.
//!
//! Every generated enum has `as_str()`, `is_unknown()`, a `KNOWN` list, `Display`, `AsRef<str>`,
//! `From<&str>`, `From<String>`, an infallible `FromStr`, and serde as a plain JSON string.
//!
//! Note: `X::Unknown("ok".into())` can be constructed by hand and is not equal to the known
//! variant with the same spelling; values obtained by parsing or decoding never have that shape.

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $value:literal $(| $alias:literal)*
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        ///
        /// This is an *open* enum: values unknown to this crate decode to `Unknown` and encode
        /// back unchanged. Known variants are added as Moneyhub documents values, so a
        /// `match` needs a `_` arm (`#[non_exhaustive]`).
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                #[doc = ""]
                #[doc = concat!("Wire value: `", $value, "`", $(", also read from `", $alias, "`",)* ".")]
                $variant,
            )+
            /// A value this version of the crate does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every known variant (not `Unknown`), in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling of the value (the primary spelling for known variants).
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $value,)+
                    $name::Unknown(other) => other,
                }
            }

            /// Whether the value is one this crate does not know.
            pub fn is_unknown(&self) -> bool {
                matches!(self, $name::Unknown(_))
            }

            fn known(value: &str) -> Option<Self> {
                match value {
                    $($value $(| $alias)* => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::known(value).unwrap_or_else(|| $name::Unknown(value.to_owned()))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::known(&value).unwrap_or($name::Unknown(value))
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    open_enum! {
        /// Test enum.
        pub enum Colour {
            /// Red.
            Red => "red" | "rouge",
            /// Blue.
            Blue => "blue",
        }
    }

    #[test]
    fn known_alias_and_unknown() {
        assert_eq!(Colour::from("red"), Colour::Red);
        assert_eq!(Colour::from("rouge"), Colour::Red);
        assert_eq!(Colour::Red.as_str(), "red");
        assert_eq!(Colour::from("green"), Colour::Unknown("green".into()));
        assert_eq!(Colour::from("green".to_owned()).to_string(), "green");
        assert_eq!(Colour::KNOWN, &[Colour::Red, Colour::Blue]);
        assert!(Colour::from("RED").is_unknown());
    }
}
