-- pcapidx index schema, version 1.
-- Documented for analysts in docs/schema.md. Never edit a migration that
-- has shipped; add the next numbered file instead.

-- Every file met while indexing, capture or not.
CREATE TABLE files (
    file_id             INTEGER PRIMARY KEY,
    path                TEXT NOT NULL UNIQUE,
    size                INTEGER NOT NULL,
    mtime_ns            INTEGER NOT NULL,
    head_hash           INTEGER,
    tail_hash           INTEGER,
    format              TEXT,
    link_types          TEXT,
    packets             INTEGER NOT NULL DEFAULT 0,
    flow_packets        INTEGER NOT NULL DEFAULT 0,
    filtered_packets    INTEGER NOT NULL DEFAULT 0,
    undecodable_packets INTEGER NOT NULL DEFAULT 0,
    first_ts_ns         INTEGER,
    last_ts_ns          INTEGER,
    status              TEXT NOT NULL CHECK (status IN
                          ('ok', 'partial', 'error', 'not-a-capture', 'skipped', 'indexing')),
    error               TEXT,
    filters             TEXT,
    indexed_bytes       INTEGER NOT NULL DEFAULT 0,
    resume_section      INTEGER NOT NULL DEFAULT 0,
    resume_ts_ns        INTEGER NOT NULL DEFAULT 0,
    indexed_at_ns       INTEGER
);

-- Capture interfaces: one per pcap file, one per pcapng IDB.
CREATE TABLE interfaces (
    file_id        INTEGER NOT NULL REFERENCES files(file_id),
    if_index       INTEGER NOT NULL,
    link_type      INTEGER NOT NULL,
    snaplen        INTEGER NOT NULL,
    ts_resol       INTEGER NOT NULL,
    ts_offset_s    INTEGER NOT NULL,
    section_offset INTEGER NOT NULL,
    block_offset   INTEGER NOT NULL,
    big_endian     INTEGER NOT NULL,
    PRIMARY KEY (file_id, if_index)
) WITHOUT ROWID;

-- One row per bidirectional flow, in compact form: the `flows` view below
-- is what people and tools read. Addresses are keys that sort and
-- range-scan: IPv4 as an INTEGER, IPv6 as a 16-byte BLOB (SQLite orders
-- all integers before all blobs, so the families never interleave).
CREATE TABLE flow_data (
    flow_id      INTEGER PRIMARY KEY,
    proto        INTEGER,
    src_key,
    src_port     INTEGER,
    dst_key,
    dst_port     INTEGER,
    ethertype    INTEGER NOT NULL,
    vlan         INTEGER,
    vlan_inner   INTEGER,
    first_ts_ns  INTEGER NOT NULL,
    last_ts_ns   INTEGER NOT NULL,
    packets_fwd  INTEGER NOT NULL,
    packets_rev  INTEGER NOT NULL,
    bytes_fwd    INTEGER NOT NULL,
    bytes_rev    INTEGER NOT NULL,
    flags_fwd    INTEGER,
    flags_rev    INTEGER,
    src_mac_key  INTEGER,
    dst_mac_key  INTEGER,
    files        INTEGER NOT NULL,
    service      TEXT,
    community_id TEXT,
    -- RFC 5952 text of IPv6 addresses (IPv4 text is computed from the key).
    src_ip6      TEXT,
    dst_ip6      TEXT
);
-- Its secondary indexes are in indexes.sql.

-- Each flow's packet positions, delta-encoded (see docs/schema.md).
CREATE TABLE packet_chunks (
    chunk_id INTEGER PRIMARY KEY,
    flow_id  INTEGER NOT NULL,
    data     BLOB NOT NULL
);

-- The flow tracker's state at the last commit: what a later run needs to
-- continue the flows still open. One row.
CREATE TABLE tracker_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB NOT NULL
);

-- Names for numbers. `services` is what `flow_data.service` is guessed
-- from when a flow is written: the responder's port, else the originator's.
CREATE TABLE services (
    proto INTEGER NOT NULL,
    port  INTEGER NOT NULL,
    name  TEXT NOT NULL,
    PRIMARY KEY (proto, port)
) WITHOUT ROWID;

INSERT INTO services (proto, port, name) VALUES
    (6, 20, 'ftp-data'), (6, 21, 'ftp'), (6, 22, 'ssh'), (6, 23, 'telnet'),
    (6, 25, 'smtp'), (6, 49, 'tacacs'), (6, 53, 'dns'), (17, 53, 'dns'),
    (17, 67, 'dhcp'), (17, 68, 'dhcp'), (17, 69, 'tftp'), (6, 80, 'http'),
    (6, 88, 'kerberos'), (17, 88, 'kerberos'), (6, 102, 's7comm'), (6, 110, 'pop3'),
    (6, 111, 'rpcbind'), (17, 111, 'rpcbind'), (6, 119, 'nntp'), (17, 123, 'ntp'),
    (6, 135, 'msrpc'), (17, 137, 'netbios-ns'), (17, 138, 'netbios-dgm'),
    (6, 139, 'netbios-ssn'), (6, 143, 'imap'), (17, 161, 'snmp'), (17, 162, 'snmptrap'),
    (6, 179, 'bgp'), (6, 389, 'ldap'), (17, 389, 'ldap'), (6, 443, 'https'),
    (17, 443, 'quic'), (6, 445, 'smb'), (6, 465, 'smtps'), (17, 500, 'isakmp'),
    (6, 502, 'modbus'), (17, 514, 'syslog'), (6, 515, 'printer'), (17, 520, 'rip'),
    (17, 546, 'dhcpv6'), (17, 547, 'dhcpv6'), (6, 587, 'submission'), (17, 623, 'ipmi'),
    (6, 636, 'ldaps'), (6, 853, 'dns-over-tls'), (6, 873, 'rsync'), (6, 993, 'imaps'),
    (6, 995, 'pop3s'), (6, 1080, 'socks'), (17, 1194, 'openvpn'), (6, 1433, 'mssql'),
    (6, 1521, 'oracle'), (17, 1701, 'l2tp'), (6, 1723, 'pptp'), (17, 1812, 'radius'),
    (17, 1813, 'radius-acct'), (6, 1883, 'mqtt'), (17, 1900, 'ssdp'), (6, 2049, 'nfs'),
    (17, 2049, 'nfs'), (17, 2123, 'gtp-c'), (17, 2152, 'gtp-u'), (6, 2404, 'iec-104'),
    (6, 3260, 'iscsi'), (6, 3268, 'ldap-gc'), (6, 3306, 'mysql'), (6, 3389, 'rdp'),
    (17, 3478, 'stun'), (132, 3868, 'diameter'), (6, 3868, 'diameter'), (17, 4500, 'ipsec-nat-t'),
    (17, 4789, 'vxlan'), (6, 4840, 'opcua'), (17, 5060, 'sip'), (6, 5060, 'sip'),
    (6, 5061, 'sips'), (17, 5353, 'mdns'), (17, 5355, 'llmnr'), (6, 5432, 'postgresql'),
    (6, 5672, 'amqp'), (6, 5900, 'vnc'), (6, 5985, 'winrm'), (6, 5986, 'winrm-https'),
    (6, 6379, 'redis'), (6, 6443, 'kubernetes'), (6, 6653, 'openflow'), (6, 6667, 'irc'),
    (6, 8080, 'http-alt'), (6, 8443, 'https-alt'), (6, 8883, 'mqtts'), (6, 9092, 'kafka'),
    (6, 9200, 'elasticsearch'), (6, 11211, 'memcached'), (17, 11211, 'memcached'),
    (6, 20000, 'dnp3'), (17, 20000, 'dnp3'), (6, 27017, 'mongodb'), (132, 36412, 's1ap'),
    (6, 44818, 'enip'), (17, 44818, 'enip'), (17, 47808, 'bacnet'), (132, 2905, 'm3ua');

CREATE TABLE ip_protocols (
    proto INTEGER PRIMARY KEY,
    name  TEXT NOT NULL
);

INSERT INTO ip_protocols (proto, name) VALUES
    (1, 'icmp'), (2, 'igmp'), (4, 'ipip'), (6, 'tcp'), (17, 'udp'), (33, 'dccp'),
    (41, 'ipv6'), (46, 'rsvp'), (47, 'gre'), (50, 'esp'), (51, 'ah'), (58, 'icmpv6'),
    (88, 'eigrp'), (89, 'ospf'), (103, 'pim'), (112, 'vrrp'), (115, 'l2tp'),
    (132, 'sctp'), (136, 'udplite');

CREATE TABLE ethertypes (
    ethertype INTEGER PRIMARY KEY,
    name      TEXT NOT NULL
);

INSERT INTO ethertypes (ethertype, name) VALUES
    (0, 'llc'), (2048, 'ipv4'), (2054, 'arp'), (8192, 'cdp'), (32821, 'rarp'),
    (33011, 'aarp'), (33024, 'vlan'), (34525, 'ipv6'), (34827, 'ppp'), (34887, 'mpls'),
    (34915, 'pppoe-discovery'), (34916, 'pppoe'), (34958, 'eapol'), (34984, 'qinq'),
    (35020, 'lldp'), (35063, 'ptp'), (35067, 'fcoe'), (35130, 'ethercat'),
    (35138, 'profinet'), (35143, 'macsec'), (35271, 'cfm'), (36864, 'loopback');

-- LINKTYPE_ values (tcpdump.org/linktypes.html) of the link types pcapidx decodes.
CREATE TABLE link_type_names (
    link_type INTEGER PRIMARY KEY,
    name      TEXT NOT NULL
);

INSERT INTO link_type_names (link_type, name) VALUES
    (0, 'null'), (1, 'ethernet'), (9, 'ppp'), (12, 'raw'), (14, 'raw'), (101, 'raw'),
    (104, 'c-hdlc'), (105, 'ieee802.11'), (108, 'loop'), (113, 'linux-sll'),
    (127, 'ieee802.11-radiotap'), (228, 'ipv4'), (229, 'ipv6'), (239, 'nflog'),
    (276, 'linux-sll2');

-- The flows, readable: addresses, MACs and TCP flags as text. Every
-- column is computed in plain SQL, so any SQLite client can read it.
CREATE VIEW flows AS
SELECT
    flow_id,
    proto,
    CASE typeof(src_key)
        WHEN 'integer' THEN printf('%d.%d.%d.%d', (src_key >> 24) & 255,
            (src_key >> 16) & 255, (src_key >> 8) & 255, src_key & 255)
        ELSE src_ip6
    END AS src_ip,
    src_port,
    CASE typeof(dst_key)
        WHEN 'integer' THEN printf('%d.%d.%d.%d', (dst_key >> 24) & 255,
            (dst_key >> 16) & 255, (dst_key >> 8) & 255, dst_key & 255)
        ELSE dst_ip6
    END AS dst_ip,
    dst_port,
    ethertype,
    vlan,
    vlan_inner,
    first_ts_ns,
    last_ts_ns,
    packets_fwd,
    packets_rev,
    bytes_fwd,
    bytes_rev,
    CASE WHEN flags_fwd IS NOT NULL THEN
        CASE WHEN flags_fwd & 1 THEN 'F' ELSE '' END
        || CASE WHEN flags_fwd & 2 THEN 'S' ELSE '' END
        || CASE WHEN flags_fwd & 4 THEN 'R' ELSE '' END
        || CASE WHEN flags_fwd & 8 THEN 'P' ELSE '' END
        || CASE WHEN flags_fwd & 16 THEN 'A' ELSE '' END
        || CASE WHEN flags_fwd & 32 THEN 'U' ELSE '' END
        || CASE WHEN flags_fwd & 64 THEN 'E' ELSE '' END
        || CASE WHEN flags_fwd & 128 THEN 'C' ELSE '' END
    END AS tcp_flags_fwd,
    CASE WHEN flags_rev IS NOT NULL THEN
        CASE WHEN flags_rev & 1 THEN 'F' ELSE '' END
        || CASE WHEN flags_rev & 2 THEN 'S' ELSE '' END
        || CASE WHEN flags_rev & 4 THEN 'R' ELSE '' END
        || CASE WHEN flags_rev & 8 THEN 'P' ELSE '' END
        || CASE WHEN flags_rev & 16 THEN 'A' ELSE '' END
        || CASE WHEN flags_rev & 32 THEN 'U' ELSE '' END
        || CASE WHEN flags_rev & 64 THEN 'E' ELSE '' END
        || CASE WHEN flags_rev & 128 THEN 'C' ELSE '' END
    END AS tcp_flags_rev,
    CASE WHEN src_mac_key IS NOT NULL THEN
        printf('%02x:%02x:%02x:%02x:%02x:%02x', (src_mac_key >> 40) & 255,
            (src_mac_key >> 32) & 255, (src_mac_key >> 24) & 255,
            (src_mac_key >> 16) & 255, (src_mac_key >> 8) & 255, src_mac_key & 255)
    END AS src_mac,
    CASE WHEN dst_mac_key IS NOT NULL THEN
        printf('%02x:%02x:%02x:%02x:%02x:%02x', (dst_mac_key >> 40) & 255,
            (dst_mac_key >> 32) & 255, (dst_mac_key >> 24) & 255,
            (dst_mac_key >> 16) & 255, (dst_mac_key >> 8) & 255, dst_mac_key & 255)
    END AS dst_mac,
    files,
    service,
    community_id,
    src_key,
    dst_key
FROM flow_data;

-- One row per flow for people: protocol by name, RFC 3339 times, duration,
-- totals, both flag sets, service.
CREATE VIEW flow_summary AS
SELECT
    f.flow_id,
    coalesce(p.name, e.name, CASE WHEN f.proto IS NULL
        THEN printf('0x%04x', f.ethertype) ELSE CAST(f.proto AS TEXT) END) AS protocol,
    f.src_ip,
    f.src_port,
    f.dst_ip,
    f.dst_port,
    f.service,
    strftime('%Y-%m-%dT%H:%M:%S', (f.first_ts_ns - ((f.first_ts_ns % 1000000000)
        + 1000000000) % 1000000000) / 1000000000, 'unixepoch')
        || printf('.%09dZ', ((f.first_ts_ns % 1000000000) + 1000000000) % 1000000000)
        AS start_time,
    strftime('%Y-%m-%dT%H:%M:%S', (f.last_ts_ns - ((f.last_ts_ns % 1000000000)
        + 1000000000) % 1000000000) / 1000000000, 'unixepoch')
        || printf('.%09dZ', ((f.last_ts_ns % 1000000000) + 1000000000) % 1000000000)
        AS end_time,
    (f.last_ts_ns - f.first_ts_ns) / 1e9 AS duration_s,
    f.packets_fwd + f.packets_rev AS packets,
    f.bytes_fwd + f.bytes_rev AS bytes,
    f.packets_fwd,
    f.packets_rev,
    f.tcp_flags_fwd,
    f.tcp_flags_rev,
    f.src_mac,
    f.dst_mac,
    f.vlan,
    f.files,
    f.community_id
FROM flows f
LEFT JOIN ip_protocols p ON p.proto = f.proto
LEFT JOIN ethertypes e ON f.proto IS NULL AND e.ethertype = f.ethertype;

-- The classic conversation table: protocol, source and destination sockets
-- (address:port, [IPv6]:port, or MAC for layer-2 flows), flags forward/reverse,
-- packet counts each way.
CREATE VIEW conversations AS
SELECT
    flow_id,
    protocol,
    CASE
        WHEN src_ip IS NULL THEN src_mac
        WHEN instr(src_ip, ':') THEN '[' || src_ip || ']' || coalesce(':' || src_port, '')
        ELSE src_ip || coalesce(':' || src_port, '')
    END AS src,
    CASE
        WHEN dst_ip IS NULL THEN dst_mac
        WHEN instr(dst_ip, ':') THEN '[' || dst_ip || ']' || coalesce(':' || dst_port, '')
        ELSE dst_ip || coalesce(':' || dst_port, '')
    END AS dst,
    CASE WHEN tcp_flags_fwd IS NOT NULL OR tcp_flags_rev IS NOT NULL
        THEN coalesce(tcp_flags_fwd, '') || '/' || coalesce(tcp_flags_rev, '') END AS flags,
    packets_fwd AS fcount,
    packets_rev AS rcount,
    bytes,
    start_time,
    duration_s,
    service
FROM flow_summary;

-- Every MAC address seen as a flow's source or destination: flows, packets
-- and bytes it sent and received (forward packets are sent by `src_mac`,
-- reverse ones by `dst_mac`), first and last time.
CREATE VIEW macs AS
SELECT
    printf('%02x:%02x:%02x:%02x:%02x:%02x', (mac_key >> 40) & 255, (mac_key >> 32) & 255,
        (mac_key >> 24) & 255, (mac_key >> 16) & 255, (mac_key >> 8) & 255, mac_key & 255) AS mac,
    count(*) AS flows,
    sum(sent) AS packets_sent,
    sum(received) AS packets_received,
    sum(bytes_sent) AS bytes_sent,
    sum(bytes_received) AS bytes_received,
    min(first_ts_ns) AS first_ts_ns,
    max(last_ts_ns) AS last_ts_ns,
    mac_key
FROM (
    SELECT src_mac_key AS mac_key, packets_fwd AS sent, packets_rev AS received,
        bytes_fwd AS bytes_sent, bytes_rev AS bytes_received, first_ts_ns, last_ts_ns
    FROM flow_data WHERE src_mac_key IS NOT NULL
    UNION ALL
    SELECT dst_mac_key, packets_rev, packets_fwd, bytes_rev, bytes_fwd, first_ts_ns, last_ts_ns
    FROM flow_data WHERE dst_mac_key IS NOT NULL AND dst_mac_key IS NOT src_mac_key
)
GROUP BY mac_key;
