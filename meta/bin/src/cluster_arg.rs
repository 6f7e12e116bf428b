//! Parsing of the address lists the subcommands take.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// `host:port[,host:port...]`.
pub fn parse_addrs(list: &str) -> anyhow::Result<Vec<String>> {
    let addrs: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if addrs.is_empty() {
        bail!("--cluster needs at least one address, as HOST:PORT[,HOST:PORT...]");
    }
    for a in &addrs {
        check_addr(a).with_context(|| format!("--cluster: {a:?}"))?;
    }
    Ok(addrs)
}

/// `ID=HOST:PORT[,ID=HOST:PORT...]`, the initial members of a new cluster.
pub fn parse_members(list: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut members = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('=')
            .with_context(|| format!("--init: {item:?} is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("--init: node id {id:?} is not a number"))?;
        if id == 0 {
            bail!("--init: node id 0 is reserved; number nodes from 1");
        }
        check_addr(addr).with_context(|| format!("--init: address of node {id}"))?;
        if members.insert(id, addr.trim().to_owned()).is_some() {
            bail!("--init: node id {id} is listed twice");
        }
    }
    if members.is_empty() {
        bail!("--init needs at least one member, as ID=HOST:PORT[,ID=HOST:PORT...]");
    }
    Ok(members)
}

pub fn check_addr(addr: &str) -> anyhow::Result<()> {
    let (host, port) = addr
        .trim()
        .rsplit_once(':')
        .with_context(|| format!("{addr:?} has no port; write HOST:PORT"))?;
    if host.is_empty() {
        bail!("{addr:?} has no host; write HOST:PORT");
    }
    port.parse::<u16>()
        .with_context(|| format!("{addr:?}: port {port:?} is not a number from 1 to 65535"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_and_reject_bad_input() {
        let m = parse_members("1=127.0.0.1:7001, 2=127.0.0.1:7002").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&2], "127.0.0.1:7002");
        assert!(parse_members("1=127.0.0.1:7001,1=127.0.0.1:7002").is_err());
        assert!(parse_members("0=127.0.0.1:7001").is_err());
        assert!(parse_members("x=127.0.0.1:7001").is_err());
        assert!(parse_members("1=127.0.0.1").is_err());
        assert!(parse_members("").is_err());
    }

    #[test]
    fn addrs_parse_and_reject_bad_input() {
        assert_eq!(parse_addrs("a:1,b:2").unwrap(), vec!["a:1", "b:2"]);
        assert!(parse_addrs("a").is_err());
        assert!(parse_addrs("a:99999").is_err());
        assert!(parse_addrs(",").is_err());
    }
}
