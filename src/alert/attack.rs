//! The MITRE ATT&CK for ICS techniques otwatch tags alerts with: one table, ids and names as
//! published by MITRE (each checked against the technique's page on attack.mitre.org).

/// One ATT&CK for ICS technique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Technique {
    /// Technique id, e.g. `T0836`.
    pub id: &'static str,
    /// Technique name, e.g. `Modify Parameter`.
    pub name: &'static str,
}

/// T0801 Monitor Process State (Collection).
pub const MONITOR_PROCESS_STATE: &str = "T0801";
/// T0806 Brute Force I/O (Impair Process Control).
pub const BRUTE_FORCE_IO: &str = "T0806";
/// T0814 Denial of Service (Inhibit Response Function).
pub const DENIAL_OF_SERVICE: &str = "T0814";
/// T0816 Device Restart/Shutdown (Inhibit Response Function).
pub const DEVICE_RESTART_SHUTDOWN: &str = "T0816";
/// T0832 Manipulation of View (Impact).
pub const MANIPULATION_OF_VIEW: &str = "T0832";
/// T0836 Modify Parameter (Impair Process Control).
pub const MODIFY_PARAMETER: &str = "T0836";
/// T0843 Program Download (Lateral Movement).
pub const PROGRAM_DOWNLOAD: &str = "T0843";
/// T0846 Remote System Discovery (Discovery).
pub const REMOTE_SYSTEM_DISCOVERY: &str = "T0846";
/// T0855 Unauthorized Command Message (Impair Process Control).
pub const UNAUTHORIZED_COMMAND: &str = "T0855";
/// T0858 Change Operating Mode (Execution, Evasion).
pub const CHANGE_OPERATING_MODE: &str = "T0858";
/// T0861 Point & Tag Identification (Collection).
pub const POINT_TAG_IDENTIFICATION: &str = "T0861";
/// T0888 Remote System Information Discovery (Discovery).
pub const REMOTE_SYSTEM_INFO_DISCOVERY: &str = "T0888";

/// Every technique otwatch uses, in id order.
pub const TECHNIQUES: &[Technique] = &[
    Technique {
        id: MONITOR_PROCESS_STATE,
        name: "Monitor Process State",
    },
    Technique {
        id: BRUTE_FORCE_IO,
        name: "Brute Force I/O",
    },
    Technique {
        id: DENIAL_OF_SERVICE,
        name: "Denial of Service",
    },
    Technique {
        id: DEVICE_RESTART_SHUTDOWN,
        name: "Device Restart/Shutdown",
    },
    Technique {
        id: MANIPULATION_OF_VIEW,
        name: "Manipulation of View",
    },
    Technique {
        id: MODIFY_PARAMETER,
        name: "Modify Parameter",
    },
    Technique {
        id: PROGRAM_DOWNLOAD,
        name: "Program Download",
    },
    Technique {
        id: REMOTE_SYSTEM_DISCOVERY,
        name: "Remote System Discovery",
    },
    Technique {
        id: UNAUTHORIZED_COMMAND,
        name: "Unauthorized Command Message",
    },
    Technique {
        id: CHANGE_OPERATING_MODE,
        name: "Change Operating Mode",
    },
    Technique {
        id: POINT_TAG_IDENTIFICATION,
        name: "Point & Tag Identification",
    },
    Technique {
        id: REMOTE_SYSTEM_INFO_DISCOVERY,
        name: "Remote System Information Discovery",
    },
];

/// The name of a technique id, if otwatch knows it.
pub fn technique_name(id: &str) -> Option<&'static str> {
    TECHNIQUES.iter().find(|t| t.id == id).map(|t| t.name)
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

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in TECHNIQUES.windows(2) {
            assert!(
                pair[0].id < pair[1].id,
                "{} before {}",
                pair[0].id,
                pair[1].id
            );
        }
        for t in TECHNIQUES {
            assert_eq!(t.id.len(), 5);
            assert!(t.id.starts_with("T0"));
            assert!(!t.name.is_empty());
        }
        assert_eq!(technique_name("T0836"), Some("Modify Parameter"));
        assert_eq!(technique_name("T9999"), None);
    }
}
