//! A loopback address that refuses every connection for as long as a test
//! holds it.
//!
//! Binding a port, dropping the listener and connecting to the "free" port
//! races: another process may take the port in between, and the test then
//! talks to it. A [`RefusingAddr`] keeps its port bound by a socket that
//! never listens: no other process can bind the port while the test runs,
//! and every connection to it is refused at once (the kernel answers the SYN
//! with a reset), which is what "nothing listens there" means.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpSocket;

use crate::HarnessError;

/// A 127.0.0.1 port that is bound but never listens; refused until dropped.
#[derive(Debug)]
pub struct RefusingAddr {
    // Holding the bound socket is what keeps the port from anyone else.
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl RefusingAddr {
    /// Binds a fresh loopback port without listening on it. Needs no
    /// runtime: the socket is never registered with one.
    pub fn bind() -> Result<Self, HarnessError> {
        let context = "binding a loopback port that refuses connections";
        let socket = TcpSocket::new_v4().map_err(|err| HarnessError::io(context, err))?;
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|err| HarnessError::io(context, err))?;
        let addr = socket
            .local_addr()
            .map_err(|err| HarnessError::io(context, err))?;
        Ok(Self {
            _socket: socket,
            addr,
        })
    }

    /// The address, e.g. `127.0.0.1:41234`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for endpoint settings.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_refused_and_the_port_cannot_be_taken() {
        let refusing = RefusingAddr::bind().unwrap();
        let err = std::net::TcpStream::connect(refusing.addr()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        let err = std::net::TcpListener::bind(refusing.addr()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
        assert_eq!(
            refusing.http_url(),
            format!("http://127.0.0.1:{}", refusing.addr().port())
        );
    }
}
