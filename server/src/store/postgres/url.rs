//! Where the Postgres store lives: a `postgres://` URL, parsed once at start, whose password
//! never appears in logs, errors or `Debug` output.

use std::fmt;
use std::str::FromStr;

/// A Postgres connection URL (`postgres://USER:PASSWORD@HOST:PORT/DATABASE?...`), or the
/// key-value form libpq accepts. `Display` and `Debug` show it without the password.
#[derive(Clone)]
pub struct PostgresUrl {
    config: tokio_postgres::Config,
    shown: String,
}

impl PostgresUrl {
    /// The driver's configuration (with the password).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Whether a URL names Postgres rather than SQLite (`postgres://` or `postgresql://`).
    pub fn is_postgres(text: &str) -> bool {
        let lower = text.trim().to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    }
}

impl FromStr for PostgresUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // The driver's own parse error may quote the input; it is replaced by one that does
        // not, since the input holds the password.
        let config = tokio_postgres::Config::from_str(text.trim()).map_err(|_| {
            "the store URL is not a valid Postgres URL; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                .to_string()
        })?;
        if config.get_hosts().is_empty() {
            return Err("the store URL names no host; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE".into());
        }
        let shown = describe(&config);
        Ok(PostgresUrl { config, shown })
    }
}

/// `postgres://USER@HOST:PORT/DATABASE`, from the parsed configuration: nothing of the
/// original text (its password, or options that may carry one) is kept.
fn describe(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let db = config.get_dbname().map(|d| format!("/{d}")).unwrap_or_default();
    let password = if config.get_password().is_some() { ":***" } else { "" };
    let user = match (user.is_empty(), password) {
        (false, p) if !p.is_empty() => format!("{}{p}@", user.trim_end_matches('@')),
        _ => user,
    };
    format!("postgres://{user}{}{db}", hosts.join(","))
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is a secret: only the redacted form is ever printed.
        f.debug_tuple("PostgresUrl").field(&self.shown).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let url: PostgresUrl = "postgres://mesh:s3cr3t-pw@db.example.test:5433/rooms".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://mesh:***@db.example.test:5433/rooms");
        assert!(!format!("{url:?}").contains("s3cr3t-pw"));
        assert_eq!(url.config().get_password(), Some(&b"s3cr3t-pw"[..]));
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        let e = "postgres://mesh:s3cr3t-pw@[bad/".parse::<PostgresUrl>().unwrap_err();
        assert!(!e.contains("s3cr3t-pw") && e.contains("postgres://USER"), "{e}");
        assert!(PostgresUrl::is_postgres("PostgreSQL://x"));
        assert!(!PostgresUrl::is_postgres("sqlite"));
    }
}
