//! Where a login comes from, as the defences count it: one rule for every place that groups
//! clients by address (`ferry up`'s connection bounds, the defender's scores and bans).
//!
//! An IPv4 address is one source. An IPv6 address is grouped by its /64: that is one
//! subscriber's allocation, and counting single IPv6 addresses would let one host appear as
//! millions of sources. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket
//! reports for an IPv4 client) is the IPv4 address it carries.
//!
//! [`is_private`] tells the addresses that stand for many clients at once (a Network Load
//! Balancer without PROXY protocol, a NAT): the defender counts and reports them but never bans
//! them as a whole.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// How many leading bits of an IPv6 address make one source.
pub const IPV6_PREFIX_BITS: u8 = 64;

/// One source of logins: an IPv4 address, or an IPv6 /64.
///
/// Its string form ([`fmt::Display`], [`SourceKey::parse`]) is stable and fit for a storage key:
/// `198.51.100.7`, `2001:db8:1:2::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKey {
    V4(Ipv4Addr),
    /// The /64's network address (its last 64 bits are zero).
    V6(Ipv6Addr),
}

/// Why a string is not a source. Carries no copy of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceKeyError {
    #[error("a source is an IP address or an IPv6 /64 prefix")]
    Syntax,
    #[error("an IPv6 source prefix must be a /64")]
    PrefixLength,
}

impl SourceKey {
    /// The source `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6(Ipv6Addr::from(u128::from(v6) & PREFIX_MASK)),
        }
    }

    /// Reads the string form back. Also takes a bare address (of either family), grouped as
    /// [`SourceKey::of`] groups it, so an operator can paste the `source_ip` of an audit line;
    /// and an IPv6 `/64` whose host bits are set, taken as its network (what `ip -6 addr` shows).
    pub fn parse(s: &str) -> Result<Self, SourceKeyError> {
        match s.split_once('/') {
            None => s
                .parse::<IpAddr>()
                .map(Self::of)
                .map_err(|_| SourceKeyError::Syntax),
            Some((addr, bits)) => {
                let addr = addr
                    .parse::<Ipv6Addr>()
                    .map_err(|_| SourceKeyError::Syntax)?;
                // Only the canonical spelling of the length: "064" or "+64" would make a second
                // string for one key.
                if bits != "64" {
                    return Err(if bits.parse::<u8>().is_ok() {
                        SourceKeyError::PrefixLength
                    } else {
                        SourceKeyError::Syntax
                    });
                }
                Ok(Self::of(IpAddr::V6(addr)))
            }
        }
    }

    /// Whether `ip` belongs to this source.
    pub fn contains(&self, ip: IpAddr) -> bool {
        Self::of(ip) == *self
    }
}

/// The first 64 bits of an IPv6 address.
const PREFIX_MASK: u128 = !0 << (128 - IPV6_PREFIX_BITS);

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6(net) => write!(f, "{net}/{IPV6_PREFIX_BITS}"),
        }
    }
}

impl FromStr for SourceKey {
    type Err = SourceKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether `ip` is an address that usually stands for other clients rather than being one:
/// private (RFC 1918), carrier-grade NAT (100.64.0.0/10, RFC 6598), loopback, link-local, and for
/// IPv6 unique-local (fc00::/7), link-local (fe80::/10) and loopback. A login "from" such an
/// address most often comes through a Network Load Balancer without PROXY protocol or a NAT:
/// banning it would lock out everyone behind it.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let cgnat = a == 100 && (b & 0xc0) == 64;
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || cgnat
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = (first & 0xfe00) == 0xfc00;
            let link_local = (first & 0xffc0) == 0xfe80;
            v6.is_loopback() || unique_local || link_local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv4_address_is_a_source_of_its_own() {
        assert_eq!(
            SourceKey::of(ip("198.51.100.7")),
            SourceKey::V4(Ipv4Addr::new(198, 51, 100, 7))
        );
        assert_ne!(
            SourceKey::of(ip("198.51.100.7")),
            SourceKey::of(ip("198.51.100.8"))
        );
    }

    #[test]
    fn ipv6_addresses_are_grouped_by_their_64() {
        let one = SourceKey::of(ip("2001:db8:1:2::1"));
        assert_eq!(one, SourceKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(one, SourceKey::of(ip("2001:db8:1:3::1")));
        assert!(one.contains(ip("2001:db8:1:2:abcd::9")));
        assert!(!one.contains(ip("2001:db8:1:3::1")));
    }

    #[test]
    fn an_ipv4_mapped_ipv6_address_is_the_ipv4_address_it_carries() {
        assert_eq!(
            SourceKey::of(ip("::ffff:198.51.100.7")),
            SourceKey::of(ip("198.51.100.7"))
        );
    }

    #[test]
    fn the_string_form_is_the_address_or_the_64_and_reads_back() {
        for (addr, text) in [
            ("198.51.100.7", "198.51.100.7"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:0db8:0001:0002::1", "2001:db8:1:2::/64"),
            ("fe80::1", "fe80::/64"),
            ("::1", "::/64"),
        ] {
            let key = SourceKey::of(ip(addr));
            assert_eq!(key.to_string(), text, "{addr}");
            assert_eq!(SourceKey::parse(text), Ok(key), "{text}");
            assert_eq!(text.parse::<SourceKey>(), Ok(key), "{text}");
        }
    }

    #[test]
    fn parsing_takes_a_bare_address_or_any_64_and_groups_it() {
        let want = SourceKey::of(ip("2001:db8:1:2::"));
        assert_eq!(SourceKey::parse("2001:db8:1:2::77"), Ok(want));
        assert_eq!(SourceKey::parse("2001:db8:1:2::77/64"), Ok(want));
        assert_eq!(
            SourceKey::parse("::ffff:203.0.113.9"),
            Ok(SourceKey::of(ip("203.0.113.9")))
        );
    }

    #[test]
    fn parsing_refuses_anything_else() {
        for bad in ["", "nope", "198.51.100.7/32", "198.51.100", "2001:db8::/"] {
            assert_eq!(SourceKey::parse(bad), Err(SourceKeyError::Syntax), "{bad}");
        }
        for bad in ["2001:db8::/48", "2001:db8::/128"] {
            assert_eq!(
                SourceKey::parse(bad),
                Err(SourceKeyError::PrefixLength),
                "{bad}"
            );
        }
        for bad in ["2001:db8::/064", "2001:db8::/+64", "2001:db8::/64/64"] {
            assert!(SourceKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_loopback_link_local_and_carrier_grade_nat_addresses_are_private() {
        for private in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.10.20",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "::ffff:10.1.2.3",
        ] {
            assert!(is_private(ip(private)), "{private}");
        }
    }

    #[test]
    fn public_addresses_are_not_private() {
        for public in [
            "198.51.100.7",
            "203.0.113.9",
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.0",
            "169.255.0.1",
            "2001:db8::1",
            "2600::1",
            "fec0::1",
            "::ffff:198.51.100.7",
        ] {
            assert!(!is_private(ip(public)), "{public}");
        }
    }
}
