// Uring: batches of reads or writes on one file descriptor in one system
// call, through io_uring (Debian's liburing).
//
// Why: a TUN hands over one packet per read() and takes one per write(), and
// on these VMs a system call costs about 1.2 µs before it does anything, so a
// read()/write() loop is bound near 60 k packets/s per thread whatever natd
// does with the packets. Queued as io_uring submissions, a batch of 64 reads
// (or writes) enters the kernel once.
//
// How it stays correct:
// - The descriptor is O_NONBLOCK. A write to a TUN never waits, so io_uring
//   runs each write at submission, in order. A read is asked not to wait
//   (RWF_NOWAIT): with nothing to read it completes with -EAGAIN at once;
//   without that flag io_uring would park it until a packet came (it treats
//   the TUN as pollable, O_NONBLOCK or not). ReadsCompleteAtOnce() checks,
//   at start on the still-empty device, that this kernel's TUN honours the
//   flag (one that does not fails such reads with -EOPNOTSUPP); where it
//   does not, a reader uses read(). So after one io_uring_enter() every
//   completion is there, and packets come out in the order the device
//   queued them.
// - A batch asks for about twice what the last one got (at least 2, at most
//   the buffers given): a lone ping costs one read that finds it and one
//   that finds nothing, in one call; a full batch grows to the whole batch.
// - A ring is used by one thread only (a TUN queue has one for its reader and
//   one for its writer, which may be different threads).
// - Where io_uring is unavailable (an old kernel, kernel.io_uring_disabled, a
//   seccomp filter), Create() says why and the caller uses read()/write().
#ifndef NATD_TUN_URING_H_
#define NATD_TUN_URING_H_

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/statusor.h"

namespace natd::tun {

class Uring {
 public:
  // The most operations one call submits.
  static constexpr uint32_t kDepth = 256;

  static absl::StatusOr<std::unique_ptr<Uring>> Create();
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  // Reads into iov[0..n) (n <= kDepth) from `fd` in one call, each read one
  // packet; results[i] is read i's byte count or -errno.
  void ReadEach(int fd, std::span<const iovec> iov, int32_t* results);
  // Writes iov[i] as one packet each, likewise.
  void WriteEach(int fd, std::span<const iovec> iov, int32_t* results);
  // Whether a read of `fd` with nothing to read completes at once (-EAGAIN)
  // rather than waiting for data: submits one and, if it is parked, cancels
  // it. Call it on a descriptor nothing can arrive on yet.
  absl::StatusOr<bool> ReadsCompleteAtOnce(int fd);
  // The ring itself failed (io_uring_enter returned an error): it may hold
  // stale submissions, so its owner must stop using it.
  bool failed() const { return failed_; }

 private:
  Uring() = default;
  void Run(int fd, std::span<const iovec> iov, int32_t* results, bool write);

  io_uring ring_{};
  bool failed_ = false;
};

}  // namespace natd::tun

#endif  // NATD_TUN_URING_H_
