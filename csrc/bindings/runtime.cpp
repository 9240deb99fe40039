// Threads, the buffer cache, the instruction set and build facts.
#include "bindings/arrays.h"
#include "ops/runtime.h"
#include "runtime/parallel.h"

namespace pycnn::bindings {

void bind_runtime(py::module_& m) {
  m.def("get_num_threads", &peek_num_threads);
  m.def("forked_single_threaded", &forked_single_threaded,
        "True in a process forked after its parent ran threaded kernels: it stays single-threaded.");
  m.def("set_num_threads", &ops::set_num_threads);
  m.def("max_num_threads", &max_num_threads, "The largest thread count set_num_threads accepts.");
  m.def("buffer_cache_info", []() {
    const auto st = buffer_cache_stats();
    py::dict d;
    d["held_bytes"] = st.held_bytes;
    d["limit_bytes"] = st.limit_bytes;
    d["hits"] = st.hits;
    d["misses"] = st.misses;
    return d;
  }, "Bytes the cache of output-array memory holds, its limit, and how often it was reused (hits) or not.");
  m.def("set_buffer_cache_limit", &ops::set_buffer_cache_limit,
        "Keep at most this many bytes of released output-array memory for reuse (0 keeps none).");
  m.def("is_output_buffer", [](const py::handle& owner) { return is_output_buffer(owner); },
        "True if `owner` (the last base of an ndarray) owns memory a pycnn op allocated for its output.");
  m.def("_fail_scratch_request", &fail_scratch_request,
        "For tests: the n-th request for a thread's kernel scratch from now on raises MemoryError (0: never); "
        "returns how many requests the previous setting still had to go.");
  m.def("build_info", []() {
    py::dict d;
    d["version"] = PYCNN_VERSION;
    d["compiler"] = PYCNN_COMPILER;
    d["build_type"] = PYCNN_BUILD_TYPE;
    d["cxx_flags"] = PYCNN_CXX_FLAGS;
#ifdef PYCNN_HAVE_OPENMP
    d["openmp"] = true;
#else
    d["openmp"] = false;
#endif
    d["max_threads"] = max_hardware_threads();
    const auto& cs = cache_sizes();
    d["cache_sizes"] = py::make_tuple(cs.l1d, cs.l2, cs.l3);
    d["isa_origin"] = isa_origin();
    return d;
  });
  m.def("isa", []() { return std::string(isa_name(active_isa())); }, "The instruction set the kernels use now.");
  m.def("supported_isas", []() {
    std::vector<std::string> v;
    for (auto i : supported_isas()) v.push_back(isa_name(i));
    return v;
  }, "Instruction sets this CPU and build support, lowest first.");
  m.def("set_isa", &ops::set_isa, "Switch the kernels to a supported instruction set (for tests and benchmarks).");
}

}  // namespace pycnn::bindings
