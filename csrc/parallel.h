// The one pycnn-wide thread setting. Every parallel region receives its thread
// count explicitly (never omp_set_num_threads, which would leak into other
// OpenMP users in the same process).
#pragma once
#include "common.h"

namespace pycnn {

// Default: $OMP_NUM_THREADS if set and valid, else the number of cores.
int get_num_threads();
void set_num_threads(int n);  // n >= 1, checked by the caller
int max_hardware_threads();

// Threads worth using for `work` independent items: never more threads than items.
inline int threads_for(i64 work_items, int num_threads) {
  if (work_items < 1) return 1;
  return work_items < num_threads ? static_cast<int>(work_items) : num_threads;
}

}  // namespace pycnn
