//! Integration tests: a real Prosody per test (app/testbed.rs), Starling's core and CLI,
//! and slixmpp peers (tests/peers/peer.py).

mod node;
mod proxy;
mod support;

mod chat;
mod cli;
mod dane;
mod downgrade;
mod hostile_server;
mod inline_sm;
mod login;
mod media;
mod muc;
mod ocsp;
mod omemo;
mod omemo_chat;
mod omemo_xmpp;
mod otr;
mod otr_chat;
mod push;
mod reliability;
mod screenshot;
mod security;
mod social;
mod srv;
mod testbed_smoke;
