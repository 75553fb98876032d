//! Loopback ports for the components: free ones picked by the kernel, or one the user
//! asked for, checked before anything starts.

use std::net::{Ipv4Addr, TcpListener};

use crate::cluster::{Error, IoContext};

/// `count` distinct free ports on 127.0.0.1. The listeners are held until all are
/// picked, so the kernel cannot hand out the same port twice.
pub fn pick_free(count: usize) -> Result<Vec<u16>, Error> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .context(|| "picking free ports on 127.0.0.1".to_string())?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .context(|| "picking free ports on 127.0.0.1".to_string())
}

/// Fails with [`Error::PortInUse`] when something already listens on `port`.
pub fn ensure_free(port: u16, flag: &'static str) -> Result<(), Error> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::PortInUse { port, flag }),
        Err(e) => Err(e).context(|| format!("checking port 127.0.0.1:{port}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_ports_are_distinct_and_free() {
        let ports = pick_free(4).unwrap();
        let mut unique = ports.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        for port in ports {
            ensure_free(port, "--port").unwrap();
        }
    }

    #[test]
    fn a_listening_port_is_reported_in_use() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = ensure_free(port, "--port").unwrap_err();
        assert!(matches!(err, Error::PortInUse { port: p, .. } if p == port));
        assert!(err.to_string().contains("--port"), "{err}");
    }
}
