//! Fuzz target: every protocol decoder (zk::proto::fuzz_decode) and every client reply
//! decoder (zk::client::codec::fuzz_decode_replies) over arbitrary bytes. A panic is a bug:
//! the decoders must turn any input into a value or a DecodeError.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zk::proto::fuzz_decode(data);
    zk::client::codec::fuzz_decode_replies(data);
});
