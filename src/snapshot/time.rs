//! Times in the snapshot: RFC 3339 with milliseconds and an explicit `+00:00`
//! offset, which Python's `datetime.fromisoformat` (the original monitor's
//! client) reads on every version, as do JavaScript's `Date` and jiff.

use jiff::Timestamp;

pub fn format(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

pub mod ts {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("invalid time '{s}': {e}")))
    }
}

pub mod opt_ts {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            s.parse()
                .map_err(|e| serde::de::Error::custom(format!("invalid time '{s}': {e}")))
        })
        .transpose()
    }
}
