// SPDX-License-Identifier: MIT OR Apache-2.0
//! A look at the client's first TLS record before rustls takes the connection, for one reason:
//! a client offering nothing newer than TLS 1.1 must hear the `protocol_version` alert (RFC 8446
//! §6.2, RFC 5246 §7.2.2). rustls rejects such a ClientHello earlier, for its missing
//! `signature_algorithms` extension, with `handshake_failure` — which hides the actual reason
//! from the client's operator. Anything this parser does not understand goes to rustls as is.

/// TLS 1.2's wire version.
pub const TLS12: u16 = 0x0303;

/// The highest protocol version a ClientHello record offers: the largest entry of its
/// `supported_versions` extension if it has one, else its `legacy_version`. `None` when the
/// bytes are not (yet) a complete ClientHello in one record.
pub fn offered_max_version(record: &[u8]) -> Option<u16> {
    let mut r = Reader(record);
    if r.u8()? != 0x16 {
        return None;
    }
    r.u16()?; // record version
    let len = usize::from(r.u16()?);
    let mut body = Reader(r.take(len)?);
    if body.u8()? != 0x01 {
        return None; // not a ClientHello
    }
    let len = body.u24()?;
    let mut hello = Reader(body.take(len)?);
    let legacy = hello.u16()?;
    hello.take(32)?; // random
    let n = usize::from(hello.u8()?);
    hello.take(n)?; // session id
    let n = usize::from(hello.u16()?);
    hello.take(n)?; // cipher suites
    let n = usize::from(hello.u8()?);
    hello.take(n)?; // compression methods
    if hello.0.is_empty() {
        return Some(legacy); // no extensions at all
    }
    let n = usize::from(hello.u16()?);
    let mut extensions = Reader(hello.take(n)?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let n = usize::from(extensions.u16()?);
        let mut data = Reader(extensions.take(n)?);
        if kind == 0x002b {
            let n = usize::from(data.u8()?);
            let mut versions = Reader(data.take(n)?);
            let mut best = None;
            while !versions.0.is_empty() {
                let v = versions.u16()?;
                // GREASE values (0x?a?a) are not versions.
                if v & 0x0f0f != 0x0a0a {
                    best = best.max(Some(v));
                }
            }
            return best.or(Some(legacy));
        }
    }
    Some(legacy)
}

/// How many bytes the first record takes (header included), once its header is there.
pub fn record_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..5)?;
    Some(5 + usize::from(u16::from_be_bytes([header[3], header[4]])))
}

/// A fatal `protocol_version` alert record, in the client's record version.
pub fn protocol_version_alert(record_version: [u8; 2]) -> [u8; 7] {
    [
        0x15,
        record_version[0],
        record_version[1],
        0x00,
        0x02,
        0x02,
        70,
    ]
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record with the given legacy version and supported_versions (if any).
    fn hello(legacy: u16, versions: Option<&[u16]>) -> Vec<u8> {
        let mut ext = Vec::new();
        // server_name, to have an extension before the one that matters
        ext.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]);
        if let Some(vs) = versions {
            ext.extend_from_slice(&0x002bu16.to_be_bytes());
            ext.extend_from_slice(&(1 + 2 * vs.len() as u16).to_be_bytes());
            ext.push((2 * vs.len()) as u8);
            for v in vs {
                ext.extend_from_slice(&v.to_be_bytes());
            }
        }
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2f]);
        body.extend_from_slice(&[0x01, 0x00]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut record = vec![0x16, 0x03, 0x01];
        record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn the_highest_offered_version_is_found() {
        assert_eq!(offered_max_version(&hello(0x0302, None)), Some(0x0302));
        assert_eq!(offered_max_version(&hello(0x0303, None)), Some(0x0303));
        assert_eq!(
            offered_max_version(&hello(0x0303, Some(&[0x3a3a, 0x0304, 0x0303]))),
            Some(0x0304)
        );
        let full = hello(0x0302, None);
        assert_eq!(record_len(&full), Some(full.len()));
        assert_eq!(offered_max_version(&full[..full.len() - 1]), None);
        assert_eq!(offered_max_version(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(protocol_version_alert([3, 1]), [0x15, 3, 1, 0, 2, 2, 70]);
    }
}
