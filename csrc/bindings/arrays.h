// The binding layer's vocabulary: NumPy arrays in, pointers and shapes out,
// output arrays from the buffer cache. pycnn.functional converts dtypes and
// layouts before calling in, so arrays arriving here must already be
// C-contiguous, aligned and of the exact dtype: anything else is a bug in
// the caller and raises TypeError instead of being silently copied.
// Shapes and hyper-parameters are checked by csrc/ops, never here.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ops/check.h"
#include "runtime/buffer_cache.h"

namespace pycnn::bindings {

namespace py = pybind11;
using ops::Shape;
using OptArray = std::optional<py::array>;

inline Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }
// Shape of an optional array, or null.
inline std::optional<Shape> shape_of(const OptArray& a) {
  return a ? std::optional<Shape>(shape_of(*a)) : std::nullopt;
}
inline const Shape* ptr(const std::optional<Shape>& s) { return s ? &*s : nullptr; }

template <class T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  if constexpr (std::is_same_v<T, std::int64_t>) return "int64";
  if constexpr (std::is_same_v<T, std::int32_t>) return "int32";
  if constexpr (std::is_same_v<T, std::uint8_t>) return "uint8";
}

template <class T>
void check_layout(const py::array& a, const char* name) {
  if (!py::array_t<T>::check_(a))
    throw py::type_error(std::string(name) + ": expected a " + dtype_name<T>() + " array, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  constexpr int need = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((flags & need) != need) throw py::type_error(std::string(name) + ": expected a C-contiguous, aligned array");
}

// An array read by a kernel.
template <class T = float>
const T* in(const py::array& a, const char* name) {
  check_layout<T>(a, name);
  return static_cast<const T*>(a.data());
}
template <class T = float>
const T* in(const OptArray& a, const char* name) {
  return a ? in<T>(*a, name) : nullptr;
}

// An array a kernel writes in place.
template <class T = float>
T* inout(py::array& a, const char* name) {
  check_layout<T>(a, name);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return static_cast<T*>(a.mutable_data());
}
template <class T = float>
T* inout(OptArray& a, const char* name) {
  return a ? inout<T>(*a, name) : nullptr;
}

// The name of the capsules that own pycnn's output arrays (see is_output_buffer).
constexpr const char* kBufferCapsule = "pycnn.buffer";

// A new output array whose memory comes from the buffer cache: the capsule
// that owns the block gives it back when NumPy frees the array. `shape` has
// been checked against overflow by the op layer.
template <class T = float>
py::array_t<T> new_array(const Shape& shape) {
  std::size_t count = 1;
  for (i64 d : shape) count *= static_cast<std::size_t>(d);
  void* block = buffer_acquire(count * sizeof(T));
  py::capsule owner;
  try {
    owner = py::capsule(block, kBufferCapsule,
                        [](PyObject* c) { buffer_release(PyCapsule_GetPointer(c, kBufferCapsule)); });
  } catch (...) {
    buffer_release(block);
    throw;
  }
  return py::array_t<T>(shape, static_cast<T*>(block), owner);
}

// True for the owner (the ndarray base) of an array new_array made: memory no
// one outside pycnn can have written through another object.
inline bool is_output_buffer(const py::handle& owner) {
  return PyCapsule_IsValid(owner.ptr(), kBufferCapsule) != 0;
}
template <class T = float>
T* data(py::array_t<T>& a) {
  return a.mutable_data();
}

inline Shape to_shape(const std::vector<i64>& v) { return Shape(v.begin(), v.end()); }

// Binds each family's functions into the module (one file per family).
void bind_runtime(py::module_& m);
void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_pool(py::module_& m);
void bind_activation(py::module_& m);
void bind_linear(py::module_& m);
void bind_loss(py::module_& m);
void bind_norm(py::module_& m);
void bind_dropout(py::module_& m);
void bind_optim(py::module_& m);
void bind_resize(py::module_& m);

}  // namespace pycnn::bindings
