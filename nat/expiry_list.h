// ExpiryList: an intrusive doubly-linked list over entries of a preallocated
// vector, linked by index (`prev`, `next` members). A table keeps one list per
// timeout class; since every entry of a class gets the same timeout and time
// only moves forward, appending on refresh keeps each list sorted by expiry,
// so expiring walks from the head and costs O(expired), never a scan.
#ifndef NATD_NAT_EXPIRY_LIST_H_
#define NATD_NAT_EXPIRY_LIST_H_

#include <cstdint>
#include <vector>

namespace natd {

inline constexpr uint32_t kNil = 0xffffffffu;

class ExpiryList {
 public:
  uint32_t head() const { return head_; }
  uint32_t size() const { return size_; }

  template <typename Entry>
  void PushBack(std::vector<Entry>& v, uint32_t i) {
    v[i].prev = tail_;
    v[i].next = kNil;
    if (tail_ != kNil) {
      v[tail_].next = i;
    } else {
      head_ = i;
    }
    tail_ = i;
    ++size_;
  }

  template <typename Entry>
  void Remove(std::vector<Entry>& v, uint32_t i) {
    Entry& e = v[i];
    if (e.prev != kNil) {
      v[e.prev].next = e.next;
    } else {
      head_ = e.next;
    }
    if (e.next != kNil) {
      v[e.next].prev = e.prev;
    } else {
      tail_ = e.prev;
    }
    e.prev = e.next = kNil;
    --size_;
  }

 private:
  uint32_t head_ = kNil;
  uint32_t tail_ = kNil;
  uint32_t size_ = 0;
};

}  // namespace natd

#endif  // NATD_NAT_EXPIRY_LIST_H_
