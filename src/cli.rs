//! Command-line actions other than serving: `latchkey user create NAME --role ROLE`,
//! `latchkey user unlock NAME`.

use std::io::{BufRead, IsTerminal};

use crate::app;
use crate::config::{Settings, UserCommand};
use crate::db;
use crate::domain::names::Username;
use crate::domain::password;

pub fn run_user_command(settings: &Settings, command: UserCommand) -> Result<String, String> {
    match command {
        UserCommand::Create { name, role } => {
            let username = Username::parse(&name).map_err(|e| format!("invalid username: {e}"))?;
            let plain = match std::env::var("LATCHKEY_PASSWORD") {
                Ok(p) => p,
                Err(_) => read_password_from_stdin()?,
            };
            password::validate(&plain).map_err(|e| format!("invalid password: {e}"))?;
            let pool = db::connect(settings.database_url.expose(), 1).map_err(|e| e.to_string())?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            let user = app::users::create_offline(&mut conn, &username, role, &plain).map_err(
                |e| match e {
                    app::Error::NameTaken => {
                        format!("a user named `{}` already exists", username.as_str())
                    }
                    other => other.to_string(),
                },
            )?;
            Ok(format!(
                "Created user `{}` with role {}.",
                user.username, role
            ))
        }
        UserCommand::Unlock { name } => {
            let username = Username::parse(&name).map_err(|e| format!("invalid username: {e}"))?;
            let pool = db::connect(settings.database_url.expose(), 1).map_err(|e| e.to_string())?;
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            let cleared =
                app::login::unlock_offline(&mut conn, &username).map_err(|e| match e {
                    app::Error::NotFound => {
                        format!("there is no user named `{}`", username.as_str())
                    }
                    other => other.to_string(),
                })?;
            Ok(format!(
                "Unlocked `{}`: {cleared} failed logins forgotten.",
                username.as_str()
            ))
        }
    }
}

fn read_password_from_stdin() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for the new user: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
