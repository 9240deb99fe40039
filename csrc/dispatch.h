// Run-time choice of instruction set. Kernels that gain from wider vectors are
// compiled once per ISA, each in its own source file with its own flags and
// its own namespace (no inline or template symbol is shared between ISA
// files: the linker could otherwise keep an AVX-512 copy of a shared helper
// and crash older CPUs). dispatch.cpp detects the CPU once, fills a table of
// function pointers, and lets PYCNN_ISA (or set_isa, for tests) lower it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"
#include "conv/col_panel.h"

namespace pycnn {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa);
bool isa_from_name(const std::string& name, Isa* out);

// GEMM microkernel: computes the MR x NR tile acc = sum_k a[k*MR + i] * b[k*NR + j]
// from packed panels (zero-padded to full MR/NR), then writes the top-left
// mr x nr corner of it to C (row-major, leading dimension ldc):
//   C = alpha * acc + beta * C   (beta == 0: C is write-only, never read)
//       + row_bias[i]            (when row_bias is not null; i < mr)
//   then C = max(C, 0) when relu.
using GemmUkernel = void (*)(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr,
                             float alpha, float beta, const float* row_bias, bool relu);

using TransposePack = void (*)(float* dst, i64 width, const float* src, i64 ld, i64 lines, i64 kc);
// 2x2 / stride-2 max pooling of the input rows r0, r1 (r1 = r0 + W) into Wo
// outputs and their argmax (row0 = index of r0[0] in its plane).
using MaxPool2x2Row = void (*)(float* y, std::int32_t* idx, const float* r0, const float* r1, i64 Wo,
                               std::int32_t row0, std::int32_t W);
// Its backward for one row pair: writes d0/d1[0, 2*Wo) completely.
using MaxPool2x2BwdRow = void (*)(float* d0, float* d1, const float* g, const std::int32_t* idx,
                                  const float* relu_y, i64 Wo, std::int32_t row0, std::int32_t W);

struct KernelTable {
  Isa isa;
  int gemm_mr, gemm_nr;
  GemmUkernel gemm_ukernel;
  // A shorter tile (gemm_mr_short x gemm_nr) the GEMM uses when it pads
  // fewer rows of M (GemmPlan::for_product); 0 / null when the ISA has none.
  int gemm_mr_short;
  GemmUkernel gemm_ukernel_short;
  // Vectorised im2col panel copy for stride-1 convolutions (conv/col_panel.h)
  // with registers of col_panel_half lanes; null: the portable loops pack.
  ColPanelCopy col_panel_copy;
  int col_panel_half;
  // dst[k * width + l] = src[l * ld + k] for l < lines (zeros up to width),
  // k < kc: packing an operand whose depth runs along memory; null: loops.
  TransposePack transpose_pack;
  MaxPool2x2Row max_pool_2x2_row;  // null: the portable loop in pool.cpp
  MaxPool2x2BwdRow max_pool_2x2_bwd_row;  // null: zero-fill and scatter in pool.cpp
};

// The table in use. Cheap: one atomic load.
const KernelTable& kernels();
Isa active_isa();
Isa best_supported_isa();  // what the CPU and OS support (and the build contains)
std::vector<Isa> supported_isas();
// Switches the table; throws std::invalid_argument for an ISA this CPU lacks.
// Not to be called while kernels run on other threads.
void set_isa(Isa isa);
// Where the initial choice came from, e.g. "cpu" or "PYCNN_ISA=avx2".
std::string isa_origin();

// Cache sizes in bytes, read once at start-up (sysconf / sysfs) with sane
// fallbacks; the GEMM blocking is derived from them.
struct CacheSizes {
  i64 l1d, l2, l3;
};
const CacheSizes& cache_sizes();

}  // namespace pycnn
