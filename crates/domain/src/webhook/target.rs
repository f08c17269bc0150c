//! Which addresses a delivery may connect to. Unless the service is configured to allow
//! private targets, a delivery refuses every address that is not a public unicast one,
//! so that a subscription cannot make the service reach into its own network (server-
//! side request forgery): loopback, private (RFC 1918), shared (CGNAT), link-local,
//! unique-local, unspecified, multicast, broadcast, documentation, benchmarking and
//! reserved ranges, and the IPv6 forms that embed such an IPv4 address (mapped,
//! compatible, NAT64, 6to4). The adapter applies the rule to the address it actually
//! connects to, after resolving the name.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address may not be a webhook target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unspecified,
    Loopback,
    /// RFC 1918.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    Shared,
    LinkLocal,
    /// fc00::/7 (RFC 4193).
    UniqueLocal,
    Multicast,
    Broadcast,
    Documentation,
    /// 198.18.0.0/15 (RFC 2544).
    Benchmarking,
    /// Any other special-purpose range (IANA's registries): "this network", protocol
    /// assignments, the former class E, discard-only, site-local, Teredo, local NAT64.
    Reserved,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Unspecified => "an unspecified address",
            Refusal::Loopback => "a loopback address",
            Refusal::Private => "a private address",
            Refusal::Shared => "a shared (carrier-grade NAT) address",
            Refusal::LinkLocal => "a link-local address",
            Refusal::UniqueLocal => "a unique-local address",
            Refusal::Multicast => "a multicast address",
            Refusal::Broadcast => "the broadcast address",
            Refusal::Documentation => "a documentation address",
            Refusal::Benchmarking => "a benchmarking address",
            Refusal::Reserved => "a reserved address",
        })
    }
}

/// Why webhooks may not reach `ip`; `None` when it is a public unicast address.
pub fn refusal(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(ip) => refusal_v4(ip),
        IpAddr::V6(ip) => refusal_v6(ip),
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn refusal_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let ranges: [([u8; 4], u32, Refusal); 17] = [
        ([0, 0, 0, 0], 32, Refusal::Unspecified),
        ([0, 0, 0, 0], 8, Refusal::Reserved),
        ([10, 0, 0, 0], 8, Refusal::Private),
        ([100, 64, 0, 0], 10, Refusal::Shared),
        ([127, 0, 0, 0], 8, Refusal::Loopback),
        ([169, 254, 0, 0], 16, Refusal::LinkLocal),
        ([172, 16, 0, 0], 12, Refusal::Private),
        ([192, 0, 0, 0], 24, Refusal::Reserved),
        ([192, 0, 2, 0], 24, Refusal::Documentation),
        ([192, 88, 99, 0], 24, Refusal::Reserved),
        ([192, 168, 0, 0], 16, Refusal::Private),
        ([198, 18, 0, 0], 15, Refusal::Benchmarking),
        ([198, 51, 100, 0], 24, Refusal::Documentation),
        ([203, 0, 113, 0], 24, Refusal::Documentation),
        ([224, 0, 0, 0], 4, Refusal::Multicast),
        ([255, 255, 255, 255], 32, Refusal::Broadcast),
        ([240, 0, 0, 0], 4, Refusal::Reserved),
    ];
    ranges
        .into_iter()
        .find(|(network, prefix, _)| in_v4(ip, *network, *prefix))
        .map(|(_, _, refusal)| refusal)
}

fn in_v6(ip: Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(network)) & mask
}

/// The IPv4 address in bits `from..from + 32` of `ip`.
fn embedded_v4(ip: Ipv6Addr, from: u32) -> Ipv4Addr {
    let bits = (u128::from(ip) >> (96 - from)) & u128::from(u32::MAX);
    // The mask keeps 32 bits, so the conversion cannot fail.
    Ipv4Addr::from(u32::try_from(bits).unwrap_or_default())
}

fn refusal_v6(ip: Ipv6Addr) -> Option<Refusal> {
    if ip.is_unspecified() {
        return Some(Refusal::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    // Forms that carry an IPv4 address: judged by that address.
    let embedding: [([u16; 8], u32, u32); 4] = [
        // ::ffff:a.b.c.d, IPv4-mapped.
        ([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, 96),
        // ::a.b.c.d, IPv4-compatible (deprecated).
        ([0, 0, 0, 0, 0, 0, 0, 0], 96, 96),
        // 64:ff9b::a.b.c.d, the well-known NAT64 prefix.
        ([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, 96),
        // 2002:aabb:ccdd::/48, 6to4.
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, 16),
    ];
    for (network, prefix, v4_at) in embedding {
        if in_v6(ip, network, prefix) {
            return refusal_v4(embedded_v4(ip, v4_at));
        }
    }
    let ranges: [([u16; 8], u32, Refusal); 10] = [
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Refusal::Reserved),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Refusal::Reserved),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Refusal::Reserved),
        (
            [0x2001, 0x0db8, 0, 0, 0, 0, 0, 0],
            32,
            Refusal::Documentation,
        ),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Refusal::Documentation),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Refusal::UniqueLocal),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Refusal::LinkLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Refusal::Reserved),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Refusal::Multicast),
        // Anything outside 2000::/3 is not allocated for global unicast.
        ([0, 0, 0, 0, 0, 0, 0, 0], 0, Refusal::Reserved),
    ];
    if in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return ranges[..5]
            .iter()
            .find(|(network, prefix, _)| in_v6(ip, *network, *prefix))
            .map(|(_, _, refusal)| *refusal);
    }
    ranges
        .into_iter()
        .find(|(network, prefix, _)| in_v6(ip, *network, *prefix))
        .map(|(_, _, refusal)| refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(raw: &str) -> Option<Refusal> {
        refusal(raw.parse().expect("an address"))
    }

    #[test]
    fn public_addresses_may_be_reached() {
        for raw in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(of(raw), None, "{raw}");
        }
    }

    #[test]
    fn special_purpose_addresses_are_refused_with_their_reason() {
        use Refusal::*;
        let cases = [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Reserved),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("100.64.0.1", Shared),
            ("100.127.255.254", Shared),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("169.254.169.254", LinkLocal),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("192.168.1.1", Private),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.255", Broadcast),
            ("::", Unspecified),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::a00:1", Private),
            ("64:ff9b:1::1", Reserved),
            ("2002:7f00:1::1", Loopback),
            ("2002:c0a8:101::", Private),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("fc00::1", UniqueLocal),
            ("fd12:3456:789a::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", Reserved),
            ("ff02::1", Multicast),
            ("4000::1", Reserved),
        ];
        for (raw, expected) in cases {
            assert_eq!(of(raw), Some(expected), "{raw}");
        }
    }

    #[test]
    fn reasons_read_as_phrases() {
        assert_eq!(Refusal::Loopback.to_string(), "a loopback address");
        assert_eq!(Refusal::Broadcast.to_string(), "the broadcast address");
    }
}
