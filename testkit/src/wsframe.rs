//! WebSocket frames as a client sends them (RFC 6455 §5.2), built by hand: for clients that
//! speak the protocol below a WebSocket library (the bench's storm joiners) and for tests
//! and fuzz seeds that need exact bytes.

/// One client frame: `fin`, `opcode`, the payload length in its shortest form, the 4-byte
/// `mask` and the payload masked with it.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    frame
}

#[cfg(test)]
mod tests {
    use super::client_frame;

    #[test]
    fn lengths_take_their_shortest_form_and_the_payload_is_masked() {
        let mask = [1, 2, 3, 4];
        let short = client_frame(true, 0x2, b"ab", mask);
        assert_eq!(short, vec![0x82, 0x82, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2]);
        let medium = client_frame(false, 0x2, &[0; 126], mask);
        assert_eq!(&medium[..4], &[0x02, 0x80 | 126, 0, 126]);
        let long = client_frame(true, 0x2, &[0; 65536], mask);
        assert_eq!(&long[..10], &[0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(long.len(), 2 + 8 + 4 + 65536);
    }
}
