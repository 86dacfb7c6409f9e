//! The bytes inside a `<key>` element: ratchet messages and key exchanges, per namespace.
//! Protobuf schemas are declared here for prost (fields as libsignal and XEP-0384 define
//! them; `required` fields are always written, as proto2 readers insist).

use prost::Message as _;

use super::keys::{decode_public, encode_public};
use super::{Error, Namespace, Result};

/// libsignal's version byte: protocol 3 in both nibbles.
const LEGACY_VERSION: u8 = 0x33;

/// Legacy `WhisperMessage` (after the version byte, before the MAC).
#[derive(Clone, PartialEq, prost::Message)]
struct LegacyMessage {
    #[prost(bytes = "vec", required, tag = "1")]
    dh_pub: Vec<u8>,
    #[prost(uint32, required, tag = "2")]
    n: u32,
    #[prost(uint32, required, tag = "3")]
    pn: u32,
    #[prost(bytes = "vec", optional, tag = "4")]
    ciphertext: Option<Vec<u8>>,
}

/// Legacy `PreKeyWhisperMessage` (after the version byte).
#[derive(Clone, PartialEq, prost::Message)]
struct LegacyKeyExchange {
    #[prost(uint32, optional, tag = "1")]
    pk_id: Option<u32>,
    #[prost(bytes = "vec", required, tag = "2")]
    ek: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "3")]
    ik: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "4")]
    message: Vec<u8>,
    /// libsignal's registration id; OMEMO does not use it.
    #[prost(uint32, optional, tag = "5")]
    registration_id: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    spk_id: Option<u32>,
}

/// OMEMO 2 `OMEMOMessage`.
#[derive(Clone, PartialEq, prost::Message)]
struct Omemo2Message {
    #[prost(uint32, required, tag = "1")]
    n: u32,
    #[prost(uint32, required, tag = "2")]
    pn: u32,
    #[prost(bytes = "vec", required, tag = "3")]
    dh_pub: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "4")]
    ciphertext: Option<Vec<u8>>,
}

/// OMEMO 2 `OMEMOAuthenticatedMessage`.
#[derive(Clone, PartialEq, prost::Message)]
struct Omemo2Authenticated {
    #[prost(bytes = "vec", required, tag = "1")]
    mac: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "2")]
    message: Vec<u8>,
}

/// OMEMO 2 `OMEMOKeyExchange`.
#[derive(Clone, PartialEq, prost::Message)]
struct Omemo2KeyExchange {
    #[prost(uint32, required, tag = "1")]
    pk_id: u32,
    #[prost(uint32, required, tag = "2")]
    spk_id: u32,
    #[prost(bytes = "vec", required, tag = "3")]
    ik: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "4")]
    ek: Vec<u8>,
    #[prost(message, required, tag = "5")]
    message: Omemo2Authenticated,
}

/// A ratchet message's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// The sender's current ratchet public key.
    pub dh: [u8; 32],
    /// The message's number in its sending chain.
    pub n: u32,
    /// The length of the sender's previous sending chain.
    pub pn: u32,
}

/// A ratchet message read from the wire, not yet authenticated.
pub(super) struct Parsed {
    pub header: Header,
    pub ciphertext: Vec<u8>,
    /// The bytes the MAC covers after the associated data.
    pub authenticated: Vec<u8>,
    pub mac: Vec<u8>,
}

/// Frames a ratchet message. `mac` computes the (truncated) tag over the authenticated bytes.
pub(super) fn build_message(
    ns: Namespace,
    header: &Header,
    ciphertext: Vec<u8>,
    mac: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    match ns {
        Namespace::Legacy => {
            let mut body = vec![LEGACY_VERSION];
            LegacyMessage {
                dh_pub: encode_public(ns, &header.dh),
                n: header.n,
                pn: header.pn,
                ciphertext: Some(ciphertext),
            }
            .encode(&mut body)
            .expect("a Vec grows as needed");
            let tag = mac(&body);
            body.extend_from_slice(&tag);
            body
        }
        Namespace::Omemo2 => {
            let message = Omemo2Message {
                n: header.n,
                pn: header.pn,
                dh_pub: header.dh.to_vec(),
                ciphertext: Some(ciphertext),
            }
            .encode_to_vec();
            Omemo2Authenticated {
                mac: mac(&message),
                message,
            }
            .encode_to_vec()
        }
    }
}

/// Reads a ratchet message.
pub(super) fn parse_message(ns: Namespace, data: &[u8]) -> Result<Parsed> {
    const WHAT: &str = "OMEMO message";
    let (header_bytes, ciphertext, authenticated, mac) = match ns {
        Namespace::Legacy => {
            let mac_len = ns.mac_len();
            if data.len() < 1 + mac_len || data[0] != LEGACY_VERSION {
                return Err(Error::Malformed(WHAT));
            }
            let (body, mac) = data.split_at(data.len() - mac_len);
            let m = LegacyMessage::decode(&body[1..]).map_err(|_| Error::Malformed(WHAT))?;
            let dh = decode_public(ns, &m.dh_pub).map_err(|_| Error::Malformed(WHAT))?;
            ((dh, m.n, m.pn), m.ciphertext, body.to_vec(), mac.to_vec())
        }
        Namespace::Omemo2 => {
            let a = Omemo2Authenticated::decode(data).map_err(|_| Error::Malformed(WHAT))?;
            if a.mac.len() != ns.mac_len() {
                return Err(Error::Malformed(WHAT));
            }
            let m =
                Omemo2Message::decode(a.message.as_slice()).map_err(|_| Error::Malformed(WHAT))?;
            let dh = decode_public(ns, &m.dh_pub).map_err(|_| Error::Malformed(WHAT))?;
            ((dh, m.n, m.pn), m.ciphertext, a.message, a.mac)
        }
    };
    let (dh, n, pn) = header_bytes;
    Ok(Parsed {
        header: Header { dh, n, pn },
        ciphertext: ciphertext.ok_or(Error::Malformed(WHAT))?,
        authenticated,
        mac,
    })
}

/// A key exchange (`PreKeyWhisperMessage` / `OMEMOKeyExchange`) read from or for the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KeyExchange {
    pub pk_id: u32,
    pub spk_id: u32,
    /// The sender's identity key, as encoded in this namespace.
    pub ik: Vec<u8>,
    pub ek: [u8; 32],
    /// The first ratchet message, as [`parse_message`] reads it.
    pub message: Vec<u8>,
}

impl KeyExchange {
    /// The wire bytes.
    pub fn encode(&self, ns: Namespace) -> Result<Vec<u8>> {
        Ok(match ns {
            Namespace::Legacy => {
                let mut out = vec![LEGACY_VERSION];
                LegacyKeyExchange {
                    pk_id: Some(self.pk_id),
                    ek: encode_public(ns, &self.ek),
                    ik: self.ik.clone(),
                    message: self.message.clone(),
                    registration_id: None,
                    spk_id: Some(self.spk_id),
                }
                .encode(&mut out)
                .expect("a Vec grows as needed");
                out
            }
            Namespace::Omemo2 => Omemo2KeyExchange {
                pk_id: self.pk_id,
                spk_id: self.spk_id,
                ik: self.ik.clone(),
                ek: self.ek.to_vec(),
                message: Omemo2Authenticated::decode(self.message.as_slice())
                    .map_err(|_| Error::Malformed("OMEMO message"))?,
            }
            .encode_to_vec(),
        })
    }

    /// Reads the wire bytes.
    pub fn parse(ns: Namespace, data: &[u8]) -> Result<Self> {
        const WHAT: &str = "OMEMO key exchange";
        match ns {
            Namespace::Legacy => {
                let Some((&LEGACY_VERSION, body)) = data.split_first() else {
                    return Err(Error::Malformed(WHAT));
                };
                let k = LegacyKeyExchange::decode(body).map_err(|_| Error::Malformed(WHAT))?;
                Ok(KeyExchange {
                    pk_id: k.pk_id.ok_or(Error::Malformed(WHAT))?,
                    spk_id: k.spk_id.ok_or(Error::Malformed(WHAT))?,
                    ik: k.ik,
                    ek: decode_public(ns, &k.ek).map_err(|_| Error::Malformed(WHAT))?,
                    message: k.message,
                })
            }
            Namespace::Omemo2 => {
                let k = Omemo2KeyExchange::decode(data).map_err(|_| Error::Malformed(WHAT))?;
                Ok(KeyExchange {
                    pk_id: k.pk_id,
                    spk_id: k.spk_id,
                    ik: k.ik,
                    ek: decode_public(ns, &k.ek).map_err(|_| Error::Malformed(WHAT))?,
                    message: k.message.encode_to_vec(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_zero_fields_are_written() {
        // proto2 readers (libsignal, python-omemo) reject a message without `n`, even when 0.
        let header = Header {
            dh: [7; 32],
            n: 0,
            pn: 0,
        };
        for ns in Namespace::ALL {
            let wire = build_message(ns, &header, vec![1, 2, 3], |_| vec![0; ns.mac_len()]);
            let p = parse_message(ns, &wire).expect("parses");
            assert_eq!(p.header, header);
            assert_eq!(p.ciphertext, [1, 2, 3]);
            // Tag 2 (n) and tag 3 (pn) or 1 and 2: both zero varints present.
            assert!(p.authenticated.windows(2).any(|w| w == [0x10, 0]), "{ns:?}");
        }
    }

    #[test]
    fn key_exchanges_round_trip() {
        for ns in Namespace::ALL {
            let message = build_message(
                ns,
                &Header {
                    dh: [1; 32],
                    n: 3,
                    pn: 2,
                },
                vec![9; 48],
                |_| vec![5; ns.mac_len()],
            );
            let k = KeyExchange {
                pk_id: 17,
                spk_id: 3,
                ik: encode_public(ns, &[4; 32]),
                ek: [8; 32],
                message,
            };
            let wire = k.encode(ns).expect("encodes");
            assert_eq!(KeyExchange::parse(ns, &wire).expect("parses"), k);
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for ns in Namespace::ALL {
            for data in [
                &b""[..],
                b"\x33",
                b"\x33\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                &[0xff; 64],
            ] {
                assert!(parse_message(ns, data).is_err());
                assert!(KeyExchange::parse(ns, data).is_err());
            }
        }
    }
}
