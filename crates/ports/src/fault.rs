//! Storage faults an operator must fix: a full disk, a read-only file system, a store
//! that refuses access. Adapters put a [`StorageFault`] at the root of the cause of a
//! `Transient` error (a retry may succeed once the fault is fixed), so the API can answer
//! `503` naming the fault, without paths or other internals, and readiness probes fail
//! while it lasts.

use std::io;

/// Which store is faulty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The table (runs, tasks, events).
    Table,
    /// The blob store (archives, TaskSpecs, artifacts).
    Blobs,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Table => "the table",
            Store::Blobs => "the blob store",
        }
    }
}

/// Why a store cannot take writes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StorageFault {
    /// No space (or quota) left.
    #[error("{} is out of space", .0.name())]
    Full(Store),
    /// The file system or database is read-only.
    #[error("{} is read-only", .0.name())]
    ReadOnly(Store),
    /// The operating system refused access (permissions, an immutable file).
    #[error("{} refused access (permissions or an immutable file)", .0.name())]
    NotPermitted(Store),
}

impl StorageFault {
    /// The fault an I/O error of `store` stands for, if it is one an operator must fix.
    pub fn of_io(store: Store, error: &io::Error) -> Option<StorageFault> {
        match error.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                Some(StorageFault::Full(store))
            }
            io::ErrorKind::ReadOnlyFilesystem => Some(StorageFault::ReadOnly(store)),
            io::ErrorKind::PermissionDenied => Some(StorageFault::NotPermitted(store)),
            _ => None,
        }
    }

    /// The fault at the root of `error`'s chain of causes, if any.
    pub fn find(error: &(dyn std::error::Error + 'static)) -> Option<StorageFault> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(error) = current {
            if let Some(fault) = error.downcast_ref::<StorageFault>() {
                return Some(*fault);
            }
            current = error.source();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_read_only_or_refusing_disk_is_a_fault_and_other_errors_are_not() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(
            StorageFault::of_io(Store::Blobs, &os(28)),
            Some(StorageFault::Full(Store::Blobs))
        );
        assert_eq!(
            StorageFault::of_io(Store::Blobs, &os(122)),
            Some(StorageFault::Full(Store::Blobs))
        );
        assert_eq!(
            StorageFault::of_io(Store::Table, &os(30)),
            Some(StorageFault::ReadOnly(Store::Table))
        );
        assert_eq!(
            StorageFault::of_io(Store::Blobs, &os(1)),
            Some(StorageFault::NotPermitted(Store::Blobs))
        );
        assert_eq!(StorageFault::of_io(Store::Blobs, &os(2)), None);
        assert_eq!(
            StorageFault::Full(Store::Blobs).to_string(),
            "the blob store is out of space"
        );
    }

    #[test]
    fn a_fault_is_found_under_any_context() {
        let error = anyhow::Error::new(StorageFault::ReadOnly(Store::Table))
            .context("writing run run_1")
            .context("creating a run");
        let boxed: Box<dyn std::error::Error + 'static> = error.into();
        assert_eq!(
            StorageFault::find(boxed.as_ref()),
            Some(StorageFault::ReadOnly(Store::Table))
        );
    }
}
