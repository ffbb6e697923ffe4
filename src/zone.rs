//! Time zones without scanning the system's zone database: jiff indexes all
//! of `/usr/share/zoneinfo` the first time a zone is looked up by name, which
//! costs a short-lived command (status line, hooks, reports) more than the
//! rest of its work. A named zone is one file: read it directly, and fall
//! back to jiff for anything unusual.

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;

/// Where zone files live, as jiff and glibc look for them.
fn zoneinfo_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("TZDIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    dirs.extend(
        [
            "/usr/share/zoneinfo",
            "/usr/share/lib/zoneinfo",
            "/etc/zoneinfo",
        ]
        .map(PathBuf::from),
    );
    dirs
}

/// A zone by IANA name (`Europe/Warsaw`, `UTC`).
pub fn by_name(name: &str) -> Result<TimeZone, jiff::Error> {
    if name == "UTC" || name == "Etc/UTC" {
        return Ok(TimeZone::UTC);
    }
    if is_plain_name(name)
        && let Some(zone) = zoneinfo_dirs()
            .iter()
            .find_map(|d| from_file(name, &d.join(name)))
    {
        return Ok(zone);
    }
    TimeZone::get(name)
}

/// The system's zone: `TZ`, else `/etc/localtime`.
pub fn system() -> TimeZone {
    let quick = match std::env::var("TZ") {
        Ok(tz) if !tz.is_empty() => {
            let name = tz.strip_prefix(':').unwrap_or(&tz);
            if Path::new(name).is_absolute() {
                from_file(name, Path::new(name))
            } else {
                by_name(name).ok()
            }
        }
        Ok(_) => None,
        Err(_) => local_time(),
    };
    quick.unwrap_or_else(TimeZone::system)
}

/// `/etc/localtime`, named after the zone file it links to.
fn local_time() -> Option<TimeZone> {
    let path = Path::new("/etc/localtime");
    let target = std::fs::read_link(path).ok()?;
    let name = zoneinfo_dirs().iter().find_map(|d| {
        let rel = target.strip_prefix(d).ok()?;
        rel.to_str().map(str::to_string)
    })?;
    by_name(&name).ok()
}

fn from_file(name: &str, path: &Path) -> Option<TimeZone> {
    let bytes = std::fs::read(path).ok()?;
    TimeZone::tzif(name, &bytes).ok()
}

/// A name that can only mean a file below the zone directories.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_zones_match_jiffs_database() {
        let at: jiff::Timestamp = "2026-03-29T01:30:00Z".parse().unwrap();
        for name in ["Europe/Warsaw", "America/New_York", "Asia/Kolkata", "UTC"] {
            let Ok(want) = TimeZone::get(name) else {
                continue; // no zone database on this machine
            };
            let got = by_name(name).unwrap();
            assert_eq!(got.iana_name(), want.iana_name(), "{name}");
            assert_eq!(got.to_offset(at), want.to_offset(at), "{name}");
        }
    }

    #[test]
    fn names_that_could_leave_the_zone_directory_go_to_jiff() {
        for bad in [
            "../etc/passwd",
            "/etc/localtime",
            "Europe//Warsaw",
            "",
            "a/./b",
        ] {
            assert!(!is_plain_name(bad), "{bad}");
        }
        assert!(is_plain_name("America/Argentina/Buenos_Aires"));
        assert!(is_plain_name("Etc/GMT+5"));
        assert!(by_name("Not/AZone").is_err());
    }
}
