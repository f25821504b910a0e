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

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // The inverse of `civil_from_days` (same algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Timestamp {
    /// Parses the UTC form that `Display` writes (`2026-12-02T16:05:07.123456Z`, fraction
    /// optional, 1 to 9 digits); `None` for anything else.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = b.get(r)?;
            if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
                return None;
            }
            t.iter().try_fold(0i64, |a, c| {
                a.checked_mul(10)?.checked_add(i64::from(c - b'0'))
            })
        };
        let sep = |i: usize, c: u8| b.get(i) == Some(&c);
        if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
            return None;
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let rest = b.get(19..)?;
        let nanos = match rest {
            [b'Z'] => 0,
            [b'.', frac @ .., b'Z'] if (1..=9).contains(&frac.len()) => {
                let v = num(20..20 + frac.len())?;
                let scale = 10i64.pow(9 - frac.len() as u32);
                u32::try_from(v * scale).ok()?
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        Some(Timestamp::new(
            days * 86_400 + h * 3600 + mi * 60 + sec,
            nanos,
        ))
    }
}

/// Longest text [`Timestamp::rfc3339_bytes`] writes: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const RFC3339_MAX: usize = 30;

/// Writes `v` (below 10^`N`) as `N` decimal digits into `out` from `at`.
#[inline]
fn put_digits<const N: usize>(out: &mut [u8; RFC3339_MAX], at: usize, mut v: u32) {
    let mut i = N;
    while i > 0 {
        i -= 1;
        if let Some(b) = out.get_mut(at + i) {
            *b = b'0' + (v % 10) as u8;
        }
        v /= 10;
    }
}

impl Timestamp {
    /// The text `Display` writes, built by hand into a fixed buffer (returned with its length)
    /// for years 0 to 9999; `None` for other years (and for nanoseconds of a second or more,
    /// which only a hand-built value can hold), which `Display` writes with `write!`.
    fn rfc3339_bytes(&self) -> Option<([u8; RFC3339_MAX], usize)> {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400) as u32;
        let (y, mo, d) = civil_from_days(days);
        let y = u32::try_from(y).ok().filter(|y| *y <= 9999)?;
        if self.nanos >= 1_000_000_000 {
            return None;
        }
        let mut out = *b"0000-00-00T00:00:00.000000000Z";
        put_digits::<4>(&mut out, 0, y);
        put_digits::<2>(&mut out, 5, mo);
        put_digits::<2>(&mut out, 8, d);
        put_digits::<2>(&mut out, 11, sod / 3600);
        put_digits::<2>(&mut out, 14, (sod % 3600) / 60);
        put_digits::<2>(&mut out, 17, sod % 60);
        let len = if self.nanos % 1000 == 0 {
            put_digits::<6>(&mut out, 20, self.nanos / 1000);
            if let Some(b) = out.get_mut(26) {
                *b = b'Z';
            }
            27
        } else {
            put_digits::<9>(&mut out, 20, self.nanos);
            RFC3339_MAX
        };
        Some((out, len))
    }

    /// Appends the text `Display` writes to `s` (without the formatting machinery).
    pub fn push_rfc3339(&self, s: &mut String) {
        match self.rfc3339_bytes() {
            Some((b, n)) => s.push_str(ascii(&b, n)),
            None => {
                use std::fmt::Write as _;
                let _ = write!(s, "{self}");
            }
        }
    }

    /// The slow, `write!`-based form of `Display` (the reference the fast one is tested
    /// against, and the form for years outside 0 to 9999).
    fn fmt_slow(&self, f: &mut dyn fmt::Write) -> fmt::Result {
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

/// The first `n` bytes of `b`, which [`Timestamp::rfc3339_bytes`] filled with ASCII only.
#[inline]
fn ascii(b: &[u8; RFC3339_MAX], n: usize) -> &str {
    std::str::from_utf8(b.get(..n).unwrap_or(b)).unwrap_or("")
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339_bytes() {
            Some((b, n)) => f.write_str(ascii(&b, n)),
            None => self.fmt_slow(f),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339_bytes() {
            Some((b, n)) => s.serialize_str(ascii(&b, n)),
            None => s.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_rejects_junk() {
        for t in [
            Timestamp::new(0, 0),
            Timestamp::new(1_700_000_000, 123_456_000),
            Timestamp::new(951_782_400, 1),
            Timestamp::new(-86_400, 5_000),
            Timestamp::new(4_102_444_799, 999_999_999),
        ] {
            assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t), "{t}");
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-12-02T16:05:07Z"),
            Some(Timestamp::new(1_796_227_507, 0)) // date -u -d 2026-12-02T16:05:07Z +%s
        );
        for bad in [
            "",
            "2026-12-02",
            "2026-13-02T00:00:00Z",
            "2026-12-02T00:00:00",
            "2026-12-02T00:00:00.Z",
            "2026-12-02T00:00:00.1234567890Z",
            "2026-12-02T24:00:00Z",
            "x026-12-02T00:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

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

    /// The slow form's text.
    fn slow(t: &Timestamp) -> String {
        let mut s = String::new();
        t.fmt_slow(&mut s).unwrap();
        s
    }

    #[test]
    fn fast_format_matches_slow_one() {
        let mut secs: Vec<i64> = vec![
            0,
            -1,
            1,
            86_399,
            86_400,
            -86_400,
            -86_401,
            951_782_400,     // 2000-02-29
            951_868_799,     // 2000-02-29T23:59:59
            951_868_800,     // 2000-03-01
            4_107_542_400,   // 2100-03-01 (2100 is not a leap year)
            1_704_067_199,   // 2023-12-31T23:59:59
            1_704_067_200,   // 2024-01-01
            1_709_164_800,   // 2024-02-29
            253_402_300_799, // 9999-12-31T23:59:59, last fast year
            253_402_300_800, // 10000-01-01: slow form
            -62_167_219_200, // 0000-01-01: first fast year
            -62_167_219_201, // -0001-12-31: slow form
            i64::MAX / 1000,
            i64::MIN / 1000,
        ];
        // Every day boundary of a few leap cycles around 1970 and 2000, and a walk of odd steps.
        secs.extend((-800..800).map(|d| d * 86_400 + 946_684_800));
        secs.extend((-800..800).map(|d| d * 86_400 - 1));
        let mut x: i64 = -70_000_000_000;
        while x < 260_000_000_000 {
            secs.push(x);
            x += 9_876_543_211;
        }
        let mut x: i64 = 1_600_000_000;
        for _ in 0..20_000 {
            secs.push(x);
            x += 4_321;
        }
        let nanos = [
            0,
            1,
            999,
            1_000,
            123_456_000,
            123_456_789,
            999_999_000,
            999_999_999,
            500_000_000,
            7_000,
            1_000_000_000, // only a hand-built value: slow form
            4_294_967_295,
        ];
        for &s in &secs {
            for &n in &nanos {
                let t = Timestamp { secs: s, nanos: n };
                let want = slow(&t);
                assert_eq!(t.to_string(), want, "{s} {n}");
                let mut p = String::from("x");
                t.push_rfc3339(&mut p);
                assert_eq!(p, format!("x{want}"));
                assert_eq!(
                    serde_json::to_string(&t).unwrap(),
                    serde_json::to_string(&want).unwrap()
                );
            }
        }
        assert!(Timestamp::new(253_402_300_800, 0).rfc3339_bytes().is_none());
        assert!(Timestamp::new(-62_167_219_201, 0).rfc3339_bytes().is_none());
        assert!(Timestamp::new(-62_167_219_200, 0).rfc3339_bytes().is_some());
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
