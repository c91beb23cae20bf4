// History: the bounded ring of a series' most recent grid values (float, newest last) and
// whether each was observed or gap-filled. Its capacity is the main term of a series' state
// budget (4 bytes + 1 bit per step).
//
// Thread safety: none.
#ifndef AUGUR_FORECAST_HISTORY_H_
#define AUGUR_FORECAST_HISTORY_H_

#include <cstdint>
#include <vector>

#include "forecast/binary_io.h"

namespace augur::forecast {

class History {
 public:
  // REQUIRES: capacity > 0.
  explicit History(int capacity) : values_(capacity, 0.0f), observed_((capacity + 63) / 64, 0) {}

  void Push(double v, bool observed) {
    head_ = head_ + 1 == capacity() ? 0 : head_ + 1;
    values_[head_] = static_cast<float>(v);
    const uint64_t bit = uint64_t{1} << (head_ & 63);
    if (observed) {
      observed_[head_ >> 6] |= bit;
    } else {
      observed_[head_ >> 6] &= ~bit;
    }
    if (size_ < capacity()) ++size_;
  }
  void Clear() { size_ = 0; }

  int size() const { return size_; }
  int capacity() const { return static_cast<int>(values_.size()); }
  // Value `lag` steps before the newest (lag 0 is the newest). REQUIRES: 0 <= lag < size().
  double Back(int lag) const { return values_[Index(lag)]; }
  bool ObservedBack(int lag) const {
    const int i = Index(lag);
    return (observed_[i >> 6] >> (i & 63)) & 1;
  }
  // Copies the newest `n` values, oldest first. REQUIRES: n <= size().
  void CopyNewest(int n, std::vector<double>* out) const {
    out->resize(n);
    for (int j = 0; j < n; ++j) (*out)[j] = Back(n - 1 - j);
  }

  size_t Bytes() const { return values_.size() * sizeof(float) + observed_.size() * 8; }

  void Save(StateWriter* w) const {
    w->U32(static_cast<uint32_t>(size_));
    for (int lag = size_ - 1; lag >= 0; --lag) w->F32(static_cast<float>(Back(lag)));
    for (int lag = size_ - 1; lag >= 0; --lag) w->Bool(ObservedBack(lag));
  }
  // Restores into this object's capacity (keeping the newest values if it shrank).
  void Load(StateReader* r) {
    const uint32_t n = r->U32();
    if (!r->Check(n <= (1u << 24), "history: too long")) return;
    std::vector<float> v(n);
    for (uint32_t i = 0; i < n; ++i) v[i] = r->F32();
    std::vector<bool> o(n);
    for (uint32_t i = 0; i < n; ++i) o[i] = r->Bool();
    Clear();
    const uint32_t skip = n > static_cast<uint32_t>(capacity()) ? n - capacity() : 0;
    for (uint32_t i = skip; i < n; ++i) Push(v[i], o[i]);
  }

 private:
  int Index(int lag) const {
    const int i = head_ - lag;
    return i < 0 ? i + capacity() : i;
  }
  std::vector<float> values_;
  std::vector<uint64_t> observed_;
  int head_ = -1;  // slot of the newest value
  int size_ = 0;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_HISTORY_H_
