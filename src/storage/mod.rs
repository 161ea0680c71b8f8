//! placeholder: storage (txn log, snapshots, recovery) is being written.
