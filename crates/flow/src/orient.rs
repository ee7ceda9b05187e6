//! Which end of a session is its client (the flow's `src`). A session seen
//! from its start says so: the sender of a TCP SYN is the client, the
//! receiver of a SYN-ACK too. One seen mid-stream (its first captured packet
//! sent by the server) is turned by its ports, as Zeek does: a sender on a
//! server port talking to a port that is not one is the server. The rule is
//! in docs/schema.md; `Orient::FirstPacket` keeps the sender of the first
//! packet as `src` (but for a SYN-ACK), as tshark's conversations do.
use pcapidx_decode::tcp_flags;

/// How flows are oriented (`index --orient`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Orient {
    /// By the evidence: SYN, SYN-ACK, then server ports.
    #[default]
    Evidence,
    /// The sender of the first packet is `src` (a SYN-ACK's receiver).
    FirstPacket,
}

/// Why a flow's `src` did not send its first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turned {
    /// Its first packet was a SYN-ACK.
    SynAck,
    /// Its first packet came from a server port to a port that is not one.
    Port,
}

impl Turned {
    /// As stored (`flow_data.turned`).
    pub fn code(self) -> u8 {
        match self {
            Turned::SynAck => 1,
            Turned::Port => 2,
        }
    }

    pub fn from_code(c: u8) -> Option<Turned> {
        match c {
            1 => Some(Turned::SynAck),
            2 => Some(Turned::Port),
            _ => None,
        }
    }
}

/// Ports a client sends from although they are below 1024 or named: DHCP's
/// and DHCPv6's client ports.
const CLIENT_PORTS: [(u8, u16); 2] = [(17, 68), (17, 546)];

/// The ports that mark a server, per transport: every port below 1024 and
/// the named services' (the index's `services` table), but for
/// [`CLIENT_PORTS`].
#[derive(Clone)]
pub struct ServerPorts {
    tcp: Box<[u64; 1024]>,
    udp: Box<[u64; 1024]>,
}

impl ServerPorts {
    /// The well-known ports, and `named` (protocol, port) services.
    pub fn new(named: impl IntoIterator<Item = (u8, u16)>) -> Self {
        let mut s = ServerPorts {
            tcp: Box::new([0; 1024]),
            udp: Box::new([0; 1024]),
        };
        let set = |bits: &mut [u64; 1024], p: u16| bits[usize::from(p / 64)] |= 1 << (p % 64);
        for p in 0..1024 {
            set(&mut s.tcp, p);
            set(&mut s.udp, p);
        }
        for (proto, port) in named {
            match proto {
                6 | 132 => set(&mut s.tcp, port),
                17 => set(&mut s.udp, port),
                _ => {}
            }
        }
        for (proto, port) in CLIENT_PORTS {
            let bits = if proto == 17 { &mut s.udp } else { &mut s.tcp };
            bits[usize::from(port / 64)] &= !(1 << (port % 64));
        }
        s
    }

    /// Whether `port` marks a server of `proto` (TCP, SCTP: the TCP list).
    pub fn is_server(&self, proto: u8, port: u16) -> bool {
        let bits = match proto {
            6 | 132 => &self.tcp,
            17 => &self.udp,
            _ => return false,
        };
        bits[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }
}

impl Default for ServerPorts {
    /// The well-known ports only.
    fn default() -> Self {
        ServerPorts::new([])
    }
}

impl std::fmt::Debug for ServerPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerPorts")
    }
}

/// Whether a new flow's first packet (`proto`, from `sport` to `dport`,
/// TCP flags `flags`) was sent by its server, and by what evidence.
pub(crate) fn turned(
    orient: Orient,
    servers: &ServerPorts,
    proto: u8,
    ports: Option<(u16, u16)>,
    flags: Option<u8>,
) -> Option<Turned> {
    if let Some(f) = flags {
        let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
        if f & syn_ack == syn_ack {
            return Some(Turned::SynAck);
        }
        if f & tcp_flags::SYN != 0 {
            return None;
        }
    }
    if orient == Orient::FirstPacket {
        return None;
    }
    let (sport, dport) = ports?;
    (servers.is_server(proto, sport) && !servers.is_server(proto, dport)).then_some(Turned::Port)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u8 = tcp_flags::SYN;
    const A: u8 = tcp_flags::ACK;

    #[test]
    fn sessions_seen_from_their_start_keep_their_client() {
        let sp = ServerPorts::default();
        let t = |flags, ports| turned(Orient::Evidence, &sp, 6, Some(ports), Some(flags));
        // A SYN from a server port is still the client's.
        assert_eq!(t(S, (80, 40000)), None);
        assert_eq!(t(S | A, (80, 40000)), Some(Turned::SynAck));
        assert_eq!(t(S | A, (40000, 80)), Some(Turned::SynAck));
        assert_eq!(t(A, (40000, 80)), None);
    }

    #[test]
    fn mid_stream_sessions_are_turned_by_ports() {
        let sp = ServerPorts::new([(6, 8080), (17, 5353)]);
        let tcp = |ports| turned(Orient::Evidence, &sp, 6, Some(ports), Some(A));
        assert_eq!(tcp((80, 1576)), Some(Turned::Port));
        assert_eq!(tcp((8080, 50000)), Some(Turned::Port));
        // Both ends servers, or neither: no evidence.
        assert_eq!(tcp((80, 443)), None);
        assert_eq!(tcp((40000, 50000)), None);
        let udp = |ports| turned(Orient::Evidence, &sp, 17, Some(ports), None);
        assert_eq!(udp((53, 33000)), Some(Turned::Port));
        assert_eq!(udp((33000, 53)), None);
        // DHCP: 68 is the client's.
        assert_eq!(udp((67, 68)), Some(Turned::Port));
        assert_eq!(udp((68, 67)), None);
        assert_eq!(udp((123, 123)), None);
        // No ports (ICMP, ESP): as seen.
        assert_eq!(turned(Orient::Evidence, &sp, 1, None, None), None);
    }

    #[test]
    fn first_packet_orientation_turns_only_syn_acks() {
        let sp = ServerPorts::default();
        let fp = |flags, ports| turned(Orient::FirstPacket, &sp, 6, Some(ports), flags);
        assert_eq!(fp(Some(A), (80, 1576)), None);
        assert_eq!(fp(Some(S | A), (80, 1576)), Some(Turned::SynAck));
        assert_eq!(fp(None, (53, 33000)), None);
    }
}
