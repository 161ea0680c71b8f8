//! The ZooKeeper client protocol as bytes in, values out: jute encoding, records, opcodes and
//! error codes, frame splitting, and the txn records the tree applies. Pure: no I/O, no
//! clock; never panics on hostile input. Corresponds to zookeeper-jute plus ZooDefs and
//! KeeperException in Apache ZooKeeper.

pub mod consts;
pub mod frame;
pub mod jute;
pub mod records;
pub mod txn;

pub use consts::{Code, CreateMode};
pub use jute::{DecodeError, Reader, Writer};
pub use records::*;
