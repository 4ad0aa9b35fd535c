//! Just enough DER to read an X.509 certificate's SubjectPublicKeyInfo and
//! validity period, without a general ASN.1 library. Every read is bounds
//! checked; malformed input is an error, never a panic.

/// One DER element: its tag, its full bytes (tag, length, content) and content.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    whole: &'a [u8],
    content: &'a [u8],
}

fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    let first = usize::from(*input.get(1)?);
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*input.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    let content = input.get(header..end)?;
    Some((
        Tlv {
            tag,
            whole,
            content,
        },
        input.get(end..)?,
    ))
}

/// The parts of a certificate GSP needs.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// DER of the SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// notBefore, seconds since the Unix epoch (read for completeness and tests).
    #[allow(dead_code)]
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Reads SPKI and validity from a DER certificate.
pub fn cert_info(cert_der: &[u8]) -> Option<CertInfo> {
    let (cert, _) = read_tlv(cert_der)?;
    if cert.tag != 0x30 {
        return None;
    }
    let (tbs, _) = read_tlv(cert.content)?;
    if tbs.tag != 0x30 {
        return None;
    }
    let mut rest = tbs.content;
    let (mut el, mut r) = read_tlv(rest)?;
    if el.tag == 0xa0 {
        // [0] EXPLICIT version
        (el, r) = read_tlv(r)?;
    }
    // el = serialNumber; then signature, issuer, validity, subject, spki.
    let _serial = el;
    rest = r;
    let (_sig, r) = read_tlv(rest)?;
    let (_issuer, r) = read_tlv(r)?;
    let (validity, r) = read_tlv(r)?;
    let (_subject, r) = read_tlv(r)?;
    let (spki, _) = read_tlv(r)?;
    if validity.tag != 0x30 || spki.tag != 0x30 {
        return None;
    }
    let (nb, vr) = read_tlv(validity.content)?;
    let (na, _) = read_tlv(vr)?;
    Some(CertInfo {
        spki_der: spki.whole.to_vec(),
        not_before: parse_time(nb)?,
        not_after: parse_time(na)?,
    })
}

fn parse_time(t: Tlv<'_>) -> Option<i64> {
    let s = std::str::from_utf8(t.content).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match t.tag {
        0x17 => {
            // UTCTime YYMMDDHHMMSS: 50..99 are 19xx (RFC 5280 §4.1.2.5.1).
            let yy: i32 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 {
        return None;
    }
    let num = |a: usize| -> Option<u8> { rest.get(a..a + 2)?.parse().ok() };
    let month = time::Month::try_from(num(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, num(2)?).ok()?;
    let tod = time::Time::from_hms(num(4)?, num(6)?, num(8)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, tod)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert!(cert_info(&[]).is_none());
        assert!(cert_info(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(cert_info(&[0x30, 0x03, 0x30, 0x01]).is_none());
        for n in 0..64u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let _ = cert_info(&v);
        }
    }
}
