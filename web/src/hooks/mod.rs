//! Custom hooks that own the page's long-lived resources. Each creates its resource in an effect and releases
//! it in the effect's cleanup, never in a component body.

mod use_clock;
mod use_connection;
mod use_frame_batch;
mod use_history;
mod use_marks;
mod use_persistence;

pub(crate) use use_clock::use_clock;
pub(crate) use use_connection::use_connection;
pub(crate) use use_frame_batch::use_frame_batch;
pub(crate) use use_history::use_history;
pub(crate) use use_marks::use_marks;
pub(crate) use use_persistence::use_persistence;
