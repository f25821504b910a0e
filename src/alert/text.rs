//! Alert words put together with `push_str` into one buffer sized up front instead of
//! `format!` (its machinery and the buffer's regrowth cost thousands of instructions per alert
//! in an alert flood); each is tested against the `format!` it replaces.

use super::push_ip;
use crate::baseline::fmt_num;
use std::net::IpAddr;

/// `channels[<client>><server> <proto>].objects[<key>].<side>`: where an object's profile is in
/// the baseline file.
#[cold]
pub fn object_ref(client: IpAddr, server: IpAddr, proto: &str, key: &str, side: &str) -> String {
    let mut s = String::with_capacity(64 + key.len());
    s.push_str("channels[");
    push_ip(&mut s, client);
    s.push('>');
    push_ip(&mut s, server);
    s.push(' ');
    s.push_str(proto);
    s.push_str("].objects[");
    s.push_str(key);
    s.push_str("].");
    s.push_str(side);
    s
}

/// The baseline fact of a read-out-of-range alert: `<obj> on <dev> read <range>`.
#[cold]
pub fn read_fact(obj: &str, dev: &str, range: &str) -> String {
    let mut s = String::with_capacity(obj.len() + dev.len() + range.len() + 10);
    s.push_str(obj);
    s.push_str(" on ");
    s.push_str(dev);
    s.push_str(" read ");
    s.push_str(range);
    s
}

/// The explanation of a read-out-of-range alert (as the `read_explanation_fmt` of its tests writes it, in
/// one buffer sized up front: this runs for every alert of a flood).
#[cold]
pub fn read_explanation(
    obj: &str,
    dev: &str,
    x: f64,
    by: IpAddr,
    range: &str,
    count: u64,
) -> String {
    const TAIL: &str = " reads). A process value far outside its normal range means the \
                        process is upset, the sensor failed, or the value is being falsified.";
    let mut s = String::with_capacity(obj.len() + dev.len() + range.len() + TAIL.len() + 96);
    s.push_str(obj);
    s.push_str(" on ");
    s.push_str(dev);
    s.push_str(" read ");
    push_num(&mut s, x);
    s.push_str(" (by ");
    push_ip(&mut s, by);
    s.push_str("); in the baseline it read ");
    s.push_str(range);
    s.push_str(" (");
    super::push_u64(&mut s, count);
    s.push_str(TAIL);
    s
}

/// Appends what [`fmt_num`] returns for `x`: a whole number below 10^15 as an integer written
/// in place, anything else through `fmt_num`.
pub fn push_num(s: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        super::push_i64(s, x as i64);
    } else {
        s.push_str(&fmt_num(x));
    }
}

/// The `format!` form of [`read_explanation`] (its reference in tests).
#[cfg(test)]
pub fn read_explanation_fmt(
    obj: &str,
    dev: &str,
    x: f64,
    by: IpAddr,
    range: &str,
    count: u64,
) -> String {
    format!(
        "{obj} on {dev} read {} (by {}); in the baseline it read {range} ({} reads). A \
         process value far outside its normal range means the process is upset, the \
         sensor failed, or the value is being falsified.",
        fmt_num(x),
        by,
        count
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn push_num_is_fmt_num() {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.25,
            1e15,
            -1e15,
            1e15 - 1.0,
            999_999_999_999_999.0,
            1e16,
            123.456_789,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            9999.0,
        ];
        for i in -40..40 {
            xs.push(f64::from(i) * 37.5);
            xs.push(2f64.powi(i));
        }
        for x in xs {
            let mut s = String::from("x");
            push_num(&mut s, x);
            assert_eq!(s, format!("x{}", fmt_num(x)), "{x}");
        }
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        for (x, n) in [(9999.0, 0u64), (-3.5, 12), (1e20, u64::MAX)] {
            assert_eq!(
                read_explanation("o", "d", x, ip, "1–2", n),
                read_explanation_fmt("o", "d", x, ip, "1–2", n)
            );
        }
    }

    #[test]
    fn read_fact_is_the_format() {
        for (o, d, r) in [
            ("", "", ""),
            ("input register 3", "10.0.0.2 unit 1", "always 7"),
        ] {
            assert_eq!(read_fact(o, d, r), format!("{o} on {d} read {r}"));
        }
    }
}
