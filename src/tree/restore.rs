//! placeholder: snapshot restore helpers.
