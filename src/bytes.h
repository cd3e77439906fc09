// Internal: a little-endian byte writer and a bounds-checked reader for the
// engine snapshot format (see Engine::Snapshot). The reader never reads past
// its input: every Get returns false once the input is exhausted, and the
// caller turns that into a `bad_snapshot` error.
#ifndef REFPAY_SRC_BYTES_H_
#define REFPAY_SRC_BYTES_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/types/span.h"

namespace refpay::internal {

class ByteWriter {
 public:
  template <typename T>
  void Put(T value) {
    static_assert(std::is_integral_v<T>);
    using U = std::make_unsigned_t<T>;
    U bits = static_cast<U>(value);
    for (size_t i = 0; i < sizeof(T); ++i) {
      out_.push_back(static_cast<char>(bits & 0xFF));
      bits = static_cast<U>(bits >> 8);
    }
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    out_.append(s.data(), s.size());
  }
  void PutStrings(absl::Span<const std::string> strings) {
    Put<uint64_t>(strings.size());
    for (const std::string& s : strings) PutString(s);
  }
  template <typename T>
  void PutVector(const std::vector<T>& values) {
    Put<uint64_t>(values.size());
    for (T v : values) Put<T>(v);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  template <typename T>
  bool Get(T* value) {
    static_assert(std::is_integral_v<T>);
    if (in_.size() < sizeof(T)) return false;
    std::make_unsigned_t<T> bits = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      bits |= static_cast<std::make_unsigned_t<T>>(static_cast<unsigned char>(in_[i])) << (8 * i);
    }
    *value = static_cast<T>(bits);
    in_.remove_prefix(sizeof(T));
    return true;
  }
  // A count of items each at least `min_item_bytes` long: refuses counts the
  // remaining input could not hold, so a corrupt count cannot allocate
  // gigabytes.
  bool GetCount(uint64_t* count, size_t min_item_bytes) {
    return Get(count) && *count <= in_.size() / (min_item_bytes == 0 ? 1 : min_item_bytes);
  }
  bool GetString(std::string* s) {
    uint64_t size = 0;
    if (!GetCount(&size, 1)) return false;
    s->assign(in_.data(), size);
    in_.remove_prefix(size);
    return true;
  }
  bool GetStrings(std::vector<std::string>* strings) {
    uint64_t count = 0;
    if (!GetCount(&count, sizeof(uint64_t))) return false;
    strings->resize(count);
    for (std::string& s : *strings) {
      if (!GetString(&s)) return false;
    }
    return true;
  }
  template <typename T>
  bool GetVector(std::vector<T>* values) {
    uint64_t count = 0;
    if (!GetCount(&count, sizeof(T))) return false;
    values->resize(count);
    for (T& v : *values) {
      if (!Get(&v)) return false;
    }
    return true;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace refpay::internal

#endif  // REFPAY_SRC_BYTES_H_
