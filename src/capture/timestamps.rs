//! Timestamp arithmetic for pcap records and pcapng interfaces. Pure, total functions.

use crate::time::Timestamp;

/// Default pcapng resolution (no `if_tsresol` option): microseconds.
pub(super) const MICROS_PER_SEC: u64 = 1_000_000;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Units per second for an `if_tsresol` value: `10^v`, or `2^(v & 0x7f)` when the high bit is
/// set. `None` when the unit does not fit in 64 bits (a malformed option).
pub(super) fn units_per_sec(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp)
    }
}

/// A pcapng timestamp: `raw` units of `1/units_per_sec` seconds since the epoch, plus
/// `offset_secs` (`if_tsoffset`). Saturates instead of overflowing.
#[inline]
pub(super) fn from_units(raw: u64, units_per_sec: u64, offset_secs: i64) -> Timestamp {
    let units = units_per_sec.max(1);
    // The fraction (below `units`) in nanoseconds is below 1e9 and fits in u32. The common
    // resolutions divide by constants; below 2^64 / 1e9 units the product fits in a u64 (no
    // 128-bit division).
    let (secs, nanos) = match units {
        MICROS_PER_SEC => (raw / MICROS_PER_SEC, raw % MICROS_PER_SEC * 1000),
        NANOS_PER_SEC => (raw / NANOS_PER_SEC, raw % NANOS_PER_SEC),
        u if u <= u64::MAX / NANOS_PER_SEC => (raw / u, raw % u * NANOS_PER_SEC / u),
        u => (
            raw / u,
            (u128::from(raw % u) * u128::from(NANOS_PER_SEC) / u128::from(u)) as u64,
        ),
    };
    let nanos = u32::try_from(nanos).unwrap_or(0);
    let secs = i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_add(offset_secs);
    Timestamp::new(secs, nanos)
}

/// A legacy pcap record timestamp: seconds and a fraction in micro- or nanoseconds. A fraction
/// of a second or more (seen in broken writers) carries into the seconds.
#[inline]
pub(super) fn from_pcap(secs: u32, frac: u32, nanos: bool) -> Timestamp {
    if !nanos && frac < 1_000_000 {
        // The common case: microseconds within the second, no carry.
        return Timestamp {
            secs: i64::from(secs),
            nanos: frac * 1000,
        };
    }
    let frac_nanos = if nanos {
        u64::from(frac)
    } else {
        u64::from(frac) * 1000
    };
    let carry = frac_nanos / NANOS_PER_SEC;
    let within = u32::try_from(frac_nanos % NANOS_PER_SEC).unwrap_or(0);
    // carry <= 4_294_967, so it always fits in i64.
    let carry = i64::try_from(carry).unwrap_or(0);
    Timestamp::new(i64::from(secs) + carry, within)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    #[rstest]
    #[case(6, Some(1_000_000))]
    #[case(9, Some(1_000_000_000))]
    #[case(0, Some(1))]
    #[case(19, Some(10_000_000_000_000_000_000))]
    #[case(20, None)]
    #[case(0x80 | 10, Some(1024))]
    #[case(0x80 | 63, Some(1 << 63))]
    #[case(0x80 | 64, None)]
    #[case(0xff, None)]
    fn resolution(#[case] v: u8, #[case] want: Option<u64>) {
        assert_eq!(units_per_sec(v), want);
    }

    #[test]
    fn pcapng_units() {
        // 2012-06-29 07:28:25.298858 UTC in microseconds (the pcapng draft's ISB example).
        let raw = (0x0004_c397u64 << 32) | 0x64ca_47aa;
        assert_eq!(
            from_units(raw, MICROS_PER_SEC, 0),
            Timestamp::new(1_340_954_905, 298_858_000)
        );
        // Binary fractions: 1.5 s in 1/1024 units, plus a 100 s offset.
        assert_eq!(
            from_units(1536, 1024, 100),
            Timestamp::new(101, 500_000_000)
        );
        // Negative offset.
        assert_eq!(from_units(5_000, 1000, -10), Timestamp::new(-5, 0));
        // Extremes do not overflow.
        let t = from_units(u64::MAX, 1, i64::MAX);
        assert_eq!(t.secs, i64::MAX);
    }

    #[test]
    fn pcap_fractions() {
        assert_eq!(
            from_pcap(10, 250_000, false),
            Timestamp::new(10, 250_000_000)
        );
        assert_eq!(from_pcap(10, 250_000, true), Timestamp::new(10, 250_000));
        // Out-of-range microseconds carry.
        assert_eq!(
            from_pcap(10, 2_500_000, false),
            Timestamp::new(12, 500_000_000)
        );
        assert_eq!(
            from_pcap(u32::MAX, u32::MAX, false).secs,
            i64::from(u32::MAX) + 4294
        );
    }

    proptest! {
        /// The microsecond shortcut gives what the general arithmetic gives.
        #[test]
        fn pcap_shortcut_is_the_general_rule(
            secs in any::<u32>(),
            frac in prop_oneof![0..1_000_000u32, any::<u32>()],
            nanos in any::<bool>(),
        ) {
            let f = if nanos { u64::from(frac) } else { u64::from(frac) * 1000 };
            let carry = i64::try_from(f / NANOS_PER_SEC).unwrap();
            let within = u32::try_from(f % NANOS_PER_SEC).unwrap();
            prop_assert_eq!(
                from_pcap(secs, frac, nanos),
                Timestamp::new(i64::from(secs) + carry, within)
            );
        }

        #[test]
        fn units_never_panic(raw in any::<u64>(), res in any::<u8>(), off in any::<i64>()) {
            let units = units_per_sec(res).unwrap_or(MICROS_PER_SEC);
            let t = from_units(raw, units, off);
            prop_assert!(t.nanos < 1_000_000_000);
        }
    }
}
