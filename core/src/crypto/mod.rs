//! Sans-I/O cryptography for end-to-end encryption: no sockets, no tokio, no SQLite here.
//! The OMEMO (legacy `eu.siacs.conversations.axolotl` and `urn:xmpp:omemo:2`) primitives
//! are built on the RustCrypto and dalek crates; the protocol layers come in on top.

pub mod aesgcm;
pub mod omemo;
pub mod otr;
pub mod xeddsa;
