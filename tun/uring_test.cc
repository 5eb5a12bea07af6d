#include "tun/uring.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace natd::tun {
namespace {

// A datagram-preserving pair stands in for a TUN: one message per read or
// write, non-blocking like natd's TUN descriptors.
class UringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_), 0);
    auto u = Uring::Create();
    if (!u.ok()) GTEST_SKIP() << "io_uring unavailable here: " << u.status();
    ring_ = *std::move(u);
  }
  void TearDown() override {
    close(fds_[0]);
    close(fds_[1]);
  }
  int fds_[2] = {-1, -1};
  std::unique_ptr<Uring> ring_;
};

TEST_F(UringTest, ReadsWhatIsQueuedInOrder) {
  for (int i = 0; i < 5; ++i) {
    const std::string m = "packet " + std::to_string(i);
    ASSERT_EQ(write(fds_[1], m.data(), m.size()), ssize_t(m.size()));
  }
  char bufs[5][64];
  iovec iov[5];
  for (int i = 0; i < 5; ++i) iov[i] = iovec{bufs[i], sizeof bufs[i]};
  int32_t res[5];
  ring_->ReadEach(fds_[0], std::span<const iovec>(iov, 5), res);
  EXPECT_FALSE(ring_->failed());
  for (int i = 0; i < 5; ++i) {
    const std::string m = "packet " + std::to_string(i);
    ASSERT_EQ(res[i], int32_t(m.size())) << i;
    EXPECT_EQ(std::string(bufs[i], res[i]), m);
  }
}

// Reads are RWF_NOWAIT: on an empty socket (which takes the flag, as this
// kernel's TUN does) each completes at once with -EAGAIN instead of being
// parked until data comes, so the probe says yes and a batch never waits.
TEST_F(UringTest, ReadsOfAnEmptySocketFailAtOnce) {
  auto at_once = ring_->ReadsCompleteAtOnce(fds_[0]);
  ASSERT_TRUE(at_once.ok()) << at_once.status();
  EXPECT_TRUE(*at_once);
  char bufs[4][64];
  iovec iov[4];
  for (int i = 0; i < 4; ++i) iov[i] = iovec{bufs[i], sizeof bufs[i]};
  int32_t res[4];
  ring_->ReadEach(fds_[0], std::span<const iovec>(iov, 4), res);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(res[i], -EAGAIN) << i;
  // Nothing was taken from what comes later.
  const std::string m = "after the probe";
  ASSERT_EQ(write(fds_[1], m.data(), m.size()), ssize_t(m.size()));
  ring_->ReadEach(fds_[0], std::span<const iovec>(iov, 2), res);
  ASSERT_EQ(res[0], int32_t(m.size()));
  EXPECT_EQ(std::string(bufs[0], res[0]), m);
  EXPECT_EQ(res[1], -EAGAIN);
  EXPECT_FALSE(ring_->failed());
}

// A descriptor whose empty read does not end in -EAGAIN (here /dev/null's
// end of file): the probe says no, and natd would use read().
TEST_F(UringTest, ProbeSaysNoUnlessAnEmptyReadFailsWithEagain) {
  const int null = open("/dev/null", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(null, 0);
  auto at_once = ring_->ReadsCompleteAtOnce(null);
  close(null);
  ASSERT_TRUE(at_once.ok()) << at_once.status();
  EXPECT_FALSE(*at_once);
  EXPECT_FALSE(ring_->failed());
}

TEST_F(UringTest, WritesEachAsOneMessageInOrder) {
  std::vector<std::string> msgs;
  std::vector<iovec> iov;
  // Few enough to fit the socket's buffer (a full one would park a write).
  for (int i = 0; i < 64; ++i) msgs.push_back("m" + std::to_string(i));
  for (auto& m : msgs) iov.push_back(iovec{m.data(), m.size()});
  std::vector<int32_t> res(iov.size());
  ring_->WriteEach(fds_[1], std::span<const iovec>(iov.data(), iov.size()), res.data());
  EXPECT_FALSE(ring_->failed());
  for (size_t i = 0; i < msgs.size(); ++i) {
    ASSERT_EQ(res[i], int32_t(msgs[i].size())) << i;
    char buf[64];
    const ssize_t r = read(fds_[0], buf, sizeof buf);
    ASSERT_EQ(r, ssize_t(msgs[i].size())) << i;
    EXPECT_EQ(std::string(buf, r), msgs[i]);
  }
}

TEST_F(UringTest, ErrorsArePerOperation) {
  char buf[16];
  iovec iov[2] = {{buf, sizeof buf}, {buf, sizeof buf}};
  int32_t res[2];
  ring_->ReadEach(-1, std::span<const iovec>(iov, 2), res);
  EXPECT_EQ(res[0], -EBADF);
  EXPECT_EQ(res[1], -EBADF);
  EXPECT_FALSE(ring_->failed());
}

}  // namespace
}  // namespace natd::tun
