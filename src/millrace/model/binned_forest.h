// BinnedForest: the fastest GBDT layout, for CPUs with AVX-512 VBMI.
//
// Thresholds become bins. For each feature f, the distinct thresholds of its
// splits, sorted, are its cuts c_0 < ... < c_{n-1} (n <= 255). A value x
// becomes its bin b(x) = #{i : c_i <= x}, and a split on c_k sends x right
// iff b(x) > k: exactly `x >= c_k`, for every float including +-inf. A row
// is binned once into 128 bytes: [bins with NaN -> 0 | bins with NaN -> 255],
// features 0..63 in the first half and again in the second; a node whose
// missing values go right reads the second half, so NaN is routed by the same
// comparison (0 is never > k; 255 always is, since k <= 254).
//
// Trees are padded to complete binary trees of the ensemble's depth D (a leaf
// above depth D is copied into every slot below it) and stored 16 at a time,
// interleaved: node j of the block's 16 trees is one 64-byte line of 16 words
// {k | index << 8}. A block is walked as one AVX-512 vector of 16 node
// positions: the first three levels by aligned loads and blends (every tree is
// at one of 1, 2 or 4 nodes), the deeper ones by gathers; the row's bin is
// looked up for all 16 trees at once with one byte permute of the 128-byte
// binned row (vpermi2b). Four blocks are walked together so their loads
// overlap. The walk yields each tree's leaf slot; GbdtModel adds the leaf
// values in tree order, so sums equal the source library's bit for bit.
//
// Requirements (build() returns nullptr otherwise, and GbdtModel uses its
// portable padded layout): an x86-64 CPU with AVX-512 F/BW/VBMI (checked at
// run time; the code is compiled for it whatever -march), every split numerical without
// zero-as-missing, 1 <= D <= 8, at most 64 features, at most 255 distinct thresholds per feature.
//
// Immutable after build(); safe to use from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "millrace/model/tree_ensemble.h"

namespace millrace::model {

class BinnedForest {
 public:
  static constexpr size_t kTreesPerBlock = 16;
  static constexpr size_t kBinnedRowBytes = 128;
  static constexpr size_t kMaxFeatures = 64;
  static constexpr size_t kMaxCuts = 255;

  // True when this CPU runs the AVX-512 code (F, BW and VBMI; an x86-64 build
  // always has the code, compiled for those instructions whatever -march).
  static bool available();

  // Compiles the trees of `e` (over `num_features` features) padded to
  // `depth`; nullptr when a requirement above fails.
  static std::unique_ptr<BinnedForest> build(const TreeEnsemble& e, size_t num_features, int depth);

  size_t num_trees() const { return num_trees_; }
  size_t num_blocks() const { return num_blocks_; }
  int depth() const { return depth_; }

  // Bins one row of num_features floats into kBinnedRowBytes bytes (64-byte aligned).
  void bin_row(const float* row, uint8_t* binned) const;

  // For the trees of blocks [block_begin, block_end), writes each tree's leaf
  // slot (an index into leaves_f()/leaves_d()) to slots[0 .. 16 * blocks).
  // Slots of padding trees past num_trees() point at a zero leaf.
  void leaf_slots(const uint8_t* binned, size_t block_begin, size_t block_end,
                  uint32_t* slots) const;

  const float* leaves_f() const { return leaves_f_.get(); }
  const double* leaves_d() const { return leaves_d_.get(); }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  template <typename T>
  using Aligned = std::unique_ptr<T[], Free>;  // 64-byte aligned, zero-filled
  template <typename T>
  static Aligned<T> allocate(size_t n);

  BinnedForest() = default;

  int depth_ = 0;
  size_t num_features_ = 0, num_trees_ = 0, num_blocks_ = 0;
  // Per feature: 16 pivots (the last cut of each full group of 16 cuts, NaN
  // past them) and its cuts in groups of 16, NaN-padded, one group more than
  // it has full groups. 64-byte aligned.
  Aligned<float> pivots_;
  Aligned<float> cuts_;
  Aligned<uint32_t> cut_offset_;
  Aligned<uint32_t> nodes_;  // [block][2^D slots][16 trees]
  Aligned<float> leaves_f_;  // [block][2^D leaves][16 trees]
  Aligned<double> leaves_d_;
};

}  // namespace millrace::model
