//! Capture timestamps: the only clock the pipeline reads.

use serde::{Serialize, Serializer};
use std::fmt;

/// A point in capture time: seconds and nanoseconds since the Unix epoch.
///
/// Ordered, copyable, and printed as RFC 3339 UTC with microseconds (or nanoseconds when the
/// capture has sub-microsecond precision), so that the same input always prints the same text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second (0..1_000_000_000).
    pub nanos: u32,
}

impl Timestamp {
    /// Builds a timestamp, folding nanoseconds of a second or more into the seconds.
    pub fn new(secs: i64, nanos: u32) -> Self {
        let extra = i64::from(nanos / 1_000_000_000);
        Timestamp {
            secs: secs.saturating_add(extra),
            nanos: nanos % 1_000_000_000,
        }
    }

    /// Builds a timestamp from microseconds since the epoch.
    pub fn from_micros(us: i64) -> Self {
        Timestamp {
            secs: us.div_euclid(1_000_000),
            // rem_euclid is in 0..1_000_000, so the product fits in u32.
            nanos: (us.rem_euclid(1_000_000) as u32) * 1000,
        }
    }

    /// Nanoseconds since the epoch (saturating).
    pub fn as_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// Microseconds since the epoch (saturating, truncating).
    pub fn as_micros(&self) -> i64 {
        self.secs
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(self.nanos / 1000))
    }

    /// Microseconds elapsed from `earlier` to `self`, or 0 if `earlier` is later.
    pub fn micros_since(&self, earlier: Timestamp) -> u64 {
        let d = self.as_nanos() - earlier.as_nanos();
        if d <= 0 {
            0
        } else {
            u64::try_from(d / 1000).unwrap_or(u64::MAX)
        }
    }

    /// This timestamp plus `secs` seconds.
    pub fn plus_secs(&self, secs: u64) -> Timestamp {
        Timestamp {
            secs: self
                .secs
                .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
            nanos: self.nanos,
        }
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm, public domain.
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.")?;
        if self.nanos % 1000 == 0 {
            write!(f, "{:06}Z", self.nanos / 1000)
        } else {
            write!(f, "{:09}Z", self.nanos)
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(
            Timestamp::new(0, 0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::new(1_445_508_000, 123_456_000).to_string(),
            "2015-10-22T10:00:00.123456Z"
        );
        assert_eq!(
            Timestamp::new(951_782_400, 1).to_string(),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            Timestamp::new(-1, 0).to_string(),
            "1969-12-31T23:59:59.000000Z"
        );
    }

    #[test]
    fn arithmetic() {
        let a = Timestamp::new(10, 500_000_000);
        let b = Timestamp::new(12, 0);
        assert_eq!(b.micros_since(a), 1_500_000);
        assert_eq!(a.micros_since(b), 0);
        assert_eq!(Timestamp::new(1, 2_000_000_001), Timestamp::new(3, 1));
        assert_eq!(Timestamp::from_micros(-1), Timestamp::new(-1, 999_999_000));
    }
}
