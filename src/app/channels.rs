//! Channel use cases: list, create, rename and set the key limit (admins).

use crate::db::channels::{self, Channel};
use crate::domain::names::ChannelName;
use crate::domain::role::Action;
use crate::state::AppState;

use super::actor::Actor;
use super::error::{AppResult, Error};
use super::events::Event;
use super::run::{read, write};

pub async fn list(state: &AppState, actor: &Actor) -> AppResult<Vec<Channel>> {
    actor.require(Action::ViewChannels)?;
    read(state, |c| Ok(channels::list(c)?)).await
}

/// A channel to edit (admins).
pub async fn find(state: &AppState, actor: &Actor, id: i64) -> AppResult<Channel> {
    actor.require(Action::ManageChannels)?;
    read(state, move |c| {
        channels::find(c, id)?.ok_or(Error::NotFound)
    })
    .await
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    name: ChannelName,
    key_limit: Option<i64>,
) -> AppResult<Channel> {
    actor.require(Action::ManageChannels)?;
    write(state, actor, move |c, events| {
        let channel = channels::insert(c, name.as_str(), key_limit)?;
        events.emit(c, Event::ChannelCreated { channel: &channel })?;
        Ok(channel)
    })
    .await
}

/// Renames a channel and sets its limit. A rename changes what verification answers
/// for every key of the channel, so every instance forgets its cached keys.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    id: i64,
    name: ChannelName,
    key_limit: Option<i64>,
) -> AppResult<Channel> {
    actor.require(Action::ManageChannels)?;
    write(state, actor, move |c, events| {
        let (before, after) =
            channels::update(c, id, name.as_str(), key_limit)?.ok_or(Error::NotFound)?;
        events.emit(
            c,
            Event::ChannelUpdated {
                before: &before,
                after: &after,
            },
        )?;
        Ok(after)
    })
    .await
}
