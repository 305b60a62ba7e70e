//! The API Keys pages and every row action. Every handler extracts, calls one `app`
//! use case, and renders.

mod actions;
mod bulk;
mod common;
mod detail;
mod forms;
mod list;
mod postback;
mod transfer;

pub use actions::{act_on_key, confirm_action, roll_form, roll_key};
pub use bulk::{confirm_bulk, run_bulk};
pub use detail::{LogParams, show_key};
pub use forms::{create_key, edit_key, new_key, rename_form, rename_key, update_key};
pub use list::{all_keys, list_keys, risks, search_all_keys, search_channel_keys};
pub use postback::{resend_delivery, roll_postback_secret, send_postback_test};
pub use transfer::{ExportParams, export_all_keys, export_channel_keys, import_form, import_keys};
