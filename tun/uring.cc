#include "tun/uring.h"

#include <errno.h>
#include <string.h>

#include "absl/strings/str_cat.h"

namespace natd::tun {
namespace {

// A read of one packet that fails at once when there is nothing to read and
// never waits for data (without RWF_NOWAIT the kernel parks it until a
// packet comes). Offset -1: the file's position, which a TUN does not have.
void PrepRead(io_uring_sqe* sqe, int fd, void* buf, unsigned len) {
  io_uring_prep_read(sqe, fd, buf, len, uint64_t(-1));
  sqe->rw_flags = RWF_NOWAIT;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Uring>> Uring::Create() {
  std::unique_ptr<Uring> u(new Uring());
  // No IORING_SETUP_SINGLE_ISSUER: the ring is made on the thread that
  // opens the device and used by a reader or writer thread (the kernel
  // binds a single-issuer ring to its creator and refuses the others).
  const int rc = io_uring_queue_init(kDepth, &u->ring_, 0);
  if (rc < 0) return absl::UnavailableError(absl::StrCat("io_uring_queue_init: ", strerror(-rc)));
  return u;
}

Uring::~Uring() { io_uring_queue_exit(&ring_); }

absl::StatusOr<bool> Uring::ReadsCompleteAtOnce(int fd) {
  char byte[1];
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  PrepRead(sqe, fd, byte, sizeof byte);
  io_uring_sqe_set_data64(sqe, 1);
  int rc = io_uring_submit(&ring_);
  if (rc != 1) return absl::UnavailableError(absl::StrCat("io_uring_submit: ", strerror(rc < 0 ? -rc : EIO)));
  // A read that fails at once completes within the submission or just
  // after it; one parked for data does not complete at all.
  io_uring_cqe* cqe = nullptr;
  __kernel_timespec wait{0, 20 * 1000 * 1000};
  if (io_uring_wait_cqe_timeout(&ring_, &cqe, &wait) == 0) {
    const bool again = cqe->res == -EAGAIN;
    io_uring_cqe_seen(&ring_, cqe);
    return again;
  }
  // Parked until data comes: cancel it, and reap both completions (the
  // read's, -ECANCELED, and the cancel's).
  sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_cancel64(sqe, 1, 0);
  io_uring_sqe_set_data64(sqe, 2);
  rc = io_uring_submit(&ring_);
  for (int i = 0; i < 2 && rc == 1; ++i) {
    if (io_uring_wait_cqe(&ring_, &cqe) != 0) break;
    io_uring_cqe_seen(&ring_, cqe);
    if (i == 1) return false;
  }
  failed_ = true;
  return absl::UnavailableError("io_uring: a parked read could not be cancelled");
}

void Uring::ReadEach(int fd, std::span<const iovec> iov, int32_t* results) { Run(fd, iov, results, false); }

void Uring::WriteEach(int fd, std::span<const iovec> iov, int32_t* results) { Run(fd, iov, results, true); }

void Uring::Run(int fd, std::span<const iovec> iov, int32_t* results, bool write) {
  const uint32_t n = uint32_t(iov.size() < kDepth ? iov.size() : kDepth);
  for (uint32_t i = 0; i < n; ++i) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // never null: the ring holds kDepth and is empty
    if (write) {
      io_uring_prep_write(sqe, fd, iov[i].iov_base, unsigned(iov[i].iov_len), uint64_t(-1));  // -1: no position
    } else {
      PrepRead(sqe, fd, iov[i].iov_base, unsigned(iov[i].iov_len));
    }
    io_uring_sqe_set_data64(sqe, i);
    results[i] = -ECANCELED;
  }
  // The descriptor is non-blocking, so every operation completes during the
  // submission; waiting for all n costs nothing more.
  uint32_t done = 0;
  int rc;
  do {
    rc = io_uring_submit_and_wait(&ring_, n);
  } while (rc == -EINTR);
  if (rc < 0) {
    failed_ = true;
    for (uint32_t i = 0; i < n; ++i) results[i] = rc;
    return;
  }
  while (done < n) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&ring_, &cqe) != 0) {
      // Submitted but not yet complete (never seen with a non-blocking
      // descriptor, but the ring must be empty before the next batch).
      if (io_uring_wait_cqe(&ring_, &cqe) != 0) {
        failed_ = true;
        return;
      }
    }
    const uint64_t i = io_uring_cqe_get_data64(cqe);
    if (i < n) results[i] = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    ++done;
  }
}

}  // namespace natd::tun
