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
    use std::fmt::Write as _;
    const TAIL: &str = " reads). A process value far outside its normal range means the \
                        process is upset, the sensor failed, or the value is being falsified.";
    let mut s = String::with_capacity(obj.len() + dev.len() + range.len() + TAIL.len() + 96);
    s.push_str(obj);
    s.push_str(" on ");
    s.push_str(dev);
    s.push_str(" read ");
    s.push_str(&fmt_num(x));
    s.push_str(" (by ");
    push_ip(&mut s, by);
    s.push_str("); in the baseline it read ");
    s.push_str(range);
    s.push_str(" (");
    // Writing to a String cannot fail.
    let _ = write!(s, "{count}");
    s.push_str(TAIL);
    s
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
mod tests {
    use super::*;

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
