//! The mixed workload: which requests, by whom, in which proportions. The HTTP load and
//! the pgbench scripts are both built from this one table, so that they run the same
//! mix.

use rand::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    GetTicket,
    ListTickets,
    ListMessages,
    PostMessage,
    OpenTicket,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] = [
        Endpoint::GetTicket,
        Endpoint::ListTickets,
        Endpoint::ListMessages,
        Endpoint::PostMessage,
        Endpoint::OpenTicket,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::GetTicket => "GET /tickets/{id}",
            Endpoint::ListTickets => "GET /tickets?limit=20",
            Endpoint::ListMessages => "GET /tickets/{id}/messages",
            Endpoint::PostMessage => "POST /tickets/{id}/messages",
            Endpoint::OpenTicket => "POST /tickets",
        }
    }

    /// The pgbench fragment in bench/pgbench/ holding the statement that this endpoint
    /// runs for `role`.
    pub fn statement_file(self, role: Role) -> &'static str {
        match (self, role) {
            (Endpoint::GetTicket, _) => "find_visible.sql",
            (Endpoint::ListTickets, Role::Customer) => "list_own.sql",
            (Endpoint::ListTickets, Role::Staff) => "list_all.sql",
            (Endpoint::ListMessages, _) => "list_messages.sql",
            (Endpoint::PostMessage, _) => "add_message.sql",
            (Endpoint::OpenTicket, _) => "open_ticket.sql",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Customer,
    Staff,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Staff => "staff",
        }
    }
}

pub struct Share {
    pub endpoint: Endpoint,
    pub role: Role,
    pub weight: u32,
}

const fn share(endpoint: Endpoint, role: Role, weight: u32) -> Share {
    Share {
        endpoint,
        role,
        weight,
    }
}

/// A `static`, so that one share of it can be driven alone (`&MIX[i..=i]`).
///
/// Out of 400: 60% reading one ticket, 20% listing tickets, 10% reading a ticket's
/// messages, 7% posting a message, 3% opening a ticket. Staff make a quarter of each
/// (agents refreshing queues and replying); only customers open tickets.
pub static MIX: [Share; 9] = [
    share(Endpoint::GetTicket, Role::Customer, 180),
    share(Endpoint::GetTicket, Role::Staff, 60),
    share(Endpoint::ListTickets, Role::Customer, 60),
    share(Endpoint::ListTickets, Role::Staff, 20),
    share(Endpoint::ListMessages, Role::Customer, 30),
    share(Endpoint::ListMessages, Role::Staff, 10),
    share(Endpoint::PostMessage, Role::Customer, 21),
    share(Endpoint::PostMessage, Role::Staff, 7),
    share(Endpoint::OpenTicket, Role::Customer, 12),
];

/// The probe that runs beside logins: reading one ticket, with the mix's proportion
/// of staff.
pub static PROBE: [Share; 2] = [
    share(Endpoint::GetTicket, Role::Customer, 3),
    share(Endpoint::GetTicket, Role::Staff, 1),
];

fn total_weight(shares: &[Share]) -> u32 {
    shares.iter().map(|s| s.weight).sum()
}

/// One of `shares`, drawn by weight.
pub fn pick(shares: &'static [Share], rng: &mut impl Rng) -> &'static Share {
    let mut ticket = rng.gen_range(0..total_weight(shares).max(1));
    for share in shares {
        if ticket < share.weight {
            return share;
        }
        ticket -= share.weight;
    }
    &shares[0]
}

/// Percent of the mix that goes to `endpoint`.
pub fn percent(endpoint: Endpoint) -> f64 {
    let weight: u32 = MIX
        .iter()
        .filter(|s| s.endpoint == endpoint)
        .map(|s| s.weight)
        .sum();
    100.0 * f64::from(weight) / f64::from(total_weight(&MIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_mix_has_the_issues_proportions() {
        assert_eq!(percent(Endpoint::GetTicket), 60.0);
        assert_eq!(percent(Endpoint::ListTickets), 20.0);
        assert_eq!(percent(Endpoint::ListMessages), 10.0);
        assert_eq!(percent(Endpoint::PostMessage), 7.0);
        assert_eq!(percent(Endpoint::OpenTicket), 3.0);
    }

    #[test]
    fn picks_follow_the_weights() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draws = 100_000;
        let opened = (0..draws)
            .filter(|_| pick(&MIX, &mut rng).endpoint == Endpoint::OpenTicket)
            .count();
        // 3% of 100,000 with a wide margin: the draw is random.
        assert!((2_500..3_500).contains(&opened), "{opened}");
    }
}
