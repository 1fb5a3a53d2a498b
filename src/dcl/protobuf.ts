/**
 * protobufjs writes strings of 40 characters or more with Node's
 * `Buffer#utf8Write` when it finds a `Buffer` (workerd provides one under
 * `nodejs_compat`), and workerd's `utf8Write` checks its arguments as a
 * different signature: encoding such a string throws ERR_OUT_OF_RANGE (seen
 * with workerd 2026-11, e.g. REQUEST_MODULE_RESPONSE's procedure names). The
 * plain Uint8Array writer is used instead, everywhere: imported for its
 * effect by the modules that encode (rpc.ts, mapping.ts) before any encode.
 */
import protobuf from "protobufjs/minimal.js";

protobuf.util.Buffer = null as never;
protobuf.configure();
