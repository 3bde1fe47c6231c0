#include "millrace/log/format.h"

#include <bit>

#include "millrace/core/crc32c.h"

namespace millrace::log {

static_assert(std::endian::native == std::endian::little,
              "the log format is little-endian; add byte swaps for big-endian hosts");

namespace {

uint32_t frame_crc(const char* frame, size_t payload_bytes) {
  uint32_t crc = crc32c(frame, 4);  // the length field
  return crc32c(frame + 8, kFrameHeaderBytes - 8 + payload_bytes, crc);
}

}  // namespace

void AppendFrame(std::string* out, uint64_t offset, int64_t timestamp_ms, uint8_t flags,
                 std::string_view payload) {
  const size_t start = out->size();
  out->resize(start + kFrameHeaderBytes + payload.size());
  char* p = out->data() + start;
  const uint32_t length = static_cast<uint32_t>(payload.size());
  std::memcpy(p, &length, 4);
  std::memcpy(p + 8, &offset, 8);
  std::memcpy(p + 16, &timestamp_ms, 8);
  p[24] = static_cast<char>(flags);
  if (!payload.empty()) std::memcpy(p + kFrameHeaderBytes, payload.data(), payload.size());
  const uint32_t crc = frame_crc(p, payload.size());
  std::memcpy(p + 4, &crc, 4);
}

void AppendSegmentHeader(std::string* out, uint64_t base_offset) {
  out->append(kSegmentMagic, sizeof(kSegmentMagic));
  out->append(reinterpret_cast<const char*>(&base_offset), 8);
}

bool ParseSegmentHeader(const char* data, size_t n, uint64_t* base_offset) {
  if (n < kSegmentHeaderBytes) return false;
  if (std::memcmp(data, kSegmentMagic, sizeof(kSegmentMagic)) != 0) return false;
  *base_offset = load_u64(data + 8);
  return true;
}

FrameStatus DecodeFrame(const char* data, size_t n, Frame* frame, std::string* why) {
  if (n < 4) return FrameStatus::kIncomplete;
  const uint32_t length = load_u32(data);
  if (length > kMaxRecordBytes) {
    *why = "record length " + std::to_string(length) + " exceeds the maximum";
    return FrameStatus::kCorrupt;
  }
  if (n < kFrameHeaderBytes + length) return FrameStatus::kIncomplete;
  if (frame_crc(data, length) != load_u32(data + 4)) {
    *why = "CRC32C mismatch";
    return FrameStatus::kCorrupt;
  }
  const uint8_t flags = static_cast<uint8_t>(data[24]);
  if (flags & ~kKnownFlags) {
    *why = "unknown flags " + std::to_string(flags);
    return FrameStatus::kCorrupt;
  }
  frame->offset = load_u64(data + 8);
  frame->timestamp_ms = static_cast<int64_t>(load_u64(data + 16));
  frame->flags = flags;
  frame->payload = std::string_view(data + kFrameHeaderBytes, length);
  frame->size = kFrameHeaderBytes + length;
  return FrameStatus::kOk;
}

std::string ControlPayload(char type, uint64_t transaction_id) {
  std::string out(1, type);
  out.append(reinterpret_cast<const char*>(&transaction_id), 8);
  return out;
}

bool ParseControlPayload(std::string_view payload, char* type, uint64_t* transaction_id) {
  if (payload.size() != kControlPayloadBytes) return false;
  if (payload[0] != kControlCommit && payload[0] != kControlAbort) return false;
  *type = payload[0];
  *transaction_id = load_u64(payload.data() + 1);
  return true;
}

}  // namespace millrace::log
