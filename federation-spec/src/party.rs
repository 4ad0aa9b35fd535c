//! Party codes: who a message is from and to.
//!
//! A Party to the Protocol is named by its ISO 3166-1 alpha-3 country code
//! (`FRA`, `KEN`, `BRA`, …) or, for the one regional economic integration
//! organisation that is a Party, by `EU`. Nothing else is a Party code: this
//! module refuses lower case, alpha-2 country codes, user-assigned codes such
//! as `XKX` and withdrawn codes. It does not know which states have ratified
//! the Protocol; the directory says who is a member.

use std::fmt;
use std::str::FromStr;

/// ISO 3166-1 alpha-3 codes officially assigned (249), sorted for binary search.
const ISO_3166_ALPHA3: [&str; 249] = [
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF",
    "ATG", "AUS", "AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS",
    "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF",
    "CAN", "CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG", "COK", "COL", "COM", "CPV",
    "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM", "DZA",
    "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM",
    "GAB", "GBR", "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD",
    "GRL", "GTM", "GUF", "GUM", "GUY", "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN",
    "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA", "JAM", "JEY", "JOR", "JPN", "KAZ",
    "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY", "LCA", "LIE",
    "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX",
    "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS",
    "MWI", "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL",
    "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL", "PRI", "PRK",
    "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP",
    "SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
    "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL",
    "TKM", "TLS", "TON", "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY",
    "USA", "UZB", "VAT", "VCT", "VEN", "VGB", "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF",
    "ZMB", "ZWE",
];

/// The code of the European Union, a Party as a regional economic integration
/// organisation (Protocol Art. 1(15) and 44).
pub const EU: &str = "EU";

/// A validated Party code: an ISO 3166-1 alpha-3 code or `EU`.
///
/// On the wire it is a `str8` of 2 or 3 upper-case ASCII letters (SPEC.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartyCode {
    bytes: [u8; 3],
    len: u8,
}

/// Why a string is not a Party code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a Party code: use an ISO 3166-1 alpha-3 country code in capitals (such as FRA or KEN) or EU"
)]
pub struct InvalidPartyCode(pub String);

impl PartyCode {
    /// Parses and validates a Party code. Only exact upper-case codes are
    /// accepted; `fra` is refused rather than guessed at.
    pub fn parse(s: &str) -> Result<Self, InvalidPartyCode> {
        Self::from_bytes(s.as_bytes()).ok_or_else(|| InvalidPartyCode(s.chars().take(16).collect()))
    }

    /// Validates wire bytes; `None` if they are not a Party code.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        match b {
            b"EU" => Some(Self {
                bytes: [b'E', b'U', 0],
                len: 2,
            }),
            [a, b, c] => {
                let code = [*a, *b, *c];
                let s = std::str::from_utf8(&code).ok()?;
                ISO_3166_ALPHA3.binary_search(&s).ok()?;
                Some(Self {
                    bytes: code,
                    len: 3,
                })
            }
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The code as wire bytes (2 or 3 ASCII letters).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl fmt::Display for PartyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PartyCode {
    type Err = InvalidPartyCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for PartyCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for PartyCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(ISO_3166_ALPHA3.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ISO_3166_ALPHA3.len(), 249);
    }

    #[test]
    fn accepts_alpha3_and_eu() {
        for ok in ["FRA", "KEN", "BRA", "USA", "ZWE", "ABW", "EU"] {
            assert_eq!(PartyCode::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "", "fra", "Fra", "FR", "FRAN", "XKX", "AAA", "EUR", "E", "eu", " FRA", "FR\u{e9}",
        ] {
            assert!(PartyCode::parse(bad).is_err(), "{bad:?} accepted");
        }
        let msg = PartyCode::parse("XYZ").unwrap_err().to_string();
        assert!(msg.contains("ISO 3166-1 alpha-3"), "{msg}");
    }

    #[test]
    fn serde_round_trip_validates() {
        let p: PartyCode = serde_json::from_str("\"KEN\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"KEN\"");
        assert!(serde_json::from_str::<PartyCode>("\"KENYA\"").is_err());
    }
}
