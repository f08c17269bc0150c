//! PostgreSQL through `psql`: the seed is a SQL file, and the few queries the benchmark
//! needs return small tab-separated results.

use std::path::Path;
use std::process::{Command, Output};

use crate::Error;

pub struct Psql {
    url: String,
}

impl Psql {
    pub fn new(url: String) -> Self {
        Self { url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn command(&self) -> Command {
        let mut command = Command::new("psql");
        command
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(&self.url);
        command
    }

    /// Runs one statement (or several, `;`-separated, each in its own transaction).
    pub fn execute(&self, sql: &str) -> Result<(), Error> {
        checked(self.command().arg("-c").arg(sql).output()?, sql).map(drop)
    }

    /// The rows of `sql`, each split into its columns.
    pub fn rows(&self, sql: &str) -> Result<Vec<Vec<String>>, Error> {
        let output = checked(
            self.command()
                .args(["-A", "-t", "-F", "\t", "-c"])
                .arg(sql)
                .output()?,
            sql,
        )?;
        Ok(String::from_utf8(output.stdout)?
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect())
    }

    /// The single value of `sql`.
    pub fn value(&self, sql: &str) -> Result<String, Error> {
        self.rows(sql)?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .ok_or_else(|| format!("no value from {sql:?}").into())
    }

    /// Runs a SQL file with psql variables (`-v name=value`).
    pub fn file(&self, path: &Path, variables: &[(&str, String)]) -> Result<(), Error> {
        let mut command = self.command();
        for (name, value) in variables {
            command.arg("-v").arg(format!("{name}={value}"));
        }
        let output = command.arg("-f").arg(path).output()?;
        checked(output, &path.display().to_string()).map(drop)
    }
}

fn checked(output: Output, what: &str) -> Result<Output, Error> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "psql failed ({}) on {what}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into())
    }
}

/// `url` with its database replaced by `database`, keeping any query string.
pub fn with_database(url: &str, database: &str) -> Result<String, Error> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| format!("DATABASE_URL {url:?} is not a postgres:// URL"))?;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut replaced = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    Ok(replaced)
}

/// `url` with its host and port replaced by `addr` (the counting proxy's), keeping the
/// user, the database and any query string.
pub fn with_address(url: &str, addr: std::net::SocketAddr) -> Result<String, Error> {
    let authority_start = url
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| format!("DATABASE_URL {url:?} is not a postgres:// URL"))?;
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    Ok(format!(
        "{}{addr}{}",
        &url[..authority_start + host_start],
        &url[authority_end..]
    ))
}

/// Where PostgreSQL listens, from a `DATABASE_URL` (TCP only).
pub fn server_address(url: &str) -> Result<std::net::SocketAddr, Error> {
    use std::net::ToSocketAddrs as _;
    use tokio_postgres::config::Host;
    let config: tokio_postgres::Config = url.parse()?;
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address").into()),
        Some(Host::Unix(path)) => Err(format!(
            "PostgreSQL is reached through the socket {}: counting statements needs TCP",
            path.display()
        )
        .into()),
        None => Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_only() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/tickets", "b").unwrap(),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "b").unwrap(),
            "postgresql://u:p@h/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b").unwrap(),
            "postgres://h:5432/b"
        );
        assert!(with_database("host=h dbname=x", "b").is_err());
    }

    #[test]
    fn replaces_the_address_only() {
        let proxy: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            with_address("postgres://postgres@127.0.0.1:5432/tickets_bench", proxy).unwrap(),
            "postgres://postgres@127.0.0.1:6000/tickets_bench"
        );
        assert_eq!(
            with_address("postgresql://u:p@db/x?sslmode=disable", proxy).unwrap(),
            "postgresql://u:p@127.0.0.1:6000/x?sslmode=disable"
        );
        assert_eq!(
            with_address("postgres://localhost", proxy).unwrap(),
            "postgres://127.0.0.1:6000"
        );
        assert!(with_address("host=h dbname=x", proxy).is_err());
        assert_eq!(
            server_address("postgres://postgres@127.0.0.1:5433/x").unwrap(),
            "127.0.0.1:5433".parse().unwrap()
        );
    }
}
