// The state file on disk: written atomically (no temporary left behind, the
// old file replaced whole), read back into a fresh engine; a missing file is
// a first start, a refused one says why and leaves the tables empty.
#include "tools/state_store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nat/addr.h"
#include "nat/config.h"
#include "nat/engine.h"
#include "nat/events.h"
#include "nat/state_file.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kUnix = 1'800'000'000'000;

std::string TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/state_store_test.XXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  return dir;
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<Engine> MakeEngine(EventSink* sink) {
  EngineConfig c;
  Ip4 g4;
  EXPECT_TRUE(ParseIp4("198.51.100.1", &g4));
  c.global4 = g4;
  c.max_sessions = 1024;
  auto e = Engine::Create(c, sink);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

// One UDP session from 10.1.0.2:port.
void AddSession(Engine& e, uint16_t port, int64_t now) {
  testing::Bytes p = testing::Build(testing::MakeSpec(4, "10.1.0.2", "203.0.113.7", kProtoUdp, port, 53));
  ASSERT_EQ(e.shard(0).ProcessOne(p.data(), uint32_t(p.size()), now).action, Action::kForward);
}

TEST(StateStore, SavesAndLoads) {
  const std::string dir = TempDir();
  const std::string path = dir + "/natd.state";
  NullEventSink sink;
  auto a = MakeEngine(&sink);
  AddSession(*a, 30000, 0);
  AddSession(*a, 30001, 0);
  bool ok = false;
  EXPECT_THAT(SaveStateFile(*a, path, 1'000, kUnix, &ok), StartsWith("natd: state: saved 2 sessions to " + path));
  EXPECT_TRUE(ok);
  EXPECT_EQ(Files(dir), std::vector<std::string>{"natd.state"}) << "no temporary file left";
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "inside addresses are nobody else's business";

  auto b = MakeEngine(&sink);
  EXPECT_EQ(LoadStateFile(*b, path, 5, kUnix + 10), "natd: state: restored 2 sessions (2 mappings) from " + path);
  EXPECT_EQ(b->shard(0).v4()->udp.session_count(), 2u);

  // Saving again replaces the file whole.
  AddSession(*b, 30002, 6);
  EXPECT_THAT(SaveStateFile(*b, path, 7, kUnix + 20, &ok), StartsWith("natd: state: saved 3 sessions"));
  EXPECT_EQ(Files(dir), std::vector<std::string>{"natd.state"});
  auto c = MakeEngine(&sink);
  EXPECT_THAT(LoadStateFile(*c, path, 0, kUnix + 30), StartsWith("natd: state: restored 3 sessions"));
}

TEST(StateStore, MissingFileIsAFirstStart) {
  NullEventSink sink;
  auto e = MakeEngine(&sink);
  const std::string path = TempDir() + "/none";
  EXPECT_EQ(LoadStateFile(*e, path, 0, kUnix), "natd: state: no " + path + " yet; starting empty");
  EXPECT_TRUE(absl::IsNotFound(ReadWholeFile(path).status()));
}

TEST(StateStore, RefusedFileStartsEmpty) {
  const std::string dir = TempDir();
  const std::string path = dir + "/natd.state";
  NullEventSink sink;
  auto a = MakeEngine(&sink);
  AddSession(*a, 30000, 0);
  std::string bytes = EncodeState(*a, 1'000, kUnix);
  bytes[bytes.size() / 2] ^= 0x20;
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  auto b = MakeEngine(&sink);
  const std::string line = LoadStateFile(*b, path, 0, kUnix);
  EXPECT_THAT(line, StartsWith("natd: state: " + path + " refused: checksum mismatch"));
  EXPECT_THAT(line, HasSubstr("; starting empty"));
  EXPECT_EQ(b->shard(0).v4()->udp.session_count(), 0u);

  ASSERT_TRUE(WriteFileAtomically(path, "hello").ok());
  EXPECT_THAT(LoadStateFile(*b, path, 0, kUnix), HasSubstr("refused: not a natd state file"));
  // A directory where the file should be.
  EXPECT_THAT(LoadStateFile(*b, dir, 0, kUnix), HasSubstr("refused: "));
  EXPECT_EQ(b->shard(0).v4()->udp.session_count(), 0u);
}

TEST(StateStore, WriteFailuresAreReported) {
  const std::string dir = TempDir();
  NullEventSink sink;
  auto e = MakeEngine(&sink);
  bool ok = true;
  EXPECT_THAT(SaveStateFile(*e, dir + "/no/such/dir/natd.state", 0, kUnix, &ok),
              HasSubstr("natd: state: NOT saved: cannot create"));
  EXPECT_FALSE(ok);
  // A directory in the way: the rename fails, the temporary is removed.
  ASSERT_EQ(mkdir((dir + "/taken").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir + "/taken/x").c_str(), 0700), 0);
  EXPECT_FALSE(WriteFileAtomically(dir + "/taken", "bytes").ok());
  EXPECT_EQ(Files(dir), std::vector<std::string>{"taken"});
}

TEST(StateStore, WritableCheck) {
  const std::string dir = TempDir();
  EXPECT_TRUE(CheckStateFileWritable(dir + "/natd.state").ok());
  EXPECT_THAT(CheckStateFileWritable(dir + "/missing/natd.state").message(), HasSubstr("cannot use the directory"));
  EXPECT_THAT(CheckStateFileWritable(dir).message(), HasSubstr("is a directory"));
  EXPECT_THAT(CheckStateFileWritable(dir + "/").message(), HasSubstr("no file name"));
  EXPECT_TRUE(CheckStateFileWritable("relative.state").ok() || access(".", W_OK) != 0);
}

}  // namespace
}  // namespace natd
