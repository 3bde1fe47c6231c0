// CRC32C (Castagnoli), as used by the embedded log's record frames.
#pragma once

#include <cstddef>
#include <cstdint>

namespace millrace {

// CRC32C of data[0, n), continuing from `crc` (0 to start a new checksum).
// Uses the SSE4.2 crc32 instruction when the CPU has it, else a table.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

}  // namespace millrace
