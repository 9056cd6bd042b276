//! The codec against HAProxy's captured bytes, the spec's examples, every
//! error reason, round trips, and headers split at every byte.

use std::net::SocketAddr;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn done(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Parsed::Done { header, consumed }) => (header, consumed),
        other => panic!("expected a header from {buf:02x?}, got {other:?}"),
    }
}

fn proxy(transport: Transport, src: &str, dst: &str, tlvs: Tlvs) -> Header {
    Header::Proxy(Addresses { transport, src: sa(src), dst: sa(dst), tlvs })
}

/// A TLV set with every typed field.
fn all_tlvs() -> Tlvs {
    Tlvs {
        alpn: Some(b"h2".to_vec()),
        authority: Some("api.example.com".into()),
        crc32c: None,
        unique_id: Some(b"4F2A-0001".to_vec()),
        ssl: Some(Ssl {
            client: CLIENT_SSL | CLIENT_CERT_CONN | CLIENT_CERT_SESS,
            verify: 0,
            version: Some("TLSv1.3".into()),
            cn: Some("client.example.com".into()),
            cipher: Some("TLS_AES_128_GCM_SHA256".into()),
            sig_alg: Some("SHA256".into()),
            key_alg: Some("EC256".into()),
            other: vec![(0x2A, b"x".to_vec())],
        }),
        netns: Some(b"blue".to_vec()),
        other: vec![(0xE0, b"custom".to_vec()), (0xF8, Vec::new())],
    }
}

/// HAProxy 2.6.12's health check with `send-proxy-v2 check` (captured).
const HAPROXY_LOCAL: &str = "0D0A0D0A000D0A515549540A 20 00 0000";
/// HAProxy 2.6.12 relaying 203.0.113.7:40000 → 127.0.0.1:18090 (captured).
const HAPROXY_IPV4: &str = "0D0A0D0A000D0A515549540A 21 11 000c cb007107 7f000001 9c40 46aa";

#[test]
fn reads_and_writes_haproxys_captured_headers() {
    let local = hex(HAPROXY_LOCAL);
    assert_eq!(done(&local), (Header::Local, 16));
    assert_eq!(encode_v2_local().to_vec(), local);

    let relayed = hex(HAPROXY_IPV4);
    let want = proxy(Transport::Stream, "203.0.113.7:40000", "127.0.0.1:18090", Tlvs::default());
    assert_eq!(done(&relayed), (want.clone(), 28));
    assert_eq!(want.client(), Some(sa("203.0.113.7:40000")));
    let encoded = encode_v2(Command::Proxy, Transport::Stream, sa("203.0.113.7:40000"), sa("127.0.0.1:18090"), &Tlvs::default(), false);
    assert_eq!(encoded.unwrap(), relayed);
}

#[test]
fn reads_the_specs_v1_examples_up_to_the_107_byte_worst_case() {
    let tcp4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(tcp4.len(), 56);
    assert_eq!(done(tcp4), (proxy(Transport::Stream, "255.255.255.255:65535", "255.255.255.255:65535", Tlvs::default()), 56));

    let full6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let tcp6 = format!("PROXY TCP6 {full6} {full6} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    let a = format!("[{full6}]:65535");
    assert_eq!(done(tcp6.as_bytes()), (proxy(Transport::Stream, &a, &a, Tlvs::default()), 104));

    assert_eq!(done(b"PROXY UNKNOWN\r\n"), (Header::Unknown, 15));
    let worst = format!("PROXY UNKNOWN {full6} {full6} 65535 65535\r\n");
    assert_eq!(worst.len(), V1_MAX_LEN);
    assert_eq!(done(worst.as_bytes()), (Header::Unknown, 107));
    // One byte more and the CRLF is past the bound.
    let over = format!("PROXY UNKNOWN {full6} {full6} 65535 655350\r\n");
    assert_eq!(parse(over.as_bytes()), Err(ParseError::V1TooLong));

    let with_payload = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    let (h, n) = done(with_payload);
    assert_eq!(n, 47);
    assert_eq!(&with_payload[n..], b"GET / HTTP/1.1\r\n");
    assert_eq!(h.client(), Some(sa("192.168.0.1:56324")));
    assert_eq!(done(b"PROXY TCP6 ::1 2001:db8::7 0 80\r\n").0.client(), Some(sa("[::1]:0")));
}

#[test]
fn every_error_has_its_reason() {
    let sig = |rest: &str| [V2_SIGNATURE.to_vec(), hex(rest)].concat();
    let v4 = |tlvs: &str| {
        let tlvs = hex(tlvs);
        let mut h = sig(&format!("21 11 {:04x} 01020304 05060708 0001 0002", 12 + tlvs.len()));
        h.extend(tlvs);
        h
    };
    let cases: Vec<(Vec<u8>, ParseError)> = vec![
        (b"GET / HTTP/1.1\r\n".to_vec(), ParseError::NotProxy),
        (b"PROXX".to_vec(), ParseError::NotProxy),
        (b"PROXY\r\n".to_vec(), ParseError::NotProxy),
        (hex("0D0A0D0A 0A"), ParseError::NotProxy),
        (hex("16030100"), ParseError::NotProxy),
        ([b"PROXY UNKNOWN ".to_vec(), vec![b'a'; 93]].concat(), ParseError::V1TooLong),
        (b"PROXY TCP4 1.2.3.4\r\n".to_vec(), ParseError::V1BadLine),
        (b"PROXY TCP4  1.2.3.4".to_vec(), ParseError::V1BadLine),
        (b"PROXY UNKNOWN\n".to_vec(), ParseError::V1BadLine),
        (b"PROXY UNKNOWN\rX".to_vec(), ParseError::V1BadLine),
        (b"PROXY UNKNOWN junk\nmore".to_vec(), ParseError::V1BadLine),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec(), ParseError::V1BadLine),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r".to_vec(), ParseError::V1BadLine),
        (b"PROXY TCP5".to_vec(), ParseError::V1BadProtocol),
        (b"PROXY tcp4".to_vec(), ParseError::V1BadProtocol),
        (b"PROXY TCP 1.2.3.4".to_vec(), ParseError::V1BadProtocol),
        (b"PROXY TCP4 1.2.3.256 ".to_vec(), ParseError::V1BadAddress),
        (b"PROXY TCP4 01.2.3.4 ".to_vec(), ParseError::V1BadAddress),
        (b"PROXY TCP4 1.2.3 ".to_vec(), ParseError::V1BadAddress),
        (b"PROXY TCP4 ::1".to_vec(), ParseError::V1BadAddress),
        (b"PROXY TCP6 1.2.3.4 ".to_vec(), ParseError::V1BadAddress),
        (b"PROXY TCP6 ::g".to_vec(), ParseError::V1BadAddress),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536".to_vec(), ParseError::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 08".to_vec(), ParseError::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1x".to_vec(), ParseError::V1BadPort),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n".to_vec(), ParseError::V1BadLine),
        (sig("11"), ParseError::V2BadVersion),
        (sig("22"), ParseError::V2BadCommand),
        (sig("21 13"), ParseError::V2BadFamily),
        (sig("21 10"), ParseError::V2BadFamily),
        (sig("21 11 0008"), ParseError::V2ShortAddresses),
        (sig("21 21 0020"), ParseError::V2ShortAddresses),
        (sig("21 11 1001"), ParseError::TooLong),
        (sig("20 00 ffff"), ParseError::TooLong),
        (v4("01"), ParseError::V2BadTlv("truncated TLV header")),
        (v4("01 0005 6832"), ParseError::V2BadTlv("TLV overruns the header")),
        (v4("03 0003 000000"), ParseError::V2BadTlv("CRC32C is not 4 bytes")),
        (v4("02 0002 ff fe"), ParseError::V2BadTlv("AUTHORITY is not UTF-8")),
        (v4(&format!("05 0081 {}", "00".repeat(129))), ParseError::V2BadTlv("UNIQUE_ID is over 128 bytes")),
        (v4("01 0002 6832 01 0002 6832"), ParseError::V2BadTlv("repeated TLV")),
        (v4("20 0004 01000000"), ParseError::V2BadTlv("SSL is under 5 bytes")),
        (v4("20 0009 01 00000000 21 0005 54"), ParseError::V2BadTlv("TLV overruns the header")),
        (v4("20 0008 01 00000000 22 0000 23"), ParseError::V2BadTlv("truncated TLV header")),
        (v4("20 0009 01 00000000 23 0001 ff"), ParseError::V2BadTlv("SSL cipher is not UTF-8")),
        (v4("03 0004 12345678"), ParseError::CrcMismatch),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (input, want) in &cases {
        assert_eq!(parse(input), Err(*want), "input {:?}", String::from_utf8_lossy(input));
        seen.insert(want.reason());
    }
    let all = [
        "not_proxy",
        "v1_too_long",
        "v1_bad_line",
        "v1_bad_protocol",
        "v1_bad_address",
        "v1_bad_port",
        "v2_bad_version",
        "v2_bad_command",
        "v2_bad_family",
        "v2_short_addresses",
        "too_long",
        "v2_bad_tlv",
        "crc_mismatch",
    ];
    assert_eq!(seen, all.into_iter().collect());
    assert_eq!(ParseError::V2BadTlv("repeated TLV").to_string(), "PROXY header: v2_bad_tlv (repeated TLV)");
}

#[test]
fn reports_a_bad_header_before_it_is_complete_and_waits_for_a_good_one() {
    // A prefix of a valid header is Incomplete...
    for partial in [&b"P"[..], b"PROXY", b"PROXY TCP", b"PROXY TCP4 1.2.3.4 5.6.7.8 0", b"PROXY UNKNOWN junk\r", &V2_SIGNATURE[..5]] {
        assert_eq!(parse(partial), Ok(Parsed::Incomplete), "{:?}", String::from_utf8_lossy(partial));
    }
    assert_eq!(parse(&[]), Ok(Parsed::Incomplete));
    // ...a bad one fails as soon as its first wrong byte arrives.
    assert_eq!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 00"), Err(ParseError::V1BadPort));
    assert_eq!(parse(b"PROXY TCP4 1x"), Err(ParseError::V1BadAddress));
    assert_eq!(parse(b"X"), Err(ParseError::NotProxy));
    // A v2 header declaring more than the bound fails on its length field, without waiting for the bytes.
    assert_eq!(parse(&[V2_SIGNATURE.to_vec(), hex("21 11 ffff")].concat()), Err(ParseError::TooLong));
}

#[test]
fn v2_unspec_unix_and_local_skip_their_block() {
    let sig = |rest: &str| [V2_SIGNATURE.to_vec(), hex(rest)].concat();
    // LOCAL with an address block and a TLV: skipped, whatever its family says.
    let local = sig("20 11 000f 01020304 05060708 0001 0002 04 0000 ff");
    assert_eq!(done(&local), (Header::Local, 31));
    assert_eq!(done(&sig("21 00 0003 ffffff")), (Header::Unknown, 19));
    let unix = [sig("21 31 00d8"), vec![b'/'; 216]].concat();
    assert_eq!(done(&unix), (Header::Unknown, 232));
    assert_eq!(done(&sig("21 12 000c 01020304 05060708 0035 0035")).0.client(), Some(sa("1.2.3.4:53")));
}

#[test]
fn v1_round_trips_and_maps_mixed_families_like_haproxy() {
    for (src, dst, line) in [
        ("10.0.0.1:4000", "10.0.0.2:443", "PROXY TCP4 10.0.0.1 10.0.0.2 4000 443\r\n"),
        ("[2001:db8::1]:1234", "[2001:db8::2]:443", "PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r\n"),
        ("10.0.0.1:0", "[2001:db8::2]:65535", "PROXY TCP6 ::ffff:10.0.0.1 2001:db8::2 0 65535\r\n"),
    ] {
        let bytes = encode_v1(sa(src), sa(dst));
        assert_eq!(String::from_utf8_lossy(&bytes), line);
        let (h, n) = done(&bytes);
        assert_eq!(n, bytes.len());
        assert_eq!(h.client(), Some(sa(src)), "the client address comes back unmapped");
    }
}

#[test]
fn v2_round_trips_with_tlvs_and_crc() {
    let cases = [
        (Transport::Stream, "192.0.2.1:1000", "192.0.2.2:443", all_tlvs(), true),
        (Transport::Stream, "[2001:db8::1]:1000", "[2001:db8::2]:443", all_tlvs(), false),
        (Transport::Datagram, "192.0.2.1:53", "192.0.2.2:53", Tlvs::default(), true),
        (Transport::Datagram, "[::1]:53", "192.0.2.2:53", Tlvs { alpn: Some(vec![]), ..Tlvs::default() }, false),
    ];
    for (transport, src, dst, tlvs, crc) in cases {
        let bytes = encode_v2(Command::Proxy, transport, sa(src), sa(dst), &tlvs, crc).unwrap();
        let (h, n) = done(&bytes);
        assert_eq!(n, bytes.len());
        let Header::Proxy(a) = h else { panic!("{h:?}") };
        assert_eq!((a.transport, a.tlvs.crc32c.is_some()), (transport, crc));
        assert_eq!(Tlvs { crc32c: None, ..a.tlvs }, tlvs);
        assert_eq!(Header::Proxy(Addresses { transport, src: a.src, dst: a.dst, tlvs: Tlvs::default() }).client(), Some(sa(src)));
        if crc {
            // Any change to a checksummed header is caught.
            for i in [13, 17, bytes.len() - 1] {
                let mut bad = bytes.clone();
                bad[i] ^= 0x01;
                assert!(parse(&bad).is_err(), "flip at {i}");
            }
            // Both checksummed cases are IPv4: the CRC32C TLV (written first) has its value at 16 + 12 + 3.
            assert_eq!(a.tlvs.crc32c, Some(crc32c(&[&bytes[..31], &[0; 4], &bytes[35..]].concat())));
        }
    }
    let local = encode_v2(Command::Local, Transport::Stream, sa("1.2.3.4:5"), sa("6.7.8.9:10"), &Tlvs::default(), false).unwrap();
    assert_eq!(done(&local), (Header::Local, 28));
}

#[test]
fn the_encoder_refuses_what_the_parser_would() {
    let (s, d) = (sa("1.2.3.4:5"), sa("6.7.8.9:10"));
    let long_id = Tlvs { unique_id: Some(vec![0; 129]), ..Tlvs::default() };
    assert_eq!(encode_v2(Command::Proxy, Transport::Stream, s, d, &long_id, false), Err(EncodeError::UniqueIdTooLong));
    // 12 address bytes + 3 + 4081 = 4096 fits; one more byte does not.
    let fits = Tlvs { other: vec![(0xE0, vec![0; 4081])], ..Tlvs::default() };
    let bytes = encode_v2(Command::Proxy, Transport::Stream, s, d, &fits, false).unwrap();
    assert_eq!(done(&bytes).1, 16 + MAX_V2_PAYLOAD);
    let over = Tlvs { other: vec![(0xE0, vec![0; 4082])], ..Tlvs::default() };
    assert_eq!(encode_v2(Command::Proxy, Transport::Stream, s, d, &over, false), Err(EncodeError::TooLong));
    let mut out = b"kept".to_vec();
    assert!(write_v2(&mut out, Command::Proxy, Transport::Stream, s, d, &over, false).is_err());
    assert_eq!(out, b"kept", "nothing is appended on error");
}

#[test]
fn a_header_split_at_every_byte_is_incomplete_until_its_last_byte() {
    let full6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let headers = [
        hex(HAPROXY_LOCAL),
        hex(HAPROXY_IPV4),
        encode_v1(sa("192.168.0.1:56324"), sa("192.168.0.11:443")),
        format!("PROXY UNKNOWN {full6} {full6} 65535 65535\r\n").into_bytes(),
        encode_v2(Command::Proxy, Transport::Stream, sa("[2001:db8::1]:1"), sa("[2001:db8::2]:2"), &all_tlvs(), true).unwrap(),
    ];
    for header in headers {
        let want = done(&header);
        assert_eq!(want.1, header.len());
        let stream = [header.clone(), b"\x16\x03\x01 then the client's bytes".to_vec()].concat();
        for cut in 0..stream.len() {
            let got = parse(&stream[..cut]);
            if cut < header.len() {
                assert_eq!(got, Ok(Parsed::Incomplete), "cut {cut} of {}", header.len());
            } else {
                assert_eq!(got, Ok(Parsed::Done { header: want.0.clone(), consumed: header.len() }), "cut {cut}");
            }
        }
    }
}
