//! Who may come in: whether auth is on, the signing secret, sign-in lifetimes, and the
//! hosts and origins a browser may reach this server under.

use super::Switch;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// Authentication: `on` (default) or `off`. Off opens every door to whoever can
    /// reach the port, so it is refused on a non-loopback address and logged as a warning.
    #[arg(long = "auth", env = "SWITCHBOARD_AUTH", value_enum, default_value = "on")]
    pub mode: Switch,

    /// File holding the token signing secret (32 bytes or more). The secret may instead
    /// be in the environment variable SWITCHBOARD_AUTH_SECRET (never on the command
    /// line, where `ps` would show it). With neither, the server creates one on its
    /// first run in the data folder (`auth-secret`, mode 0600).
    #[arg(long, env = "SWITCHBOARD_AUTH_SECRET_FILE")]
    pub auth_secret_file: Option<PathBuf>,

    /// Origins allowed to open the WebSocket and send requests that change things,
    /// besides the dashboard's own (comma-separated, e.g. `https://app.example.com`;
    /// `*` allows any).
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Host names this server answers to besides loopback on its port and the public
    /// URL's host (comma-separated: `name`, `name:port` or `*.domain`). Any other
    /// `Host` gets 421: DNS-rebinding pages never reach a handler.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Seconds a browser stays signed in after opening the login link.
    #[arg(long, env = "SWITCHBOARD_SESSION_TTL_S", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub session_ttl_s: u64,

    /// Seconds the dashboard's own access tokens last (it asks for a new one on expiry).
    #[arg(long, env = "SWITCHBOARD_ACCESS_TTL_S", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub access_ttl_s: u64,
}
