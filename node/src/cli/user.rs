//! `gsp user …`: officers' accounts on this node.

use super::Context;
use crate::auth::{self, NewUser, Role};
use clap::{Args, Subcommand};
use std::io::BufRead;

/// Arguments of `gsp user`.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input (one line),
    /// so it never appears in the process list or the shell history.
    Add {
        /// Login name.
        username: String,
        /// Name shown to colleagues and in the audit trail.
        #[arg(long)]
        name: String,
        /// Role (repeat for several): officer, approver, admin.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// Read the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Disable an account (its sessions end).
    Disable {
        /// Login name.
        username: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Login name.
        username: String,
    },
    /// Set a new password, read from standard input (its sessions end).
    Passwd {
        /// Login name.
        username: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(pw)
}

impl UserArgs {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<()> {
        let db = ctx.open_db()?;
        let mut conn = db.conn()?;
        match &self.command {
            UserCommand::Add {
                username,
                name,
                roles,
                password_stdin,
            } => {
                if !password_stdin {
                    anyhow::bail!(
                        "give --password-stdin and the password on standard input, e.g. `printf '%s\\n' \"$PW\" | gsp user add …`"
                    );
                }
                let password = read_password()?;
                let user = auth::add_user(
                    &mut conn,
                    &NewUser {
                        username,
                        display_name: name,
                        password: &password,
                        roles,
                    },
                    crate::exchange::store::now_ms(),
                )?;
                println!(
                    "created {} ({}) with roles {}",
                    user.username,
                    user.display_name,
                    roles_text(&user.roles)
                );
            }
            UserCommand::List => {
                for u in auth::list_users(&mut conn)? {
                    println!(
                        "{:<24} {:<32} {}{}",
                        u.username,
                        u.display_name,
                        roles_text(&u.roles),
                        if u.disabled { "  (disabled)" } else { "" }
                    );
                }
            }
            UserCommand::Disable { username } => {
                auth::set_disabled(&mut conn, username, true)?;
                println!("{username} disabled");
            }
            UserCommand::Enable { username } => {
                auth::set_disabled(&mut conn, username, false)?;
                println!("{username} enabled");
            }
            UserCommand::Passwd { username } => {
                let password = read_password()?;
                auth::set_password(&mut conn, username, &password)?;
                println!("password of {username} changed");
            }
        }
        Ok(())
    }
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
