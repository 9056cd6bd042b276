//! The hand-over protocol between an old process and the new one that
//! replaces it, over a `SOCK_SEQPACKET` pair (one record per message). A
//! message is a little-endian `u32` length, that many bytes of JSON, and a
//! binary payload (the rest of the record). Pure: bytes in, message out.
//!
//! ```text
//! new → old  Hello                      (the new process has its config)
//! old → new  Sockets { more } + fds     (listening sockets, admin's too)
//! new → old  Ready                      (the new process accepts)
//! old → new  Conns + 2 fds each         (established connections)
//! old → new  Bytes { conn, up } + data  (what each still owed, in order)
//! new → old  Adopted { count }          (the old copies may close)
//! old → new  Done { handed }
//! ```

use serde::{Deserialize, Serialize};

/// What a listening socket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Tcp,
    Udp,
    /// The admin API's socket (served by the control plane).
    Admin,
}

/// A listening socket: the descriptor at the same index carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketMeta {
    pub kind: Kind,
    /// The listener's name (`admin` for the admin API).
    pub name: String,
    /// The address it is bound to (`ip:port`).
    pub address: String,
}

/// An established connection: two descriptors (client, backend) at its index × 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnMeta {
    pub listener: String,
    pub pool: String,
    /// The backend's address (`ip:port`).
    pub backend: String,
    /// The client as the listener saw it (a PROXY header's source, if any).
    pub client: String,
    /// Bytes the old process read but did not deliver: to the backend (`up`)
    /// and to the client (`down`). `Bytes` messages carry them.
    pub up: u32,
    pub down: u32,
}

/// One message of the protocol (see the module comment for the order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    Hello {
        version: String,
    },
    Sockets {
        sockets: Vec<SocketMeta>,
        more: bool,
    },
    Ready,
    Conns {
        conns: Vec<ConnMeta>,
    },
    /// Bytes owed on connection `conn` (index in the last `Conns`): to the backend if `up`.
    Bytes {
        conn: u32,
        up: bool,
    },
    Adopted {
        count: u32,
    },
    Done {
        handed: u64,
    },
}

/// Encode `m` with `payload` after it.
pub fn encode(m: &Message, payload: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(m).expect("hand-over messages serialise");
    let mut out = Vec::with_capacity(4 + json.len() + payload.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(payload);
    out
}

/// Decode one record: the message and its payload.
pub fn decode(record: &[u8]) -> Result<(Message, &[u8]), String> {
    let len = record.get(..4).ok_or("a hand-over record shorter than its length prefix")?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let json =
        record.get(4..4 + len).ok_or_else(|| format!("a hand-over record of {} bytes announces {len} bytes of JSON", record.len()))?;
    let m = serde_json::from_slice(json).map_err(|e| format!("a malformed hand-over message: {e}"))?;
    Ok((m, &record[4 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_payload() {
        let m = Message::Bytes { conn: 3, up: true };
        let rec = encode(&m, b"owed");
        assert_eq!(decode(&rec).unwrap(), (m, &b"owed"[..]));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"\x01", b"\xff\xff\xff\xff{}", b"\x02\0\0\0{}", b"\x07\0\0\0{\"t\":1}"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
