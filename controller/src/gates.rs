//! Safety gates of enforcement, as pure decisions shared by the decider and
//! the dry run (`enforcement plan`): pauses, the flapping breaker and the
//! rate budget. Each returns the note a user sees on the drift it holds
//! back.

use std::time::Duration;

use crate::records::{format_time, Pause, Safety};

/// The note on drift held back by a pause.
pub fn paused(p: &Pause) -> String {
    format!("paused until {} by {}: {}", p.until, p.by, p.reason)
}

/// The note on a flapping resource, if it is: reverted `flap_threshold`
/// times within the window ending now (`reverts` are the times of applied
/// remediations, RFC 3339).
pub fn flapping(safety: &Safety, reverts: &[String], now: time::OffsetDateTime) -> Option<String> {
    if safety.flap_threshold == 0 {
        return None;
    }
    let window = Duration::from_secs(safety.flap_window_seconds);
    let since = format_time(now - window);
    let recent = reverts
        .iter()
        .filter(|t| t.as_str() > since.as_str())
        .count();
    (recent >= safety.flap_threshold as usize).then(|| {
        format!(
            "flapping: reverted {} times within {}; someone keeps changing it, so it is not enforced until the reverts age out of that window",
            safety.flap_threshold,
            humantime::format_duration(window)
        )
    })
}

/// The note on drift of a type the environment does not enforce.
pub fn type_not_enforced(safety: &Safety, resource_type: &str) -> Option<String> {
    (!safety.enforce_types.is_empty() && !safety.enforce_types.iter().any(|t| t == resource_type))
        .then(|| {
            format!(
                "not enforced: this environment enforces only {}",
                safety.enforce_types.join(", ")
            )
        })
}

/// The note on drift waiting for the rate budget.
pub fn rate_limited(safety: &Safety) -> String {
    format!(
        "waiting: the rate budget of {} remediation(s) per minute is used up",
        safety.max_remediations_per_minute
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn flapping_counts_only_reverts_inside_the_window() {
        let safety = Safety {
            max_remediations_per_minute: 30,
            flap_threshold: 3,
            flap_window_seconds: 600,
            ..Safety::default()
        };
        let now = at("2026-11-24T12:00:00Z");
        let reverts: Vec<String> = ["11:40:00", "11:55:00", "11:58:00"]
            .iter()
            .map(|t| format!("2026-11-24T{t}.000Z"))
            .collect();
        assert_eq!(
            flapping(&safety, &reverts, now),
            None,
            "one revert is outside the window"
        );
        let mut more = reverts.clone();
        more.push("2026-11-24T11:59:00.000Z".into());
        let note = flapping(&safety, &more, now).unwrap();
        assert!(
            note.starts_with("flapping: reverted 3 times within 10m"),
            "{note}"
        );
        let off = Safety {
            flap_threshold: 0,
            ..safety
        };
        assert_eq!(flapping(&off, &more, now), None);
    }
}
