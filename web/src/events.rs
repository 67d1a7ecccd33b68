//! What the connection service reports to the app. Plain data, so the reducer that consumes these events can be
//! tested without a socket; producing them is [`crate::services::connection`]'s job.

use hamster_shared::api::QuotesResponse;
use hamster_shared::ServerMessage;

use crate::services::api::Api;
use crate::state::alerts::FiredElsewhere;

/// What this tab is in the browser's set of tabs of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabRole {
    /// Talks to the relay itself, alone: the browser cannot coordinate tabs (no Web Locks or BroadcastChannel).
    Solo,
    /// Holds the page's one socket for every tab of the browser and relays what it receives.
    Leader,
    /// Gets everything from the leader tab; opens no socket.
    Follower,
}

impl TabRole {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TabRole::Solo => "solo",
            TabRole::Leader => "leader",
            TabRole::Follower => "follower",
        }
    }
}

/// One thing that happened on the way to the relay. Public only because [`crate::state::Action`] carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnEvent {
    /// The service resolved where the relay is (from `?relay=`, `config.json` or the page's origin).
    Endpoints {
        ws_url: String,
        /// The REST API at the same relay, with the token if there is one.
        api: Api,
        /// Why an override was ignored, if one was.
        warning: Option<String>,
    },
    /// A socket is being opened. `attempt` counts failures since the last stable connection (0 = first try).
    Connecting { attempt: u32 },
    /// A frame from the relay. `hello` marks the connection live.
    Server(ServerMessage),
    /// The socket is gone (or never opened); the next try is in `retry_in_ms`.
    Closed { reason: String, attempt: u32, retry_in_ms: u64 },
    /// The REST fallback fetched quotes while the socket was down.
    RestQuotes(QuotesResponse),
    /// The REST fallback failed too.
    RestFailed(String),
    /// Something worth telling the user that did not end the connection (an unreadable frame, …).
    Warning(String),
    /// This tab's role among the browser's tabs of the page (set once at start, then on a takeover).
    Role(TabRole),
    /// The leader tab fired (and announced) an alert.
    AlertFired(FiredElsewhere),
}
