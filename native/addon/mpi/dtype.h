// The one datatype table of the Node binding: the wire id of each typed-array element type
// (mpi-compat/ts/datatype.ts numbers them; 0 is the object datatype), its size, its name in
// messages, the data plane's element type for native reductions, and N-API's array type.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

extern "C" {
#include "sf_dataplane.h"
}

namespace sf::mpi {

struct DType {
  const char* name;
  size_t size;
  sf_dtype sf;                 // element type of native reductions (SF_BYTE: none)
  napi_typedarray_type napi;   // for views handed to JavaScript user ops
};

constexpr int kObjectType = 0;
constexpr int kTypeCount = 12;

// By wire id. uint8clamped reduces as uint8 natively only where the op cannot saturate;
// the TypeScript layer keeps clamped reductions in JavaScript.
inline constexpr DType kTypes[kTypeCount] = {
    {"object", 1, SF_BYTE, napi_uint8_array},
    {"int8", 1, SF_INT8, napi_int8_array},
    {"uint8", 1, SF_UINT8, napi_uint8_array},
    {"uint8clamped", 1, SF_UINT8, napi_uint8_clamped_array},
    {"int16", 2, SF_INT16, napi_int16_array},
    {"uint16", 2, SF_UINT16, napi_uint16_array},
    {"int32", 4, SF_INT32, napi_int32_array},
    {"uint32", 4, SF_UINT32, napi_uint32_array},
    {"float32", 4, SF_FLOAT, napi_float32_array},
    {"float64", 8, SF_DOUBLE, napi_float64_array},
    {"bigint64", 8, SF_INT64, napi_bigint64_array},
    {"biguint64", 8, SF_UINT64, napi_biguint64_array},
};

inline const char* TypeName(int t) { return t >= 0 && t < kTypeCount ? kTypes[t].name : "unknown"; }

// "40 bytes (10 int32)", or "40 bytes" for objects and unknown types.
inline std::string Elems(size_t nbytes, int t) {
  if (t <= 0 || t >= kTypeCount) return std::to_string(nbytes) + " bytes";
  return std::to_string(nbytes) + " bytes (" + std::to_string(nbytes / kTypes[t].size) + " " + kTypes[t].name + ")";
}

// Byte size of an element of N-API's typed-array type (by napi_typedarray_type order).
inline size_t NapiElementSize(napi_typedarray_type t) {
  static const size_t kSize[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
  return t <= napi_biguint64_array ? kSize[t] : 1;
}

}  // namespace sf::mpi
