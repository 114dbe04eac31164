//! Platform certificates (certificate mode): the just-enough X.509 DER walk that reads the serial
//! and SubjectPublicKeyInfo of a certificate from `GET /v3/certificates`, and a minimal writer the
//! emulator uses for its own. No chain checks: the download is authenticated by its
//! AEAD_AES_256_GCM seal under the APIv3 key, as WeChat's own SDKs rely on.
//! https://wechatpay-api.gitbook.io/wechatpay-api-v3/qian-ming-zhi-nan-1/qian-ming-yan-zheng (获取平台证书)

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use time::OffsetDateTime;

use crate::pay::keys::PrivateKey;

/// What the client needs from a platform certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The serial number as upper-case hex without leading zero bytes, as WeChat writes it
    /// in `serial_no` and `Wechatpay-Serial`.
    pub serial_no: String,
    /// The SubjectPublicKeyInfo, DER (what `PublicKey::from_der` takes).
    pub spki_der: Vec<u8>,
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an X.509 certificate: {0}")]
pub struct CertError(pub &'static str);

/// One DER element: its tag, its contents, and the whole encoding (tag + length + contents).
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and what follows.
fn read_element(input: &[u8]) -> Result<(Element<'_>, &[u8]), CertError> {
    let (&tag, rest) = input.split_first().ok_or(CertError("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(CertError("multi-byte tags are not used in certificates"));
    }
    let (&first, rest) = rest.split_first().ok_or(CertError("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(CertError("unsupported length"));
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    if rest.len() < len {
        return Err(CertError("truncated contents"));
    }
    let header_len = input.len() - rest.len();
    let (contents, after) = rest.split_at(len);
    Ok((
        Element {
            tag,
            contents,
            whole: &input[..header_len + len],
        },
        after,
    ))
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(Element<'a>, &'a [u8]), CertError> {
    let (element, rest) = read_element(input)?;
    if element.tag == tag {
        Ok((element, rest))
    } else {
        Err(CertError(what))
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;

/// Reads the serial number and public key of a DER certificate.
pub fn parse_der(der: &[u8]) -> Result<CertificateInfo, CertError> {
    let (certificate, trailing) = expect(der, SEQUENCE, "the outer element is not a SEQUENCE")?;
    if !trailing.is_empty() {
        return Err(CertError("bytes after the certificate"));
    }
    let (tbs, _) = expect(certificate.contents, SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut fields = tbs.contents;
    let (first, rest) = read_element(fields)?;
    if first.tag == VERSION {
        fields = rest;
    }
    let (serial, rest) = expect(fields, INTEGER, "no serialNumber")?;
    let (_signature, rest) = expect(rest, SEQUENCE, "no signature algorithm")?;
    let (_issuer, rest) = expect(rest, SEQUENCE, "no issuer")?;
    let (_validity, rest) = expect(rest, SEQUENCE, "no validity")?;
    let (_subject, rest) = expect(rest, SEQUENCE, "no subject")?;
    let (spki, _) = expect(rest, SEQUENCE, "no subjectPublicKeyInfo")?;
    let mut serial_bytes = serial.contents;
    while serial_bytes.len() > 1 && serial_bytes[0] == 0 {
        serial_bytes = &serial_bytes[1..];
    }
    if serial_bytes.is_empty() {
        return Err(CertError("empty serialNumber"));
    }
    Ok(CertificateInfo {
        serial_no: serial_bytes.iter().map(|b| format!("{b:02X}")).collect(),
        spki_der: spki.whole.to_vec(),
    })
}

/// The DER inside the first `-----BEGIN CERTIFICATE-----` block of `pem`.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, CertError> {
    let start = pem
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or(CertError("no PEM certificate block"))?;
    let body = &pem[start + "-----BEGIN CERTIFICATE-----".len()..];
    let end = body
        .find("-----END CERTIFICATE-----")
        .ok_or(CertError("unterminated PEM block"))?;
    let base64: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(base64)
        .map_err(|_| CertError("the PEM body is not base64"))
}

/// DER as a PEM `CERTIFICATE` block (how `/v3/certificates` delivers certificates).
pub fn der_to_pem(der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    der(SEQUENCE, &parts.concat())
}

/// A name with one CN.
fn common_name(cn: &str) -> Vec<u8> {
    const OID_CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    let attribute = sequence(&[OID_CN, &der(0x0c, cn.as_bytes())]);
    sequence(&[&der(0x31, &attribute)])
}

/// `YYMMDDHHMMSSZ`, UTC (valid for the years 1950–2049).
fn utc_time(at: OffsetDateTime) -> Vec<u8> {
    let at = at.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        at.year().rem_euclid(100),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    der(0x17, text.as_bytes())
}

/// A self-issued certificate for `key` with `serial` (big-endian bytes, high bit clear so the
/// INTEGER stays positive), signed SHA256withRSA by `key` itself: what the emulator hands out
/// from `/v3/certificates`. Not for anything but the emulator and tests.
pub fn self_issued(key: &PrivateKey, serial: &[u8], cn: &str, not_before: OffsetDateTime, days: i64) -> Vec<u8> {
    // sha256WithRSAEncryption (1.2.840.113549.1.1.11), NULL parameters.
    const SHA256_WITH_RSA: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
    ];
    let mut serial = serial.to_vec();
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    let version = der(VERSION, &der(INTEGER, &[2]));
    let validity = sequence(&[
        &utc_time(not_before),
        &utc_time(not_before + time::Duration::days(days)),
    ]);
    let name = common_name(cn);
    let tbs = sequence(&[
        &version,
        &der(INTEGER, &serial),
        SHA256_WITH_RSA,
        &name,
        &validity,
        &name,
        &key.public_key_der(),
    ]);
    let mut signature = vec![0];
    signature.extend_from_slice(&key.sign(&tbs));
    sequence(&[&tbs, SHA256_WITH_RSA, &der(0x03, &signature)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pay::keys::PublicKey;
    use crate::pay::wechat::fixtures;

    #[test]
    fn reads_the_serial_and_key_of_a_certificate_made_by_openssl() {
        let der = pem_to_der(fixtures::CERTIFICATE_PEM).unwrap();
        let info = parse_der(&der).unwrap();
        assert_eq!(info.serial_no, fixtures::CERTIFICATE_SERIAL);
        let key = PrivateKey::from_text(fixtures::PRIVATE_KEY_PEM.as_bytes(), "fixture").unwrap();
        assert_eq!(info.spki_der, key.public_key_der());
        let public = PublicKey::from_der(&info.spki_der, "cert").unwrap();
        let message = format!(
            "{}\n{}\n{}\n",
            fixtures::ANSWER_TIMESTAMP,
            fixtures::ANSWER_NONCE,
            fixtures::ANSWER_BODY
        );
        assert!(public.verify_base64(message.as_bytes(), fixtures::ANSWER_SIGNATURE));
    }

    #[test]
    fn broken_certificates_are_errors_not_panics() {
        let der = pem_to_der(fixtures::CERTIFICATE_PEM).unwrap();
        for cut in [0, 1, 2, 4, 10, 100, der.len() - 1] {
            assert!(parse_der(&der[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(parse_der(&trailing).is_err());
        assert!(parse_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_der(&[0x30, 0x80]).is_err(), "indefinite length");
        assert!(pem_to_der("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
        assert!(pem_to_der("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err());
    }

    #[test]
    fn a_self_issued_certificate_reads_back_with_its_serial_and_key() {
        let key = PrivateKey::generate();
        let serial = [0x9a, 0xbc, 0x01];
        let not_before = time::macros::datetime!(2026-01-01 0:00 UTC);
        let der = self_issued(&key, &serial, "zhifu emulator", not_before, 365);
        let info = parse_der(&pem_to_der(&der_to_pem(&der)).unwrap()).unwrap();
        assert_eq!(info.serial_no, "9ABC01");
        assert_eq!(info.spki_der, key.public_key_der());
    }
}
