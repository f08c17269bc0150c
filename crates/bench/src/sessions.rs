//! Logging the benchmark's users in before a run, and the login request itself.

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::Method;

use crate::client::{bearer, Client, Reply};
use crate::dataset::PASSWORD;
use crate::Error;

/// The `Authorization` values of the logged-in users, in the order of their e-mails.
pub struct Sessions {
    pub staff: Vec<HeaderValue>,
    pub customers: Vec<HeaderValue>,
}

pub fn login_body(email: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "email": email, "password": PASSWORD }).to_string())
}

pub async fn login(client: &mut Client, email: &str) -> Result<Reply, Error> {
    client
        .send(Method::POST, "/login", None, Some(login_body(email)))
        .await
}

/// Logs in every account, a few at a time.
pub async fn open(
    addr: SocketAddr,
    staff: &[String],
    customers: &[String],
) -> Result<Sessions, Error> {
    Ok(Sessions {
        staff: tokens(addr, staff).await?,
        customers: tokens(addr, customers).await?,
    })
}

async fn tokens(addr: SocketAddr, emails: &[String]) -> Result<Vec<HeaderValue>, Error> {
    const PARALLEL: usize = 8;
    let mut tasks = Vec::new();
    for part in 0..PARALLEL {
        let emails: Vec<(usize, String)> = emails
            .iter()
            .cloned()
            .enumerate()
            .skip(part)
            .step_by(PARALLEL)
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await?;
            let mut tokens = Vec::with_capacity(emails.len());
            for (index, email) in emails {
                tokens.push((index, token(&mut client, &email).await?));
            }
            Ok::<_, Error>(tokens)
        }));
    }
    let mut all = Vec::with_capacity(emails.len());
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by_key(|(index, _)| *index);
    Ok(all.into_iter().map(|(_, token)| token).collect())
}

async fn token(client: &mut Client, email: &str) -> Result<HeaderValue, Error> {
    let reply = login(client, email).await?;
    if !reply.status.is_success() {
        return Err(format!("login of {email} answered {}", reply.status).into());
    }
    let body: serde_json::Value = serde_json::from_slice(&reply.body)?;
    let token = body
        .get("token")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("login of {email} returned no token"))?;
    bearer(token)
}
