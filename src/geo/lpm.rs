//! Longest-prefix match over a handful of prefix lengths: one hash map per length,
//! probed from the longest. Network override tables are small and few lengths are used.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

/// A table of networks → values.
#[derive(Debug, Clone)]
pub struct PrefixTable<T> {
    /// (prefix length, masked address → value), longest first; IPv4 and IPv6 separately.
    v4: Vec<Level<u32, T>>,
    v6: Vec<Level<u128, T>>,
}

/// One prefix length: the length and its masked address → (network, value) map.
type Level<K, T> = (u8, FxHashMap<K, (IpNet, T)>);

impl<T> Default for PrefixTable<T> {
    fn default() -> Self {
        PrefixTable { v4: Vec::new(), v6: Vec::new() }
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 { 0 } else { a & (u32::MAX << (32 - len as u32)) }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 { 0 } else { a & (u128::MAX << (128 - len as u32)) }
}

impl<T> PrefixTable<T> {
    /// Inserts or replaces; later inserts of the same network win.
    pub fn insert(&mut self, net: IpNet, value: T) {
        let len = net.prefix_len();
        match net {
            IpNet::V4(n) => {
                let key = mask4(u32::from(n.addr()), len);
                let slot = match self.v4.iter().position(|(l, _)| *l == len) {
                    Some(i) => i,
                    None => {
                        self.v4.push((len, FxHashMap::default()));
                        self.v4.sort_by_key(|l| std::cmp::Reverse(l.0));
                        self.v4.iter().position(|(l, _)| *l == len).unwrap_or(0)
                    }
                };
                self.v4[slot].1.insert(key, (net, value));
            }
            IpNet::V6(n) => {
                let key = mask6(u128::from(n.addr()), len);
                let slot = match self.v6.iter().position(|(l, _)| *l == len) {
                    Some(i) => i,
                    None => {
                        self.v6.push((len, FxHashMap::default()));
                        self.v6.sort_by_key(|l| std::cmp::Reverse(l.0));
                        self.v6.iter().position(|(l, _)| *l == len).unwrap_or(0)
                    }
                };
                self.v6[slot].1.insert(key, (net, value));
            }
        }
    }

    /// The most specific network containing `ip`, and its value.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<&(IpNet, T)> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().find_map(|(len, m)| m.get(&mask4(a, *len)))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().find_map(|(len, m)| m.get(&mask6(a, *len)))
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn len(&self) -> usize {
        self.v4.iter().map(|(_, m)| m.len()).sum::<usize>() + self.v6.iter().map(|(_, m)| m.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let mut t = PrefixTable::default();
        t.insert("10.0.0.0/8".parse().unwrap(), 1);
        t.insert("10.1.0.0/16".parse().unwrap(), 2);
        t.insert("2001:db8::/32".parse().unwrap(), 3);
        t.insert("0.0.0.0/0".parse().unwrap(), 0);
        assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().1, 2);
        assert_eq!(t.lookup("10.2.2.3".parse().unwrap()).unwrap().1, 1);
        assert_eq!(t.lookup("192.0.2.1".parse().unwrap()).unwrap().1, 0);
        assert_eq!(t.lookup("2001:db8:1::1".parse().unwrap()).unwrap().1, 3);
        assert!(t.lookup("2001:db9::1".parse().unwrap()).is_none());
        assert_eq!(t.lookup("10.1.2.3".parse().unwrap()).unwrap().0.prefix_len(), 16);
    }
}
