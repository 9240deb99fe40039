// pycnn._core: each family's bindings (bindings/<family>.cpp) convert NumPy
// arrays to pointers and shapes, call the checked op layer (csrc/ops) for the
// shapes, allocate outputs, and release the GIL around the run functions.
#include "bindings/arrays.h"

PYBIND11_MODULE(_core, m) {
  namespace b = pycnn::bindings;
  m.doc() = "pycnn's compiled kernels. Private: use pycnn.functional and pycnn.nn.";
  m.attr("__version__") = PYCNN_VERSION;
  b::bind_runtime(m);
  b::bind_gemm(m);
  b::bind_conv(m);
  b::bind_pool(m);
  b::bind_activation(m);
  b::bind_linear(m);
  b::bind_loss(m);
  b::bind_norm(m);
  b::bind_dropout(m);
  b::bind_optim(m);
  b::bind_resize(m);
}
