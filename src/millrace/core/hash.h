// Hashing: one hash function (XXH3, 64-bit) for keys, partitions and key groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

// XXH3 compiled inline here (the library's own code, the same values): keys
// are short, and the call into the shared library cost as much as the hash.
// Long inputs take the AVX2 path: g++ 12 warns (falsely) about
// uninitialized values in its AVX-512 intrinsics once they are inlined.
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#if !defined(XXH_VECTOR) && defined(__AVX2__)
#define XXH_VECTOR 2  // XXH_AVX2
#endif
#include <xxhash.h>

namespace millrace {

inline uint64_t hash_bytes(const void* data, size_t n, uint64_t seed = 0) {
  return XXH3_64bits_withSeed(data, n, seed);
}

inline uint64_t hash_string(std::string_view s, uint64_t seed = 0) {
  return hash_bytes(s.data(), s.size(), seed);
}

// State is sharded into a fixed number of key groups; a worker owns whole key
// groups, and checkpoints and rescaling move whole key groups.
inline constexpr uint32_t kKeyGroups = 256;

inline uint32_t key_group_of(uint64_t key_hash) {
  return static_cast<uint32_t>((key_hash >> 32) % kKeyGroups);
}

// Partition of a record with the given key hash in a topic of n partitions.
inline uint32_t partition_of(uint64_t key_hash, uint32_t partitions) {
  return static_cast<uint32_t>(key_hash % partitions);
}

}  // namespace millrace
