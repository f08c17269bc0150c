//! What the HTTP load needs to know about a seeded dataset: who logs in, and which
//! tickets each of them may read or write to.

use crate::dataset::Size;
use crate::psql::Psql;
use crate::Error;

/// A customer's ticket: the customer's index in [`Fixtures::customers`] and the id.
#[derive(Clone, Copy)]
pub struct Owned {
    pub customer: usize,
    pub ticket: i64,
}

#[derive(Clone)]
pub struct Fixtures {
    pub staff: Vec<String>,
    pub customers: Vec<String>,
    /// Every ticket of the chosen customers: picking one uniformly picks customers in
    /// proportion to their tickets, as pgbench's `ticket_author.sql` does.
    pub owned: Vec<Owned>,
    /// The same without canceled tickets, which take no messages.
    pub owned_open: Vec<Owned>,
    /// A sample of tickets that are not canceled, for staff replies.
    pub staff_open: Vec<i64>,
    pub max_ticket: i64,
    /// Accounts whose hash has the server's cost.
    pub login: Vec<String>,
}

impl Fixtures {
    pub fn load(db: &Psql, size: &Size, customers: usize) -> Result<Self, Error> {
        let staff = column(db, "SELECT email FROM users WHERE is_staff ORDER BY id")?;
        // A spread of customers with tickets, the same on every run.
        let chosen = db.rows(&format!(
            "SELECT id, email FROM users \
             WHERE NOT is_staff AND tickets_count > 0 AND id <= {} \
             ORDER BY md5(id::text) LIMIT {customers}",
            size.users - size.login_users
        ))?;
        let mut ids = Vec::with_capacity(chosen.len());
        let mut emails = Vec::with_capacity(chosen.len());
        for row in &chosen {
            let [id, email] = row.as_slice() else {
                return Err(format!("unexpected customer row {row:?}").into());
            };
            ids.push(id.parse::<i64>()?);
            emails.push(email.clone());
        }
        if ids.is_empty() || staff.is_empty() {
            return Err("the dataset has no staff or no customer with tickets".into());
        }
        let id_list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut owned = Vec::new();
        let mut owned_open = Vec::new();
        for row in db.rows(&format!(
            "SELECT author_id, id, status <> 'canceled' FROM tickets \
             WHERE author_id IN ({id_list}) ORDER BY id"
        ))? {
            let [author, ticket, open] = row.as_slice() else {
                return Err(format!("unexpected ticket row {row:?}").into());
            };
            let author: i64 = author.parse()?;
            let customer = ids
                .iter()
                .position(|id| *id == author)
                .ok_or("a ticket of a customer not chosen")?;
            let item = Owned {
                customer,
                ticket: ticket.parse()?,
            };
            owned.push(item);
            if open == "t" {
                owned_open.push(item);
            }
        }
        let staff_open = column(
            db,
            "SELECT id FROM tickets WHERE status <> 'canceled' ORDER BY md5(id::text) LIMIT 10000",
        )?
        .iter()
        .map(|id| id.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()?;
        let max_ticket = db.value("SELECT max(id) FROM tickets")?.parse()?;
        let login = column(
            db,
            &format!(
                "SELECT email FROM users WHERE id > {} ORDER BY id",
                size.users - size.login_users
            ),
        )?;
        if owned_open.is_empty() || staff_open.is_empty() || login.is_empty() {
            return Err("the dataset has no open ticket or no login account".into());
        }
        Ok(Self {
            staff,
            customers: emails,
            owned,
            owned_open,
            staff_open,
            max_ticket,
            login,
        })
    }
}

fn column(db: &Psql, sql: &str) -> Result<Vec<String>, Error> {
    Ok(db
        .rows(sql)?
        .into_iter()
        .filter_map(|row| row.into_iter().next())
        .collect())
}
