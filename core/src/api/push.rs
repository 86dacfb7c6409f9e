//! Life on a phone (issue 9): telling the server whether the app is in use (XEP-0352
//! Client State Indication), so that in the background it holds back what is not urgent.

use std::sync::atomic::Ordering;

use super::Client;
use crate::account::Command;

impl Client {
    /// The app is in use (`true`: visible) or in the background (`false`). Every account
    /// tells its server (XEP-0352, when offered), now if online and on every new stream;
    /// in the background the server holds back presence and other unimportant traffic.
    pub async fn set_client_active(&self, active: bool) {
        if self.inner.client_active.swap(active, Ordering::SeqCst) == active {
            return;
        }
        let actors: Vec<_> = self.inner.actors.lock().await.values().cloned().collect();
        for tx in actors {
            if tx.send(Command::ClientState).await.is_err() {
                tracing::debug!("an account actor is gone");
            }
        }
    }

    /// Whether the app is in use, as last set with [`Client::set_client_active`].
    pub fn client_active(&self) -> bool {
        self.inner.client_active.load(Ordering::SeqCst)
    }
}
