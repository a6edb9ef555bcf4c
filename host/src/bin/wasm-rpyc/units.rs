//! Values of flags and config keys that have a range, checked as they are
//! read: clap parses them from the command line and serde from the config
//! file, with the same rule and the same message.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// A number of seconds above zero.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub(crate) struct PositiveSeconds(f64);

/// A number of seconds, zero or more.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub(crate) struct Seconds(f64);

/// The largest frame, in MiB: from 1 to [`MAX_FRAME_MIB`].
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "u64")]
pub(crate) struct FrameMib(usize);

/// The most seconds a flag or key may give (a year): far past any sane
/// budget, deadline or grace, and small enough that a time that far ahead
/// is always representable.
pub(crate) const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// The largest frame limit: frame lengths are 32-bit on the wire.
pub(crate) const MAX_FRAME_MIB: usize = 4095;

impl PositiveSeconds {
    /// `duration`, which must be above zero.
    pub(crate) fn of(duration: Duration) -> Self {
        PositiveSeconds(duration.as_secs_f64())
    }

    pub(crate) fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

impl Seconds {
    pub(crate) fn of(duration: Duration) -> Self {
        Seconds(duration.as_secs_f64())
    }

    pub(crate) fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

impl FrameMib {
    pub(crate) const fn of_bytes(bytes: usize) -> Self {
        FrameMib(bytes >> 20)
    }

    pub(crate) fn bytes(self) -> usize {
        self.0 << 20
    }
}

impl TryFrom<f64> for PositiveSeconds {
    type Error = String;

    fn try_from(seconds: f64) -> Result<Self, String> {
        if seconds > 0.0 && seconds <= MAX_SECONDS {
            Ok(PositiveSeconds(seconds))
        } else {
            Err(format!(
                "{seconds} is not a positive number of seconds up to {MAX_SECONDS} (a year)"
            ))
        }
    }
}

impl TryFrom<f64> for Seconds {
    type Error = String;

    fn try_from(seconds: f64) -> Result<Self, String> {
        if (0.0..=MAX_SECONDS).contains(&seconds) {
            Ok(Seconds(seconds))
        } else {
            Err(format!(
                "{seconds} is not a number of seconds from 0 to {MAX_SECONDS} (a year)"
            ))
        }
    }
}

impl TryFrom<u64> for FrameMib {
    type Error = String;

    fn try_from(mib: u64) -> Result<Self, String> {
        match usize::try_from(mib) {
            Ok(mib @ 1..=MAX_FRAME_MIB) => Ok(FrameMib(mib)),
            _ => Err(format!("{mib} MiB is not from 1 to {MAX_FRAME_MIB} MiB")),
        }
    }
}

/// Parses a number, then checks its range.
fn parse<N: FromStr, T: TryFrom<N, Error = String>>(text: &str) -> Result<T, String> {
    let number = text
        .parse::<N>()
        .map_err(|_| format!("{text:?} is not a number"))?;
    T::try_from(number)
}

impl FromStr for PositiveSeconds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse::<f64, _>(text)
    }
}

impl FromStr for Seconds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse::<f64, _>(text)
    }
}

impl FromStr for FrameMib {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse::<u64, _>(text)
    }
}

impl fmt::Display for PositiveSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for FrameMib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_from_text() {
        assert_eq!(
            "1.5".parse::<PositiveSeconds>().unwrap().duration(),
            Duration::from_millis(1500)
        );
        assert!("0".parse::<PositiveSeconds>().is_err());
        assert!("nan".parse::<PositiveSeconds>().is_err());
        assert_eq!("0".parse::<Seconds>().unwrap().duration(), Duration::ZERO);
        assert!("-1".parse::<Seconds>().is_err());
        for past in ["1e300", "inf", "31622401"] {
            let error = past.parse::<PositiveSeconds>().unwrap_err();
            assert!(error.contains("up to 31622400 (a year)"), "{error}");
            let error = past.parse::<Seconds>().unwrap_err();
            assert!(error.contains("from 0 to 31622400 (a year)"), "{error}");
        }
        assert_eq!(
            "31622400".parse::<Seconds>().unwrap().duration(),
            Duration::from_secs(31_622_400)
        );
        assert_eq!("16".parse::<FrameMib>().unwrap().bytes(), 16 << 20);
        assert!("0".parse::<FrameMib>().is_err());
        assert!(
            "4096"
                .parse::<FrameMib>()
                .unwrap_err()
                .contains("from 1 to 4095")
        );
        assert!(
            "x".parse::<FrameMib>()
                .unwrap_err()
                .contains("not a number")
        );
    }
}
