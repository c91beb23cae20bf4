// StateWriter / StateReader: the little-endian binary encoding that forecast state is saved
// in, and the framing (magic, format version, length, checksum) around one saved object.
//
// Readers never trust their input: every read is bounds-checked, the first failure is kept
// and later reads return zeros, and lengths are checked against caller-given limits before
// anything is allocated. dlib objects are stored as length-prefixed blobs written by dlib's
// own serialize(); DlibBlob() converts dlib's exceptions into a Status.
//
// Thread safety: none; one object per thread.
#ifndef AUGUR_FORECAST_BINARY_IO_H_
#define AUGUR_FORECAST_BINARY_IO_H_

#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "common/hash.h"

namespace augur::forecast {

// 64-bit FNV-1a of `data` (common/hash.h); detects torn or bit-flipped state files.
using augur::Fnv1a64;

class StateWriter {
 public:
  void U8(uint8_t v) { Raw(&v, 1); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void I64(int64_t v) { Raw(&v, 8); }
  void F32(float v) { Raw(&v, 4); }
  void F64(double v) { Raw(&v, 8); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  // Length (u32) then the elements.
  void F32s(const std::vector<float>& v);
  void F64s(const std::vector<double>& v);
  void Bytes(std::string_view v);

  const std::string& data() const { return out_; }

 private:
  // x86-64 and aarch64 are little-endian; the format is defined as little-endian.
  void Raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

class StateReader {
 public:
  explicit StateReader(std::string_view in) : in_(in) {}

  uint8_t U8() { uint8_t v = 0; Raw(&v, 1); return v; }
  uint32_t U32() { uint32_t v = 0; Raw(&v, 4); return v; }
  uint64_t U64() { uint64_t v = 0; Raw(&v, 8); return v; }
  int64_t I64() { int64_t v = 0; Raw(&v, 8); return v; }
  float F32() { float v = 0; Raw(&v, 4); return v; }
  double F64() { double v = 0; Raw(&v, 8); return v; }
  bool Bool();
  // Reads a length-prefixed vector of at most `max_len` elements (more is corruption).
  std::vector<float> F32s(size_t max_len);
  std::vector<double> F64s(size_t max_len);
  std::string Bytes(size_t max_len);

  // Marks the reader failed with `why` unless it already failed (the first error wins).
  void Fail(std::string_view why);
  // Fails unless `cond`; returns cond && ok().
  bool Check(bool cond, std::string_view why);

  bool ok() const { return error_.empty(); }
  bool AtEnd() const { return pos_ == in_.size(); }
  // OK, or Corruption naming the first problem and the byte offset it was found at.
  Status status() const;

 private:
  void Raw(void* p, size_t n);
  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
};

// Serialises a dlib object with dlib::serialize into a string (never throws: dlib writes to
// a stringstream).
template <typename T>
std::string DlibToBlob(const T& obj) {
  std::ostringstream os;
  serialize(obj, os);
  return std::move(os).str();
}

// Deserialises a dlib object from a blob; dlib's exceptions become Corruption.
template <typename T>
Status DlibFromBlob(const std::string& blob, T* obj, std::string_view what) {
  try {
    std::istringstream is(blob);
    deserialize(*obj, is);
    if (!is) return Status::Corruption(std::string(what) + ": truncated dlib object");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string(what) + ": " + e.what());
  }
  return Status::OK();
}

// One saved object: magic (8 bytes), format version (u32), payload length (u64), payload,
// FNV-1a-64 of the payload (u64).
Status WriteFramed(std::ostream& os, std::string_view magic, uint32_t version,
                   std::string_view payload);
// Reads what WriteFramed wrote. Corruption for a bad magic, length, truncation or checksum;
// FailedPrecondition when the version is newer than `max_version`. Sets *version.
Result<std::string> ReadFramed(std::istream& is, std::string_view magic, uint32_t max_version,
                               size_t max_payload, uint32_t* version);

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_BINARY_IO_H_
