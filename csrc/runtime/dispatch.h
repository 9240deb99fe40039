// Run-time choice of instruction set. Kernels that gain from wider vectors are
// compiled once per ISA, each in its own source file with its own flags and
// its own namespace (no inline or template symbol is shared between ISA
// files: the linker could otherwise keep an AVX-512 copy of a shared helper
// and crash older CPUs).
//
// This file knows ISAs, not kernels: each kernel family declares its per-ISA
// kernels and a table of them in its own header and builds one table per ISA
// with `per_isa` below (gemm/ukernel.h, conv/im2col_panel.h, pool/max_pool_2x2.h).
// dispatch.cpp detects the CPU once and lets PYCNN_ISA (or set_isa, for
// tests) choose a lower ISA; families read `active_isa()` when a call starts.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "runtime/common.h"

// PYCNN_X86_KERNELS is set by CMake when it compiled the AVX2/AVX-512 files.
#if defined(PYCNN_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
#define PYCNN_X86 1
#else
#define PYCNN_X86 0
#endif

namespace pycnn {

// Ordered: a higher ISA can run everything a lower one can.
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };
constexpr int kIsaCount = 3;

const char* isa_name(Isa isa);
bool isa_from_name(const std::string& name, Isa* out);

// The ISA the kernels use now. Cheap: one atomic load.
Isa active_isa();
Isa best_supported_isa();  // what the CPU and OS support (and the build contains)
std::vector<Isa> supported_isas();
// Switches the ISA; throws std::invalid_argument for an ISA this CPU lacks.
// Not to be called while kernels run on other threads.
void set_isa(Isa isa);
// Where the initial choice came from, e.g. "cpu" or "PYCNN_ISA=avx2".
std::string isa_origin();

// A family's kernel table for every ISA, built once by make(isa). Tables are
// cumulative by convention: make() starts from the portable kernels and each
// ISA level overrides the entries it has, one assignment per kernel by name.
template <class Table, class Make>
std::array<Table, kIsaCount> per_isa(Make make) {
  return {make(Isa::Scalar), make(Isa::Avx2), make(Isa::Avx512)};
}
template <class Table>
const Table& for_active_isa(const std::array<Table, kIsaCount>& tables) {
  return tables[static_cast<int>(active_isa())];
}

// Cache sizes in bytes, read once at start-up (sysconf / sysfs) with sane
// fallbacks; the GEMM blocking is derived from them.
struct CacheSizes {
  i64 l1d, l2, l3;
};
const CacheSizes& cache_sizes();

}  // namespace pycnn
