//! Quantities written with units: durations (`5ms`, `1.5s`), bandwidths (`100Mbps`) and sizes
//! (`256Mi`). Each parser returns a human-readable error that says what is accepted, and never
//! panics on any input.

/// The spellings [`parse_duration_ms`] accepts, for error messages.
pub const DURATION_FORMS: &str =
    "a number of milliseconds or a duration such as `250us`, `5ms`, `1.5s`, `2m`, `1h`";

/// The spellings [`parse_bandwidth_mbps`] accepts, for error messages.
pub const BANDWIDTH_FORMS: &str =
    "a number of Mbit/s or a bandwidth in bits per second such as `500Kbps`, `100Mbps`, `1Gbps`";

/// The spellings [`parse_bytes`] accepts, for error messages.
pub const SIZE_FORMS: &str = "a number of bytes or a size such as `512Ki`, `256Mi`, `1Gi` \
     (binary) or `500k`, `100M`, `2G` (decimal)";

/// A plain run of digits (with optional `_` separators) read exactly, without float rounding.
fn exact_integer(text: &str) -> Option<u64> {
    let text = text.trim();
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
        .then(|| text.replace('_', "").parse().ok())
        .flatten()
}

/// Splits `"1.5s"` into `(1.5, "s")`. The number must be finite and non-negative.
fn split_quantity(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let unit_start = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_start);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return None;
    }
    let value: f64 = number.replace('_', "").parse().ok()?;
    value.is_finite().then_some((value, unit.trim()))
}

/// Parses a duration into milliseconds: a bare number is milliseconds; units are `ns`, `us`
/// (or `µs`), `ms`, `s`, `m`, `h`. Fractions are allowed (`1.5s` is 1500).
pub fn parse_duration_ms(text: &str) -> Result<f64, String> {
    let bad = || format!("`{text}` is not a duration; expected {DURATION_FORMS}");
    let (value, unit) = split_quantity(text).ok_or_else(bad)?;
    let factor = match unit {
        "" | "ms" => 1.0,
        "ns" => 1e-6,
        "us" | "µs" => 1e-3,
        "s" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        _ => return Err(bad()),
    };
    Ok(value * factor)
}

/// Parses a duration into whole seconds: a bare number is seconds; a unit (`30s`, `2m`, `1h`,
/// `1500ms`) is converted and must come to a whole number of seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    if let Some(exact) = exact_integer(text) {
        return Ok(exact);
    }
    let (value, unit) = split_quantity(text).ok_or_else(|| {
        format!("`{text}` is not a duration; expected a number of seconds or `30s`, `2m`, `1h`")
    })?;
    let secs = if unit.is_empty() {
        value
    } else {
        parse_duration_ms(text)? / 1000.0
    };
    whole(secs).ok_or_else(|| format!("`{text}` is not a whole number of seconds"))
}

/// Parses a bandwidth into Mbit/s: a bare number is Mbit/s; units are `bps`, `Kbps`, `Mbps`,
/// `Gbps`, `Tbps` (the prefix in any case, `bps` in lower case: `MBps` would be bytes and is
/// refused rather than silently misread).
pub fn parse_bandwidth_mbps(text: &str) -> Result<f64, String> {
    let bad = || format!("`{text}` is not a bandwidth; expected {BANDWIDTH_FORMS}");
    let (value, unit) = split_quantity(text).ok_or_else(bad)?;
    if unit.is_empty() {
        return Ok(value);
    }
    let prefix = unit
        .strip_suffix("bps")
        .or_else(|| unit.strip_suffix("bit/s"))
        .ok_or_else(bad)?;
    let factor = match prefix.to_ascii_lowercase().as_str() {
        "" => 1e-6,
        "k" => 1e-3,
        "m" => 1.0,
        "g" => 1e3,
        "t" => 1e6,
        _ => return Err(bad()),
    };
    Ok(value * factor)
}

/// Parses a size into bytes: a bare number is bytes; binary units `Ki`, `Mi`, `Gi`, `Ti` (also
/// `KiB`...) and decimal units `k`/`K`, `M`, `G`, `T` (also `kB`, `MB`...), `B` for bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    if let Some(exact) = exact_integer(text) {
        return Ok(exact);
    }
    let bad = || format!("`{text}` is not a size; expected {SIZE_FORMS}");
    let (value, unit) = split_quantity(text).ok_or_else(bad)?;
    let unit = unit.strip_suffix('B').unwrap_or(unit);
    let factor: f64 = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    whole(value * factor).ok_or_else(|| format!("`{text}` is not a whole number of bytes"))
}

/// Parses CPU as millicores: a bare number and `500m` are millicores (whole), `0.5cpu` and
/// `2cores` are cores.
pub fn parse_millicores(text: &str) -> Result<u64, String> {
    if let Some(exact) = exact_integer(text.trim().strip_suffix('m').unwrap_or(text)) {
        return Ok(exact);
    }
    let bad = || {
        format!(
            "`{text}` is not a CPU amount; expected a number of millicores, `500m`, or cores as `0.5cpu`"
        )
    };
    let (value, unit) = split_quantity(text).ok_or_else(bad)?;
    let millis = match unit {
        "" | "m" => value,
        "cpu" | "cpus" | "core" | "cores" => value * 1000.0,
        _ => return Err(bad()),
    };
    whole(millis).ok_or_else(|| format!("`{text}` is not a whole number of millicores"))
}

/// `Some(v as u64)` when `v` is a whole number that fits.
fn whole(v: f64) -> Option<u64> {
    (v.fract() == 0.0 && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration_ms("5ms"), Ok(5.0));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1500.0));
        assert_eq!(parse_duration_ms("250us"), Ok(0.25));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000.0));
        assert_eq!(parse_duration_ms("12"), Ok(12.0));
        assert_eq!(parse_duration_ms(" 3 ms "), Ok(3.0));
        for bad in ["", "ms", "5 parsecs", "-5ms", "1e3ms", ".", "5ms5"] {
            let err = parse_duration_ms(bad).unwrap_err();
            assert!(
                err.contains("expected a number of milliseconds"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn seconds_must_be_whole() {
        assert_eq!(parse_duration_secs("30"), Ok(30));
        assert_eq!(parse_duration_secs("2m"), Ok(120));
        assert_eq!(
            parse_duration_secs("1500ms").unwrap_err(),
            "`1500ms` is not a whole number of seconds"
        );
        assert!(parse_duration_secs("soon").is_err());
    }

    #[test]
    fn bandwidths_in_bits_per_second() {
        assert_eq!(parse_bandwidth_mbps("100Mbps"), Ok(100.0));
        assert_eq!(parse_bandwidth_mbps("1Gbps"), Ok(1000.0));
        assert_eq!(parse_bandwidth_mbps("500Kbps"), Ok(0.5));
        assert_eq!(parse_bandwidth_mbps("100mbps"), Ok(100.0));
        assert_eq!(parse_bandwidth_mbps("250"), Ok(250.0));
        let err = parse_bandwidth_mbps("100MBps").unwrap_err();
        assert!(err.contains("bits per second"), "{err}");
    }

    #[test]
    fn sizes_binary_and_decimal() {
        assert_eq!(parse_bytes("16Mi"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("100M"), Ok(100_000_000));
        assert_eq!(parse_bytes("1.5Ki"), Ok(1536));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_bytes("18446744073709551616").is_err());
        assert!(parse_bytes("1.5").unwrap_err().contains("whole number"));
        assert!(parse_bytes("12 apples").unwrap_err().contains("256Mi"));
    }

    #[test]
    fn cpu_amounts() {
        assert_eq!(parse_millicores("500m"), Ok(500));
        assert_eq!(parse_millicores("0.5cpu"), Ok(500));
        assert_eq!(parse_millicores("250"), Ok(250));
        assert!(parse_millicores("fast").is_err());
    }
}
