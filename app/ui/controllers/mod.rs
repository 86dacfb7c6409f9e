//! UI logic without Slint types: each controller turns core view types into view rows and
//! decides what the UI does, and is unit-tested without a window. Adapters
//! (`super::adapters`) own them and mirror their rows into Slint models.

pub mod avatars;
pub mod encryption;
pub mod feed;
pub mod format;
pub mod occupants;
pub mod people;
pub mod prefs;
pub mod profile;
pub mod rooms;
pub mod status;
pub mod timeline;
pub mod wizard;
