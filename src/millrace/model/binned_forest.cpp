#include "millrace/model/binned_forest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

// The AVX-512 code is compiled for those instructions whatever the build's
// -march (so a portable or sanitizer build has it too) and used only when the
// CPU has them (runtime dispatch: build() checks available()).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MILLRACE_BINNED_FOREST 1
#include <immintrin.h>
#else
#define MILLRACE_BINNED_FOREST 0
#endif

namespace millrace::model {

bool BinnedForest::available() {
#if MILLRACE_BINNED_FOREST
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vbmi");
  return has;
#else
  return false;
#endif
}

template <typename T>
BinnedForest::Aligned<T> BinnedForest::allocate(size_t n) {
  const size_t bytes = (std::max<size_t>(n, 1) * sizeof(T) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return Aligned<T>(static_cast<T*>(p));
}

std::unique_ptr<BinnedForest> BinnedForest::build(const TreeEnsemble& e, size_t num_features,
                                                  int depth) {
  if (!available() || depth < 1 || depth > 8 || num_features > kMaxFeatures) return nullptr;
  std::vector<std::vector<float>> cuts(num_features);
  for (const Tree& tree : e.trees) {
    for (const TreeNode& node : tree.nodes) {
      if (node.kind == TreeNode::Kind::kLeaf) continue;
      if (node.kind != TreeNode::Kind::kNumerical || node.zero_as_missing ||
          std::isnan(node.threshold) || node.feature >= num_features)
        return nullptr;
      cuts[node.feature].push_back(node.threshold);
    }
  }
  for (auto& c : cuts) {
    std::sort(c.begin(), c.end());
    c.erase(std::unique(c.begin(), c.end()), c.end());
    if (c.size() > kMaxCuts) return nullptr;
  }

  std::unique_ptr<BinnedForest> f(new BinnedForest());
  f->depth_ = depth;
  f->num_features_ = num_features;
  f->num_trees_ = e.trees.size();
  f->num_blocks_ = (e.trees.size() + kTreesPerBlock - 1) / kTreesPerBlock;

  // Cut groups: one per 16 cuts, plus the (possibly empty) partial group.
  f->pivots_ = allocate<float>(num_features * 16);
  f->cut_offset_ = allocate<uint32_t>(num_features);
  size_t total = 0;
  for (size_t i = 0; i < num_features; ++i) total += (cuts[i].size() / 16 + 1) * 16;
  f->cuts_ = allocate<float>(total);
  std::fill(f->pivots_.get(), f->pivots_.get() + num_features * 16, NAN);
  std::fill(f->cuts_.get(), f->cuts_.get() + total, NAN);
  size_t offset = 0;
  for (size_t i = 0; i < num_features; ++i) {
    const std::vector<float>& c = cuts[i];
    f->cut_offset_[i] = static_cast<uint32_t>(offset);
    std::copy(c.begin(), c.end(), f->cuts_.get() + offset);
    for (size_t g = 0; g < c.size() / 16; ++g) f->pivots_[i * 16 + g] = c[g * 16 + 15];
    offset += (c.size() / 16 + 1) * 16;
  }

  const size_t slots = size_t{1} << depth;  // 2^D - 1 nodes (one slot unused); 2^D leaves
  const size_t inner = slots - 1;
  f->nodes_ = allocate<uint32_t>(f->num_blocks_ * slots * kTreesPerBlock);
  f->leaves_f_ = allocate<float>(f->num_blocks_ * slots * kTreesPerBlock);
  if (e.accumulate_double) f->leaves_d_ = allocate<double>(f->num_blocks_ * slots * kTreesPerBlock);
  for (size_t t = 0; t < e.trees.size(); ++t) {
    const size_t base = t / kTreesPerBlock * slots * kTreesPerBlock + t % kTreesPerBlock;
    // (source node, heap position, depth); a leaf above `depth` fills its subtree.
    std::vector<std::tuple<int32_t, size_t, int>> stack{{0, 0, 0}};
    while (!stack.empty()) {
      auto [src, pos, d] = stack.back();
      stack.pop_back();
      const TreeNode& node = e.trees[t].nodes[src];
      if (d == depth) {
        const size_t at = base + (pos - inner) * kTreesPerBlock;
        f->leaves_f_[at] = static_cast<float>(node.leaf_value);
        if (f->leaves_d_) f->leaves_d_[at] = node.leaf_value;
        continue;
      }
      if (node.kind == TreeNode::Kind::kLeaf) {
        // Word 0: either child, as both lead to copies of this leaf.
        stack.emplace_back(src, 2 * pos + 1, d + 1);
        stack.emplace_back(src, 2 * pos + 2, d + 1);
        continue;
      }
      const std::vector<float>& c = cuts[node.feature];
      const auto k =
          static_cast<uint32_t>(std::lower_bound(c.begin(), c.end(), node.threshold) - c.begin());
      const uint32_t index = node.feature + (node.default_left ? 0 : 64);
      f->nodes_[base + pos * kTreesPerBlock] = k | index << 8;
      stack.emplace_back(node.left, 2 * pos + 1, d + 1);
      stack.emplace_back(node.right, 2 * pos + 2, d + 1);
    }
  }
  return f;
}

#if MILLRACE_BINNED_FOREST

// Everything from here to the matching pop is compiled for AVX-512 F/BW/VBMI.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vbmi"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vbmi")
#endif

void BinnedForest::bin_row(const float* row, uint8_t* binned) const {
  std::memset(binned, 0, kBinnedRowBytes);
  const float* pivots = pivots_.get();
  const float* cuts = cuts_.get();
  for (size_t i = 0; i < num_features_; ++i) {
    const float x = row[i];
    const __m512 xv = _mm512_set1_ps(x);
    // Ordered comparisons: NaN cuts (padding) never count, and a NaN x counts none.
    const __mmask16 full = _mm512_cmp_ps_mask(_mm512_load_ps(pivots + i * 16), xv, _CMP_LE_OQ);
    const uint32_t groups = static_cast<uint32_t>(__builtin_popcount(full));
    const __mmask16 in_group =
        _mm512_cmp_ps_mask(_mm512_load_ps(cuts + cut_offset_[i] + groups * 16), xv, _CMP_LE_OQ);
    const auto bin = static_cast<uint8_t>(groups * 16 + __builtin_popcount(in_group));
    binned[i] = bin;
    binned[64 + i] = x != x ? 255 : bin;
  }
}

namespace {

// Shifts go through their zero-masking forms: GCC 12 warns about the
// undefined pass-through value inside the unmasked ones.
constexpr __mmask16 kAll = 0xffff;

// Right (mask bit set) where the row's bin for the node's index exceeds the node's k.
inline __mmask16 goes_right(__m512i node, __m512i lo, __m512i hi) {
  const __m512i low_byte = _mm512_set1_epi32(0xff);
  const __m512i bin = _mm512_and_si512(
      _mm512_permutex2var_epi8(lo, _mm512_maskz_srli_epi32(kAll, node, 8), hi), low_byte);
  return _mm512_cmpgt_epi32_mask(bin, _mm512_and_si512(node, low_byte));
}

// heap position j -> 2j + 1 + right
inline __m512i descend(__m512i j, __mmask16 right) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i next = _mm512_add_epi32(_mm512_add_epi32(j, j), one);
  return _mm512_mask_add_epi32(next, right, next, one);
}

// Walks U blocks starting at `block` (16 trees each) to their leaves.
template <int D, int U>
void walk(const uint32_t* nodes, size_t block, __m512i lo, __m512i hi, uint32_t* slots) {
  constexpr size_t kSlots = size_t{1} << D;
  constexpr size_t kBlockWords = kSlots * 16;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i j[U];
  __mmask16 r0[U], r1[U];
  // Levels 0-2: every tree is at one of 1, 2 or 4 nodes, whose lines are loaded whole.
  for (int u = 0; u < U; ++u) {
    const uint32_t* n = nodes + (block + u) * kBlockWords;
    r0[u] = goes_right(_mm512_load_si512(n), lo, hi);
    j[u] = descend(_mm512_setzero_si512(), r0[u]);
  }
  if constexpr (D >= 2) {
    for (int u = 0; u < U; ++u) {
      const uint32_t* n = nodes + (block + u) * kBlockWords;
      const __m512i node =
          _mm512_mask_blend_epi32(r0[u], _mm512_load_si512(n + 16), _mm512_load_si512(n + 32));
      r1[u] = goes_right(node, lo, hi);
      j[u] = descend(j[u], r1[u]);
    }
  }
  if constexpr (D >= 3) {
    for (int u = 0; u < U; ++u) {
      const uint32_t* n = nodes + (block + u) * kBlockWords;
      const __m512i left = _mm512_mask_blend_epi32(r1[u], _mm512_load_si512(n + 3 * 16),
                                                   _mm512_load_si512(n + 4 * 16));
      const __m512i right = _mm512_mask_blend_epi32(r1[u], _mm512_load_si512(n + 5 * 16),
                                                    _mm512_load_si512(n + 6 * 16));
      j[u] = descend(j[u], goes_right(_mm512_mask_blend_epi32(r0[u], left, right), lo, hi));
    }
  }
  for (int d = 3; d < D; ++d) {
    for (int u = 0; u < U; ++u) {
      const void* n = nodes + (block + u) * kBlockWords;
      const __m512i at = _mm512_add_epi32(_mm512_maskz_slli_epi32(kAll, j[u], 4), lane);
      j[u] = descend(
          j[u],
          goes_right(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), kAll, at, n, 4), lo, hi));
    }
  }
  // Leaf slot: ((block * 2^D + j - (2^D - 1)) * 16 + lane.
  for (int u = 0; u < U; ++u) {
    const __m512i leaf = _mm512_add_epi32(
        j[u], _mm512_set1_epi32(static_cast<int>((block + u) * kSlots - (kSlots - 1))));
    _mm512_storeu_si512(slots + u * 16,
                        _mm512_add_epi32(_mm512_maskz_slli_epi32(kAll, leaf, 4), lane));
  }
}

template <int D>
void walk_blocks(const uint32_t* nodes, const uint8_t* binned, size_t begin, size_t end,
                 uint32_t* slots) {
  const __m512i lo = _mm512_load_si512(binned);
  const __m512i hi = _mm512_load_si512(binned + 64);
  size_t b = begin;
  for (; b + 4 <= end; b += 4) walk<D, 4>(nodes, b, lo, hi, slots + (b - begin) * 16);
  // The last one to three blocks together too: walked one by one, each would
  // wait out its own chain of loads.
  switch (end - b) {
    case 3:
      return walk<D, 3>(nodes, b, lo, hi, slots + (b - begin) * 16);
    case 2:
      return walk<D, 2>(nodes, b, lo, hi, slots + (b - begin) * 16);
    case 1:
      return walk<D, 1>(nodes, b, lo, hi, slots + (b - begin) * 16);
    default:
      return;
  }
}

}  // namespace

void BinnedForest::leaf_slots(const uint8_t* binned, size_t block_begin, size_t block_end,
                              uint32_t* slots) const {
  const uint32_t* n = nodes_.get();
  switch (depth_) {
    case 1:
      return walk_blocks<1>(n, binned, block_begin, block_end, slots);
    case 2:
      return walk_blocks<2>(n, binned, block_begin, block_end, slots);
    case 3:
      return walk_blocks<3>(n, binned, block_begin, block_end, slots);
    case 4:
      return walk_blocks<4>(n, binned, block_begin, block_end, slots);
    case 5:
      return walk_blocks<5>(n, binned, block_begin, block_end, slots);
    case 6:
      return walk_blocks<6>(n, binned, block_begin, block_end, slots);
    case 7:
      return walk_blocks<7>(n, binned, block_begin, block_end, slots);
    default:
      return walk_blocks<8>(n, binned, block_begin, block_end, slots);
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64: build() never returns a forest, so these are never called.

void BinnedForest::bin_row(const float*, uint8_t*) const {}
void BinnedForest::leaf_slots(const uint8_t*, size_t, size_t, uint32_t*) const {}

#endif

}  // namespace millrace::model
