//! Room ids: 128 random bits, written as 32 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id of a room. It is unguessable (128 random bits) but it is not a secret on its own:
/// joining also needs a signed token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId([u8; 16]);

/// Why a string is not a room id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid room id: expected 32 lowercase hex digits")]
pub struct InvalidRoomId;

impl RoomId {
    /// A fresh random room id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        RoomId(bytes)
    }
}

impl FromStr for RoomId {
    type Err = InvalidRoomId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.len() != 32 {
            return Err(InvalidRoomId);
        }
        let mut bytes = [0u8; 16];
        for (i, pair) in s.chunks(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(InvalidRoomId)?;
            let lo = hex_value(pair[1]).ok_or(InvalidRoomId)?;
            bytes[i] = hi << 4 | lo;
        }
        Ok(RoomId(bytes))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({self})")
    }
}

impl Serialize for RoomId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_ids() {
        let id = RoomId::random();
        assert_eq!(id.to_string().parse::<RoomId>(), Ok(id));
        for bad in [
            "",
            "abc",
            "../etc/passwd",
            &"A".repeat(32),
            &"g".repeat(32),
            &"0".repeat(33),
        ] {
            assert_eq!(bad.parse::<RoomId>(), Err(InvalidRoomId), "{bad}");
        }
    }
}
