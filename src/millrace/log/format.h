// On-disk format of the embedded log. This file is the one place that defines
// it; docs/log.md repeats it for users.
//
// A topic is a directory:
//
//   DIR/TOPIC/topic.meta                 options, text, written once at create
//   DIR/TOPIC/.lock                      flock()ed by the one writer process
//   DIR/TOPIC/partition-<p>/<base>.log   segments; <base> = 20-digit decimal
//                                        offset of the segment's first record
//   DIR/TOPIC/groups/<group>.offsets     committed consumer-group offsets
//
// topic.meta (text, one "key value" per line):
//   millrace-topic 1
//   partitions N
//   segment_bytes B
//   retention_bytes R
//   retention_ms A
//
// A segment file starts with a 16-byte header, then frames back to back:
//
//   header:  magic "MLRSEG01" (8 bytes) | base_offset u64
//   frame:   length u32 | crc u32 | offset u64 | timestamp_ms i64 | flags u8 | payload
//            (25-byte frame header, then `length` payload bytes)
//
// All integers are little-endian. `crc` is the CRC32C of the length field
// followed by every byte after the crc field (offset, timestamp, flags,
// payload), so a flipped bit anywhere in a frame, its length included, is
// caught. `offset` is the record's absolute offset in its partition: the
// first frame of a segment carries base_offset and each next frame one more,
// which lets a reader check it has neither skipped nor repeated a record.
//
// flags: bit 0 marks a control record (its payload is for the log itself,
// never returned as data); bit 1 marks a record written inside a
// transaction. Bits 2-7 are zero; a reader rejects frames with unknown bits.
//
// Transactions: the records a transaction appends carry bit 1. It ends with a
// control record (bits 0 and 1) in every partition it wrote to, whose payload
// is a type byte, 'C' (commit) or 'A' (abort), then the transaction id (u64).
// A read-committed reader returns a transactional record only once it has
// seen the commit marker after it in the partition, and skips aborted ones.
// Transactions never interleave within a partition (one writer, one
// transaction at a time, and no plain records while one is open), so a
// marker decides every undecided record before it.
//
// DIR/TOPIC/txn.state (text, replaced atomically) exists while a transaction
// is open or committing, and is how recovery decides its records:
//   millrace-txn 1
//   id <transaction id>
//   state open | prepared | commit
//   partitions <p> <p> ...              (prepared, commit: those it wrote to)
//   crc <crc32c of the lines above, 8 hex digits>
// On open, "open" means the transaction never committed: an abort marker is
// appended to every partition. "commit" means it did: a commit marker is
// appended to each listed partition (a repeated marker is harmless).
// "prepared" (two-phase commit: the records are durable, an outside
// coordinator decides) is left as it is, for the writer that prepared it to
// commit or abort after its own recovery.
//
// Appends only ever extend the last segment of a partition, so damage from a
// crash is confined to its tail: an incomplete frame (a torn write) or a frame
// whose CRC does not match. Opening a topic for writing truncates the last
// segment to the end of its last intact frame and reports what it cut.
//
// A group's .offsets file (text) is replaced atomically (temp file, fsync,
// rename, fsync of the directory):
//   millrace-offsets 1
//   <partition> <next offset>        one line per partition
//   crc <crc32c of the lines above, 8 hex digits>
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace millrace::log {

inline constexpr char kSegmentMagic[8] = {'M', 'L', 'R', 'S', 'E', 'G', '0', '1'};
inline constexpr size_t kSegmentHeaderBytes = 16;
inline constexpr size_t kFrameHeaderBytes = 25;
// A larger length field is corruption, not a record: it bounds what a reader
// will buffer while waiting for a frame to complete.
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;

inline constexpr uint8_t kFlagControl = 1u << 0;
inline constexpr uint8_t kFlagTransactional = 1u << 1;
inline constexpr uint8_t kKnownFlags = kFlagControl | kFlagTransactional;

inline constexpr char kControlCommit = 'C';
inline constexpr char kControlAbort = 'A';
inline constexpr size_t kControlPayloadBytes = 9;

inline size_t frame_bytes(size_t payload_bytes) {
  return kFrameHeaderBytes + payload_bytes;
}

// Appends one frame to *out.
void AppendFrame(std::string* out, uint64_t offset, int64_t timestamp_ms, uint8_t flags,
                 std::string_view payload);

// Appends a segment header to *out.
void AppendSegmentHeader(std::string* out, uint64_t base_offset);

// Checks a segment header; on success stores its base offset.
bool ParseSegmentHeader(const char* data, size_t n, uint64_t* base_offset);

struct Frame {
  uint64_t offset = 0;
  int64_t timestamp_ms = 0;
  uint8_t flags = 0;
  std::string_view payload;  // points into the buffer given to DecodeFrame
  size_t size = 0;           // whole frame, header included
};

enum class FrameStatus {
  kOk,          // *frame holds a verified frame
  kIncomplete,  // fewer bytes than the frame needs: a torn tail, or not written yet
  kCorrupt,     // bad length, CRC mismatch or unknown flags; *why says which
};

// Decodes the frame at data[0, n). Never returns unverified bytes as a frame.
FrameStatus DecodeFrame(const char* data, size_t n, Frame* frame, std::string* why);

// Payload of a transaction marker, and its parse (false if malformed).
std::string ControlPayload(char type, uint64_t transaction_id);
bool ParseControlPayload(std::string_view payload, char* type, uint64_t* transaction_id);

inline uint32_t load_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // the log is little-endian, as are the machines millrace targets
}
inline uint64_t load_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace millrace::log
