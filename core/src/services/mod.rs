//! Feature services: the per-account logic behind each feature, called by the account actor.
//! They build stanzas and apply inbound results to the store; they own no sockets.

pub mod avatars;
pub mod chat;
pub mod mam;
pub mod media;
pub mod microblog;
pub mod muc;
pub mod omemo;
pub mod otr;
pub mod roster;
pub mod upload;
