//! Starling's shared core: everything that is not pixels.
//!
//! Front ends (the desktop app, the CLI, Android) talk to the core only through [`Client`]
//! and the view types it returns. See ARCHITECTURE.md for the module map and invariants.

mod account;
mod api;
pub mod connection;
pub mod crypto;
pub mod fuzz;
pub mod proto;
pub mod secrets;
pub mod services;
pub mod store;

pub use api::{
    AccountOptions, Affiliation, AffiliationEntry, Audience, Availability, ChatStateKind,
    CircleRecord, Client, ConnectionInfo, ConnectionState, DEFAULT_AUTO_DOWNLOAD,
    DEFAULT_DOWNLOAD_LIMIT, Error, Event, FeedDiff, MessageState, MucService, Occupant,
    OmemoDeviceInfo, OtrInfo, OwnPresence, PostDraft, PresenceView, ProfileUpdate, Result, Role,
    RoomConfig, RoomInfo, RoomJoined, RoomListing, RoomState, RosterDiff, ServerFeatures,
    TimelineDiff, UnifiedPushEvent, UnifiedPushOutcome, UploadedFile, WakeReport,
    default_profile_dir, human_size, parse_bare, parse_contact, parse_peer, parse_room,
    safe_file_name,
};

/// The core's version, for about screens and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
